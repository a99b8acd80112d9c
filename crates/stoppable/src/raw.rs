//! Any TCP protocol (B20): a tracked connection whose owner marks where
//! each unit of work begins and ends, and learns when to close.

use std::future::Future;
use std::ops::Deref;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use crate::shared::Shared;
use crate::slot::{Command, ConnSlot};

/// A connection of your own protocol, taking part in the stop. Owns the
/// stream, so the grace deadline can shut its socket down safely: read and
/// write through the `RawConn` itself (it forwards futures-io's
/// `AsyncRead` / `AsyncWrite`, and tokio's with the `tokio` feature; split
/// it with `tokio::io::split` or `futures::io::AsyncReadExt::split`), or
/// through `&S` (`Deref`). It never lends the stream mutably: a stream
/// moved out and closed would leave the stop a stale handle. Dropping it
/// closes the connection and tells the drain.
///
/// ```compile_fail
/// # fn f(mut conn: stoppable::RawConn<std::net::TcpStream>, other: std::net::TcpStream) {
/// // The stream cannot be swapped out (and closed) while the stop may use
/// // its socket:
/// drop(std::mem::replace(&mut *conn, other));
/// # }
/// ```
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
        slot.mark_raw();
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
        self.0.request_started(false);
        Work(self.0.clone())
    }

    /// True once the drain asked this connection to close and no marked
    /// work is left: the moment to close it.
    pub fn is_closing(&self) -> bool {
        should_close(&self.0)
    }

    /// Resolves when the drain asks the connection to close: at once for an
    /// idle connection, after its marked work for a busy one, and never
    /// while bytes wait unread (they begin a unit of work, B4). Any number
    /// of tasks may wait on it.
    pub fn closing(&self) -> Closing {
        Closing {
            slot: self.0.clone(),
            listener: None,
        }
    }
}

impl<S> Deref for RawConn<S> {
    type Target = S;

    fn deref(&self) -> &S {
        self.stream.as_ref().expect("present until dropped")
    }
}

impl<S: Unpin> RawConn<S> {
    /// The stream, for its IO methods only (see [`RawConn`]).
    fn io(self: Pin<&mut Self>) -> Pin<&mut S> {
        Pin::new(
            self.get_mut()
                .stream
                .as_mut()
                .expect("present until dropped"),
        )
    }
}

impl<S: futures_io::AsyncRead + Unpin> futures_io::AsyncRead for RawConn<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<std::io::Result<usize>> {
        self.io().poll_read(cx, buf)
    }

    fn poll_read_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &mut [std::io::IoSliceMut<'_>],
    ) -> Poll<std::io::Result<usize>> {
        self.io().poll_read_vectored(cx, bufs)
    }
}

impl<S: futures_io::AsyncWrite + Unpin> futures_io::AsyncWrite for RawConn<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.io().poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        self.io().poll_write_vectored(cx, bufs)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.io().poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.io().poll_close(cx)
    }
}

#[cfg(feature = "tokio")]
impl<S: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for RawConn<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        self.io().poll_read(cx, buf)
    }
}

#[cfg(feature = "tokio")]
impl<S: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for RawConn<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.io().poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        self.io().poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.as_ref().is_some_and(S::is_write_vectored)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.io().poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.io().poll_shutdown(cx)
    }
}

impl<S> Drop for RawConn<S> {
    fn drop(&mut self) {
        // Close the socket once no force-close can reach its handle.
        self.slot.forget_socket();
        drop(self.stream.take());
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
pub struct Closing {
    slot: Arc<ConnSlot>,
    listener: Option<event_listener::EventListener>,
}

impl Future for Closing {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        loop {
            if should_close(&this.slot) {
                return Poll::Ready(());
            }
            match &mut this.listener {
                // Listen first, then look again, so no order is missed.
                None => this.listener = Some(this.slot.listen()),
                Some(listener) => match Pin::new(listener).poll(cx) {
                    Poll::Ready(()) => this.listener = None,
                    Poll::Pending => return Poll::Pending,
                },
            }
        }
    }
}

/// Cut; or told to close, and nothing came since the core decided; or told
/// to finish, and the work is done with no byte waiting unread (B4: the
/// owner's next read begins a unit of work).
fn should_close(slot: &ConnSlot) -> bool {
    match slot.command() {
        Command::Cut => true,
        Command::CloseIdle if !slot.close_declined() && !slot.has_unread() => true,
        Command::CloseIdle | Command::Finish => !slot.is_busy() && !slot.has_unread(),
        Command::None => false,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
    use std::task::Wake;

    use super::*;

    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, SeqCst);
        }
    }

    /// A reader task and a writer task both wait for `closing`: the order
    /// wakes both (one shared waker slot woke only the last to register).
    #[test]
    fn every_task_waiting_on_closing_is_woken() {
        let mut drain = stoppable_core::Lifecycle::new(Default::default()).expect("valid");
        let id = drain.accept(std::time::Instant::now()).expect("accepting");
        let handle = ConnHandle(Arc::new(ConnSlot::new(id, None)));
        let counts: Vec<Arc<Count>> = (0..2)
            .map(|_| Arc::new(Count(AtomicUsize::new(0))))
            .collect();
        let mut waiting: Vec<Closing> = (0..2).map(|_| handle.closing()).collect();
        for (closing, count) in waiting.iter_mut().zip(&counts) {
            let waker = std::task::Waker::from(count.clone());
            let polled = Pin::new(closing).poll(&mut Context::from_waker(&waker));
            assert!(polled.is_pending());
        }
        handle.0.order(Command::Finish);
        for count in &counts {
            assert_eq!(count.0.load(SeqCst), 1, "each waiting task was woken");
        }
    }
}
