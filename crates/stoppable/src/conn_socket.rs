//! Which OS socket a connection's IO owns: the socket the stop shuts down at
//! the grace deadline, even when a handler owns the IO (B9, B14), and peeks
//! at for bytes waiting unread (B4).
//!
//! The stop runs in another task than the connection, so it keeps the
//! socket's handle while the IO lives. That is sound only for an IO that
//! cannot close its socket, or swap in another, behind the library's back:
//! hence an `unsafe` trait, implemented here for the IO types of std,
//! async-io, tokio and rustls, and derived by the library from the IO
//! itself. No safe function takes a raw descriptor.

// This module is the trait and its impls, each with its reason.
#![allow(unsafe_code)]

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::socket::{borrow_socket, BorrowedSocket};

/// An IO that owns one OS socket and keeps it open until it is dropped:
/// what [`Tracker::track`](crate::Tracker::track),
/// [`Tracker::track_raw`](crate::Tracker::track_raw), an
/// [`Accept`](crate::Accept)'s connections and a
/// [`Handshake`](crate::Handshake)'s output need, so the stop can shut the
/// connection down from its own task.
///
/// Implemented for TCP and Unix domain streams (std, async-io, tokio with
/// the `tokio` feature), hyper-util's `TokioIo`, and rustls streams over
/// them. For an IO of your own that wraps one of these, delegate to it.
///
/// # Safety
///
/// The value owns the socket it gives: while the value lives,
/// `conn_socket` gives the same answer, and that socket stays open. Only
/// the value's own drop closes it (a leaked value leaks its socket; a
/// value that merely borrows a socket, such as a `&TcpStream`, must not
/// implement this). Nothing done through `&self` (any method), nor the IO
/// methods the library calls through a pinned `&mut self` (hyper's `Read`
/// and `Write`, futures-io's and tokio's `AsyncRead` and `AsyncWrite`:
/// reads, writes, flushes, shutdowns, closes), closes that socket or puts
/// another in its place.
///
/// In return, while the value lives, the library may, from any thread at
/// any time: shut the socket down (`shutdown(SHUT_RDWR)`), peek at it
/// (a non-blocking `MSG_PEEK`) and set `TCP_NODELAY` on it. It takes the
/// value by value, never lends it mutably to other code, and forgets the
/// handle before running any of the value's code in its drop.
///
/// `None` is always sound: the stop then cannot shut the connection down
/// from outside, and a handler that owns it after an upgrade may keep it
/// past the grace deadline.
pub unsafe trait ConnSocket {
    /// The socket this IO reads and writes, if it has one.
    fn conn_socket(&self) -> Option<BorrowedSocket<'_>>;
}

/// Streams that close their socket only when dropped.
macro_rules! owns_its_socket {
    ($($stream:ty),* $(,)?) => {$(
        // SAFETY: the stream holds one descriptor from its creation to its
        // drop, and closes it only there.
        unsafe impl ConnSocket for $stream {
            fn conn_socket(&self) -> Option<BorrowedSocket<'_>> {
                Some(borrow_socket(self))
            }
        }
    )*};
}

owns_its_socket!(std::net::TcpStream);
#[cfg(unix)]
owns_its_socket!(std::os::unix::net::UnixStream);
#[cfg(feature = "tokio")]
owns_its_socket!(tokio::net::TcpStream);
#[cfg(all(feature = "tokio", unix))]
owns_its_socket!(tokio::net::UnixStream);

// SAFETY: `Async` hands out its inner IO mutably only through an `unsafe`
// method (async-io's own I/O-safety rule), so it keeps the inner socket.
#[cfg(feature = "async-io")]
unsafe impl<T: ConnSocket> ConnSocket for async_io::Async<T> {
    fn conn_socket(&self) -> Option<BorrowedSocket<'_>> {
        self.get_ref().conn_socket()
    }
}

// SAFETY: its IO methods forward to the inner IO, which keeps its socket.
#[cfg(feature = "tokio")]
unsafe impl<T: ConnSocket> ConnSocket for hyper_util::rt::TokioIo<T> {
    fn conn_socket(&self) -> Option<BorrowedSocket<'_>> {
        self.inner().conn_socket()
    }
}

// SAFETY: a TLS stream's IO methods read, write and shut down its inner IO,
// which keeps its socket; they never replace it.
#[cfg(feature = "tls-tokio")]
unsafe impl<T: ConnSocket> ConnSocket for tokio_rustls::server::TlsStream<T> {
    fn conn_socket(&self) -> Option<BorrowedSocket<'_>> {
        self.get_ref().0.conn_socket()
    }
}

// SAFETY: as for tokio-rustls.
#[cfg(feature = "tls-async-io")]
unsafe impl<T: ConnSocket> ConnSocket for futures_rustls::server::TlsStream<T> {
    fn conn_socket(&self) -> Option<BorrowedSocket<'_>> {
        self.get_ref().0.conn_socket()
    }
}

// SAFETY: the variant never changes through `&self` or the IO methods,
// which forward to it.
unsafe impl<A: ConnSocket, B: ConnSocket> ConnSocket for crate::EitherIo<A, B> {
    fn conn_socket(&self) -> Option<BorrowedSocket<'_>> {
        match self {
            crate::EitherIo::Left(io) => io.conn_socket(),
            crate::EitherIo::Right(io) => io.conn_socket(),
        }
    }
}

/// The handle the library keeps while it owns the IO (see [`ConnSocket`]).
pub(crate) fn handle_of(io: &impl ConnSocket) -> Option<crate::socket::RawSocket> {
    io.conn_socket()
        .map(|socket| crate::socket::raw_socket(&socket))
}

/// An IO whose socket the stop is not told of (or that has none: an
/// in-memory stream, a transport of your own): safe to track without an
/// `unsafe impl`. The stop then reaches the connection only through its
/// driver: a connection a handler owns after an upgrade may outlive the
/// grace deadline (B14). Forwards hyper's `Read` and `Write`.
#[derive(Debug)]
pub struct WithoutSocket<Io>(pub Io);

// SAFETY: `None` claims nothing.
unsafe impl<Io> ConnSocket for WithoutSocket<Io> {
    fn conn_socket(&self) -> Option<BorrowedSocket<'_>> {
        None
    }
}

impl<Io: hyper::rt::Read + Unpin> hyper::rt::Read for WithoutSocket<Io> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_read(cx, buf)
    }
}

impl<Io: hyper::rt::Write + Unpin> hyper::rt::Write for WithoutSocket<Io> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_shutdown(cx)
    }
}
