//! Credential sources: the protocol steps of one fetch sequence.
//!
//! A source only knows its wire protocol. Everything else — attempts,
//! pauses, backoff, caching, windows, static stability — lives in the machine
//! and is shared by every source. Adding a source means adding a variant here
//! and a module that answers the same four questions.

use alloc::string::String;
use alloc::vec::Vec;
use core::time::Duration;

use crate::actions::{HeaderValue, Method, Response, Step, TransportFailure};
use crate::config::Config;
use crate::credentials::Credentials;
use crate::errors::SourceError;
use crate::events::Event;
use crate::time::Timestamp;

pub(crate) mod imds;

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
}

/// One fetch sequence's protocol progress.
#[derive(Debug)]
pub(crate) enum Sequence {
    Imds(imds::ImdsSequence),
}

impl Source {
    pub(crate) fn from_config(config: &Config) -> Source {
        Source::Imds(imds::ImdsSource::new(config))
    }

    pub(crate) fn begin(&mut self, now: Timestamp) -> Sequence {
        match self {
            Source::Imds(imds) => Sequence::Imds(imds.begin(now)),
        }
    }

    pub(crate) fn next_request(&self, sequence: &Sequence) -> Outgoing {
        match (self, sequence) {
            (Source::Imds(imds), Sequence::Imds(seq)) => imds.next_request(seq),
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
        }
    }

    /// The wall clock stepped; move remembered instants with it.
    pub(crate) fn shift_by_millis(&mut self, millis: i64) {
        match self {
            Source::Imds(imds) => imds.shift_by_millis(millis),
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
