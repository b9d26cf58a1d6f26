//! Credential sources: the protocol steps of one fetch sequence.
//!
//! A source only knows its wire protocol. Everything else — attempts,
//! pauses, backoff, caching, windows, static stability — lives in the machine
//! and is shared by every source. Adding a source means adding a variant here
//! and a module that answers the same four questions: what to do next, and
//! what a response, a transport failure or a file's contents mean.

use alloc::string::String;
use alloc::vec::Vec;
use core::time::Duration;

use crate::actions::{HeaderValue, Method, Response, Step, TransportFailure};
use crate::config::Config;
use crate::credentials::Credentials;
use crate::errors::SourceError;
use crate::events::Event;
use crate::file_read::FileError;
use crate::time::Timestamp;

pub(crate) mod container;
pub(crate) mod imds;

/// What a source wants done next in its sequence.
pub(crate) enum Action {
    /// Send this request.
    Http(Outgoing),
    /// Have the adapter read this file.
    ReadFile(FileOp),
}

/// A file a source wants read; the machine gives it an id and a deadline.
pub(crate) struct FileOp {
    pub(crate) step: Step,
    pub(crate) path: String,
    pub(crate) timeout: Duration,
}

/// A request a source wants sent; the machine gives it an id and a deadline.
pub(crate) struct Outgoing {
    pub(crate) step: Step,
    pub(crate) method: Method,
    pub(crate) url: String,
    pub(crate) headers: Vec<(&'static str, HeaderValue)>,
    pub(crate) timeout: Duration,
}

/// What a source concluded from one response or failure.
pub(crate) enum Progress {
    /// Send the sequence's next request now (no attempt is used up).
    Continue,
    /// A failure worth another attempt within this sequence.
    Retry(SourceError),
    /// The sequence failed; retrying now would not help.
    Fail(SourceError),
    /// The sequence produced credentials.
    Done(Credentials),
}

/// The configured source and what it remembers between sequences.
#[derive(Debug)]
pub(crate) enum Source {
    Imds(imds::ImdsSource),
    Container(container::Container),
}

/// One fetch sequence's protocol progress.
#[derive(Debug)]
pub(crate) enum Sequence {
    Imds(imds::ImdsSequence),
    Container(container::ContainerSequence),
}

/// A sequence is only ever handed back to the source that began it.
const FOREIGN_SEQUENCE: &str = "a fetch sequence belongs to the source that began it";

impl Source {
    pub(crate) fn from_config(config: &Config) -> Source {
        match &config.container {
            Some(endpoint) => Source::Container(container::Container::new(endpoint, config)),
            None => Source::Imds(imds::ImdsSource::new(config)),
        }
    }

    /// The step that fetches the credentials themselves, for errors about
    /// what it returned.
    pub(crate) fn credentials_step(&self, config: &Config) -> Step {
        match self {
            Source::Imds(_) => Step::ImdsCredentials {
                role: config.role_name.clone().unwrap_or_default(),
            },
            Source::Container(container) => container.credentials_step(),
        }
    }

    /// The first request step of a sequence.
    pub(crate) fn first_step(&self) -> Step {
        match self {
            Source::Imds(_) => Step::ImdsToken,
            Source::Container(container) => container.credentials_step(),
        }
    }

    pub(crate) fn begin(&mut self, now: Timestamp) -> Sequence {
        match self {
            Source::Imds(imds) => Sequence::Imds(imds.begin(now)),
            Source::Container(container) => Sequence::Container(container.begin()),
        }
    }

    pub(crate) fn next_action(&self, sequence: &Sequence) -> Action {
        match (self, sequence) {
            (Source::Imds(imds), Sequence::Imds(seq)) => Action::Http(imds.next_request(seq)),
            (Source::Container(container), Sequence::Container(seq)) => container.next_action(seq),
            _ => unreachable!("{FOREIGN_SEQUENCE}"),
        }
    }

    /// The file a sequence asked for was read (or not).
    pub(crate) fn on_file(
        &mut self,
        sequence: &mut Sequence,
        contents: Result<Vec<u8>, FileError>,
    ) -> Progress {
        match (self, sequence) {
            (Source::Container(container), Sequence::Container(seq)) => {
                container.on_file(seq, contents)
            }
            // IMDS never asks for a file.
            _ => unreachable!("{FOREIGN_SEQUENCE}"),
        }
    }

    pub(crate) fn on_response(
        &mut self,
        sequence: &mut Sequence,
        response: &Response,
        sent_at: Timestamp,
        events: &mut Vec<Event>,
    ) -> Progress {
        match (self, sequence) {
            (Source::Imds(imds), Sequence::Imds(seq)) => {
                imds.on_response(seq, response, sent_at, events)
            }
            (Source::Container(container), Sequence::Container(seq)) => {
                container.on_response(seq, response)
            }
            _ => unreachable!("{FOREIGN_SEQUENCE}"),
        }
    }

    pub(crate) fn on_failure(
        &mut self,
        sequence: &mut Sequence,
        failure: TransportFailure,
        events: &mut Vec<Event>,
    ) -> Progress {
        match (self, sequence) {
            (Source::Imds(imds), Sequence::Imds(seq)) => imds.on_failure(seq, failure, events),
            (Source::Container(container), Sequence::Container(seq)) => {
                container.on_failure(seq, failure)
            }
            _ => unreachable!("{FOREIGN_SEQUENCE}"),
        }
    }

    /// The wall clock stepped; move remembered instants with it.
    pub(crate) fn shift_by_millis(&mut self, millis: i64) {
        match self {
            Source::Imds(imds) => imds.shift_by_millis(millis),
            // Nothing remembered between sequences.
            Source::Container(_) => {}
        }
    }
}

/// Classify a status that no protocol step expects.
pub(crate) fn status_error(step: Step, status: u16) -> Progress {
    match status {
        429 | 503 => Progress::Retry(SourceError::Throttled { step, status }),
        500..=599 => Progress::Retry(SourceError::ServerError { step, status }),
        _ => Progress::Fail(SourceError::UnexpectedStatus { step, status }),
    }
}
