//! The little a runtime must provide: spawning, a timer and a listener.

use std::future::Future;
use std::io;
use std::task::{Context, Poll};
use std::time::Instant;

use crate::conn_socket::ConnSocket;
use crate::socket::BorrowedSocket;

/// Spawning and timers of one async runtime.
pub trait Runtime: Clone + Send + Sync + 'static {
    /// The runtime's sleep future.
    type Sleep: Future<Output = ()> + Send + 'static;

    /// Runs a future to completion in the background.
    fn spawn<F>(&self, future: F)
    where
        F: Future<Output = ()> + Send + 'static;

    /// Resolves at `deadline`, on the clock of [`now`](Runtime::now).
    fn sleep_until(&self, deadline: Instant) -> Self::Sleep;

    /// The time, on the clock the runtime's sleeps run on: every deadline
    /// of the stop is counted from it. The system's monotonic clock by
    /// default; a runtime with a virtual clock (tokio's paused time) gives
    /// its own, so a whole server runs on virtual time in tests.
    fn now(&self) -> Instant {
        Instant::now()
    }
}

/// A connection fresh from the listener.
pub struct Accepted<Io> {
    /// The IO, as hyper reads and writes it. Its socket
    /// ([`ConnSocket`]) is what the grace deadline shuts down, even when a
    /// handler owns the IO (B9, B14).
    pub io: Io,
    /// The peer's address (`None` on a Unix domain socket): for the
    /// connection's service ([`ConnInfo`](crate::ConnInfo)) and its errors.
    pub remote_addr: Option<std::net::SocketAddr>,
}

/// A listener.
pub trait Accept: Send + Unpin + 'static {
    /// The IO of an accepted connection.
    type Io: hyper::rt::Read + hyper::rt::Write + ConnSocket + Send + Unpin + 'static;

    /// Accepts the next connection; `Pending` when none is queued.
    fn poll_accept(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Accepted<Self::Io>>>;

    /// The listening socket, lent so the stop can refuse new connection
    /// attempts while it drains the accept queue (B1). `None` gives that up.
    fn socket(&self) -> Option<BorrowedSocket<'_>> {
        None
    }

    /// Others hold this listener's socket too, within this process (a
    /// clone serving elsewhere): the stop then only closes this handle,
    /// and leaves the socket and its queue to them (B22). Defaults to
    /// false.
    fn shared(&self) -> bool {
        false
    }

    /// The address it listens on (the first one, for a listener made of
    /// several IP listeners): by default, read from
    /// [`socket`](Accept::socket). An error for a Unix domain socket.
    fn local_addr(&self) -> io::Result<std::net::SocketAddr> {
        match self.socket() {
            Some(socket) => ip_addr(socket),
            None => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "this listener lends no socket",
            )),
        }
    }

    /// Every listening socket, for a listener made of several
    /// ([`Listeners`](crate::Listeners), [`EitherListener`](crate::EitherListener)):
    /// the stop refuses new attempts on each while it drains (B1). The
    /// order must not change. Defaults to [`socket`](Accept::socket).
    fn sockets(&self) -> Vec<BorrowedSocket<'_>> {
        self.socket().into_iter().collect()
    }

    /// Accepts a connection the kernel has already queued, without waiting:
    /// `None` when the queue is empty. For the accept-queue drain at the
    /// stop (B1), so it must ask the kernel: a listener whose runtime caches
    /// readiness (tokio) overrides this, since its `poll_accept` may answer
    /// `Pending` before the runtime has seen the connection arrive.
    fn accept_queued(&mut self) -> Option<io::Result<Accepted<Self::Io>>> {
        let mut cx = Context::from_waker(futures_util::task::noop_waker_ref());
        match self.poll_accept(&mut cx) {
            Poll::Ready(accepted) => Some(accepted),
            Poll::Pending => None,
        }
    }
}

/// The IP address a listening socket is bound to.
pub(crate) fn ip_addr(socket: BorrowedSocket<'_>) -> io::Result<std::net::SocketAddr> {
    socket2::SockRef::from(&socket)
        .local_addr()?
        .as_socket()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not an IP socket"))
}
