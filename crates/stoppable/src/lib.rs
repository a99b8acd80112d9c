#![doc = include_str!("../README.md")]
#![deny(unsafe_code)]

/// A `tracing` event with the `tracing` feature; nothing without it (the
/// arguments are not even evaluated).
macro_rules! event {
    ($level:ident, $($arg:tt)*) => {
        #[cfg(feature = "tracing")]
        tracing::$level!($($arg)*);
    };
}

#[cfg(unix)]
pub mod activation;
#[cfg(feature = "async-io")]
mod async_io;
#[cfg(feature = "tls-async-io")]
mod async_io_tls;
pub mod builder;
mod conn_error;
mod conn_socket;
mod conn_table;
mod driver;
mod h2_frames;
mod h2_streams;
#[cfg(all(unix, feature = "handoff"))]
pub mod handoff;
mod handshake;
mod io;
mod listener_drain;
mod listeners;
mod make;
#[cfg(all(unix, feature = "sd-notify"))]
pub mod notify;
mod options;
mod raw;
mod runtime;
mod server;
mod service;
mod shared;
mod signal;
mod slot;
mod socket;
mod socket_owners;
mod stopper;
mod syn_queue;
mod task;
mod timer;
#[cfg(feature = "tls")]
pub mod tls;
mod tracker;

use std::fmt;

/// What a stop does, as a client sees it: the project's specification,
/// B1 to B24, with the words it uses (phases, connection states, actions).
/// Every `B` number in these crates refers to it.
#[doc = include_str!("../BEHAVIOUR.md")]
pub mod behaviour {}

pub use conn_error::{ConnError, ConnStage};
pub use conn_socket::{ConnSocket, WithoutSocket};
pub use driver::ConnDriver;
pub use handshake::{Handshake, Handshaking, Plain, Started};
pub use io::TrackedIo;
pub use listener_drain::ListenerDrain;
pub use listeners::{EitherIo, EitherListener, Listeners};
pub use make::{
    make_service_fn, marker, ConnInfo, IntoMakeService, MakeError, MakeService, MakeServiceFn,
    TowerMakeService,
};
pub use options::Options;
pub use raw::{Closing, ConnHandle, RawConn, Work};
pub use runtime::{Accept, Accepted, Runtime};
pub use server::Server;
pub use service::{TrackedBody, TrackedFuture, TrackedService};
pub use signal::stop_on;
#[cfg(feature = "signal")]
pub use signal::stop_on_signals;
pub use socket::{borrow_socket, BorrowedSocket};

/// hyper on async-io (smol, async-std): listener, stream, timer, executor.
#[cfg(feature = "async-io")]
pub mod rt {
    pub use crate::async_io::{
        async_io_builder, AsyncIoListener, AsyncIoSleep, AsyncIoStream, AsyncIoTimer,
        ListenerSocket, SpawnExecutor, StreamSocket,
    };
    #[cfg(feature = "tls-async-io")]
    pub use crate::async_io_tls::{Accepting, AsyncIoTlsStream, TlsAcceptor};
}
pub use stoppable_core::{ConfigError, Counts, Phase, Report};
pub use stopper::{DrainSignal, Draining, Stopper, Stopping};
pub use task::{TaskError, TrackedTask};
pub use tracker::{Drive, Tracked, Tracker};

/// Why a server could not serve.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The server's stop already completed (B2).
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
