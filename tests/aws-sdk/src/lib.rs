//! Nothing to link: this crate exists for its test, `tests/s3_client.rs`,
//! which builds an aws-sdk-s3 client with credstate-tokio's provider.
