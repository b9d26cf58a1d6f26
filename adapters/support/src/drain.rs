//! The run loop's pieces every adapter shares: a caller's demand, one round
//! of polling until the deadline, and reporting what the IO came to.

use std::fs::File;
use std::io::{self, Read};

use credstate::{
    Demand, Event, FileError, FileRead, FileReadId, Machine, Output, Request, RequestId, Response,
    Timestamp, TransportFailure,
};

use crate::snapshot::SnapshotCell;

/// What a caller's demand came to, asked with the machine's lock held.
#[derive(Debug)]
pub struct CallerDemand {
    /// The machine's answer.
    pub demand: Demand,
    /// Whether the demand left work for the driver (a fetch to start, events
    /// to drain): the adapter wakes it then.
    pub wake_driver: bool,
}

/// Ask the machine on a caller's behalf and publish its snapshot to `cell`.
///
/// A demand that started a fetch, or was answered (and so may have queued an
/// event), leaves work for the driver; a caller that merely joins the fetch
/// in flight does not.
pub fn caller_demand(machine: &mut Machine, cell: &SnapshotCell, now: Timestamp) -> CallerDemand {
    let was_fetching = machine.is_fetching();
    let demand = machine.demand(now);
    cell.publish(machine);
    let wake_driver = !matches!(demand, Demand::Pending) || machine.is_fetching() != was_fetching;
    CallerDemand {
        demand,
        wake_driver,
    }
}

/// IO the machine asked for, in the order it asked.
#[derive(Debug)]
#[non_exhaustive]
pub enum Operation {
    /// Perform this HTTP request; report with `handle_response` or
    /// `handle_failure`.
    Send(Request),
    /// Read this file; report with `handle_file`.
    ReadFile(FileRead),
}

/// Everything one [`drain`] collected from the machine.
#[derive(Debug, Default)]
pub struct Drained {
    /// IO to perform, in order.
    pub operations: Vec<Operation>,
    /// Events to log, in order.
    pub events: Vec<Event>,
    /// The machine's next deadline; `None` when it has none.
    pub wake_at: Option<Timestamp>,
}

/// Call [`Machine::poll`] until it answers with its deadline, collecting the
/// IO and events on the way.
pub fn drain(machine: &mut Machine, now: Timestamp) -> Drained {
    let mut drained = Drained::default();
    loop {
        match machine.poll(now) {
            Output::Send(request) => drained.operations.push(Operation::Send(request)),
            Output::ReadFile(read) => drained.operations.push(Operation::ReadFile(read)),
            Output::Event(event) => drained.events.push(event),
            Output::WakeAt(at) => {
                drained.wake_at = Some(at);
                break;
            }
            // Idle, and any output a newer core adds that this loop cannot
            // act on: nothing to do until the next input.
            _ => break,
        }
    }
    drained
}

/// What performing an [`Operation`] came to, for [`report`].
#[derive(Debug)]
pub enum Outcome {
    /// The answer to the request with this id, or how it failed.
    Sent(RequestId, Result<Response, TransportFailure>),
    /// The contents of the file read with this id, or why it failed.
    Read(FileReadId, Result<Vec<u8>, FileError>),
}

/// Hand `outcome` to the machine. The machine refuses only a report it never
/// asked for, which is a bug in the driver: that is logged, not returned.
pub fn report(machine: &mut Machine, outcome: Outcome, now: Timestamp) {
    let reported = match outcome {
        Outcome::Sent(id, Ok(response)) => machine.handle_response(id, response, now),
        Outcome::Sent(id, Err(failure)) => machine.handle_failure(id, failure, now),
        Outcome::Read(id, contents) => machine.handle_file(id, contents, now),
    };
    if let Err(misuse) = reported {
        tracing::error!(target: "credstate", "driver bug: {misuse}");
    }
}

/// Read the file the machine asked for, now and from disk, at most
/// [`FileRead::max_bytes`] + 1 bytes. Errors name the cause, never contents.
pub fn read_file(read: &FileRead) -> Result<Vec<u8>, FileError> {
    let limit = u64::try_from(read.max_bytes)
        .unwrap_or(u64::MAX)
        .saturating_add(1);
    let mut contents = Vec::new();
    File::open(&read.path)
        .and_then(|file| file.take(limit).read_to_end(&mut contents))
        .map_err(|error| file_error(&error))?;
    Ok(contents)
}

fn file_error(error: &io::Error) -> FileError {
    match error.kind() {
        io::ErrorKind::NotFound => FileError::NotFound,
        io::ErrorKind::PermissionDenied => FileError::PermissionDenied,
        io::ErrorKind::TimedOut => FileError::TimedOut,
        // The kind's description, not the error's: an OS error message never
        // holds contents, but a wrapped custom error might.
        kind => FileError::Other(kind.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use credstate::{Config, Demand};

    #[test]
    fn a_cold_demand_drains_to_one_request_its_event_and_its_deadline() {
        let mut machine = Machine::new(Config::default(), 1).unwrap();
        let now = Timestamp::from_unix_secs(1_795_910_400);
        assert!(matches!(machine.demand(now), Demand::Pending));
        let drained = drain(&mut machine, now);
        assert_eq!(drained.operations.len(), 1);
        assert!(matches!(
            &drained.operations[0],
            Operation::Send(request) if request.path() == "/latest/api/token"
        ));
        assert_eq!(drained.events.len(), 1);
        assert_eq!(drained.events[0].name(), "fetch_started");
        assert_eq!(
            drained.wake_at,
            Some(now + machine.config().request_timeout)
        );
    }

    #[test]
    fn a_demand_that_starts_a_fetch_wakes_the_driver_and_one_that_joins_it_does_not() {
        let mut machine = Machine::new(Config::default(), 1).unwrap();
        let cell = SnapshotCell::new();
        let now = Timestamp::from_unix_secs(1_795_910_400);
        let first = caller_demand(&mut machine, &cell, now);
        assert!(matches!(first.demand, Demand::Pending));
        assert!(first.wake_driver);
        let joining = caller_demand(&mut machine, &cell, now);
        assert!(matches!(joining.demand, Demand::Pending));
        assert!(!joining.wake_driver);
    }

    #[test]
    fn a_reported_answer_moves_the_machine_to_its_next_request() {
        let mut machine = Machine::new(Config::default(), 1).unwrap();
        let now = Timestamp::from_unix_secs(1_795_910_400);
        assert!(matches!(machine.demand(now), Demand::Pending));
        let token_request = match drain(&mut machine, now).operations.into_iter().next() {
            Some(Operation::Send(request)) => request,
            other => panic!("expected the token request, got {other:?}"),
        };
        report(
            &mut machine,
            Outcome::Sent(token_request.id, Ok(Response::new(200, "token"))),
            now,
        );
        let next = drain(&mut machine, now);
        assert!(matches!(
            &next.operations[..],
            [Operation::Send(request)] if request.path().ends_with("security-credentials-extended/")
        ));
    }

    #[test]
    fn an_untouched_machine_drains_to_nothing() {
        let mut machine = Machine::new(Config::default(), 1).unwrap();
        let drained = drain(&mut machine, Timestamp::from_unix_secs(1));
        assert!(drained.operations.is_empty() && drained.events.is_empty());
        assert_eq!(drained.wake_at, None);
    }

    fn container_machine_asking_for(path: &str) -> (Machine, FileRead) {
        let config: Config = serde_json::from_str(&format!(
            r#"{{"container": {{"uri": "http://127.0.0.1:9/creds", "auth": {{"token_file": "{path}"}}}}}}"#
        ))
        .unwrap();
        let mut machine = Machine::new(config, 1).unwrap();
        let now = Timestamp::from_unix_secs(1_795_910_400);
        assert!(matches!(machine.demand(now), Demand::Pending));
        let drained = drain(&mut machine, now);
        match drained.operations.into_iter().next() {
            Some(Operation::ReadFile(read)) => (machine, read),
            other => panic!("expected a file read, got {other:?}"),
        }
    }

    #[test]
    fn the_token_file_is_read_up_to_one_byte_past_the_limit() {
        let path = std::env::temp_dir().join(format!("credstate-token-{}", std::process::id()));
        std::fs::write(&path, vec![b'x'; 70_000]).unwrap();
        let (_machine, read) = container_machine_asking_for(path.to_str().unwrap());
        let contents = read_file(&read).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(contents.len(), read.max_bytes + 1);
    }

    #[test]
    fn a_missing_token_file_is_reported_as_not_found() {
        let (_machine, read) = container_machine_asking_for("/nonexistent/credstate/token");
        assert_eq!(read_file(&read), Err(FileError::NotFound));
    }
}
