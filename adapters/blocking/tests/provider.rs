//! The blocking provider against an in-process scripted IMDS transport, with a
//! manual clock: no sockets, no sleeps, no timing assertions.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use credstate::{Event, Request, Response, SourceError, TransportFailure};
use credstate_adapter_support::testing::{
    credentials_body, imds_without_a_role, scripted_config as config,
    scripted_config_with_quick_retries, six_hour_credentials, ScriptedImds, IMDS_TOKEN, SECRET_KEY,
    SESSION_TOKEN, START,
};
use credstate_blocking::{ManualClock, Provider};

/// The scripted IMDS as a blocking transport.
fn transport(imds: ScriptedImds) -> impl credstate_blocking::Transport {
    move |request: &Request| imds.answer(request)
}

fn provider(clock: &ManualClock, imds: ScriptedImds) -> Provider {
    Provider::builder()
        .config(config())
        .clock(clock.clone())
        .seed(7)
        .transport(transport(imds))
        .build()
        .unwrap()
}

#[test]
fn a_cold_fetch_asks_for_token_role_and_credentials_once() {
    let clock = ManualClock::at(START);
    let imds = ScriptedImds::new(six_hour_credentials);
    let seen = imds.seen();
    let provider = provider(&clock, imds);
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
    let callers = 64;
    // The credentials answer is held back until every caller is on its way,
    // so the callers find the fetch in flight rather than finished.
    let (release, released) = mpsc::channel::<()>();
    let released = Mutex::new(released);
    let imds = ScriptedImds::new(move |n| {
        released.lock().unwrap().recv().unwrap();
        six_hour_credentials(n)
    });
    let seen = imds.seen();
    let provider = provider(&clock, imds);
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
        .transport(imds_without_a_role())
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
    let config = scripted_config_with_quick_retries();
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
    let expiry = START + Duration::from_secs(3600);
    let imds = ScriptedImds::new(move |n| {
        let expiration = expiry + Duration::from_secs(3600 * n as u64);
        Ok(credentials_body(&format!("ASIA{n}"), expiration))
    });
    let seen = imds.seen();
    let provider = provider(&clock, imds);
    assert_eq!(provider.credentials().unwrap().access_key_id, "ASIA0");
    clock.set(expiry - Duration::from_secs(30));
    assert_eq!(provider.credentials().unwrap().access_key_id, "ASIA1");
    let credential_requests = seen
        .lines()
        .iter()
        .filter(|line| line.ends_with("/web"))
        .count();
    assert_eq!(credential_requests, 2);
}

#[test]
fn expired_credentials_are_served_under_static_stability_while_the_source_fails() {
    let clock = ManualClock::at(START);
    let expiry = START + Duration::from_secs(3600);
    let healthy = Arc::new(AtomicBool::new(true));
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
        .transport(transport(ScriptedImds::new(move |_| {
            if health.load(Ordering::SeqCst) {
                Ok(credentials_body("ASIA1", expiry))
            } else {
                Ok(Response::new(500, ""))
            }
        })))
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
    let provider = provider(&clock, ScriptedImds::new(six_hour_credentials));
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
    let config = scripted_config_with_quick_retries();
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
    let provider = provider(&clock, ScriptedImds::new(six_hour_credentials));
    let credentials = provider.credentials().unwrap();
    let printed = format!("{provider:?} {credentials:?} {credentials}");
    assert!(printed.contains("ASIA1"));
    for secret in [SECRET_KEY, SESSION_TOKEN, IMDS_TOKEN] {
        assert!(!printed.contains(secret), "{printed}");
    }
}
