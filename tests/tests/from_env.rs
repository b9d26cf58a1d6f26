//! `Provider::from_env` in both adapters reads the process environment and
//! the AWS config file, as every AWS SDK does. One test in its own process,
//! because the environment is process-wide.

use credstate::SourceError;
use credstate_tests::mock_imds::{MockImds, MockImdsOptions};

#[test]
fn both_adapters_take_their_configuration_from_the_environment_and_the_config_file() {
    let mock = MockImds::start(MockImdsOptions {
        role: Some("env-role".into()),
        ..MockImdsOptions::default()
    });
    let dir = std::env::temp_dir().join(format!("credstate-from-env-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config_file = dir.join("config");
    std::fs::write(
        &config_file,
        "[profile batch]\nec2_instance_profile_name = env-role\nmetadata_service_num_attempts = 2\n",
    )
    .unwrap();
    std::env::set_var("AWS_EC2_METADATA_SERVICE_ENDPOINT", mock.endpoint());
    std::env::set_var("AWS_CONFIG_FILE", &config_file);
    std::env::set_var("AWS_PROFILE", "batch");

    let blocking = credstate_blocking::Provider::from_env().unwrap();
    assert!(blocking
        .credentials()
        .unwrap()
        .access_key_id
        .starts_with("ASIAMOCK"));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let tokio_credentials = runtime.block_on(async {
        let provider = credstate_tokio::Provider::from_env().unwrap();
        provider.credentials().await
    });
    assert!(tokio_credentials
        .unwrap()
        .access_key_id
        .starts_with("ASIAMOCK"));
    // The role came from the profile file, so neither adapter listed roles.
    assert_eq!(mock.stats().role_list_requests(), 0);
    assert_eq!(mock.stats().credential_requests(), 2);

    // A bad value is a typed build error naming the key and where it came from.
    std::env::set_var("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE", "IPv7");
    std::env::remove_var("AWS_EC2_METADATA_SERVICE_ENDPOINT");
    let err = credstate_blocking::Provider::from_env().unwrap_err();
    assert!(
        matches!(err, credstate_blocking::BuildError::Environment(_)),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE"),
        "{err}"
    );

    // AWS_EC2_METADATA_DISABLED disables the source: calls fail at once.
    std::env::remove_var("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE");
    std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
    let disabled = credstate_blocking::Provider::from_env().unwrap();
    assert_eq!(disabled.credentials().unwrap_err(), SourceError::Disabled);
    std::fs::remove_dir_all(&dir).ok();
}
