//! What the blocking provider logs: its events, rate-limited, never a secret.

use credstate_adapter_support::testing::{
    assert_logged_the_flaky_fetch_without_secrets, capture_logs, flaky_imds,
    scripted_config_with_quick_retries,
};
use credstate_blocking::Provider;

#[test]
fn events_are_logged_under_the_credstate_target_without_any_secret() {
    let output = capture_logs(|| {
        let config = scripted_config_with_quick_retries();
        let provider = Provider::builder()
            .config(config)
            .transport(flaky_imds())
            .build()
            .unwrap();
        let credentials = provider.credentials().unwrap();
        assert_eq!(credentials.access_key_id, "ASIALOGGED");
        // Dropping the provider joins its thread, so every line is written.
    });
    assert_logged_the_flaky_fetch_without_secrets(&output);
}
