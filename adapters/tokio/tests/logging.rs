//! What the tokio provider logs: its events, rate-limited, never a secret.

use std::time::Duration;

use credstate_adapter_support::testing::{
    assert_logged_the_flaky_fetch_without_secrets, capture_logs, flaky_imds,
    scripted_config_with_quick_retries,
};
use credstate_tokio::Provider;

#[test]
fn events_are_logged_under_the_credstate_target_without_any_secret() {
    let output = capture_logs(|| {
        let config = scripted_config_with_quick_retries();
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
            // Wait, bounded, for the driver task to end, so every line is written.
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
    assert_logged_the_flaky_fetch_without_secrets(&output);
}
