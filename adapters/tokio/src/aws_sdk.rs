//! The provider as an aws-sdk-rust credentials provider.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{future, ProvideCredentials};
use credstate::{Credentials, SourceError, Timestamp};

use crate::Provider;

/// The provider name aws-sdk-rust reports for these credentials.
const PROVIDER_NAME: &str = "credstate";

fn system_time(at: Timestamp) -> SystemTime {
    let millis = at.unix_millis();
    match u64::try_from(millis) {
        Ok(after) => UNIX_EPOCH + Duration::from_millis(after),
        Err(_) => UNIX_EPOCH - Duration::from_millis(millis.unsigned_abs()),
    }
}

fn to_sdk(credentials: &Credentials) -> aws_credential_types::Credentials {
    let mut builder = aws_credential_types::Credentials::builder()
        .access_key_id(credentials.access_key_id.as_str())
        .secret_access_key(credentials.secret_access_key.expose())
        .session_token(credentials.session_token.expose())
        .expiry(system_time(credentials.expiration))
        .provider_name(PROVIDER_NAME);
    if let Some(account_id) = &credentials.account_id {
        builder = builder.account_id(account_id.as_str());
    }
    builder.build()
}

/// "Not loaded" lets a credentials chain move on to its next provider; the
/// causes that mean "no instance credentials here at all" say so, every
/// other failure is the provider's error.
fn to_sdk_error(cause: SourceError) -> CredentialsError {
    if cause.is_source_absent() {
        CredentialsError::not_loaded(cause)
    } else {
        CredentialsError::provider_error(cause)
    }
}

impl ProvideCredentials for Provider {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::new(async move {
            self.credentials()
                .await
                .map(|credentials| to_sdk(&credentials))
                .map_err(to_sdk_error)
        })
    }

    fn fallback_on_interrupt(&self) -> Option<aws_credential_types::Credentials> {
        self.handle
            .shared
            .servable_now()
            .map(|credentials| to_sdk(&credentials))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use credstate::Secret;

    #[test]
    fn sdk_credentials_carry_every_field_and_the_expiration() {
        let expiration = Timestamp::from_unix_secs(1_795_932_000);
        let ours = Credentials::new(
            "ASIAEXAMPLE",
            Secret::new("secret"),
            Secret::new("session"),
            expiration,
        )
        .with_account_id("123456789012");
        let sdk = to_sdk(&ours);
        assert_eq!(sdk.access_key_id(), "ASIAEXAMPLE");
        assert_eq!(sdk.secret_access_key(), "secret");
        assert_eq!(sdk.session_token(), Some("session"));
        assert_eq!(
            sdk.expiry(),
            Some(UNIX_EPOCH + Duration::from_secs(1_795_932_000))
        );
        assert_eq!(sdk.account_id().map(|id| id.as_str()), Some("123456789012"));
        assert!(!format!("{sdk:?}").contains("secret\""));
    }

    #[test]
    fn absent_instance_credentials_let_a_chain_move_on_and_failures_do_not() {
        assert!(matches!(
            to_sdk_error(SourceError::NoRoleAttached),
            CredentialsError::CredentialsNotLoaded(_)
        ));
        assert!(matches!(
            to_sdk_error(SourceError::Disabled),
            CredentialsError::CredentialsNotLoaded(_)
        ));
        assert!(matches!(
            to_sdk_error(SourceError::LikelyHopLimit {
                timeout: Duration::from_secs(1)
            }),
            CredentialsError::ProviderError(_)
        ));
    }
}
