//! A small parser for the AWS config file (`~/.aws/config`): `[sections]`,
//! `key = value`, `#`/`;` comments, indented continuation lines, and the line
//! number of everything, so errors and origins can point at it.

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;

/// A syntax error: the 1-based line and what is wrong with it.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct SyntaxError {
    pub(crate) line: usize,
    pub(crate) problem: &'static str,
}

/// One `key = value` line.
#[derive(Debug, PartialEq, Eq)]
struct Property<'a> {
    key: &'a str,
    value: &'a str,
    line: usize,
}

/// One `[...]` section.
#[derive(Debug, PartialEq, Eq)]
struct Section<'a> {
    /// The profile it defines, if it is `[default]` or `[profile NAME]`.
    profile: Option<&'a str>,
    properties: Vec<Property<'a>>,
}

/// A parsed config file.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct ProfileFileText<'a> {
    sections: Vec<Section<'a>>,
}

/// A value of the selected profile and its line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ProfileValue<'a> {
    pub(crate) value: &'a str,
    pub(crate) line: usize,
}

impl<'a> ProfileFileText<'a> {
    pub(crate) fn parse(text: &'a str) -> Result<Self, SyntaxError> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut sections: Vec<Section<'a>> = Vec::new();
        let mut after_property = false;
        for (index, raw) in text.lines().enumerate() {
            let line = index + 1;
            let trimmed = raw.trim();
            if trimmed.is_empty() || trimmed.starts_with(['#', ';']) {
                continue;
            }
            if raw.starts_with([' ', '\t']) && after_property {
                // A continuation of the previous value (nested settings such
                // as `s3 =` sub-keys); none of ours use them.
                continue;
            }
            if let Some(inner) = trimmed.strip_prefix('[') {
                let (name, rest) = inner.split_once(']').ok_or(SyntaxError {
                    line,
                    problem: "a section header must end with ]",
                })?;
                let rest = rest.trim();
                if !rest.is_empty() && !rest.starts_with(['#', ';']) {
                    return Err(SyntaxError {
                        line,
                        problem: "unexpected text after the section header",
                    });
                }
                sections.push(Section {
                    profile: profile_of(name.trim()),
                    properties: Vec::new(),
                });
                after_property = false;
                continue;
            }
            let (key, value) = trimmed.split_once('=').ok_or(SyntaxError {
                line,
                problem: "expected [section], key = value, or a # or ; comment",
            })?;
            let key = key.trim();
            if key.is_empty() {
                return Err(SyntaxError {
                    line,
                    problem: "a setting needs a name before =",
                });
            }
            let section = sections.last_mut().ok_or(SyntaxError {
                line,
                problem: "a setting must come after a [section] header",
            })?;
            section.properties.push(Property {
                key,
                value: strip_inline_comment(value).trim(),
                line,
            });
            after_property = true;
        }
        Ok(ProfileFileText { sections })
    }

    /// Whether the file defines this profile.
    pub(crate) fn has_profile(&self, name: &str) -> bool {
        self.sections.iter().any(|s| s.profile == Some(name))
    }

    /// The settings of one profile, keys lower-cased; a key set twice (in one
    /// section or in two sections for the same profile) keeps the last value.
    pub(crate) fn profile(&self, name: &str) -> BTreeMap<String, ProfileValue<'a>> {
        let mut values = BTreeMap::new();
        for section in self.sections.iter().filter(|s| s.profile == Some(name)) {
            for property in &section.properties {
                values.insert(
                    property.key.to_ascii_lowercase(),
                    ProfileValue {
                        value: property.value,
                        line: property.line,
                    },
                );
            }
        }
        values
    }
}

/// `default` and `profile NAME` name profiles; other sections (`sso-session`,
/// `services`, …) do not.
fn profile_of(header: &str) -> Option<&str> {
    if header == "default" {
        return Some("default");
    }
    let rest = header.strip_prefix("profile")?;
    if !rest.starts_with([' ', '\t']) {
        return None;
    }
    let name = rest.trim();
    (!name.is_empty()).then_some(name)
}

/// A `#` or `;` preceded by whitespace starts a comment; one inside a value
/// (`http://host/#x`) does not.
fn strip_inline_comment(value: &str) -> &str {
    let bytes = value.as_bytes();
    for (i, b) in bytes.iter().enumerate() {
        if matches!(b, b'#' | b';') && i > 0 && matches!(bytes[i - 1], b' ' | b'\t') {
            return &value[..i];
        }
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "\
# a comment
[default]
region = eu-west-1
ec2_metadata_service_endpoint_mode = IPv6   ; inline comment

[profile dev]
s3 =
  max_concurrent_requests = 10
Metadata_Service_Timeout=2.5
[sso-session corp]
metadata_service_timeout = 9
[profile dev]
metadata_service_num_attempts = 4
";

    #[test]
    fn values_keep_their_line_and_the_selected_profile_only() {
        let file = ProfileFileText::parse(FILE).unwrap();
        let default = file.profile("default");
        assert_eq!(
            default["ec2_metadata_service_endpoint_mode"],
            ProfileValue {
                value: "IPv6",
                line: 4
            }
        );
        let dev = file.profile("dev");
        assert_eq!(dev["metadata_service_timeout"].value, "2.5");
        assert_eq!(dev["metadata_service_timeout"].line, 9);
        assert_eq!(dev["metadata_service_num_attempts"].line, 13);
        assert!(!dev.contains_key("max_concurrent_requests"));
        assert!(file.has_profile("dev"));
        assert!(!file.has_profile("corp"));
    }

    #[test]
    fn syntax_errors_name_the_line() {
        let cases = [
            ("[default\nx = 1", 1),
            ("key = 1\n[default]", 1),
            ("[default]\n\njust words", 3),
            ("[default]\n = value", 2),
            ("[default] trailing", 1),
        ];
        for (text, line) in cases {
            assert_eq!(
                ProfileFileText::parse(text).unwrap_err().line,
                line,
                "{text:?}"
            );
        }
    }

    #[test]
    fn crlf_files_and_a_byte_order_mark_parse() {
        let file = ProfileFileText::parse("\u{feff}[default]\r\nmetadata_service_timeout = 3\r\n")
            .unwrap();
        assert_eq!(
            file.profile("default")["metadata_service_timeout"].value,
            "3"
        );
    }
}
