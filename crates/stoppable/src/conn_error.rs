//! A connection's failure, told to the user with its peer's address: a
//! hook ([`Server::on_connection_error`](crate::Server::on_connection_error))
//! and, with the `tracing` feature, a `debug` event.

use std::error::Error as StdError;
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use crate::make::BoxError;

/// The user's hook for connection errors.
pub(crate) type ErrorHook = Arc<dyn Fn(&ConnError) + Send + Sync>;

/// Where in a connection's life an error came.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnStage {
    /// Making the connection's service (a [`MakeService`](crate::MakeService)
    /// failed).
    MakeService,
    /// The handshake before HTTP (TLS), its timeout included.
    Handshake,
    /// HTTP: hyper's error (a malformed request, a reset, a read timeout).
    Http,
}

impl fmt::Display for ConnStage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ConnStage::MakeService => "making the service",
            ConnStage::Handshake => "handshake",
            ConnStage::Http => "http",
        })
    }
}

/// A connection's error, with its peer's address. Most are the peer's
/// doing (a reset, a malformed request, a handshake that never ends): the
/// connection ends, and the server goes on. An idle keep-alive connection
/// closed by hyper's timer is no error, and neither is a client that
/// connected and never sent a byte.
///
/// The hook runs in the connection's task (or, for a make-service's error,
/// in the accept loop): keep it quick; a panic in it ends that task.
#[derive(Debug)]
pub struct ConnError {
    remote_addr: Option<SocketAddr>,
    stage: ConnStage,
    error: BoxError,
}

impl ConnError {
    /// The peer's address: `None` on a Unix domain socket, or for a
    /// connection tracked without one.
    pub fn remote_addr(&self) -> Option<SocketAddr> {
        self.remote_addr
    }

    /// Where the error came.
    pub fn stage(&self) -> ConnStage {
        self.stage
    }

    /// The error itself (hyper's, rustls's, the make-service's).
    pub fn get_ref(&self) -> &(dyn StdError + Send + Sync + 'static) {
        &*self.error
    }
}

impl fmt::Display for ConnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.remote_addr {
            Some(addr) => write!(f, "{} error from {addr}: {}", self.stage, self.error),
            None => write!(f, "{} error: {}", self.stage, self.error),
        }
    }
}

impl StdError for ConnError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        Some(&*self.error)
    }
}

/// Tells a connection's errors: its peer, and the hook if one is set.
#[derive(Clone, Default)]
pub(crate) struct Reporter {
    pub(crate) remote_addr: Option<SocketAddr>,
    pub(crate) hook: Option<ErrorHook>,
}

impl Reporter {
    pub(crate) fn report(&self, stage: ConnStage, error: BoxError) {
        let error = ConnError {
            remote_addr: self.remote_addr,
            stage,
            error,
        };
        event!(debug, peer = ?error.remote_addr, %stage, error = %error.error, "stoppable: connection error");
        if let Some(hook) = &self.hook {
            hook(&error);
        }
    }
}
