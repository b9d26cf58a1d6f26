//! Turning response bodies into values, with typed reasons for rejection.
//!
//! Nothing here echoes body content into an error: a malformed body may hold
//! a secret.

use alloc::string::String;

use serde::Deserialize;

use crate::credentials::{Credentials, Secret};
use crate::errors::BadResponse;
use crate::time::Timestamp;

/// The credentials JSON of IMDS and container endpoints. Unknown fields are
/// ignored. Deliberately not `Debug`: it holds secrets in plain strings.
#[derive(Deserialize)]
struct CredentialsBody {
    #[serde(rename = "Code")]
    code: Option<String>,
    #[serde(rename = "Message")]
    message: Option<String>,
    #[serde(rename = "AccessKeyId")]
    access_key_id: Option<String>,
    #[serde(rename = "SecretAccessKey")]
    secret_access_key: Option<String>,
    #[serde(rename = "Token")]
    token: Option<String>,
    #[serde(rename = "Expiration")]
    expiration: Option<String>,
    #[serde(rename = "AccountId", alias = "AccountID")]
    account_id: Option<String>,
}

fn required(value: Option<String>, field: &'static str) -> Result<String, BadResponse> {
    match value {
        Some(text) if !text.trim().is_empty() => Ok(text),
        _ => Err(BadResponse::MissingField(field)),
    }
}

fn utf8(body: &[u8], limit: usize) -> Result<&str, BadResponse> {
    if body.len() > limit {
        return Err(BadResponse::BodyTooLarge { limit });
    }
    core::str::from_utf8(body).map_err(|_| BadResponse::NotUtf8)
}

/// Longest `Code` or `Message` quoted from a body into an error.
const QUOTE_LIMIT: usize = 256;

/// Text from a body made fit for an error message: trimmed, on one line,
/// at most [`QUOTE_LIMIT`] characters, with every one of `secrets` replaced
/// (a server that echoes the request or its own body must not put a secret
/// in a log).
pub(crate) fn quotable(text: &str, secrets: &[&str]) -> String {
    let mut text = String::from(text.trim());
    for secret in secrets.iter().filter(|s| !s.is_empty()) {
        text = text.replace(secret, "<redacted>");
    }
    let mut out: String = text
        .chars()
        .map(|c| if is_unprintable(c) { ' ' } else { c })
        .take(QUOTE_LIMIT)
        .collect();
    if text.chars().count() > QUOTE_LIMIT {
        out.push('…');
    }
    out
}

/// Control characters, and the bidirectional-text controls that can make a
/// log line read differently from what it holds.
fn is_unprintable(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Parse a credentials body no larger than `limit` bytes.
///
/// A `Code` other than `Success` is quoted shortened, on one line, and
/// without any secret the body itself carries.
pub fn parse_credentials(body: &[u8], limit: usize) -> Result<Credentials, BadResponse> {
    parse_credentials_redacting(body, limit, None)
}

/// [`parse_credentials`], also keeping `sent` (the token the request carried)
/// out of a quoted `Code` or `Message`.
pub(crate) fn parse_credentials_redacting(
    body: &[u8],
    limit: usize,
    sent: Option<&Secret>,
) -> Result<Credentials, BadResponse> {
    let text = utf8(body, limit)?;
    let parsed: CredentialsBody =
        serde_json::from_str(text).map_err(|err| BadResponse::InvalidJson {
            category: match err.classify() {
                serde_json::error::Category::Io => "io",
                serde_json::error::Category::Syntax => "syntax",
                serde_json::error::Category::Data => "unexpected types",
                serde_json::error::Category::Eof => "truncated",
            },
            line: err.line(),
            column: err.column(),
        })?;
    if let Some(code) = parsed.code {
        if code != "Success" {
            let secrets = [
                sent.map_or("", Secret::expose),
                parsed.secret_access_key.as_deref().unwrap_or_default(),
                parsed.token.as_deref().unwrap_or_default(),
            ];
            return Err(BadResponse::NotSuccess {
                code: quotable(&code, &secrets),
                message: parsed
                    .message
                    .map(|message| quotable(&message, &secrets))
                    .filter(|message| !message.is_empty()),
            });
        }
    }
    let access_key_id = required(parsed.access_key_id, "AccessKeyId")?;
    let secret_access_key = required(parsed.secret_access_key, "SecretAccessKey")?;
    let token = required(parsed.token, "Token")?;
    let expiration_text = required(parsed.expiration, "Expiration")?;
    let expiration = Timestamp::parse_rfc3339(expiration_text.trim()).map_err(|_| {
        BadResponse::InvalidTimestamp {
            field: "Expiration",
        }
    })?;
    let mut credentials = Credentials::new(
        access_key_id.trim(),
        Secret::new(secret_access_key),
        Secret::new(token),
        expiration,
    );
    credentials.account_id = parsed.account_id.filter(|id| !id.trim().is_empty());
    Ok(credentials)
}

/// Why a role name is refused.
pub(crate) fn validate_role_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("empty");
    }
    if name.len() > 64 {
        return Err("longer than 64 characters");
    }
    let allowed =
        |c: char| c.is_ascii_alphanumeric() || matches!(c, '+' | '=' | ',' | '.' | '@' | '_' | '-');
    if !name.chars().all(allowed) {
        return Err("characters outside [A-Za-z0-9+=,.@_-]");
    }
    if name == "." || name == ".." {
        return Err("a path segment of its own");
    }
    Ok(())
}

/// The role name from a role-list body: the first non-empty line, trimmed,
/// validated as an IAM role name so it cannot change the URL path.
pub fn parse_role_list(body: &[u8], limit: usize) -> Result<String, BadResponse> {
    let text = utf8(body, limit)?;
    let role = text
        .lines()
        .map(str::trim)
        .find(|line| !line.is_empty())
        .ok_or(BadResponse::EmptyRoleList)?;
    validate_role_name(role).map_err(BadResponse::InvalidRoleName)?;
    Ok(String::from(role))
}

/// The IMDS session token from a token body: trimmed, non-empty, and made of
/// visible ASCII so it is a valid header value.
pub fn parse_token(body: &[u8], limit: usize) -> Result<Secret, BadResponse> {
    let text = utf8(body, limit)?.trim();
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(BadResponse::InvalidToken);
    }
    Ok(Secret::new(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"{"Code":"Success","LastUpdated":"2026-11-29T00:00:00Z","Type":"AWS-HMAC","AccessKeyId":"ASIAEXAMPLE","SecretAccessKey":"sekrit","Token":"tok","Expiration":"2026-11-29T06:00:00Z","Extra":1}"#;

    #[test]
    fn credentials_parse_and_ignore_unknown_fields() {
        let creds = parse_credentials(GOOD.as_bytes(), 65_536).unwrap();
        assert_eq!(creds.access_key_id, "ASIAEXAMPLE");
        assert_eq!(creds.secret_access_key.expose(), "sekrit");
        assert_eq!(creds.expiration.to_rfc3339(), "2026-11-29T06:00:00Z");
        assert_eq!(creds.account_id, None);
    }

    #[test]
    fn account_id_is_accepted_in_both_spellings() {
        for key in ["AccountId", "AccountID"] {
            let body = GOOD.replace("\"Extra\":1", &alloc::format!("\"{key}\":\"123456789012\""));
            let creds = parse_credentials(body.as_bytes(), 65_536).unwrap();
            assert_eq!(creds.account_id.as_deref(), Some("123456789012"));
        }
    }

    #[test]
    fn a_code_other_than_success_is_an_error_with_code_and_message() {
        let body = r#"{"Code":"AssumeRoleUnauthorizedAccess","Message":"denied"}"#;
        assert_eq!(
            parse_credentials(body.as_bytes(), 65_536).unwrap_err(),
            BadResponse::NotSuccess {
                code: "AssumeRoleUnauthorizedAccess".into(),
                message: Some("denied".into())
            }
        );
    }

    #[test]
    fn bad_json_reports_position_but_not_content() {
        let err = parse_credentials(br#"{"Token": 12345678, "#, 65_536).unwrap_err();
        assert!(matches!(err, BadResponse::InvalidJson { .. }));
        assert!(!alloc::format!("{err}").contains("12345678"));
        let err = parse_credentials(br#"{"Token": 12345678}"#, 65_536).unwrap_err();
        assert!(!alloc::format!("{err} {err:?}").contains("12345678"));
    }

    #[test]
    fn bad_timestamps_and_missing_fields_are_named() {
        let body = GOOD.replace("2026-11-29T06:00:00Z", "tomorrow");
        assert_eq!(
            parse_credentials(body.as_bytes(), 65_536).unwrap_err(),
            BadResponse::InvalidTimestamp {
                field: "Expiration"
            }
        );
        let body = GOOD.replace("\"Token\":\"tok\",", "");
        assert_eq!(
            parse_credentials(body.as_bytes(), 65_536).unwrap_err(),
            BadResponse::MissingField("Token")
        );
    }

    #[test]
    fn bodies_over_the_cap_are_rejected() {
        assert_eq!(
            parse_credentials(GOOD.as_bytes(), 10).unwrap_err(),
            BadResponse::BodyTooLarge { limit: 10 }
        );
    }

    #[test]
    fn quoted_text_loses_line_breaks_and_bidirectional_controls() {
        let quoted = quotable("evil\r\nINFO forged\u{202E}txt.exe", &[]);
        assert_eq!(quoted, "evil  INFO forged txt.exe");
    }

    #[test]
    fn role_list_takes_the_first_non_empty_line() {
        assert_eq!(
            parse_role_list(b"\n  web-role \nother\n", 1024).unwrap(),
            "web-role"
        );
        assert_eq!(
            parse_role_list(b"\n \n", 1024).unwrap_err(),
            BadResponse::EmptyRoleList
        );
    }

    #[test]
    fn role_names_that_would_change_the_url_path_are_refused() {
        for name in [
            "../admin",
            "a/b",
            "role?x=1",
            "role#frag",
            "..",
            "r%2Fx",
            "ro le",
        ] {
            assert!(
                matches!(
                    parse_role_list(name.as_bytes(), 1024),
                    Err(BadResponse::InvalidRoleName(_))
                ),
                "{name}"
            );
        }
        let long = "a".repeat(65);
        assert!(parse_role_list(long.as_bytes(), 1024).is_err());
    }

    #[test]
    fn tokens_must_be_visible_ascii() {
        assert_eq!(
            parse_token(b"  AQAE-token==\n", 1024).unwrap().expose(),
            "AQAE-token=="
        );
        assert_eq!(
            parse_token(b"", 1024).unwrap_err(),
            BadResponse::InvalidToken
        );
        assert_eq!(
            parse_token(b"a\r\nb", 1024).unwrap_err(),
            BadResponse::InvalidToken
        );
    }
}
