//! Several listeners under one stop (B1, B22): TCP and Unix domain sockets
//! together, or many of one kind. Each is polled in turn, so none starves;
//! at the stop each socket is drained as B1 says, and the stop completes
//! once all are closed.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll};

use hyper::rt::{Read, ReadBufCursor, Write};

use crate::runtime::{Accept, Accepted};
use crate::socket::BorrowedSocket;

/// Several listeners of one kind, as one (`Vec<A>` converts into it).
#[derive(Debug)]
pub struct Listeners<A> {
    all: Vec<A>,
    /// Where the next poll starts: each gets its turn first.
    next: usize,
}

impl<A> From<Vec<A>> for Listeners<A> {
    fn from(all: Vec<A>) -> Self {
        Listeners { all, next: 0 }
    }
}

impl<A> Listeners<A> {
    /// The listeners, in the order given.
    pub fn get_ref(&self) -> &[A] {
        &self.all
    }
}

impl<A: Accept> Accept for Listeners<A> {
    type Io = A::Io;

    fn poll_accept(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Accepted<A::Io>>> {
        let n = self.all.len();
        for k in 0..n {
            let i = (self.next + k) % n;
            if let Poll::Ready(accepted) = self.all[i].poll_accept(cx) {
                self.next = (i + 1) % n;
                return Poll::Ready(accepted);
            }
        }
        Poll::Pending
    }

    fn sockets(&self) -> Vec<BorrowedSocket<'_>> {
        self.all.iter().flat_map(Accept::sockets).collect()
    }

    fn shared(&self) -> bool {
        !self.all.is_empty() && self.all.iter().all(Accept::shared)
    }

    /// The first IP listener's.
    fn local_addr(&self) -> io::Result<std::net::SocketAddr> {
        let mut first_error = None;
        for listener in &self.all {
            match listener.local_addr() {
                Ok(addr) => return Ok(addr),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        Err(first_error.unwrap_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no listener")))
    }

    fn accept_queued(&mut self) -> Option<io::Result<Accepted<A::Io>>> {
        // In turn too, so that a busy first queue cannot use up the drain's
        // cap before the others are served.
        let n = self.all.len();
        for k in 0..n {
            let i = (self.next + k) % n;
            if let Some(accepted) = self.all[i].accept_queued() {
                self.next = (i + 1) % n;
                return Some(accepted);
            }
        }
        None
    }
}

/// A listener that may be absent (`None` accepts nothing): for a pair
/// whose second listener is optional.
impl<A: Accept> Accept for Option<A> {
    type Io = A::Io;

    fn poll_accept(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Accepted<A::Io>>> {
        match self {
            Some(listener) => listener.poll_accept(cx),
            None => Poll::Pending,
        }
    }

    fn sockets(&self) -> Vec<BorrowedSocket<'_>> {
        self.as_ref().map(Accept::sockets).unwrap_or_default()
    }

    /// An absent listener holds nothing to drain.
    fn shared(&self) -> bool {
        self.as_ref().is_none_or(Accept::shared)
    }

    fn local_addr(&self) -> io::Result<std::net::SocketAddr> {
        match self {
            Some(listener) => listener.local_addr(),
            None => Err(io::Error::new(io::ErrorKind::NotFound, "no listener")),
        }
    }

    fn accept_queued(&mut self) -> Option<io::Result<Accepted<A::Io>>> {
        self.as_mut()?.accept_queued()
    }
}

/// Two listeners of two kinds (TCP and Unix, say), as one; a pair `(A, B)`
/// converts into it. Its connections are [`EitherIo`].
#[derive(Debug)]
pub struct EitherListener<A, B> {
    left: A,
    right: B,
    /// The right one is polled first next time.
    right_first: bool,
}

impl<A, B> From<(A, B)> for EitherListener<A, B> {
    fn from((left, right): (A, B)) -> Self {
        EitherListener {
            left,
            right,
            right_first: false,
        }
    }
}

impl<A, B> EitherListener<A, B> {
    /// The two listeners.
    pub fn get_ref(&self) -> (&A, &B) {
        (&self.left, &self.right)
    }
}

/// What an [`EitherListener`] accepts.
type EitherAccepted<A, B> = io::Result<Accepted<EitherIo<<A as Accept>::Io, <B as Accept>::Io>>>;

impl<A: Accept, B: Accept> EitherListener<A, B> {
    fn poll_left(&mut self, cx: &mut Context<'_>) -> Poll<EitherAccepted<A, B>> {
        self.left
            .poll_accept(cx)
            .map(|r| r.map(|a| a.map_io(EitherIo::Left)))
    }

    fn poll_right(&mut self, cx: &mut Context<'_>) -> Poll<EitherAccepted<A, B>> {
        self.right
            .poll_accept(cx)
            .map(|r| r.map(|a| a.map_io(EitherIo::Right)))
    }
}

impl<A: Accept, B: Accept> Accept for EitherListener<A, B> {
    type Io = EitherIo<A::Io, B::Io>;

    fn poll_accept(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Accepted<Self::Io>>> {
        self.right_first = !self.right_first;
        if self.right_first {
            match self.poll_right(cx) {
                Poll::Pending => self.poll_left(cx),
                ready => ready,
            }
        } else {
            match self.poll_left(cx) {
                Poll::Pending => self.poll_right(cx),
                ready => ready,
            }
        }
    }

    fn sockets(&self) -> Vec<BorrowedSocket<'_>> {
        let mut all = self.left.sockets();
        all.extend(self.right.sockets());
        all
    }

    fn shared(&self) -> bool {
        self.left.shared() && self.right.shared()
    }

    /// The first one's, else the second one's.
    fn local_addr(&self) -> io::Result<std::net::SocketAddr> {
        self.left.local_addr().or_else(|_| self.right.local_addr())
    }

    fn accept_queued(&mut self) -> Option<io::Result<Accepted<Self::Io>>> {
        // In turn too (see `Listeners`).
        self.right_first = !self.right_first;
        let left = |this: &mut Self| {
            let accepted = this.left.accept_queued()?;
            Some(accepted.map(|a| a.map_io(EitherIo::Left)))
        };
        let right = |this: &mut Self| {
            let accepted = this.right.accept_queued()?;
            Some(accepted.map(|a| a.map_io(EitherIo::Right)))
        };
        if self.right_first {
            right(self).or_else(|| left(self))
        } else {
            left(self).or_else(|| right(self))
        }
    }
}

impl<Io> Accepted<Io> {
    /// The same connection, its IO wrapped.
    pub fn map_io<T>(self, f: impl FnOnce(Io) -> T) -> Accepted<T> {
        Accepted {
            io: f(self.io),
            remote_addr: self.remote_addr,
        }
    }
}

/// A connection from one of two kinds of listener.
#[derive(Debug)]
pub enum EitherIo<A, B> {
    /// From the first listener.
    Left(A),
    /// From the second.
    Right(B),
}

impl<A: Read + Unpin, B: Read + Unpin> Read for EitherIo<A, B> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            EitherIo::Left(io) => Pin::new(io).poll_read(cx, buf),
            EitherIo::Right(io) => Pin::new(io).poll_read(cx, buf),
        }
    }
}

impl<A: Write + Unpin, B: Write + Unpin> Write for EitherIo<A, B> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            EitherIo::Left(io) => Pin::new(io).poll_write(cx, buf),
            EitherIo::Right(io) => Pin::new(io).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            EitherIo::Left(io) => Pin::new(io).poll_write_vectored(cx, bufs),
            EitherIo::Right(io) => Pin::new(io).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            EitherIo::Left(io) => io.is_write_vectored(),
            EitherIo::Right(io) => io.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            EitherIo::Left(io) => Pin::new(io).poll_flush(cx),
            EitherIo::Right(io) => Pin::new(io).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            EitherIo::Left(io) => Pin::new(io).poll_shutdown(cx),
            EitherIo::Right(io) => Pin::new(io).poll_shutdown(cx),
        }
    }
}
