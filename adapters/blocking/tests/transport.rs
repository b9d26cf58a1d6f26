//! The default transport against one-shot servers on loopback.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use credstate::{Config, Demand, Machine, Output, Request, Timestamp, TransportFailure};
use credstate_blocking::{Transport, UreqTransport};

/// The machine's first request (the IMDS token PUT) for this endpoint.
fn token_request(endpoint: &str, max_body_bytes: usize, timeout: Duration) -> Request {
    let mut config = Config::default();
    config.endpoint = endpoint.to_owned();
    config.max_body_bytes = max_body_bytes;
    config.request_timeout = timeout;
    let mut machine = Machine::new(config, 1).unwrap();
    let now = Timestamp::from_unix_secs(1_795_910_400);
    assert!(matches!(machine.demand(now), Demand::Pending));
    loop {
        match machine.poll(now) {
            Output::Send(request) => return request,
            Output::Event(_) => {}
            other => panic!("expected a request, got {other:?}"),
        }
    }
}

/// A server that accepts one connection, reads the request head, answers
/// `response` (unless `None`: then it holds the connection until told) and
/// hands back the head it read.
fn one_shot_server(
    response: Option<Vec<u8>>,
) -> (String, mpsc::Receiver<String>, mpsc::Sender<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let (heads, head) = mpsc::channel();
    let (release, released) = mpsc::channel::<()>();
    thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut request = Vec::new();
        let mut buffer = [0u8; 1024];
        while !request.windows(4).any(|w| w == b"\r\n\r\n") {
            let read = stream.read(&mut buffer).unwrap();
            if read == 0 {
                break;
            }
            request.extend_from_slice(&buffer[..read]);
        }
        let _ = heads.send(String::from_utf8_lossy(&request).into_owned());
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

#[test]
fn sends_the_method_path_and_headers_and_reads_the_answer() {
    let (endpoint, head, _release) = one_shot_server(Some(
        b"HTTP/1.1 200 OK\r\nx-aws-ec2-metadata-token-ttl-seconds: 21600\r\ncontent-length: 5\r\n\r\ntoken"
            .to_vec(),
    ));
    let request = token_request(&endpoint, 1024, Duration::from_secs(5));
    let response = UreqTransport::new().send(&request).unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(response.body, b"token");
    assert_eq!(
        response.header("X-aws-ec2-metadata-token-ttl-seconds"),
        Some("21600")
    );
    let head = head.recv().unwrap().to_ascii_lowercase();
    assert!(
        head.starts_with("put /latest/api/token http/1.1\r\n"),
        "{head}"
    );
    assert!(
        head.contains("x-aws-ec2-metadata-token-ttl-seconds: 21600\r\n"),
        "{head}"
    );
}

#[test]
fn reads_at_most_one_byte_past_the_body_limit() {
    let mut response = b"HTTP/1.1 200 OK\r\ncontent-length: 100000\r\n\r\n".to_vec();
    response.extend(std::iter::repeat_n(b'x', 100_000));
    let (endpoint, _head, _release) = one_shot_server(Some(response));
    let request = token_request(&endpoint, 1000, Duration::from_secs(5));
    let response = UreqTransport::new().send(&request).unwrap();
    assert_eq!(response.body.len(), 1001);
}

#[test]
fn redirects_are_reported_not_followed() {
    let (endpoint, _head, _release) = one_shot_server(Some(
        b"HTTP/1.1 307 Temporary Redirect\r\nlocation: http://127.0.0.1:9/elsewhere\r\ncontent-length: 0\r\n\r\n"
            .to_vec(),
    ));
    let request = token_request(&endpoint, 1024, Duration::from_secs(5));
    let response = UreqTransport::new().send(&request).unwrap();
    assert_eq!(response.status, 307);
}

#[test]
fn a_server_that_never_answers_times_out() {
    let (endpoint, _head, release) = one_shot_server(None);
    let request = token_request(&endpoint, 1024, Duration::from_millis(200));
    assert_eq!(
        UreqTransport::new().send(&request),
        Err(TransportFailure::TimedOut)
    );
    let _ = release.send(());
}

#[test]
fn a_closed_port_is_a_refused_connection() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let request = token_request(&endpoint, 1024, Duration::from_secs(5));
    assert_eq!(
        UreqTransport::new().send(&request),
        Err(TransportFailure::ConnectRefused)
    );
}
