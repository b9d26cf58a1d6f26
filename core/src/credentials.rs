//! Credentials and the secrets inside them.

use core::fmt;

use alloc::string::String;

use crate::time::Timestamp;

/// A secret string: the secret access key, the session token or the IMDS
/// session token.
///
/// `Debug` and `Display` print a fixed placeholder, so a secret cannot reach a
/// log line or an error message by accident; [`Secret::expose`] is the one way
/// to read it, and it is easy to search for.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wrap a secret value.
    #[must_use]
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret value, for the one place that must send or sign with it.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// A set of AWS temporary credentials.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Credentials {
    /// The access key id (`ASIA…`); not a secret.
    pub access_key_id: String,
    /// The secret access key.
    pub secret_access_key: Secret,
    /// The session token.
    pub session_token: Secret,
    /// When the credentials expire, as reported by the source.
    pub expiration: Timestamp,
    /// The AWS account id, when the source reports it.
    pub account_id: Option<String>,
}

impl Credentials {
    /// Build credentials, e.g. for tests or a custom source.
    #[must_use]
    pub fn new(
        access_key_id: impl Into<String>,
        secret_access_key: Secret,
        session_token: Secret,
        expiration: Timestamp,
    ) -> Self {
        Credentials {
            access_key_id: access_key_id.into(),
            secret_access_key,
            session_token,
            expiration,
            account_id: None,
        }
    }

    /// The same credentials with an account id.
    #[must_use]
    pub fn with_account_id(mut self, account_id: impl Into<String>) -> Self {
        self.account_id = Some(account_id.into());
        self
    }

    /// Whether `other` is the same set of credentials (same key and expiry),
    /// as IMDS returns until it rotates them.
    #[must_use]
    pub fn is_same_as(&self, other: &Credentials) -> bool {
        self.access_key_id == other.access_key_id
            && self.expiration == other.expiration
            && self.session_token == other.session_token
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &self.secret_access_key)
            .field("session_token", &self.session_token)
            .field("expiration", &self.expiration)
            .field("account_id", &self.account_id)
            .finish()
    }
}

impl fmt::Display for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "credentials {} expiring {}",
            self.access_key_id, self.expiration
        )
    }
}
