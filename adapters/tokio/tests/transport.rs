//! The default transport against one-shot servers on loopback.

use std::time::Duration;

use credstate::TransportFailure;
use credstate_adapter_support::testing::{
    answer_with_body_of, assert_token_exchange, closed_endpoint, holding_server, one_shot_server,
    token_request, REDIRECT_ANSWER, TOKEN_ANSWER,
};
use credstate_tokio::{HyperTransport, Transport};

#[tokio::test]
async fn sends_the_method_path_and_headers_and_reads_the_answer() {
    let (endpoint, head, _release) = one_shot_server(Some(TOKEN_ANSWER.to_vec()));
    let request = token_request(&endpoint, 1024, Duration::from_secs(5));
    let response = HyperTransport.send(&request).await.unwrap();
    assert_token_exchange(&response, &head.recv().unwrap());
}

#[tokio::test]
async fn reads_at_most_one_byte_past_the_body_limit() {
    let (endpoint, _head, _release) = one_shot_server(Some(answer_with_body_of(100_000)));
    let request = token_request(&endpoint, 1000, Duration::from_secs(5));
    let response = HyperTransport.send(&request).await.unwrap();
    assert_eq!(response.body.len(), 1001);
}

#[tokio::test]
async fn redirects_are_reported_not_followed() {
    let (endpoint, _head, _release) = one_shot_server(Some(REDIRECT_ANSWER.to_vec()));
    let request = token_request(&endpoint, 1024, Duration::from_secs(5));
    let response = HyperTransport.send(&request).await.unwrap();
    assert_eq!(response.status, 307);
}

#[tokio::test]
async fn abandoning_a_request_that_never_answers_closes_its_connection() {
    let (endpoint, _head, closed) = holding_server();
    let request = token_request(&endpoint, 1024, Duration::from_millis(200));
    let attempt = tokio::time::timeout(request.timeout, HyperTransport.send(&request)).await;
    assert!(attempt.is_err(), "the server never answers");
    // The dropped request took its socket with it: the server reads EOF.
    let saw_eof = tokio::task::spawn_blocking(move || closed.recv_timeout(Duration::from_secs(10)))
        .await
        .unwrap();
    assert_eq!(saw_eof, Ok(true));
}

#[tokio::test]
async fn a_closed_port_is_a_refused_connection() {
    let endpoint = closed_endpoint();
    let request = token_request(&endpoint, 1024, Duration::from_secs(5));
    assert_eq!(
        HyperTransport.send(&request).await,
        Err(TransportFailure::ConnectRefused)
    );
}
