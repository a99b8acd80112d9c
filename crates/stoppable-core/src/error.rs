//! Errors of events the core cannot apply.

use std::fmt;

/// An event the core refused. The state is unchanged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The connection is unknown, or already closed (its id is stale).
    UnknownConnection,
    /// A connection was accepted after the listener was reported closed or
    /// the stop completed.
    NotAccepting,
    /// A task was started once the grace was over or the stop completed.
    TooLateForTask,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::UnknownConnection => write!(f, "unknown or already closed connection"),
            Error::NotAccepting => write!(f, "the server no longer accepts connections"),
            Error::TooLateForTask => write!(f, "the stop is past its grace: no task can start"),
        }
    }
}

impl std::error::Error for Error {}
