//! Graceful stop for hyper servers, on any async runtime: the
//! runtime-agnostic driver of [stoppable]. Most users want a runtime crate
//! (`stoppable-tokio`), which builds a [`Server`] from a listener.
//!
//! A stop, as a client sees it (the numbers are the behaviours of
//! `BEHAVIOUR.md`):
//! - new connects are refused, and connections already queued are served (B1);
//! - idle keep-alive connections close at once with a FIN (B3), a connection
//!   that has just connected gets a short window to send its request (B4);
//! - requests in flight complete (B5), their responses say
//!   `Connection: close` (B6), HTTP/2 connections get GOAWAY (B7);
//! - with a grace period, what is still busy at the deadline is force-closed,
//!   FIN first (B9); otherwise the stop waits for all work, and ends as soon
//!   as the last connection closes (B10);
//! - the stop resolves to a [`Report`] (B11), may be called any number of
//!   times (B12), also from a handler (B13);
//! - upgraded connections stay tracked until their IO is dropped (B14).
//!
//! # How it stays cheap
//! Per request the server writes two counters on the connection's own memory
//! and reads one shared flag with a relaxed load; it takes no lock and
//! allocates nothing of its own. The shared lock is taken on accept, on close,
//! at the stop and during a drain. All decisions are made by the sans-IO
//! [`stoppable_core::Drain`].
//!
//! [stoppable]: https://github.com/stoppable-rs/stoppable
#![deny(unsafe_code)]

#[cfg(feature = "async-io")]
mod async_io;
mod conn;
mod io;
mod options;
mod runtime;
mod server;
mod service;
mod shared;
mod slot;
mod socket;
mod stopper;
mod timer;
mod tracker;

use std::fmt;

pub use conn::ConnDriver;
pub use io::TrackedIo;
pub use options::Options;
pub use runtime::{Accept, Accepted, Runtime};
pub use server::Server;
pub use service::{TrackedBody, TrackedFuture, TrackedService};
pub use socket::{raw_socket, RawSocket};

/// hyper on async-io (smol, async-std): listener, stream, timer, executor.
#[cfg(feature = "async-io")]
pub mod rt {
    pub use crate::async_io::{
        async_io_builder, AsyncIoListener, AsyncIoSleep, AsyncIoStream, AsyncIoTimer, SpawnExecutor,
    };
}
pub use stoppable_core::{ConfigError, Counts, Phase, Report};
pub use stopper::{Draining, Stopper, Stopping};
pub use tracker::{Drive, Tracked, Tracker};

/// Why a server could not serve.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The server was stopped before it started serving, or serves already
    /// (B2).
    Stopped,
    /// An option is out of range.
    Config(ConfigError),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Stopped => write!(f, "the server was already stopped"),
            Error::Config(e) => write!(f, "bad option: {e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Config(e) => Some(e),
            Error::Stopped => None,
        }
    }
}
