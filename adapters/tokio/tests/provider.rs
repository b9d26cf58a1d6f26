//! The tokio provider against an in-process scripted IMDS transport: no
//! sockets, and no timing assertions.

use std::future::Future;
use std::pin::pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use credstate::{Event, Request, Response, SourceError, TransportFailure};
use credstate_adapter_support::testing::{
    credentials_body, imds_without_a_role, scripted_config as config, six_hour_credentials,
    ScriptedImds, Seen, IMDS_TOKEN, SECRET_KEY, SESSION_TOKEN, START,
};
use credstate_tokio::{async_trait, ManualClock, Provider, Transport};
use tokio::sync::Semaphore;

/// The scripted IMDS as a tokio transport, whose credentials answers each
/// wait for a permit of `gate` when there is one.
struct Scripted {
    imds: ScriptedImds,
    gate: Option<Arc<Semaphore>>,
}

impl Scripted {
    fn new(
        credentials: impl Fn(usize) -> Result<Response, TransportFailure> + Send + Sync + 'static,
    ) -> (Self, Seen) {
        let imds = ScriptedImds::new(credentials);
        let seen = imds.seen();
        (Scripted { imds, gate: None }, seen)
    }

    fn gated(mut self, gate: &Arc<Semaphore>) -> Self {
        self.gate = Some(Arc::clone(gate));
        self
    }
}

#[async_trait]
impl Transport for Scripted {
    async fn send(&self, request: &Request) -> Result<Response, TransportFailure> {
        if let Some(gate) = self
            .gate
            .as_ref()
            .filter(|_| ScriptedImds::is_credentials_request(request))
        {
            gate.acquire().await.unwrap().forget();
        }
        self.imds.answer(request)
    }
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
    let (imds, seen) = Scripted::new(six_hour_credentials);
    let provider = provider(&clock, imds);
    let credentials = provider.credentials().await.unwrap();
    assert_eq!(credentials.access_key_id, "ASIA1");
    let again = provider.credentials().await.unwrap();
    assert_eq!(*credentials, *again);
    assert_eq!(
        seen.lines(),
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
    let (imds, _) = Scripted::new(six_hour_credentials);
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
    let (imds, seen) = Scripted::new(six_hour_credentials);
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
    assert_eq!(seen.lines().len(), 3, "{:?}", seen.lines());
}

#[tokio::test]
async fn a_rejected_demand_returns_the_typed_cause() {
    let clock = ManualClock::at(START);
    let provider = Provider::builder()
        .config(config())
        .clock(clock)
        .transport(imds_without_a_role())
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
    let (imds, _) = Scripted::new(move |n| {
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
    let (imds, _) = Scripted::new(six_hour_credentials);
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
    let (imds, _) = Scripted::new(move |n| {
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
    let (imds, _) = Scripted::new(six_hour_credentials);
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
    let (imds, _) = Scripted::new(six_hour_credentials);
    let provider = provider(&clock, imds);
    let credentials = provider.credentials().await.unwrap();
    let printed = format!("{provider:?} {credentials:?} {credentials}");
    assert!(printed.contains("ASIA1"));
    for secret in [SECRET_KEY, SESSION_TOKEN, IMDS_TOKEN] {
        assert!(!printed.contains(secret), "{printed}");
    }
}
