//! The machine's configuration from a JavaScript object of core `Config`
//! fields.
//!
//! The core's `Config` deserializes with serde, but its derived visitor
//! (with the container source's nested types) would add about 15 KB, an
//! eighth, to the shipped .wasm. The fields are set one by one here instead,
//! with the same names, the same duration strings and the same refusal of
//! unknown keys; a native test checks this mapping against the serde one
//! field by field, so the two cannot drift apart. The container source is
//! not offered: this package is the instance metadata provider.

use alloc::format;
use alloc::string::{String, ToString};
use core::time::Duration;

use credstate::{parse_duration, Config, Stability};

/// One field value, as read from JavaScript.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum FieldValue {
    /// `null` or `undefined`.
    Missing,
    /// A boolean.
    Bool(bool),
    /// A number.
    Number(f64),
    /// A string.
    Text(String),
    /// Anything else (an object, an array, a function).
    Other,
}

/// Why a field could not be set; becomes an `Error` named `ConfigError`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct FieldError(pub(crate) String);

impl FieldError {
    fn new(key: &str, problem: &str) -> Self {
        FieldError(format!("invalid configuration field `{key}`: {problem}"))
    }
}

/// The largest integer a JavaScript number holds exactly.
const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_991.0;

/// `number` as a whole, non-negative integer, if it is exactly one.
pub(crate) fn whole_number(number: f64) -> Option<u64> {
    let whole = number as u64;
    ((0.0..=MAX_SAFE_INTEGER).contains(&number) && whole as f64 == number).then_some(whole)
}

fn duration(key: &str, value: FieldValue) -> Result<Duration, FieldError> {
    match value {
        FieldValue::Text(text) => {
            parse_duration(&text).map_err(|err| FieldError::new(key, &err.to_string()))
        }
        FieldValue::Number(ms) if whole_number(ms).is_some() => {
            Ok(Duration::from_millis(ms as u64))
        }
        _ => Err(FieldError::new(
            key,
            "expected a duration such as \"250ms\", \"90s\" or \"5h50m\", or whole milliseconds",
        )),
    }
}

fn boolean(key: &str, value: FieldValue) -> Result<bool, FieldError> {
    match value {
        FieldValue::Bool(flag) => Ok(flag),
        _ => Err(FieldError::new(key, "expected true or false")),
    }
}

fn whole<T: TryFrom<u64>>(key: &str, value: FieldValue) -> Result<T, FieldError> {
    match value {
        FieldValue::Number(n) if whole_number(n).is_some() => {
            T::try_from(n as u64).map_err(|_| FieldError::new(key, "number too large"))
        }
        _ => Err(FieldError::new(key, "expected a whole number")),
    }
}

fn text(key: &str, value: FieldValue) -> Result<String, FieldError> {
    match value {
        FieldValue::Text(text) => Ok(text),
        _ => Err(FieldError::new(key, "expected a string")),
    }
}

/// Set the field named `key` of `config`. `null` leaves a field at its
/// default, except `role_name`, where it means "discover the role".
pub(crate) fn set_field(
    config: &mut Config,
    key: &str,
    value: FieldValue,
) -> Result<(), FieldError> {
    if value == FieldValue::Missing && key != "role_name" {
        return if is_known(key) {
            Ok(())
        } else {
            Err(unknown(key))
        };
    }
    macro_rules! fields {
        ($($name:ident: $read:ident),* $(,)?) => {
            match key {
                $(stringify!($name) => config.$name = $read(key, value)?,)*
                "role_name" => {
                    config.role_name = match value {
                        FieldValue::Missing => None,
                        value => Some(text(key, value)?),
                    }
                }
                "stability" => {
                    config.stability = match text(key, value)?.as_str() {
                        "static" => Stability::Static,
                        "strict" => Stability::Strict,
                        _ => return Err(FieldError::new(key, "expected \"static\" or \"strict\"")),
                    }
                }
                _ => return Err(unknown(key)),
            }
        };
    }
    fields! {
        disabled: boolean,
        endpoint: text,
        v1_disabled: boolean,
        token_ttl: duration,
        token_renew_before: duration,
        request_timeout: duration,
        attempts: whole,
        retry_pause_max: duration,
        max_body_bytes: whole,
        expiry_buffer: duration,
        advisory_window_short: duration,
        short_lifetime_max: duration,
        advisory_window_medium: duration,
        medium_lifetime_max: duration,
        advisory_window_long: duration,
        advisory_jitter_percent: whole,
        mandatory_window: duration,
        extension_min: duration,
        extension_max: duration,
        max_degraded: duration,
        backoff_initial: duration,
        backoff_cap: duration,
        backoff_cap_urgent: duration,
        min_fetch_interval: duration,
        unchanged_min_spacing: duration,
        unchanged_spacing_divisor: whole,
        failure_memory_min: duration,
        failure_memory_max: duration,
        clock_jump_tolerance: duration,
    }
    Ok(())
}

fn is_known(key: &str) -> bool {
    set_field(&mut Config::default(), key, FieldValue::Other) != Err(unknown(key))
}

fn unknown(key: &str) -> FieldError {
    FieldError(format!(
        "unknown configuration field `{key}` (this package reads the instance metadata fields of the core's Config)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;
    use serde_json::Value;

    fn field_value(value: &Value) -> FieldValue {
        match value {
            Value::Null => FieldValue::Missing,
            Value::Bool(flag) => FieldValue::Bool(*flag),
            Value::Number(n) => FieldValue::Number(n.as_f64().unwrap()),
            Value::String(text) => FieldValue::Text(text.clone()),
            _ => FieldValue::Other,
        }
    }

    /// Every field of the core's `Config` set to something other than its
    /// default, as JSON.
    fn changed_fields() -> Vec<(String, Value)> {
        let defaults = serde_json::to_value(Config::default()).unwrap();
        defaults
            .as_object()
            .unwrap()
            .iter()
            // The container source has a configuration of its own and no
            // place in an instance metadata provider.
            .filter(|(key, _)| key.as_str() != "container")
            .map(|(key, value)| {
                let changed = match (key.as_str(), value) {
                    ("endpoint", _) => Value::from("http://127.0.0.1:1338"),
                    ("role_name", _) => Value::from("web"),
                    ("stability", _) => Value::from("strict"),
                    ("token_ttl", _) => Value::from("5h"),
                    (_, Value::Bool(flag)) => Value::from(!flag),
                    (_, Value::Number(n)) => Value::from(n.as_u64().unwrap() + 1),
                    (_, Value::String(text)) => {
                        let parsed = parse_duration(text).unwrap();
                        Value::from(credstate::format_duration(
                            parsed + Duration::from_millis(7),
                        ))
                    }
                    (key, other) => panic!("field {key} has an unexpected JSON type: {other}"),
                };
                (key.clone(), changed)
            })
            .collect()
    }

    #[test]
    fn every_config_field_is_read_exactly_as_serde_reads_it() {
        let fields = changed_fields();
        assert!(
            fields.len() >= 30,
            "expected every Config field, got {}",
            fields.len()
        );
        for (key, value) in fields {
            let mut by_hand = Config::default();
            set_field(&mut by_hand, &key, field_value(&value)).unwrap();
            let mut json = serde_json::Map::new();
            json.insert(key.clone(), value);
            let by_serde: Config = serde_json::from_value(Value::Object(json)).unwrap();
            assert_eq!(by_hand, by_serde, "field {key}");
            assert_ne!(by_hand, Config::default(), "field {key} was not changed");
        }
    }

    #[test]
    fn durations_may_be_whole_milliseconds() {
        let mut config = Config::default();
        set_field(&mut config, "request_timeout", FieldValue::Number(250.0)).unwrap();
        assert_eq!(config.request_timeout, Duration::from_millis(250));
    }

    #[test]
    fn null_keeps_defaults_and_clears_the_role() {
        let mut config = Config::default();
        set_field(&mut config, "role_name", FieldValue::Text("web".into())).unwrap();
        set_field(&mut config, "role_name", FieldValue::Missing).unwrap();
        set_field(&mut config, "attempts", FieldValue::Missing).unwrap();
        assert_eq!(config, Config::default());
    }

    #[test]
    fn unknown_and_mistyped_fields_are_named_in_the_error() {
        let mut config = Config::default();
        let unknown = set_field(&mut config, "request_timeot", FieldValue::Text("1s".into()));
        assert!(unknown.unwrap_err().0.contains("`request_timeot`"));
        let unknown_null = set_field(&mut config, "request_timeot", FieldValue::Missing);
        assert!(unknown_null.unwrap_err().0.contains("`request_timeot`"));
        for (key, value) in [
            ("attempts", FieldValue::Number(1.5)),
            ("attempts", FieldValue::Number(-1.0)),
            ("request_timeout", FieldValue::Text("soon".into())),
            ("request_timeout", FieldValue::Number(f64::NAN)),
            ("v1_disabled", FieldValue::Text("yes".into())),
            ("stability", FieldValue::Text("eventual".into())),
            ("endpoint", FieldValue::Other),
        ] {
            let err = set_field(&mut config, key, value).unwrap_err();
            assert!(err.0.contains(&format!("`{key}`")), "{}", err.0);
        }
        assert_eq!(config, Config::default());
    }
}
