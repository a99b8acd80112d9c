//! A step between the TCP accept and HTTP, such as a TLS handshake: the
//! connection is tracked from the accept, so a handshake under way at the
//! stop gets the first-request window to finish and send its request (B4).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use crate::conn_error::{ConnStage, Reporter};
use crate::conn_socket::{self, ConnSocket};
use crate::shared::Shared;
use crate::slot::{Command, ConnSlot};
use crate::tracker::Tracked;

/// What a [`Server`](crate::Server) does with a connection before HTTP:
/// nothing ([`Plain`]) or a handshake (TLS: `stoppable_tokio::TlsAcceptor`,
/// `stoppable::rt::TlsAcceptor`).
pub trait Handshake<Io>: Send + 'static {
    /// The IO that HTTP is served over once the handshake is done.
    type Io: hyper::rt::Read + hyper::rt::Write + ConnSocket + Send + Unpin + 'static;
    /// The handshake; it runs in the connection's own task.
    type Future: Future<Output = io::Result<Self::Io>> + Send + 'static;

    /// Begins the handshake of a connection just accepted.
    fn start(&self, io: Io) -> Started<Self::Io, Self::Future>;
}

/// How a handshake began.
#[derive(Debug)]
#[non_exhaustive]
pub enum Started<Io, F> {
    /// No handshake: serve `Io` at once.
    Done(Io),
    /// Serve the IO this future gives, once it gives one.
    Running(F),
}

/// No handshake: HTTP straight over TCP.
#[derive(Clone, Copy, Debug, Default)]
pub struct Plain;

impl<Io> Handshake<Io> for Plain
where
    Io: hyper::rt::Read + hyper::rt::Write + ConnSocket + Send + Unpin + 'static,
{
    type Io = Io;
    type Future = std::future::Ready<io::Result<Io>>;

    fn start(&self, io: Io) -> Started<Io, Self::Future> {
        Started::Done(io)
    }
}

/// A tracked connection whose handshake is under way; resolves to the
/// [`Tracked`] connection to serve, or to `None` when the handshake failed
/// or the drain closed the connection first (its first-request window
/// ended, or the grace did). Either way the drain hears of the close.
pub struct Handshaking<F> {
    /// Owns the socket, and may close it at any time: the slot learns of
    /// the socket from the IO it gives.
    handshake: Option<Pin<Box<F>>>,
    /// `None` once resolved.
    slot: Option<Arc<ConnSlot>>,
    shared: Arc<Shared>,
    reporter: Reporter,
    /// The handshake fails when this resolves ([`Options::handshake_timeout`]).
    ///
    /// [`Options::handshake_timeout`]: crate::Options::handshake_timeout
    deadline: Option<Deadline>,
    /// Handed to the connection: its first request's deadline, from the
    /// accept ([`Options::first_request_timeout`](crate::Options::first_request_timeout)).
    first_request: Option<Deadline>,
}

/// A handshake's deadline: the runtime's sleep, and its length for the error.
pub(crate) type Deadline = (
    Pin<Box<dyn Future<Output = ()> + Send>>,
    std::time::Duration,
);

impl<F> Handshaking<F> {
    pub(crate) fn new(
        handshake: F,
        slot: Arc<ConnSlot>,
        shared: Arc<Shared>,
        reporter: Reporter,
        deadline: Option<Deadline>,
        first_request: Option<Deadline>,
    ) -> Self {
        slot.set_driven(true);
        Handshaking {
            handshake: Some(Box::pin(handshake)),
            slot: Some(slot),
            shared,
            reporter,
            deadline,
            first_request,
        }
    }

    /// The peer's address, for the errors told to
    /// [`Tracker::on_connection_error`](crate::Tracker::on_connection_error).
    pub fn remote_addr(mut self, addr: Option<std::net::SocketAddr>) -> Self {
        self.reporter.remote_addr = addr;
        self
    }

    /// Drops the handshake (closing its socket), then tells the drain.
    fn close(&mut self) {
        self.handshake = None;
        if let Some(slot) = self.slot.take() {
            slot.set_driven(false);
            self.shared.closed(&slot);
        }
    }
}

impl<F, Io> Future for Handshaking<F>
where
    F: Future<Output = io::Result<Io>>,
    Io: hyper::rt::Write + ConnSocket + Unpin,
{
    type Output = Option<Tracked<Io>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let (Some(slot), Some(handshake)) = (&this.slot, this.handshake.as_mut()) else {
            return Poll::Ready(None);
        };
        slot.register(cx.waker());
        if slot.command() >= Command::CloseIdle {
            this.close();
            return Poll::Ready(None);
        }
        match handshake.as_mut().poll(cx) {
            Poll::Pending => {
                // Its own deadline, or the first request's (which runs from
                // the accept too): whichever comes first ends it.
                let due = [&mut this.deadline, &mut this.first_request]
                    .into_iter()
                    .flatten()
                    .find_map(|(sleep, timeout)| {
                        sleep.as_mut().poll(cx).is_ready().then_some(*timeout)
                    });
                let Some(timeout) = due else {
                    return Poll::Pending;
                };
                let message = format!("the handshake took longer than {timeout:?}");
                let error = io::Error::new(io::ErrorKind::TimedOut, message);
                this.reporter.report(ConnStage::Handshake, error.into());
                this.close();
                Poll::Ready(None)
            }
            Poll::Ready(Err(e)) => {
                this.reporter.report(ConnStage::Handshake, e.into());
                this.close();
                Poll::Ready(None)
            }
            Poll::Ready(Ok(io)) => {
                this.handshake = None;
                let slot = this.slot.take().expect("checked above");
                slot.set_socket(conn_socket::handle_of(&io));
                slot.set_driven(false);
                let reporter = std::mem::take(&mut this.reporter);
                let first_request = this.first_request.take();
                let shared = this.shared.clone();
                Poll::Ready(Some(Tracked::new(
                    io,
                    slot,
                    shared,
                    reporter,
                    first_request,
                )))
            }
        }
    }
}

impl<F> Drop for Handshaking<F> {
    fn drop(&mut self) {
        self.close();
    }
}
