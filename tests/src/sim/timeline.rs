//! What happened in a run, with its simulated time: every event of the
//! policy under test plus the harness's own notes. Each entry prints as a
//! sentence and converts to a JSON object; [`digest`] condenses a timeline
//! into the few lines a person wants to read.

use std::fmt;

use credstate::{format_duration, Event, Timestamp};
use serde_json::{json, Value};

use super::java_v1::JavaEvent;
use crate::scenario::FaultKind;

/// Something the harness itself observed or did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Note {
    /// A fault's span began.
    FaultStarted {
        /// The fault.
        kind: FaultKind,
        /// Share of the requests it hits, if not all.
        percent: Option<u8>,
    },
    /// A fault's span ended.
    FaultEnded {
        /// The fault.
        kind: FaultKind,
    },
    /// The host's wall clock stepped.
    ClockJumped {
        /// By how much, in milliseconds (negative: backwards).
        by_ms: i64,
    },
    /// The run hit the harness's iteration cap and stopped early.
    Truncated {
        /// Iterations done.
        iterations: u64,
    },
    /// The policy refused an input as a misuse (a harness bug).
    ClientMisuse {
        /// The policy's error.
        message: String,
    },
}

impl Note {
    /// A stable `snake_case` name.
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            Note::FaultStarted { .. } => "fault_started",
            Note::FaultEnded { .. } => "fault_ended",
            Note::ClockJumped { .. } => "clock_jumped",
            Note::Truncated { .. } => "run_truncated",
            Note::ClientMisuse { .. } => "client_misuse",
        }
    }
}

/// A signed duration such as `+3d` or `-2h`.
#[must_use]
pub fn format_signed_ms(ms: i64) -> String {
    let sign = if ms < 0 { '-' } else { '+' };
    format!(
        "{sign}{}",
        format_duration(std::time::Duration::from_millis(ms.unsigned_abs()))
    )
}

impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Note::FaultStarted {
                kind,
                percent: Some(percent),
            } => write!(f, "fault {kind} begins ({percent}% of requests)"),
            Note::FaultStarted { kind, .. } => write!(f, "fault {kind} begins"),
            Note::FaultEnded { kind } => write!(f, "fault {kind} ends"),
            Note::ClockJumped { by_ms } => {
                write!(f, "host wall clock jumps {}", format_signed_ms(*by_ms))
            }
            Note::Truncated { iterations } => write!(
                f,
                "run stopped early after {iterations} steps (harness iteration cap)"
            ),
            Note::ClientMisuse { message } => write!(f, "policy refused an input: {message}"),
        }
    }
}

/// One entry's content: an event of the policy, or a harness note.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Entry {
    /// An event of the credstate machine.
    Credstate(Event),
    /// An event of the Java v1 seed policy.
    JavaV1(JavaEvent),
    /// A note of the harness.
    Harness(Note),
}

impl Entry {
    /// A stable `snake_case` name, e.g. `fetch_started`.
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            Entry::Credstate(event) => event.name(),
            Entry::JavaV1(event) => event.name(),
            Entry::Harness(note) => note.name(),
        }
    }

    /// Who reported it: `credstate`, `java-v1` or `harness`.
    #[must_use]
    pub fn source(&self) -> &'static str {
        match self {
            Entry::Credstate(_) => "credstate",
            Entry::JavaV1(_) => "java-v1",
            Entry::Harness(_) => "harness",
        }
    }

    /// Whether it reports trouble.
    #[must_use]
    pub fn is_warning(&self) -> bool {
        match self {
            Entry::Credstate(event) => event.is_warning(),
            Entry::JavaV1(event) => event.is_warning(),
            Entry::Harness(note) => !matches!(note, Note::FaultEnded { .. }),
        }
    }

    /// The typed cause of a failure or rejection, e.g. `LikelyHopLimit`.
    #[must_use]
    pub fn cause_name(&self) -> Option<&'static str> {
        match self {
            Entry::Credstate(
                Event::FetchFailed { cause, .. }
                | Event::Rejected { cause }
                | Event::AttemptFailed { cause, .. },
            ) => Some(cause.name()),
            _ => None,
        }
    }
}

impl fmt::Display for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Entry::Credstate(event) => fmt::Display::fmt(event, f),
            Entry::JavaV1(event) => fmt::Display::fmt(event, f),
            Entry::Harness(note) => fmt::Display::fmt(note, f),
        }
    }
}

/// One timeline entry and when it happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimelineEntry {
    /// True (simulated) time since the start, in milliseconds.
    pub t_ms: u64,
    /// The host's wall clock at that moment.
    pub wall: Timestamp,
    /// What happened.
    pub entry: Entry,
}

impl TimelineEntry {
    /// The entry as a JSON object: `t_ms`, `wall`, `source`, `event`
    /// (the stable name), `message` (the sentence), `warning`, and `cause`
    /// when the entry carries a typed failure.
    #[must_use]
    pub fn to_json(&self) -> Value {
        let mut value = json!({
            "t_ms": self.t_ms,
            "wall": self.wall.to_rfc3339(),
            "source": self.entry.source(),
            "event": self.entry.name(),
            "message": self.entry.to_string(),
            "warning": self.entry.is_warning(),
        });
        if let Some(cause) = self.entry.cause_name() {
            value["cause"] = Value::from(cause);
        }
        value
    }
}

impl TimelineEntry {
    /// The same object as [`TimelineEntry::to_json`] on one line, keys in a
    /// fixed, readable order (`t_ms` first), with `policy` when given.
    #[must_use]
    pub fn to_json_line(&self, policy: Option<&str>) -> String {
        let mut fields = vec![
            ("t_ms", Value::from(self.t_ms)),
            ("wall", Value::from(self.wall.to_rfc3339())),
        ];
        if let Some(policy) = policy {
            fields.push(("policy", Value::from(policy)));
        }
        fields.extend([
            ("source", Value::from(self.entry.source())),
            ("event", Value::from(self.entry.name())),
            ("message", Value::from(self.entry.to_string())),
            ("warning", Value::from(self.entry.is_warning())),
        ]);
        if let Some(cause) = self.entry.cause_name() {
            fields.push(("cause", Value::from(cause)));
        }
        json_object_line(&fields)
    }
}

/// `{"k":v,...}` with the keys in the given order.
pub(crate) fn json_object_line(fields: &[(&str, Value)]) -> String {
    let body: Vec<String> = fields
        .iter()
        .map(|(key, value)| format!("{}:{value}", Value::from(*key)))
        .collect();
    format!("{{{}}}", body.join(","))
}

impl fmt::Display for TimelineEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}  {}", clock_time(self.t_ms), self.entry)
    }
}

/// Simulated time as `HH:MM:SS` (hours run past 24 on long runs).
#[must_use]
pub fn clock_time(t_ms: u64) -> String {
    let secs = t_ms / 1000;
    format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60)
}

/// One line of a condensed timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestLine {
    /// When the first of its occurrences happened.
    pub from_ms: u64,
    /// When the last one happened.
    pub to_ms: u64,
    /// How many occurrences it stands for.
    pub count: u32,
    /// The sentence (of the last occurrence).
    pub text: String,
    /// Whether it reports trouble.
    pub warning: bool,
    key: String,
    boundary: bool,
}

impl fmt::Display for DigestLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.count > 1 {
            write!(
                f,
                "{}–{}  {} ×{}",
                clock_time(self.from_ms),
                clock_time(self.to_ms),
                self.text,
                self.count
            )
        } else {
            write!(f, "{}  {}", clock_time(self.from_ms), self.text)
        }
    }
}

/// How an entry takes part in the digest.
enum Role {
    /// A fetch sequence begins.
    FetchStart(String),
    /// A detail of the open fetch (fallback, API switch).
    FetchDetail(String),
    /// An attempt of the open fetch failed; another follows.
    AttemptFailed(String),
    /// The open fetch brought credentials; `new` ones start a new phase.
    FetchSuccess { text: String, new: bool },
    /// The open fetch failed.
    FetchFailure(String),
    /// A line of its own, merged with its like within a phase.
    Line(String),
    /// A line of its own that starts a new phase (faults, clock jumps).
    Boundary(String),
    /// Not worth a line (tokens, calls served normally, schedules).
    Quiet,
}

fn role(entry: &Entry) -> Role {
    match entry {
        Entry::Credstate(event) => match event {
            Event::FetchStarted { reason } => Role::FetchStart(format!("fetch ({reason})")),
            Event::FellBackToV1 { cause } => {
                Role::FetchDetail(format!("via IMDSv1 (token request: {cause})"))
            }
            Event::SwitchedToLegacyApi => {
                Role::FetchDetail("extended API missing, legacy paths from now on".into())
            }
            Event::AttemptFailed { cause, .. } => Role::AttemptFailed(cause.to_string()),
            Event::CredentialsReceived {
                expires_at,
                unchanged: false,
                ..
            } => Role::FetchSuccess {
                text: format!("new credentials expiring {expires_at}"),
                new: true,
            },
            Event::CredentialsReceived {
                unchanged: true, ..
            } => Role::FetchSuccess {
                text: "unchanged credentials".into(),
                new: false,
            },
            Event::FetchFailed { cause, .. } => Role::FetchFailure(cause.to_string()),
            Event::ClockJumpedBackwards { .. } | Event::EventsDropped { .. } => {
                Role::Boundary(event.to_string())
            }
            Event::StaticStabilityExtended { expired_at, .. } => Role::Line(format!(
                "static stability: credentials that expired at {expired_at} extended"
            )),
            Event::ServingExpired { expired_at, .. } => Role::Line(format!(
                "served credentials that expired at {expired_at} (static stability)"
            )),
            Event::Rejected { cause } => Role::Line(format!("call rejected: {cause}")),
            _ => Role::Quiet,
        },
        Entry::JavaV1(event) => match event {
            JavaEvent::FetchStarted { .. } => Role::FetchStart(format!("{event}")),
            JavaEvent::FellBackToV1 { status } => {
                Role::FetchDetail(format!("via IMDSv1 (token PUT answered {status})"))
            }
            JavaEvent::CredentialsReceived {
                expires_at,
                unchanged: false,
            } => Role::FetchSuccess {
                text: format!("new credentials expiring {expires_at}"),
                new: true,
            },
            JavaEvent::CredentialsReceived {
                unchanged: true, ..
            } => Role::FetchSuccess {
                text: "unchanged credentials".into(),
                new: false,
            },
            JavaEvent::AttemptFailed { message, .. } => Role::AttemptFailed(message.clone()),
            JavaEvent::FetchFailed { .. } => Role::FetchFailure(event.failure_text()),
            JavaEvent::Rejected { message } => Role::Line(format!("call rejected: {message}")),
        },
        Entry::Harness(note) => Role::Boundary(note.to_string()),
    }
}

/// Lines that differ only in numbers (times, counts) merge.
fn merge_key(text: &str) -> String {
    text.chars().filter(|c| !c.is_ascii_digit()).collect()
}

struct OpenFetch {
    slot: usize,
    start: String,
    details: Vec<String>,
    failed_attempts: Vec<String>,
    success: Option<(String, bool)>,
}

#[derive(Default)]
struct Digest {
    lines: Vec<DigestLine>,
    phase_start: usize,
    fetch: Option<OpenFetch>,
}

impl Digest {
    fn push(&mut self, t_ms: u64, text: String, warning: bool, boundary: bool) {
        let key = merge_key(&text);
        if !boundary {
            if let Some(line) = self.lines[self.phase_start..]
                .iter_mut()
                .find(|line| !line.boundary && line.key == key)
            {
                line.count += 1;
                line.to_ms = t_ms;
                line.text = text;
                line.warning |= warning;
                return;
            }
        }
        self.lines.push(DigestLine {
            from_ms: t_ms,
            to_ms: t_ms,
            count: 1,
            text,
            warning,
            key,
            boundary,
        });
        if boundary {
            self.phase_start = self.lines.len();
        }
    }

    /// Close the open fetch with `failure` (or with its success).
    fn close_fetch(&mut self, t_ms: u64, failure: Option<String>) {
        let Some(fetch) = self.fetch.take() else {
            return;
        };
        let mut text = fetch.start;
        let mut details = fetch.details;
        details.dedup();
        for detail in &details {
            text.push_str(", ");
            text.push_str(detail);
        }
        let attempts = fetch.failed_attempts.len();
        let retried = match fetch.failed_attempts.last() {
            Some(cause) if attempts == 1 => format!(" (after a failed attempt: {cause})"),
            Some(cause) => format!(" (after {attempts} failed attempts, the last: {cause})"),
            None => String::new(),
        };
        let (new, warning) = match (&fetch.success, &failure) {
            (Some((credentials, _)), Some(failure)) => {
                text.push_str(&format!(" → {credentials}, refused: {failure}"));
                (false, true)
            }
            (Some((credentials, new)), None) => {
                text.push_str(&format!(" → {credentials}{retried}"));
                (*new, !details.is_empty() || attempts > 0)
            }
            (None, Some(failure)) if attempts > 0 => {
                let tries = attempts + 1;
                text.push_str(&format!(" → failed after {tries} attempts: {failure}"));
                (false, true)
            }
            (None, Some(failure)) => {
                text.push_str(&format!(" → failed: {failure}"));
                (false, true)
            }
            (None, None) => {
                text.push_str(" → still running at the end of the run");
                (false, false)
            }
        };
        // The fetch keeps its place at its start; merge it with an earlier
        // line of the same phase if there is one.
        let key = merge_key(&text);
        let slot = fetch.slot;
        let earlier = if slot >= self.phase_start && !new {
            self.lines[self.phase_start..slot]
                .iter()
                .position(|line| !line.boundary && line.key == key)
                .map(|i| i + self.phase_start)
        } else {
            None
        };
        if let Some(index) = earlier {
            self.lines.remove(slot);
            let line = &mut self.lines[index];
            line.count += 1;
            line.to_ms = t_ms.max(line.to_ms);
            line.text = text;
            line.warning |= warning;
            return;
        }
        let line = &mut self.lines[slot];
        line.text = text;
        line.key = key;
        line.warning = warning;
        if new {
            // New credentials start a phase of their own.
            line.boundary = true;
            self.phase_start = self.phase_start.max(slot + 1);
        }
    }
}

/// Condense a timeline: one line per fetch sequence (its reason, details and
/// outcome), one per notable event; lines that differ only in numbers merge
/// within a phase (phases are separated by fault boundaries, clock jumps and
/// new credentials) and show a count. Normal calls produce no line.
#[must_use]
pub fn digest(timeline: &[TimelineEntry]) -> Vec<DigestLine> {
    let mut digest = Digest::default();
    for entry in timeline {
        let t = entry.t_ms;
        let warning = entry.entry.is_warning();
        match role(&entry.entry) {
            Role::Quiet => {}
            Role::FetchStart(start) => {
                digest.close_fetch(t, None);
                // A placeholder, filled in when the fetch ends.
                digest.lines.push(DigestLine {
                    from_ms: t,
                    to_ms: t,
                    count: 1,
                    text: start.clone(),
                    warning: false,
                    key: String::new(),
                    boundary: false,
                });
                digest.fetch = Some(OpenFetch {
                    slot: digest.lines.len() - 1,
                    start,
                    details: Vec::new(),
                    failed_attempts: Vec::new(),
                    success: None,
                });
            }
            Role::FetchDetail(detail) => match &mut digest.fetch {
                Some(fetch) => fetch.details.push(detail),
                None => digest.push(t, detail, warning, false),
            },
            Role::AttemptFailed(cause) => match &mut digest.fetch {
                Some(fetch) => fetch.failed_attempts.push(cause),
                None => digest.push(t, format!("attempt failed: {cause}"), true, false),
            },
            Role::FetchSuccess { text, new } => {
                if digest.fetch.as_ref().is_some_and(|f| f.success.is_some()) {
                    digest.close_fetch(t, None);
                }
                match &mut digest.fetch {
                    Some(fetch) => fetch.success = Some((text, new)),
                    None => digest.push(t, text, warning, new),
                }
            }
            Role::FetchFailure(failure) => {
                if digest.fetch.is_some() {
                    digest.close_fetch(t, Some(failure));
                } else {
                    digest.push(t, format!("fetch failed: {failure}"), true, false);
                }
            }
            Role::Line(text) => {
                // A success waits for a possible refusal at the same instant
                // (credentials that arrive already expired).
                if digest.fetch.as_ref().is_some_and(|f| f.success.is_some()) {
                    digest.close_fetch(t, None);
                }
                digest.push(t, text, warning, false);
            }
            Role::Boundary(text) => {
                if digest.fetch.as_ref().is_some_and(|f| f.success.is_some()) {
                    digest.close_fetch(t, None);
                }
                digest.push(t, text, warning, true);
            }
        }
    }
    let end = timeline.last().map_or(0, |entry| entry.t_ms);
    digest.close_fetch(end, None);
    digest.lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::clock::SIM_EPOCH;
    use credstate::{FetchReason, SourceError, Step};

    fn at(t_ms: u64, event: Event) -> TimelineEntry {
        TimelineEntry {
            t_ms,
            wall: SIM_EPOCH.shifted_by_millis(t_ms as i64),
            entry: Entry::Credstate(event),
        }
    }

    fn failed_fetch(t_ms: u64) -> Vec<TimelineEntry> {
        let cause = SourceError::ServerError {
            step: Step::ImdsRoleList,
            status: 500,
        };
        vec![
            at(
                t_ms,
                Event::FetchStarted {
                    reason: FetchReason::Retry,
                },
            ),
            at(
                t_ms + 5,
                Event::AttemptFailed {
                    cause: cause.clone(),
                    attempt: 1,
                    retry_in: std::time::Duration::from_millis(300),
                },
            ),
            at(
                t_ms + 400,
                Event::FetchFailed {
                    cause,
                    retry_at: SIM_EPOCH.shifted_by_millis(t_ms as i64 + 30_000),
                },
            ),
        ]
    }

    #[test]
    fn fetches_that_differ_only_in_numbers_merge_until_a_boundary() {
        let mut timeline = failed_fetch(1_000);
        timeline.extend(failed_fetch(61_000));
        timeline.push(TimelineEntry {
            t_ms: 90_000,
            wall: SIM_EPOCH.shifted_by_millis(90_000),
            entry: Entry::Harness(Note::FaultEnded {
                kind: FaultKind::Http500,
            }),
        });
        timeline.extend(failed_fetch(120_000));
        let lines = digest(&timeline);
        let shown: Vec<String> = lines.iter().map(ToString::to_string).collect();
        assert_eq!(lines.len(), 3, "{shown:#?}");
        assert_eq!(
            (lines[0].count, lines[0].from_ms, lines[0].to_ms),
            (2, 1_000, 61_400)
        );
        assert!(
            lines[0].text.ends_with(
                "failed after 2 attempts: the IMDS role list request failed with HTTP 500"
            ),
            "{}",
            lines[0].text
        );
        assert!(lines[0].warning);
        assert_eq!(lines[1].text, "fault http_500 ends");
        assert_eq!(lines[2].count, 1);
        assert_eq!(shown[0], format!("00:00:01–00:01:01  {} ×2", lines[0].text));
    }

    #[test]
    fn calls_served_normally_leave_no_line() {
        let timeline = vec![at(
            5,
            Event::ServingCachedWhileRefreshing {
                expires_at: SIM_EPOCH,
            },
        )];
        assert!(digest(&timeline).is_empty());
    }
}
