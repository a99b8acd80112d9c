//! The sans-IO core of [stoppable]: every decision of a graceful server stop,
//! with no IO, no async, no runtime and no clock.
//!
//! A driver (the `stoppable` crates for tokio, smol and async-std, or your
//! own) feeds a [`Lifecycle`] what happens on the listener and on each
//! connection, with the current time as an argument, and carries out the
//! [`Action`]s it returns: stop accepting, let a connection finish its work
//! then close, close an idle one, force one closed at the grace deadline. The core keeps the
//! phases (serving, readiness delay, draining, forcing, stopped), the grace
//! timer, the per-connection windows, the live [`Counts`] and the final
//! [`Report`].
//!
//! The contract, as in quinn-proto and str0m: after every call, take all
//! actions with [`Lifecycle::poll_action`], then arm a timer for
//! [`Lifecycle::poll_timeout`] and call [`Lifecycle::handle_timeout`] when it fires.
//! Spurious timeouts are no-ops; `poll_timeout` is never in the past after
//! `handle_timeout(now)`.
//!
//! The behaviour numbers (B1, B4, ...) refer to the project's
//! specification, the `stoppable` crate's [`behaviour`] module (its
//! `BEHAVIOUR.md`).
//!
//! [`behaviour`]: https://docs.rs/stoppable/latest/stoppable/behaviour/
//!
//! [stoppable]: https://github.com/stoppable-rs/stoppable
#![forbid(unsafe_code)]

mod age;
mod config;
mod conn;
mod error;
mod id;
mod lifecycle;
mod observe;
mod report;

pub use config::{Config, ConfigError, MAX_FIRST_REQUEST_WINDOW};
pub use conn::{ConnState, Progress};
pub use error::Error;
pub use id::ConnId;
pub use lifecycle::{Action, ConnEvent, Lifecycle};
pub use observe::Observe;
pub use report::{Counts, Phase, Report};
