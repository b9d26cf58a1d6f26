//! One round of the run loop's step 2: poll until the deadline.

use std::fs::File;
use std::io::{self, Read};

use credstate::{Event, FileError, FileRead, Machine, Output, Request, Timestamp};

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
