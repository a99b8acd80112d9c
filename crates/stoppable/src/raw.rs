//! Any TCP protocol (B20): a tracked connection whose owner marks where
//! each unit of work begins and ends, and learns when to close.

use std::future::Future;
use std::ops::{Deref, DerefMut};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use crate::shared::Shared;
use crate::slot::{Command, ConnSlot};

/// A connection of your own protocol, taking part in the stop. Owns the
/// stream (use it through `Deref`), so the grace deadline can shut the
/// socket down safely; dropping it closes the connection and tells the
/// drain.
///
/// Through its [`handle`](RawConn::handle), mark each unit of work (a
/// request, a line, a message) with [`ConnHandle::work`] as soon as its
/// first byte is read: the drain waits for marked work (B5) and closes the
/// connection between units (B3); [`ConnHandle::closing`] resolves when it
/// should close.
pub struct RawConn<S> {
    stream: Option<S>,
    slot: Arc<ConnSlot>,
    shared: Arc<Shared>,
}

impl<S> RawConn<S> {
    pub(crate) fn new(stream: S, slot: Arc<ConnSlot>, shared: Arc<Shared>) -> Self {
        RawConn {
            stream: Some(stream),
            slot,
            shared,
        }
    }

    /// A handle to mark work and learn when to close, independent of the
    /// stream: keep it while the stream is split or borrowed.
    pub fn handle(&self) -> ConnHandle {
        ConnHandle(self.slot.clone())
    }
}

/// Marks the work of a [`RawConn`] and says when to close it. Cheap to clone.
#[derive(Clone)]
pub struct ConnHandle(Arc<ConnSlot>);

impl ConnHandle {
    /// Marks a unit of work that has begun (call it when its first byte is
    /// read); it ends when the guard drops.
    pub fn work(&self) -> Work {
        self.0.bytes_arrived();
        self.0.request_started();
        Work(self.0.clone())
    }

    /// True once the drain asked this connection to close and no marked
    /// work is left: the moment to close it.
    pub fn is_closing(&self) -> bool {
        should_close(&self.0)
    }

    /// Resolves when the drain asks the connection to close: at once for an
    /// idle connection, after its marked work for a busy one.
    pub fn closing(&self) -> Closing {
        Closing(self.0.clone())
    }
}

impl<S> Deref for RawConn<S> {
    type Target = S;

    fn deref(&self) -> &S {
        self.stream.as_ref().expect("present until dropped")
    }
}

impl<S> DerefMut for RawConn<S> {
    fn deref_mut(&mut self) -> &mut S {
        self.stream.as_mut().expect("present until dropped")
    }
}

impl<S> Drop for RawConn<S> {
    fn drop(&mut self) {
        {
            // Close the socket while no force-close can reach its handle.
            let _guard = self.slot.forget_socket();
            drop(self.stream.take());
        }
        self.shared.closed(&self.slot);
    }
}

/// A unit of work in progress on a [`RawConn`]; dropping it ends the unit.
pub struct Work(Arc<ConnSlot>);

impl Drop for Work {
    fn drop(&mut self) {
        self.0.request_finished();
        if self.0.command() != Command::None {
            // A `Closing` may wait for this unit to end.
            self.0.wake();
        }
    }
}

/// Resolves when the drain asks a [`RawConn`] to close.
pub struct Closing(Arc<ConnSlot>);

impl Future for Closing {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if should_close(&self.0) {
            return Poll::Ready(());
        }
        self.0.register(cx.waker());
        // Look again: the command or the last unit's end may have raced
        // with the registration.
        if should_close(&self.0) {
            return Poll::Ready(());
        }
        Poll::Pending
    }
}

/// Told to close now, or to close after the work, which is done.
fn should_close(slot: &ConnSlot) -> bool {
    match slot.command() {
        Command::Close => true,
        Command::Shutdown => !slot.is_busy(),
        Command::None => false,
    }
}
