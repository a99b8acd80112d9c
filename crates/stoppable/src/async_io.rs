//! hyper on async-io's reactor and timers, the base of smol and async-std.
//!
//! A small implementation of our own rather than `smol-hyper`: reads go
//! straight from the socket into hyper's uninitialised buffer (no zeroing,
//! no copy), which futures-io's `AsyncRead` (that `smol-hyper` bridges)
//! cannot do, and it is the one place both adapters share.

use std::future::Future;
use std::io::{self, ErrorKind, IoSlice, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::{Duration, Instant};

use async_io::{Async, Timer};
use hyper::rt::{Executor, Read, ReadBufCursor, Sleep};
use hyper_util::server::conn::auto::Builder;

use crate::conn_socket::ConnSocket;
use crate::runtime::{Accept, Accepted, Runtime};
use crate::socket::{borrow_socket, BorrowedSocket};
#[cfg(unix)]
use std::os::fd::AsFd as AsSource;
#[cfg(windows)]
use std::os::windows::io::AsSocket as AsSource;

/// A listener on async-io's reactor: TCP (the default) or, on Unix, a Unix
/// domain socket (`AsyncIoListener<std::os::unix::net::UnixListener>`).
///
/// While another clone of its `Arc` lives (smol's listeners are `Clone`:
/// another server may accept on the same socket), it counts as shared
/// ([`Accept::shared`]): the stop only drops this handle (B22).
#[derive(Debug)]
pub struct AsyncIoListener<L = TcpListener>(pub Arc<Async<L>>);

impl<L: ListenerSocket> Accept for AsyncIoListener<L> {
    type Io = AsyncIoStream<L::Stream>;

    fn socket(&self) -> Option<BorrowedSocket<'_>> {
        (!self.shared()).then(|| self.0.get_ref().lend())
    }

    fn shared(&self) -> bool {
        Arc::strong_count(&self.0) > 1
    }

    fn local_addr(&self) -> io::Result<std::net::SocketAddr> {
        crate::runtime::ip_addr(self.0.get_ref().lend())
    }

    fn poll_accept(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Accepted<Self::Io>>> {
        loop {
            match self.0.get_ref().accept_one() {
                Ok((stream, remote_addr)) => {
                    return Poll::Ready(Async::new(stream).map(|io| Accepted {
                        io: AsyncIoStream(io),
                        remote_addr,
                    }));
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => ready!(self.0.poll_readable(cx))?,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

/// A stream on async-io's reactor, as hyper reads and writes it: TCP (the
/// default) or Unix domain.
#[derive(Debug)]
pub struct AsyncIoStream<S = TcpStream>(pub Async<S>);

// SAFETY: its IO methods read, write and shut down the inner socket, never
// close or replace it.
#[allow(unsafe_code)]
unsafe impl<S: StreamSocket> ConnSocket for AsyncIoStream<S> {
    fn conn_socket(&self) -> Option<BorrowedSocket<'_>> {
        self.0.conn_socket()
    }
}

impl<S: StreamSocket> Read for AsyncIoStream<S> {
    #[allow(unsafe_code)]
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            // SAFETY: `recv` writes only initialised bytes into the buffer,
            // and the cursor advances by exactly the count it wrote.
            let received = self.0.get_ref().sock().recv(unsafe { buf.as_mut() });
            match received {
                Ok(n) => {
                    // SAFETY: see above.
                    unsafe { buf.advance(n) };
                    return Poll::Ready(Ok(()));
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => ready!(self.0.poll_readable(cx))?,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl<S> AsyncIoStream<S> {
    fn poll_io<T>(
        &self,
        cx: &mut Context<'_>,
        mut op: impl FnMut(&S) -> io::Result<T>,
    ) -> Poll<io::Result<T>> {
        loop {
            match op(self.0.get_ref()) {
                Err(e) if e.kind() == ErrorKind::WouldBlock => ready!(self.0.poll_writable(cx))?,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                result => return Poll::Ready(result),
            }
        }
    }
}

impl<S: StreamSocket> hyper::rt::Write for AsyncIoStream<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_io(cx, |s| s.write(buf))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.poll_io(cx, |s| s.write_vectored(bufs))
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.0.get_ref().sock().shutdown(Shutdown::Write) {
            Err(e) if e.kind() != ErrorKind::NotConnected => Poll::Ready(Err(e)),
            _ => Poll::Ready(Ok(())),
        }
    }
}

/// A listening socket async-io listeners accept from: std's TCP listener,
/// and on Unix std's Unix domain listener. Sealed.
pub trait ListenerSocket: sealed::Sealed + Send + Sync + Unpin + 'static {
    /// What it accepts.
    type Stream: StreamSocket;

    /// Accepts one connection, without waiting, with its peer's IP address
    /// (`None` for a Unix domain socket).
    fn accept_one(&self) -> io::Result<(Self::Stream, Option<std::net::SocketAddr>)>;

    /// The socket, lent to the stop (B1).
    fn lend(&self) -> BorrowedSocket<'_>;
}

/// A connected socket an [`AsyncIoStream`] reads and writes: std's TCP
/// stream, and on Unix std's Unix domain stream. Sealed.
pub trait StreamSocket:
    sealed::Sealed + AsSource + ConnSocket + Send + Sync + Unpin + 'static
{
    /// The socket, for reads straight into hyper's buffer and shutdowns.
    fn sock(&self) -> socket2::SockRef<'_>;

    /// Writes, as std's `Write` does.
    fn write(&self, buf: &[u8]) -> io::Result<usize>;

    /// Writes several buffers, as std's `Write` does.
    fn write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize>;
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for std::net::TcpListener {}
    impl Sealed for std::net::TcpStream {}
    #[cfg(unix)]
    impl Sealed for std::os::unix::net::UnixListener {}
    #[cfg(unix)]
    impl Sealed for std::os::unix::net::UnixStream {}
}

impl ListenerSocket for TcpListener {
    type Stream = TcpStream;

    fn accept_one(&self) -> io::Result<(TcpStream, Option<std::net::SocketAddr>)> {
        // TCP_NODELAY is the server's to set (`Options::tcp_nodelay`).
        self.accept().map(|(stream, peer)| (stream, Some(peer)))
    }

    fn lend(&self) -> BorrowedSocket<'_> {
        borrow_socket(self)
    }
}

/// The same for std's TCP and Unix streams: each writes through `&Self`.
macro_rules! stream_socket {
    ($stream:ty) => {
        impl StreamSocket for $stream {
            fn sock(&self) -> socket2::SockRef<'_> {
                socket2::SockRef::from(self)
            }

            fn write(&self, buf: &[u8]) -> io::Result<usize> {
                Write::write(&mut &*self, buf)
            }

            fn write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
                Write::write_vectored(&mut &*self, bufs)
            }
        }
    };
}

stream_socket!(TcpStream);

#[cfg(unix)]
impl ListenerSocket for std::os::unix::net::UnixListener {
    type Stream = std::os::unix::net::UnixStream;

    fn accept_one(&self) -> io::Result<(Self::Stream, Option<std::net::SocketAddr>)> {
        self.accept().map(|(stream, _)| (stream, None))
    }

    fn lend(&self) -> BorrowedSocket<'_> {
        borrow_socket(self)
    }
}

#[cfg(unix)]
stream_socket!(std::os::unix::net::UnixStream);

/// async-io's timer as the drain's and hyper's timer.
#[derive(Clone, Copy, Debug, Default)]
pub struct AsyncIoTimer;

/// An async-io timer that resolves to `()`.
#[derive(Debug)]
pub struct AsyncIoSleep(Timer);

impl AsyncIoSleep {
    /// Resolves at `deadline`.
    pub fn until(deadline: Instant) -> Self {
        AsyncIoSleep(Timer::at(deadline))
    }
}

impl Future for AsyncIoSleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        Pin::new(&mut self.0).poll(cx).map(|_| ())
    }
}

impl Sleep for AsyncIoSleep {}

impl hyper::rt::Timer for AsyncIoTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Sleep>> {
        Box::pin(AsyncIoSleep(Timer::after(duration)))
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn Sleep>> {
        Box::pin(AsyncIoSleep::until(deadline))
    }
}

/// hyper's executor (for HTTP/2 streams) over a [`Runtime`]'s spawn.
#[derive(Clone, Copy, Debug, Default)]
pub struct SpawnExecutor<R>(pub R);

impl<R: Runtime, F> Executor<F> for SpawnExecutor<R>
where
    F: Future + Send + 'static,
{
    fn execute(&self, future: F) {
        self.0.spawn(async move {
            future.await;
        });
    }
}

/// hyper's HTTP/1.1 + HTTP/2 builder for a runtime on async-io, with
/// [`AsyncIoTimer`] as hyper's timer (see [`crate::builder::with_timer`]).
pub fn async_io_builder<R: Runtime>(runtime: R) -> Builder<SpawnExecutor<R>> {
    crate::builder::with_timer(Builder::new(SpawnExecutor(runtime)), AsyncIoTimer)
}
