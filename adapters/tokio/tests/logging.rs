//! What the tokio provider logs: its events, rate-limited, never a secret.

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use credstate::{Config, Request, Response, TransportFailure};
use credstate_tokio::{Clock, Provider, SystemClock};

const SECRET_KEY: &str = "wJalrXUtnFEMI-SECRET-ACCESS-KEY";
const SESSION_TOKEN: &str = "IQoJb3JpZ2luX2VjE-SESSION-TOKEN";
const IMDS_TOKEN: &str = "AQAEAImdsSessionToken-NEVER-LOG";

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// An IMDS whose first role-list answer is a 500, so warnings are logged too.
fn flaky_imds() -> impl Fn(&Request) -> Result<Response, TransportFailure> + Send + Sync + 'static {
    let role_lists = AtomicUsize::new(0);
    let expiration = SystemClock.now() + Duration::from_secs(6 * 3600);
    move |request: &Request| match request.path() {
        "/latest/api/token" => Ok(Response::new(200, IMDS_TOKEN)),
        "/latest/meta-data/iam/security-credentials-extended/" => {
            if role_lists.fetch_add(1, Ordering::SeqCst) == 0 {
                Ok(Response::new(500, format!("oops {IMDS_TOKEN}")))
            } else {
                Ok(Response::new(200, "web"))
            }
        }
        _ => Ok(Response::new(
            200,
            format!(
                r#"{{"Code":"Success","AccessKeyId":"ASIALOGGED","SecretAccessKey":"{SECRET_KEY}",
                    "Token":"{SESSION_TOKEN}","Expiration":"{}"}}"#,
                expiration.to_rfc3339()
            ),
        )),
    }
}

#[test]
fn events_are_logged_under_the_credstate_target_without_any_secret() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        let mut config = Config::default();
        config.endpoint = "http://imds.invalid".into();
        config.retry_pause_max = Duration::from_millis(1);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let provider = Provider::builder()
                .config(config)
                .transport(flaky_imds())
                .build()
                .unwrap();
            let credentials = provider.credentials().await.unwrap();
            assert_eq!(credentials.access_key_id, "ASIALOGGED");
            let probe = provider.driver_probe();
            drop(provider);
            for _ in 0..500 {
                if !probe.is_running() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            assert!(!probe.is_running());
        });
    });
    let output = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    for expected in [
        "credstate",
        "event=\"fetch_started\"",
        "event=\"attempt_failed\"",
        "HTTP 500",
        "event=\"credentials_received\"",
    ] {
        assert!(
            output.contains(expected),
            "missing {expected} in:\n{output}"
        );
    }
    assert!(output.contains("WARN"), "{output}");
    for secret in [SECRET_KEY, SESSION_TOKEN, IMDS_TOKEN] {
        assert!(!output.contains(secret), "{secret} leaked into:\n{output}");
    }
}
