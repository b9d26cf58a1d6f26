//! The HTTP plumbing: hyper's HTTP/1.1 server on a tokio listener, handing
//! each request head to the state and carrying out its plan.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::state::{Action, MockState, Reply, RequestHead, TOKEN_HEADER, TTL_HEADER};

/// The state survives a panicking test thread: the counts are still right.
pub(super) fn lock(shared: &Mutex<MockState>) -> MutexGuard<'_, MockState> {
    shared
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Returned by the service to make hyper drop the connection unanswered.
#[derive(Debug)]
struct ClosedOnPurpose;

impl fmt::Display for ClosedOnPurpose {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("mock IMDS closed the connection on purpose")
    }
}

impl std::error::Error for ClosedOnPurpose {}

/// Accept connections until the shutdown sender is dropped.
pub(super) async fn serve(
    listener: TcpListener,
    shared: Arc<Mutex<MockState>>,
    mut shutdown: watch::Receiver<()>,
) {
    loop {
        tokio::select! {
            _ = shutdown.changed() => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => {
                    let _ = stream.set_nodelay(true);
                    tokio::spawn(connection(stream, Arc::clone(&shared), shutdown.clone()));
                }
                // Out of file descriptors and the like: breathe, then go on.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            },
        }
    }
}

async fn connection(
    stream: tokio::net::TcpStream,
    shared: Arc<Mutex<MockState>>,
    mut shutdown: watch::Receiver<()>,
) {
    let service = service_fn(move |request| answer(Arc::clone(&shared), request));
    let serving = http1::Builder::new()
        .timer(TokioTimer::new())
        .serve_connection(TokioIo::new(stream), service);
    tokio::select! {
        _ = serving => {}
        _ = shutdown.changed() => {}
    }
}

fn header(request: &Request<Incoming>, name: impl hyper::header::AsHeaderName) -> Option<&str> {
    // An unreadable value is present but matches nothing.
    request
        .headers()
        .get(name)
        .map(|value| value.to_str().unwrap_or(""))
}

async fn answer(
    shared: Arc<Mutex<MockState>>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, ClosedOnPurpose> {
    let (plan, log) = {
        let head = RequestHead {
            method: request.method().as_str(),
            path: request.uri().path(),
            token: header(&request, TOKEN_HEADER),
            ttl: header(&request, TTL_HEADER),
            authorization: header(&request, AUTHORIZATION),
        };
        let mut state = lock(&shared);
        let plan = state.decide(&head, Instant::now(), SystemTime::now());
        let log = state
            .log_requests()
            .then(|| format!("{} {}", head.method, head.path));
        (plan, log)
    };
    if let Some(line) = &log {
        let outcome = match &plan.action {
            Action::Respond(reply) => reply.status.to_string(),
            Action::Hang(limit) => format!("no answer (closing after {limit:?})"),
            Action::Close => String::from("connection closed without an answer"),
        };
        eprintln!("mock-imds: {line} -> {outcome}");
    }
    if !plan.delay.is_zero() {
        tokio::time::sleep(plan.delay).await;
    }
    match plan.action {
        Action::Respond(reply) => Ok(response(reply)),
        Action::Hang(limit) => {
            tokio::time::sleep(limit).await;
            Err(ClosedOnPurpose)
        }
        Action::Close => Err(ClosedOnPurpose),
    }
}

fn response(reply: Reply) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(reply.body)));
    *response.status_mut() =
        StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(reply.content_type));
    for (name, value) in reply.headers {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    }
    response
}
