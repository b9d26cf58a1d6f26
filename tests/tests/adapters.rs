//! Both adapters over real loopback sockets, against the mock IMDS.
//!
//! Every test runs once per adapter (`blocking_adapter::…` and
//! `tokio_adapter::…`). The mock
//! runs on the real clock, so credential lifetimes and timeouts are short;
//! assertions are about order and counts, never about how long something
//! took, except one generous upper bound on a configured timeout.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use credstate::{
    Config, Credentials, Event, FetchReason, SourceError, TokenFailure, TransportFailure,
    V1DisabledBy,
};
use credstate_blocking::{Clock, SystemClock};
use credstate_tests::mock_imds::{MockImds, MockImdsOptions};
use credstate_tests::scenario::{FaultKind, Rotation, TokenSupport};

type Hook = Arc<dyn Fn(&Event) + Send + Sync>;

/// What the tests need from a provider, whatever runs it.
trait Adapter: Sized {
    fn build(config: Config, hook: Option<Hook>) -> Self;
    fn credentials(&self) -> Result<Arc<Credentials>, SourceError>;
    fn is_fetching(&self) -> bool;
    /// `callers` concurrent cold callers; their answers.
    fn concurrently(&self, callers: usize) -> Vec<Result<Arc<Credentials>, SourceError>>;
    /// Drop the provider; whether its thread or task is still running once
    /// the drop has had a bounded chance to take effect.
    fn still_running_after_drop(self) -> bool;
}

struct Blocking(credstate_blocking::Provider);

impl Adapter for Blocking {
    fn build(config: Config, hook: Option<Hook>) -> Self {
        let mut builder = credstate_blocking::Provider::builder()
            .config(config)
            .seed(11);
        if let Some(hook) = hook {
            builder = builder.on_event(move |event: &Event| hook(event));
        }
        Blocking(builder.build().unwrap())
    }

    fn credentials(&self) -> Result<Arc<Credentials>, SourceError> {
        self.0.credentials()
    }

    fn is_fetching(&self) -> bool {
        self.0.is_fetching()
    }

    fn concurrently(&self, callers: usize) -> Vec<Result<Arc<Credentials>, SourceError>> {
        let threads: Vec<_> = (0..callers)
            .map(|_| {
                let provider = self.0.clone();
                std::thread::Builder::new()
                    .stack_size(256 * 1024)
                    .spawn(move || provider.credentials())
                    .unwrap()
            })
            .collect();
        threads
            .into_iter()
            .map(|thread| thread.join().unwrap())
            .collect()
    }

    fn still_running_after_drop(self) -> bool {
        let probe = self.0.driver_probe();
        drop(self.0);
        // The drop joins the thread: nothing to wait for.
        probe.is_running()
    }
}

struct Tokio {
    runtime: tokio::runtime::Runtime,
    provider: credstate_tokio::Provider,
}

impl Adapter for Tokio {
    fn build(config: Config, hook: Option<Hook>) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let mut builder = credstate_tokio::Provider::builder()
            .config(config)
            .seed(11)
            .runtime(runtime.handle().clone());
        if let Some(hook) = hook {
            builder = builder.on_event(move |event: &Event| hook(event));
        }
        let provider = builder.build().unwrap();
        Tokio { runtime, provider }
    }

    fn credentials(&self) -> Result<Arc<Credentials>, SourceError> {
        self.runtime.block_on(self.provider.credentials())
    }

    fn is_fetching(&self) -> bool {
        self.provider.is_fetching()
    }

    fn concurrently(&self, callers: usize) -> Vec<Result<Arc<Credentials>, SourceError>> {
        self.runtime.block_on(async {
            let tasks: Vec<_> = (0..callers)
                .map(|_| {
                    let provider = self.provider.clone();
                    tokio::spawn(async move { provider.credentials().await })
                })
                .collect();
            let mut answers = Vec::with_capacity(callers);
            for task in tasks {
                answers.push(task.await.unwrap());
            }
            answers
        })
    }

    fn still_running_after_drop(self) -> bool {
        let probe = self.provider.driver_probe();
        drop(self.provider);
        self.runtime.block_on(async {
            for _ in 0..500 {
                if !probe.is_running() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        });
        probe.is_running()
    }
}

fn config_for(mock: &MockImds) -> Config {
    let mut config = Config::default();
    config.endpoint = mock.endpoint();
    config
}

/// Records every event's name, every fetch's reason and every warning.
#[derive(Clone, Default)]
struct Recorder {
    names: Arc<Mutex<Vec<&'static str>>>,
    fetch_reasons: Arc<Mutex<Vec<FetchReason>>>,
    warnings: Arc<Mutex<Vec<String>>>,
}

impl Recorder {
    fn hook(&self) -> Hook {
        let recorder = self.clone();
        Arc::new(move |event: &Event| {
            recorder.names.lock().unwrap().push(event.name());
            if let Event::FetchStarted { reason } = event {
                recorder.fetch_reasons.lock().unwrap().push(*reason);
            }
            if event.is_warning() {
                recorder.warnings.lock().unwrap().push(event.to_string());
            }
        })
    }

    fn warnings(&self) -> Vec<String> {
        self.warnings.lock().unwrap().clone()
    }

    fn saw(&self, name: &str) -> bool {
        self.names.lock().unwrap().contains(&name)
    }

    fn fetch_reasons(&self) -> Vec<FetchReason> {
        self.fetch_reasons.lock().unwrap().clone()
    }
}

fn cold_fetch_uses_token_role_and_credentials_requests_only<A: Adapter>() {
    let mock = MockImds::start(MockImdsOptions::default());
    let provider = A::build(config_for(&mock), None);
    let credentials = provider.credentials().unwrap();
    let issued = mock.issued_credentials();
    assert_eq!(issued.len(), 1);
    assert_eq!(credentials.access_key_id, issued[0].access_key_id);
    assert_eq!(
        credentials.secret_access_key.expose(),
        issued[0].secret_access_key.expose()
    );
    assert_eq!(credentials.account_id.as_deref(), Some("123456789012"));
    let stats = mock.stats();
    assert_eq!(stats.token_requests(), 1, "{stats:?}");
    assert_eq!(stats.role_list_requests(), 1, "{stats:?}");
    assert_eq!(stats.credential_requests(), 1, "{stats:?}");
    assert_eq!(stats.total, 3, "{stats:?}");
}

fn a_thousand_concurrent_cold_callers_cause_exactly_one_fetch_sequence<A: Adapter>() {
    // Latency keeps the fetch in flight while the callers pile up.
    let mock = MockImds::start(MockImdsOptions {
        latency: Duration::from_millis(100),
        ..MockImdsOptions::default()
    });
    let provider = A::build(config_for(&mock), None);
    let answers = provider.concurrently(1000);
    let first = answers[0].as_ref().unwrap();
    assert!(answers
        .iter()
        .all(|answer| **answer.as_ref().unwrap() == **first));
    let stats = mock.stats();
    assert_eq!(stats.total, 3, "{stats:?}");
    assert_eq!(mock.issued_credentials().len(), 1);
}

fn a_refresh_in_the_advisory_window_never_delays_a_caller<A: Adapter>() {
    // 10 s credentials: the advisory window is half their life, the
    // mandatory window their last second.
    let mock = MockImds::start(MockImdsOptions {
        credential_lifetime: Duration::from_secs(10),
        rotation: Rotation::Fresh,
        ..MockImdsOptions::default()
    });
    let mut config = config_for(&mock);
    config.advisory_jitter_percent = 0;
    config.mandatory_window = Duration::from_secs(1);
    config.expiry_buffer = Duration::from_millis(500);
    let recorder = Recorder::default();
    let provider = A::build(config, Some(recorder.hook()));
    let old = provider.credentials().unwrap();
    mock.set_delay(Duration::from_millis(500));

    let deadline = Instant::now() + Duration::from_secs(30);
    let mut served_from_snapshot_during_refresh = 0u64;
    let refreshed = loop {
        assert!(Instant::now() < deadline, "no refresh within 30 s");
        let fetching_before = provider.is_fetching();
        let credentials = provider.credentials().unwrap();
        // The snapshot changes under the machine's lock as the fetch ends, so
        // a call that returned while the fetch was still running read the
        // snapshot that was there before it: it did not wait for the fetch.
        if fetching_before && provider.is_fetching() {
            assert_eq!(*credentials, *old);
            served_from_snapshot_during_refresh += 1;
        } else if !fetching_before {
            std::thread::sleep(Duration::from_millis(1));
        }
        if *credentials != *old {
            break credentials;
        }
    };
    assert!(
        served_from_snapshot_during_refresh > 0,
        "no caller was served while the delayed refresh ran"
    );
    assert_ne!(refreshed.access_key_id, old.access_key_id);
    assert_eq!(
        recorder.fetch_reasons(),
        [FetchReason::Cold, FetchReason::Advisory],
        "only the background refresh ran: no caller had to wait for one"
    );
}

fn an_outage_across_expiry_is_bridged_by_static_stability<A: Adapter>() {
    let mock = MockImds::start(MockImdsOptions {
        credential_lifetime: Duration::from_secs(3),
        rotation: Rotation::Fresh,
        ..MockImdsOptions::default()
    });
    let mut config = config_for(&mock);
    config.mandatory_window = Duration::from_secs(1);
    config.expiry_buffer = Duration::from_millis(500);
    config.request_timeout = Duration::from_millis(500);
    config.retry_pause_max = Duration::from_millis(50);
    config.backoff_initial = Duration::from_millis(200);
    config.backoff_cap_urgent = Duration::from_secs(1);
    config.extension_min = Duration::from_secs(2);
    config.extension_max = Duration::from_secs(3);
    config.max_degraded = Duration::from_secs(60);
    let recorder = Recorder::default();
    let provider = A::build(config, Some(recorder.hook()));
    let old = provider.credentials().unwrap();
    mock.set_fault(Some(FaultKind::Http500));

    // Keep asking until well past the expiration: every answer is the old
    // credentials, with their original expiration.
    let past_expiry = old.expiration + Duration::from_millis(1500);
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut served_after_expiry = 0;
    while SystemClock.now() < past_expiry {
        assert!(Instant::now() < deadline);
        let asked_at = SystemClock.now();
        let credentials = provider.credentials().unwrap();
        assert_eq!(*credentials, *old);
        if asked_at >= old.expiration {
            served_after_expiry += 1;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(served_after_expiry > 0);
    assert!(recorder.saw("static_stability_extended"));
    assert!(recorder.saw("serving_expired"));

    // The outage ends: new credentials arrive.
    mock.clear_faults();
    let recovered = loop {
        assert!(Instant::now() < deadline, "no recovery within 30 s");
        let credentials = provider.credentials().unwrap();
        if *credentials != *old {
            break credentials;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(recovered.expiration > old.expiration);
}

fn a_token_404_falls_back_to_imdsv1<A: Adapter>() {
    let mock = MockImds::start(MockImdsOptions {
        token: TokenSupport::Unsupported,
        ..MockImdsOptions::default()
    });
    let recorder = Recorder::default();
    let provider = A::build(config_for(&mock), Some(recorder.hook()));
    let credentials = provider.credentials().unwrap();
    assert_eq!(
        credentials.access_key_id,
        mock.issued_credentials()[0].access_key_id
    );
    let stats = mock.stats();
    assert_eq!(stats.token_requests(), 1);
    assert_eq!(stats.credential_requests(), 1);
    assert!(recorder.saw("fell_back_to_v1"));
}

fn disabling_imdsv1_gives_the_typed_error<A: Adapter>() {
    let mock = MockImds::start(MockImdsOptions {
        token: TokenSupport::Unsupported,
        ..MockImdsOptions::default()
    });
    let mut config = config_for(&mock);
    config.v1_disabled = true;
    let provider = A::build(config, None);
    let error = provider.credentials().unwrap_err();
    assert_eq!(
        error,
        SourceError::V1Disabled {
            by: V1DisabledBy::Config,
            token_failure: TokenFailure::Status(404)
        }
    );
    assert_eq!(mock.stats().credential_requests(), 0);
}

fn a_hanging_imds_gives_an_error_within_the_configured_timeout<A: Adapter>() {
    let mock = MockImds::start(MockImdsOptions::default());
    mock.set_fault(Some(FaultKind::Timeout));
    let mut config = config_for(&mock);
    config.request_timeout = Duration::from_millis(200);
    config.retry_pause_max = Duration::from_millis(50);
    let provider = A::build(config, None);
    let started = Instant::now();
    let error = provider.credentials().unwrap_err();
    let took = started.elapsed();
    // The token PUT times out (fall back to IMDSv1 at once), then three
    // attempts at the role list time out: about 0.8 s.
    assert_eq!(
        error,
        SourceError::Unreachable {
            step: credstate::Step::ImdsRoleList,
            failure: TransportFailure::TimedOut
        }
    );
    assert!(took < Duration::from_secs(10), "took {took:?}");
}

fn a_hanging_token_request_with_imdsv1_disabled_names_the_hop_limit<A: Adapter>() {
    let mock = MockImds::start(MockImdsOptions::default());
    mock.set_fault(Some(FaultKind::TokenTimeout));
    let mut config = config_for(&mock);
    config.request_timeout = Duration::from_millis(200);
    config.v1_disabled = true;
    let provider = A::build(config, None);
    let error = provider.credentials().unwrap_err();
    assert_eq!(
        error,
        SourceError::LikelyHopLimit {
            timeout: Duration::from_millis(200)
        }
    );
    assert!(error.to_string().contains("hop limit may need to be 2"));
}

fn dropping_the_last_handle_stops_the_driver<A: Adapter>() {
    let mock = MockImds::start(MockImdsOptions::default());
    let provider = A::build(config_for(&mock), None);
    provider.credentials().unwrap();
    assert!(!provider.still_running_after_drop());
}

/// A token file in the temp dir, removed when dropped.
struct TokenFile(std::path::PathBuf);

impl TokenFile {
    fn new() -> Self {
        TokenFile(std::env::temp_dir().join(format!(
            "credstate-adapters-token-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        )))
    }

    /// Replace the file's contents, as EKS does when it rotates the token.
    /// No trailing newline: the core refuses a token with one.
    fn write(&self, token: &str) {
        std::fs::write(&self.0, token).unwrap();
    }

    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for TokenFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn a_container_endpoint_with_a_token_file_is_served_through_the_adapter<A: Adapter>() {
    // 3 s credentials, new on every fetch: the advisory refresh comes about
    // 1.5 s after each arrival.
    let mock = MockImds::start(MockImdsOptions {
        container_authorization: Some("container-token-1".into()),
        credential_lifetime: Duration::from_secs(3),
        rotation: Rotation::Fresh,
        ..MockImdsOptions::default()
    });
    let token_file = TokenFile::new();
    token_file.write("container-token-1");
    let config: Config = serde_json::from_value(serde_json::json!({
        "container": {
            "uri": mock.container_url(),
            "auth": {"token_file": token_file.path()}
        },
        "advisory_jitter_percent": 0,
        "mandatory_window": "1s",
        "expiry_buffer": "500ms"
    }))
    .unwrap();
    let recorder = Recorder::default();
    let provider = A::build(config, Some(recorder.hook()));
    let mut held = provider.credentials().unwrap();
    assert_eq!(
        held.access_key_id,
        mock.issued_credentials()[0].access_key_id
    );

    let deadline = Instant::now() + Duration::from_secs(30);
    for rotation in 2..=3 {
        // Rotate the token right after new credentials arrived, far from the
        // next refresh: from now on the mock accepts the new token only.
        let token = format!("container-token-{rotation}");
        mock.set_container_authorization(Some(token.clone()));
        token_file.write(&token);
        let issued_before = mock.issued_credentials().len();
        held = loop {
            assert!(
                recorder.warnings().is_empty(),
                "a refresh failed: {:?}",
                recorder.warnings()
            );
            assert!(
                Instant::now() < deadline,
                "no refresh with token {rotation} within 30 s"
            );
            let credentials = provider.credentials().unwrap();
            if *credentials != *held {
                break credentials;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        // The mock issues credentials only to a request that carried the
        // token it requires: these came with the rewritten token.
        let issued = mock.issued_credentials();
        assert_eq!(issued.len(), issued_before + 1, "{issued:?}");
        assert_eq!(held.access_key_id, issued[issued_before].access_key_id);
    }
    assert!(
        recorder.warnings().is_empty(),
        "a refresh failed: {:?}",
        recorder.warnings()
    );
    // Every request to the container endpoint was accepted (a 401 or 403
    // issues nothing): the old token was never sent after a rewrite.
    assert!(!provider.still_running_after_drop());
    let container_requests = mock.stats().requests_to("/container/credentials");
    assert_eq!(
        container_requests,
        mock.issued_credentials().len() as u64,
        "{:?}",
        mock.stats()
    );
    assert_eq!(container_requests, 3);
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

macro_rules! for_each_adapter {
    ($($test:ident),* $(,)?) => {
        mod blocking_adapter {
            $(#[test] fn $test() { super::$test::<super::Blocking>() })*
        }
        mod tokio_adapter {
            $(#[test] fn $test() { super::$test::<super::Tokio>() })*
        }
    };
}

for_each_adapter!(
    cold_fetch_uses_token_role_and_credentials_requests_only,
    a_thousand_concurrent_cold_callers_cause_exactly_one_fetch_sequence,
    a_refresh_in_the_advisory_window_never_delays_a_caller,
    an_outage_across_expiry_is_bridged_by_static_stability,
    a_token_404_falls_back_to_imdsv1,
    disabling_imdsv1_gives_the_typed_error,
    a_hanging_imds_gives_an_error_within_the_configured_timeout,
    a_hanging_token_request_with_imdsv1_disabled_names_the_hop_limit,
    dropping_the_last_handle_stops_the_driver,
    a_container_endpoint_with_a_token_file_is_served_through_the_adapter,
);
