//! An aws-sdk-s3 client whose credentials provider is credstate-tokio signs
//! its requests with the credentials the mock IMDS issued.

use std::time::Duration;

use aws_sdk_s3::config::{BehaviorVersion, Region};
use credstate_tests::mock_imds::{MockImds, MockImdsOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Accept one connection on loopback, answer its request with an empty 200,
/// and hand back the request head (request line and headers), lower-cased
/// header names included as sent.
async fn capture_one_request(listener: TcpListener) -> String {
    let (mut stream, _) = listener.accept().await.unwrap();
    let mut head = Vec::new();
    let mut buffer = [0u8; 4096];
    while !head.windows(4).any(|window| window == b"\r\n\r\n") {
        let read = stream.read(&mut buffer).await.unwrap();
        assert!(read > 0, "the client closed before sending its headers");
        head.extend_from_slice(&buffer[..read]);
        assert!(head.len() < 64 * 1024, "request head too large");
    }
    stream
        .write_all(
            b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nx-amz-request-id: credstate-test\r\n\r\n",
        )
        .await
        .unwrap();
    String::from_utf8(head).unwrap()
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.trim()
            .eq_ignore_ascii_case(name)
            .then_some(value.trim())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_s3_client_signs_with_the_credentials_from_the_mock_imds() {
    let mock = MockImds::start(MockImdsOptions::default());
    let mut config = credstate::Config::default();
    config.endpoint = mock.endpoint();
    let provider = credstate_tokio::Provider::new(config).unwrap();

    let s3_endpoint = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let s3_address = s3_endpoint.local_addr().unwrap();
    let captured = tokio::spawn(capture_one_request(s3_endpoint));

    let s3_config = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(format!("http://{s3_address}"))
        .force_path_style(true)
        .http_client(aws_smithy_http_client::Builder::new().build_http())
        .credentials_provider(provider.clone())
        .build();
    let client = aws_sdk_s3::Client::from_conf(s3_config);
    let sent = tokio::time::timeout(
        Duration::from_secs(30),
        client.head_bucket().bucket("credstate-test-bucket").send(),
    )
    .await
    .expect("the S3 request finished");
    sent.expect("the loopback S3 endpoint answered 200");

    let head = tokio::time::timeout(Duration::from_secs(5), captured)
        .await
        .unwrap()
        .unwrap();
    let issued = mock.issued_credentials();
    assert_eq!(issued.len(), 1);
    let authorization = header(&head, "authorization").expect("an Authorization header");
    assert!(
        authorization.starts_with("AWS4-HMAC-SHA256 Credential=")
            && authorization.contains(&format!("Credential={}/", issued[0].access_key_id)),
        "{authorization}"
    );
    assert_eq!(
        header(&head, "x-amz-security-token"),
        Some(issued[0].token.expose())
    );
}
