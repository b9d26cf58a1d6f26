//! The blocking provider against an in-process scripted IMDS transport, with a
//! manual clock: no sockets, no sleeps, no timing assertions.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use credstate::{Config, Event, Request, Response, SourceError, Timestamp, TransportFailure};
use credstate_blocking::{ManualClock, Provider};

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

/// What the scripted IMDS saw: one line per request, `METHOD path`.
#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<String>>>);

impl Seen {
    fn record(&self, request: &Request) {
        self.0
            .lock()
            .unwrap()
            .push(format!("{} {}", request.method.as_str(), request.path()));
    }
    fn lines(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

/// An IMDS with role `web` whose credentials answer comes from `credentials`.
fn imds(
    seen: &Seen,
    mut credentials: impl FnMut() -> Result<Response, TransportFailure> + Send + 'static,
) -> impl FnMut(&Request) -> Result<Response, TransportFailure> + Send + 'static {
    let seen = seen.clone();
    move |request: &Request| {
        seen.record(request);
        match request.path() {
            "/latest/api/token" => Ok(Response::new(200, IMDS_TOKEN)
                .with_header("x-aws-ec2-metadata-token-ttl-seconds", "21600")),
            "/latest/meta-data/iam/security-credentials-extended/" => Ok(Response::new(200, "web")),
            "/latest/meta-data/iam/security-credentials-extended/web" => credentials(),
            other => panic!("unexpected request for {other}"),
        }
    }
}

fn config() -> Config {
    let mut config = Config::default();
    config.endpoint = "http://imds.invalid".into();
    config
}

fn provider(clock: &ManualClock, transport: impl credstate_blocking::Transport) -> Provider {
    Provider::builder()
        .config(config())
        .clock(clock.clone())
        .seed(7)
        .transport(transport)
        .build()
        .unwrap()
}

#[test]
fn a_cold_fetch_asks_for_token_role_and_credentials_once() {
    let clock = ManualClock::at(START);
    let seen = Seen::default();
    let provider = provider(
        &clock,
        imds(&seen, move || {
            Ok(credentials_body(
                "ASIA1",
                START + Duration::from_secs(6 * 3600),
            ))
        }),
    );
    let credentials = provider.credentials().unwrap();
    assert_eq!(credentials.access_key_id, "ASIA1");
    assert_eq!(credentials.secret_access_key.expose(), SECRET_KEY);
    let again = provider.credentials().unwrap();
    assert!(
        *credentials == *again,
        "the second call is served from the snapshot"
    );
    assert_eq!(
        seen.lines(),
        [
            "PUT /latest/api/token",
            "GET /latest/meta-data/iam/security-credentials-extended/",
            "GET /latest/meta-data/iam/security-credentials-extended/web",
        ]
    );
}

#[test]
fn concurrent_cold_callers_share_one_fetch_sequence() {
    let clock = ManualClock::at(START);
    let seen = Seen::default();
    let callers = 64;
    // The credentials answer is held back until every caller is on its way,
    // so the callers find the fetch in flight rather than finished.
    let (release, released) = mpsc::channel::<()>();
    let provider = provider(
        &clock,
        imds(&seen, move || {
            released.recv().unwrap();
            Ok(credentials_body(
                "ASIA1",
                START + Duration::from_secs(6 * 3600),
            ))
        }),
    );
    let (on_the_way, started) = mpsc::channel();
    let threads: Vec<_> = (0..callers)
        .map(|_| {
            let provider = provider.clone();
            let on_the_way = on_the_way.clone();
            std::thread::spawn(move || {
                on_the_way.send(()).unwrap();
                provider.credentials()
            })
        })
        .collect();
    for _ in 0..callers {
        started.recv().unwrap();
    }
    release.send(()).unwrap();
    let results: Vec<_> = threads
        .into_iter()
        .map(|thread| thread.join().unwrap().unwrap())
        .collect();
    assert!(results.iter().all(|c| **c == *results[0]));
    assert_eq!(seen.lines().len(), 3, "{:?}", seen.lines());
}

#[test]
fn a_rejected_demand_returns_the_typed_cause() {
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
    let error = provider.credentials().unwrap_err();
    assert_eq!(error, SourceError::NoRoleAttached);
    assert_eq!(
        error.to_string(),
        "no IAM role is attached to this instance"
    );
}

#[test]
fn an_unreachable_source_fails_after_its_attempts_with_the_transport_cause() {
    // Retries pause between attempts, so this test runs on the real clock.
    let attempts = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&attempts);
    let mut config = config();
    config.retry_pause_max = Duration::from_millis(1);
    let provider = Provider::builder()
        .config(config)
        .transport(move |_: &Request| {
            counted.fetch_add(1, Ordering::SeqCst);
            Err(TransportFailure::ConnectRefused)
        })
        .build()
        .unwrap();
    let error = provider.credentials().unwrap_err();
    assert_eq!(error.name(), "Unreachable", "{error}");
    assert_eq!(attempts.load(Ordering::SeqCst), 3);
}

#[test]
fn callers_in_the_mandatory_window_wait_for_the_refresh_and_get_new_credentials() {
    let clock = ManualClock::at(START);
    let seen = Seen::default();
    let expiry = START + Duration::from_secs(3600);
    let issued = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&issued);
    let provider = provider(
        &clock,
        imds(&seen, move || {
            let n = counter.fetch_add(1, Ordering::SeqCst);
            let expiration = expiry + Duration::from_secs(3600 * n as u64);
            Ok(credentials_body(&format!("ASIA{n}"), expiration))
        }),
    );
    assert_eq!(provider.credentials().unwrap().access_key_id, "ASIA0");
    clock.set(expiry - Duration::from_secs(30));
    assert_eq!(provider.credentials().unwrap().access_key_id, "ASIA1");
    assert_eq!(issued.load(Ordering::SeqCst), 2);
}

#[test]
fn expired_credentials_are_served_under_static_stability_while_the_source_fails() {
    let clock = ManualClock::at(START);
    let seen = Seen::default();
    let expiry = START + Duration::from_secs(3600);
    let healthy = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let health = Arc::clone(&healthy);
    let (events, received) = mpsc::channel();
    let events = Mutex::new(events);
    // One attempt per fetch: the manual clock does not move through pauses.
    let mut config = config();
    config.attempts = 1;
    let provider = Provider::builder()
        .config(config)
        .clock(clock.clone())
        .on_event(move |event: &Event| {
            let _ = events.lock().unwrap().send(event.name());
        })
        .transport(imds(&seen, move || {
            if health.load(Ordering::SeqCst) {
                Ok(credentials_body("ASIA1", expiry))
            } else {
                Ok(Response::new(500, ""))
            }
        }))
        .build()
        .unwrap();
    provider.credentials().unwrap();
    healthy.store(false, Ordering::SeqCst);
    clock.set(expiry + Duration::from_secs(5));
    let served = provider.credentials().unwrap();
    assert_eq!(served.access_key_id, "ASIA1");
    assert_eq!(
        served.expiration, expiry,
        "the original expiration is reported"
    );
    let names: Vec<_> = received
        .iter()
        .take_while(|name| *name != "serving_expired")
        .collect();
    assert!(names.contains(&"static_stability_extended"), "{names:?}");
}

#[test]
fn dropping_the_last_handle_stops_and_joins_the_thread() {
    let clock = ManualClock::at(START);
    let seen = Seen::default();
    let provider = provider(
        &clock,
        imds(&seen, move || {
            Ok(credentials_body("ASIA1", START + Duration::from_secs(3600)))
        }),
    );
    provider.credentials().unwrap();
    let probe = provider.driver_probe();
    let clone = provider.clone();
    drop(provider);
    assert!(probe.is_running(), "a clone still holds the provider");
    assert_eq!(clone.credentials().unwrap().access_key_id, "ASIA1");
    drop(clone);
    assert!(!probe.is_running());
}

#[test]
fn a_panicking_transport_counts_as_a_broken_connection() {
    // Retries pause between attempts, so this test runs on the real clock.
    let mut config = config();
    config.retry_pause_max = Duration::from_millis(1);
    let provider = Provider::builder()
        .config(config)
        .transport(|_: &Request| -> Result<Response, TransportFailure> {
            panic!("transport failure under test")
        })
        .build()
        .unwrap();
    let error = provider.credentials().unwrap_err();
    assert_eq!(
        error,
        SourceError::Unreachable {
            step: credstate::Step::ImdsToken,
            failure: TransportFailure::Reset
        }
    );
    assert!(provider.driver_probe().is_running());
}

#[test]
fn provider_and_credentials_are_send_sync_and_debug_without_secrets() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Provider>();
    let clock = ManualClock::at(START);
    let seen = Seen::default();
    let provider = provider(
        &clock,
        imds(&seen, move || {
            Ok(credentials_body("ASIA1", START + Duration::from_secs(3600)))
        }),
    );
    let credentials = provider.credentials().unwrap();
    let printed = format!("{provider:?} {credentials:?} {credentials}");
    assert!(printed.contains("ASIA1"));
    for secret in [SECRET_KEY, SESSION_TOKEN, IMDS_TOKEN] {
        assert!(!printed.contains(secret), "{printed}");
    }
}
