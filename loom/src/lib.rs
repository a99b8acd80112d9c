//! loom model checks of the state a connection's tasks share with the stop:
//! `crates/stoppable/src/slot.rs` itself, compiled here on loom's atomics,
//! mutex and waker, with the socket calls stubbed out (no syscalls under a
//! model checker). Run: `RUSTFLAGS="--cfg loom" cargo test --release` in
//! this directory. Without `--cfg loom` it only builds.

#![allow(dead_code)]

#[path = "../../crates/stoppable/src/slot.rs"]
mod slot;

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
