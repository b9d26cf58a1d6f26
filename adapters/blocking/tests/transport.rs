//! The default transport against one-shot servers on loopback.

use std::time::Duration;

use credstate::TransportFailure;
use credstate_adapter_support::testing::{
    answer_with_body_of, assert_token_exchange, closed_endpoint, one_shot_server, token_request,
    REDIRECT_ANSWER, TOKEN_ANSWER,
};
use credstate_blocking::{Transport, UreqTransport};

#[test]
fn sends_the_method_path_and_headers_and_reads_the_answer() {
    let (endpoint, head, _release) = one_shot_server(Some(TOKEN_ANSWER.to_vec()));
    let request = token_request(&endpoint, 1024, Duration::from_secs(5));
    let response = UreqTransport::new().send(&request).unwrap();
    assert_token_exchange(&response, &head.recv().unwrap());
}

#[test]
fn reads_at_most_one_byte_past_the_body_limit() {
    let (endpoint, _head, _release) = one_shot_server(Some(answer_with_body_of(100_000)));
    let request = token_request(&endpoint, 1000, Duration::from_secs(5));
    let response = UreqTransport::new().send(&request).unwrap();
    assert_eq!(response.body.len(), 1001);
}

#[test]
fn redirects_are_reported_not_followed() {
    let (endpoint, _head, _release) = one_shot_server(Some(REDIRECT_ANSWER.to_vec()));
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
    let endpoint = closed_endpoint();
    let request = token_request(&endpoint, 1024, Duration::from_secs(5));
    assert_eq!(
        UreqTransport::new().send(&request),
        Err(TransportFailure::ConnectRefused)
    );
}
