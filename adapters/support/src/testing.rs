//! Fixtures the adapters' tests share (the `test-support` feature): a
//! scripted IMDS, recognisable secrets, captured `tracing` output, and
//! one-shot HTTP servers on loopback. Not meant for anything but tests.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::Duration;

use credstate::{Config, Demand, Machine, Output, Request, Response, Timestamp, TransportFailure};

use crate::clock::{Clock, SystemClock};

/// 2026-11-29T00:00:00Z: where the tests' manual clocks start.
pub const START: Timestamp = Timestamp::from_unix_secs(1_795_910_400);
/// The secret access key the scripted sources hand out.
pub const SECRET_KEY: &str = "wJalrXUtnFEMI-SECRET-ACCESS-KEY";
/// The session token the scripted sources hand out.
pub const SESSION_TOKEN: &str = "IQoJb3JpZ2luX2VjE-SESSION-TOKEN";
/// The IMDS session token the scripted sources hand out.
pub const IMDS_TOKEN: &str = "AQAEAImdsSessionToken-NEVER-LOG";

/// The path of the role listing of the extended API.
const ROLE_LIST_PATH: &str = "/latest/meta-data/iam/security-credentials-extended/";

/// A successful IMDS credentials answer with [`SECRET_KEY`] and
/// [`SESSION_TOKEN`].
#[must_use]
pub fn credentials_body(access_key_id: &str, expiration: Timestamp) -> Response {
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

/// The default configuration pointed at an IMDS that is never dialled (the
/// tests bring their own transport).
#[must_use]
pub fn scripted_config() -> Config {
    let mut config = Config::default();
    config.endpoint = "http://imds.invalid".into();
    config
}

/// [`scripted_config`] with a millisecond's pause between attempts, for
/// tests whose retries run on the real clock.
#[must_use]
pub fn scripted_config_with_quick_retries() -> Config {
    let mut config = scripted_config();
    config.retry_pause_max = Duration::from_millis(1);
    config
}

/// An IMDS with session tokens and no role attached: every other path is
/// a 404.
pub fn imds_without_a_role(
) -> impl Fn(&Request) -> Result<Response, TransportFailure> + Send + Sync + 'static {
    |request: &Request| match request.path() {
        "/latest/api/token" => Ok(Response::new(200, IMDS_TOKEN)),
        _ => Ok(Response::new(404, "")),
    }
}

/// What a [`ScriptedImds`] saw: one line per request, `METHOD path`.
#[derive(Clone, Debug, Default)]
pub struct Seen(Arc<Mutex<Vec<String>>>);

impl Seen {
    fn record(&self, request: &Request) {
        self.0
            .lock()
            .unwrap()
            .push(format!("{} {}", request.method.as_str(), request.path()));
    }

    /// Every request so far, oldest first.
    #[must_use]
    pub fn lines(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

/// How a [`ScriptedImds`] answers its n-th (from 0) credentials request.
pub type CredentialsAnswer = Box<dyn Fn(usize) -> Result<Response, TransportFailure> + Send + Sync>;

/// An IMDS with session tokens and role `web`, whose n-th credentials
/// answer (from 0) comes from a function of n. Any other path panics.
pub struct ScriptedImds {
    seen: Seen,
    credentials_served: AtomicUsize,
    credentials: CredentialsAnswer,
}

impl ScriptedImds {
    /// An IMDS answering credentials requests with `credentials(n)`.
    #[must_use]
    pub fn new(
        credentials: impl Fn(usize) -> Result<Response, TransportFailure> + Send + Sync + 'static,
    ) -> Self {
        ScriptedImds {
            seen: Seen::default(),
            credentials_served: AtomicUsize::new(0),
            credentials: Box::new(credentials),
        }
    }

    /// A handle on the requests this IMDS sees.
    #[must_use]
    pub fn seen(&self) -> Seen {
        self.seen.clone()
    }

    /// Whether `request` asks for the role's credentials.
    #[must_use]
    pub fn is_credentials_request(request: &Request) -> bool {
        request.path() == "/latest/meta-data/iam/security-credentials-extended/web"
    }

    /// Record `request` and answer it.
    pub fn answer(&self, request: &Request) -> Result<Response, TransportFailure> {
        self.seen.record(request);
        match request.path() {
            "/latest/api/token" => Ok(Response::new(200, IMDS_TOKEN)
                .with_header("x-aws-ec2-metadata-token-ttl-seconds", "21600")),
            ROLE_LIST_PATH => Ok(Response::new(200, "web")),
            _ if Self::is_credentials_request(request) => {
                (self.credentials)(self.credentials_served.fetch_add(1, Ordering::SeqCst))
            }
            other => panic!("unexpected request for {other}"),
        }
    }
}

impl std::fmt::Debug for ScriptedImds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScriptedImds")
            .field("seen", &self.seen)
            .field("credentials_served", &self.credentials_served)
            .finish_non_exhaustive()
    }
}

/// Credentials `ASIA1` that expire six hours after [`START`], every time.
pub fn six_hour_credentials(_: usize) -> Result<Response, TransportFailure> {
    Ok(credentials_body(
        "ASIA1",
        START + Duration::from_secs(6 * 3600),
    ))
}

/// An IMDS on the real clock whose first role-list answer is a 500 (with
/// the IMDS token in its body), so a fetch logs a warning before
/// credentials `ASIALOGGED` arrive.
pub fn flaky_imds(
) -> impl Fn(&Request) -> Result<Response, TransportFailure> + Send + Sync + 'static {
    let role_lists = AtomicUsize::new(0);
    let expiration = SystemClock.now() + Duration::from_secs(6 * 3600);
    move |request: &Request| match request.path() {
        "/latest/api/token" => Ok(Response::new(200, IMDS_TOKEN)),
        ROLE_LIST_PATH => {
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

/// Everything `body` logs to `tracing`, at every level, as plain text.
pub fn capture_logs(body: impl FnOnce()) -> String {
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

    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::with_default(subscriber, body);
    let bytes = captured.0.lock().unwrap().clone();
    String::from_utf8(bytes).unwrap()
}

/// Checks that `output` logged a fetch from [`flaky_imds`] (its start, the
/// failed attempt as a warning, the credentials) under the `credstate`
/// target, and no secret.
pub fn assert_logged_the_flaky_fetch_without_secrets(output: &str) {
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

/// The machine's first request (the IMDS token PUT) for this endpoint.
#[must_use]
pub fn token_request(endpoint: &str, max_body_bytes: usize, timeout: Duration) -> Request {
    let mut config = Config::default();
    config.endpoint = endpoint.to_owned();
    config.max_body_bytes = max_body_bytes;
    config.request_timeout = timeout;
    let mut machine = Machine::new(config, 1).unwrap();
    assert!(matches!(machine.demand(START), Demand::Pending));
    loop {
        match machine.poll(START) {
            Output::Send(request) => return request,
            Output::Event(_) => {}
            other => panic!("expected a request, got {other:?}"),
        }
    }
}

/// An IMDS's answer to the token request, as sent: a token valid six hours.
pub const TOKEN_ANSWER: &[u8] =
    b"HTTP/1.1 200 OK\r\nx-aws-ec2-metadata-token-ttl-seconds: 21600\r\ncontent-length: 5\r\n\r\ntoken";

/// A temporary redirect elsewhere, as sent.
pub const REDIRECT_ANSWER: &[u8] = b"HTTP/1.1 307 Temporary Redirect\r\nlocation: http://127.0.0.1:9/elsewhere\r\ncontent-length: 0\r\n\r\n";

/// A 200 answer, as sent, whose body is `body_bytes` long.
#[must_use]
pub fn answer_with_body_of(body_bytes: usize) -> Vec<u8> {
    let mut answer =
        format!("HTTP/1.1 200 OK\r\ncontent-length: {body_bytes}\r\n\r\n").into_bytes();
    answer.extend(std::iter::repeat_n(b'x', body_bytes));
    answer
}

/// Checks that a transport sent the [`token_request`] as HTTP/1.1 (`head`,
/// as a server read it) and read [`TOKEN_ANSWER`] into `response`.
pub fn assert_token_exchange(response: &Response, head: &str) {
    assert_eq!(response.status, 200);
    assert_eq!(response.body, b"token");
    assert_eq!(
        response.header("X-aws-ec2-metadata-token-ttl-seconds"),
        Some("21600")
    );
    let head = head.to_ascii_lowercase();
    assert!(
        head.starts_with("put /latest/api/token http/1.1\r\n"),
        "{head}"
    );
    assert!(
        head.contains("x-aws-ec2-metadata-token-ttl-seconds: 21600\r\n"),
        "{head}"
    );
}

/// A listener on a free loopback port, and its `http://` endpoint.
fn loopback_listener() -> (TcpListener, String) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    (listener, endpoint)
}

/// Read a request head from `stream`, giving up after ten quiet seconds or
/// at the end of the stream.
fn read_head(stream: &mut TcpStream) -> String {
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut request = Vec::new();
    let mut buffer = [0u8; 1024];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(read) => request.extend_from_slice(&buffer[..read]),
        }
    }
    String::from_utf8_lossy(&request).into_owned()
}

/// A server that accepts one connection, reads the request head, answers
/// `response` (unless `None`: then it holds the connection until told, or
/// thirty seconds) and hands back the head it read.
#[must_use]
pub fn one_shot_server(
    response: Option<Vec<u8>>,
) -> (String, mpsc::Receiver<String>, mpsc::Sender<()>) {
    let (listener, endpoint) = loopback_listener();
    let (heads, head) = mpsc::channel();
    let (release, released) = mpsc::channel::<()>();
    thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let _ = heads.send(read_head(&mut stream));
        match response {
            Some(response) => {
                let _ = stream.write_all(&response);
            }
            None => {
                let _ = released.recv_timeout(Duration::from_secs(30));
            }
        }
    });
    (endpoint, head, release)
}

/// A server that accepts one connection, reads the request head, never
/// answers, and reports whether the client then closed the connection.
#[must_use]
pub fn holding_server() -> (String, mpsc::Receiver<String>, mpsc::Receiver<bool>) {
    let (listener, endpoint) = loopback_listener();
    let (heads, head) = mpsc::channel();
    let (closes, closed) = mpsc::channel();
    thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let _ = heads.send(read_head(&mut stream));
        let mut buffer = [0u8; 1024];
        let _ = closes.send(matches!(stream.read(&mut buffer), Ok(0)));
    });
    (endpoint, head, closed)
}

/// An endpoint on loopback where nothing listens.
#[must_use]
pub fn closed_endpoint() -> String {
    let (listener, endpoint) = loopback_listener();
    drop(listener);
    endpoint
}
