//! loom model checks of the state a server's tasks share: the per-connection
//! slot (`crates/stoppable/src/slot.rs`) and the server's shared state
//! (`shared.rs`), the very files, compiled here on loom's atomics, mutexes
//! and waker, with the socket calls stubbed out (no syscalls under a model
//! checker) and the tracing events left out. Run: `RUSTFLAGS="--cfg loom" cargo test --release` in
//! this directory. Without `--cfg loom` it only builds.

#![allow(dead_code)]

/// The crate's `tracing` events, without the `tracing` feature.
macro_rules! event {
    ($($event:tt)*) => {};
}

#[path = "../../crates/stoppable/src/shared.rs"]
mod shared;
#[path = "../../crates/stoppable/src/slot.rs"]
mod slot;
#[path = "../../crates/stoppable/src/conn_table.rs"]
mod conn_table;

/// The crate's error, as `shared.rs` returns it.
#[derive(Debug)]
pub enum Error {
    Stopped,
}

/// The socket calls the slot makes, without the sockets.
mod socket {
    pub type RawSocket = i32;

    pub fn shutdown(_socket: RawSocket) {}

    pub fn has_unread(_socket: RawSocket) -> bool {
        false
    }
}

#[cfg(all(test, loom))]
mod tests;
