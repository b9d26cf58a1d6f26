//! Reading a file through the adapter: the core never touches a filesystem,
//! so when a source needs a file's contents (the container authorization
//! token file, which EKS rotates) it asks for them as an action.

use alloc::string::String;
use core::fmt;
use core::time::Duration;

use thiserror::Error;

use crate::actions::Step;

/// Identifies one file read the machine asked for; report the outcome with it.
///
/// File reads and HTTP requests are numbered from one counter, so a raw id is
/// unique across both kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FileReadId(pub(crate) u64);

impl FileReadId {
    /// The numeric id, e.g. to hand across an FFI boundary.
    #[must_use]
    pub fn get(self) -> u64 {
        self.0
    }

    /// Rebuild an id received back from an FFI boundary. An id the machine did
    /// not issue as a file read is rejected with [`crate::MisuseError`].
    #[must_use]
    pub fn from_raw(raw: u64) -> Self {
        FileReadId(raw)
    }
}

impl fmt::Display for FileReadId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "file read #{}", self.0)
    }
}

/// A file for the adapter to read, from [`crate::Output::ReadFile`].
///
/// Read it now (never from a cache: the file may have been rotated since the
/// last read), at most [`FileRead::max_bytes`] + 1 bytes, and report the bytes
/// or the reason with [`crate::Machine::handle_file`]. The contents are
/// secret: never log them.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct FileRead {
    /// Report the outcome with this id.
    pub id: FileReadId,
    /// What the contents are for; used in events and error messages.
    pub step: Step,
    /// The path, as configured.
    pub path: String,
    /// Read at most this many bytes plus one; the machine rejects larger files.
    pub max_bytes: usize,
    /// The machine gives up on the read after this long (it enforces the
    /// deadline itself, so a late report is ignored).
    pub timeout: Duration,
}

/// Why the adapter could not read a file, reported with
/// [`crate::Machine::handle_file`].
#[derive(Clone, Debug, PartialEq, Eq, Hash, Error)]
#[non_exhaustive]
pub enum FileError {
    /// The file does not exist.
    #[error("no such file")]
    NotFound,
    /// The process may not read the file.
    #[error("permission denied")]
    PermissionDenied,
    /// The read did not finish in time.
    #[error("the read timed out")]
    TimedOut,
    /// Any other failure, as the operating system describes it (never the
    /// file's contents).
    #[error("{0}")]
    Other(String),
}
