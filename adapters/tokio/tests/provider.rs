//! The tokio provider against an in-process scripted IMDS transport: no
//! sockets, and no timing assertions.

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use credstate::{Config, Event, Request, Response, SourceError, Timestamp, TransportFailure};
use credstate_tokio::{async_trait, ManualClock, Provider, Transport};
use tokio::sync::Semaphore;

const START: Timestamp = Timestamp::from_unix_secs(1_795_910_400); // 2026-11-29T00:00:00Z
const SECRET_KEY: &str = "wJalrXUtnFEMI-SECRET-ACCESS-KEY";
const SESSION_TOKEN: &str = "IQoJb3JpZ2luX2VjE-SESSION-TOKEN";
const IMDS_TOKEN: &str = "AQAEAImdsSessionToken-NEVER-LOG";

fn credentials_body(access_key_id: &str, expiration: Timestamp) -> Response {
    Response::new(
        200,
        format!(
            r#"{{"Code":"Success","Type":"AWS-HMAC","AccessKeyId":"{access_key_id}",
                "SecretAccessKey":"{SECRET_KEY}","Token":"{SESSION_TOKEN}",
                "Expiration":"{}"}}"#,
            expiration.to_rfc3339()
        ),
    )
}

type CredentialsAnswer = Box<dyn Fn(usize) -> Result<Response, TransportFailure> + Send + Sync>;

/// An IMDS with role `web`; the n-th credentials answer (from 0) comes from
/// `credentials(n)`, after a permit of `gate` when there is one.
struct ScriptedImds {
    seen: Arc<Mutex<Vec<String>>>,
    credentials_served: AtomicUsize,
    credentials: CredentialsAnswer,
    gate: Option<Arc<Semaphore>>,
}

impl ScriptedImds {
    fn new(
        credentials: impl Fn(usize) -> Result<Response, TransportFailure> + Send + Sync + 'static,
    ) -> (Self, Arc<Mutex<Vec<String>>>) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let imds = ScriptedImds {
            seen: Arc::clone(&seen),
            credentials_served: AtomicUsize::new(0),
            credentials: Box::new(credentials),
            gate: None,
        };
        (imds, seen)
    }

    fn gated(mut self, gate: &Arc<Semaphore>) -> Self {
        self.gate = Some(Arc::clone(gate));
        self
    }
}

#[async_trait]
impl Transport for ScriptedImds {
    async fn send(&self, request: &Request) -> Result<Response, TransportFailure> {
        self.seen
            .lock()
            .unwrap()
            .push(format!("{} {}", request.method.as_str(), request.path()));
        match request.path() {
            "/latest/api/token" => Ok(Response::new(200, IMDS_TOKEN)),
            "/latest/meta-data/iam/security-credentials-extended/" => Ok(Response::new(200, "web")),
            "/latest/meta-data/iam/security-credentials-extended/web" => {
                if let Some(gate) = &self.gate {
                    gate.acquire().await.unwrap().forget();
                }
                (self.credentials)(self.credentials_served.fetch_add(1, Ordering::SeqCst))
            }
            other => panic!("unexpected request for {other}"),
        }
    }
}

fn config() -> Config {
    let mut config = Config::default();
    config.endpoint = "http://imds.invalid".into();
    config
}

fn six_hour_credentials(_: usize) -> Result<Response, TransportFailure> {
    Ok(credentials_body(
        "ASIA1",
        START + Duration::from_secs(6 * 3600),
    ))
}

fn provider(clock: &ManualClock, transport: impl Transport) -> Provider {
    Provider::builder()
        .config(config())
        .clock(clock.clone())
        .seed(7)
        .transport(transport)
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_cold_fetch_asks_for_token_role_and_credentials_once() {
    let clock = ManualClock::at(START);
    let (imds, seen) = ScriptedImds::new(six_hour_credentials);
    let provider = provider(&clock, imds);
    let credentials = provider.credentials().await.unwrap();
    assert_eq!(credentials.access_key_id, "ASIA1");
    let again = provider.credentials().await.unwrap();
    assert_eq!(*credentials, *again);
    assert_eq!(
        *seen.lock().unwrap(),
        [
            "PUT /latest/api/token",
            "GET /latest/meta-data/iam/security-credentials-extended/",
            "GET /latest/meta-data/iam/security-credentials-extended/web",
        ]
    );
}

#[tokio::test]
async fn the_hot_path_completes_on_its_first_poll() {
    let clock = ManualClock::at(START);
    let (imds, _) = ScriptedImds::new(six_hour_credentials);
    let provider = provider(&clock, imds);
    provider.credentials().await.unwrap();
    let mut hot = pin!(provider.credentials());
    let mut context = Context::from_waker(Waker::noop());
    assert!(matches!(
        hot.as_mut().poll(&mut context),
        Poll::Ready(Ok(credentials)) if credentials.access_key_id == "ASIA1"
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_cold_callers_share_one_fetch_sequence() {
    let clock = ManualClock::at(START);
    let gate = Arc::new(Semaphore::new(0));
    let (imds, seen) = ScriptedImds::new(six_hour_credentials);
    let provider = provider(&clock, imds.gated(&gate));
    let (started, mut on_the_way) = tokio::sync::mpsc::unbounded_channel();
    let callers: Vec<_> = (0..1000)
        .map(|_| {
            let provider = provider.clone();
            let started = started.clone();
            tokio::spawn(async move {
                started.send(()).unwrap();
                provider.credentials().await
            })
        })
        .collect();
    for _ in 0..1000 {
        on_the_way.recv().await.unwrap();
    }
    gate.add_permits(1);
    let mut results = Vec::new();
    for caller in callers {
        results.push(caller.await.unwrap().unwrap());
    }
    assert!(results.iter().all(|c| **c == *results[0]));
    assert_eq!(seen.lock().unwrap().len(), 3, "{:?}", seen.lock().unwrap());
}

#[tokio::test]
async fn a_rejected_demand_returns_the_typed_cause() {
    let clock = ManualClock::at(START);
    let provider = Provider::builder()
        .config(config())
        .clock(clock)
        .transport(|request: &Request| match request.path() {
            "/latest/api/token" => Ok(Response::new(200, IMDS_TOKEN)),
            _ => Ok(Response::new(404, "")),
        })
        .build()
        .unwrap();
    assert_eq!(
        provider.credentials().await.unwrap_err(),
        SourceError::NoRoleAttached
    );
}

#[tokio::test]
async fn a_request_that_never_answers_times_out_at_the_configured_deadline() {
    struct Hanging;
    #[async_trait]
    impl Transport for Hanging {
        async fn send(&self, _: &Request) -> Result<Response, TransportFailure> {
            std::future::pending().await
        }
    }
    let mut config = config();
    config.request_timeout = Duration::from_millis(50);
    config.v1_disabled = true;
    let provider = Provider::builder()
        .config(config)
        .transport(Hanging)
        .build()
        .unwrap();
    assert_eq!(
        provider.credentials().await.unwrap_err(),
        SourceError::LikelyHopLimit {
            timeout: Duration::from_millis(50)
        }
    );
}

#[tokio::test]
async fn callers_in_the_mandatory_window_wait_for_the_refresh_and_get_new_credentials() {
    let clock = ManualClock::at(START);
    let expiry = START + Duration::from_secs(3600);
    let (imds, _) = ScriptedImds::new(move |n| {
        let expiration = expiry + Duration::from_secs(3600 * n as u64);
        Ok(credentials_body(&format!("ASIA{n}"), expiration))
    });
    let provider = provider(&clock, imds);
    assert_eq!(provider.credentials().await.unwrap().access_key_id, "ASIA0");
    clock.set(expiry - Duration::from_secs(30));
    assert_eq!(provider.credentials().await.unwrap().access_key_id, "ASIA1");
}

async fn wait_until_stopped(probe: &credstate_tokio::DriverProbe) {
    for _ in 0..500 {
        if !probe.is_running() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the driver task did not stop");
}

#[tokio::test]
async fn dropping_the_last_handle_stops_the_driver_task() {
    let clock = ManualClock::at(START);
    let (imds, _) = ScriptedImds::new(six_hour_credentials);
    let provider = provider(&clock, imds);
    provider.credentials().await.unwrap();
    let probe = provider.driver_probe();
    let clone = provider.clone();
    drop(provider);
    tokio::task::yield_now().await;
    assert!(probe.is_running(), "a clone still holds the provider");
    drop(clone);
    wait_until_stopped(&probe).await;
}

#[test]
fn a_provider_outliving_its_runtime_gets_a_new_driver_on_the_callers_runtime() {
    let clock = ManualClock::at(START);
    let expiry = START + Duration::from_secs(3600);
    let (imds, _) = ScriptedImds::new(move |n| {
        Ok(credentials_body(
            &format!("ASIA{n}"),
            expiry + Duration::from_secs(3600 * n as u64),
        ))
    });
    let first = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let provider = first.block_on(async {
        let provider = provider(&clock, imds);
        provider.credentials().await.unwrap();
        provider
    });
    drop(first);
    assert!(!provider.driver_probe().is_running());

    clock.set(expiry - Duration::from_secs(30));
    let second = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let refreshed = second.block_on(provider.credentials()).unwrap();
    assert_eq!(refreshed.access_key_id, "ASIA1");
    assert!(provider.driver_probe().is_running());
}

#[tokio::test]
async fn the_event_hook_sees_the_fetch_in_order() {
    let clock = ManualClock::at(START);
    let (imds, _) = ScriptedImds::new(six_hour_credentials);
    let names = Arc::new(Mutex::new(Vec::new()));
    let recorder = Arc::clone(&names);
    let provider = Provider::builder()
        .config(config())
        .clock(clock)
        .transport(imds)
        .on_event(move |event: &Event| recorder.lock().unwrap().push(event.name()))
        .build()
        .unwrap();
    provider.credentials().await.unwrap();
    // The last events are drained after the answer; wait for them, bounded.
    for _ in 0..500 {
        if names.lock().unwrap().contains(&"refresh_scheduled") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        *names.lock().unwrap(),
        [
            "fetch_started",
            "token_acquired",
            "credentials_received",
            "refresh_scheduled"
        ]
    );
}

#[test]
fn building_outside_a_runtime_is_a_clear_error() {
    let error = Provider::new(config()).unwrap_err();
    assert!(
        error.to_string().contains("needs a tokio runtime"),
        "{error}"
    );
}

#[tokio::test]
async fn provider_and_credentials_print_without_secrets() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Provider>();
    let clock = ManualClock::at(START);
    let (imds, _) = ScriptedImds::new(six_hour_credentials);
    let provider = provider(&clock, imds);
    let credentials = provider.credentials().await.unwrap();
    let printed = format!("{provider:?} {credentials:?} {credentials}");
    assert!(printed.contains("ASIA1"));
    for secret in [SECRET_KEY, SESSION_TOKEN, IMDS_TOKEN] {
        assert!(!printed.contains(secret), "{printed}");
    }
}
