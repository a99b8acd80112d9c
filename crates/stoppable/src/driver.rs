//! Drives one hyper connection and applies what the drain commands.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use hyper_util::server::graceful::GracefulConnection;
use stoppable_core::Progress;

use crate::conn_error::{ConnStage, Reporter};
use crate::handshake::Deadline;
use crate::make::BoxError;
use crate::shared::Shared;
use crate::slot::{Command, ConnSlot};

/// A hyper connection that takes part in the stop. Resolves when the
/// connection ends; the socket closes when its [`TrackedIo`](crate::TrackedIo)
/// drops (at once, or when an upgraded handler lets go of it).
pub struct ConnDriver<C> {
    conn: Option<Pin<Box<C>>>,
    slot: Arc<ConnSlot>,
    shared: Arc<Shared>,
    shutdown_sent: bool,
    /// The waker the slot holds, so it is replaced only when it changes.
    waker: Option<Waker>,
    /// What the core last heard from this driver ([`digest`]).
    synced: u64,
    reporter: Reporter,
    /// While serving: the first request must begin by then.
    first_request: Option<Deadline>,
}

impl<C> ConnDriver<C> {
    pub(crate) fn new(
        conn: C,
        slot: Arc<ConnSlot>,
        shared: Arc<Shared>,
        reporter: Reporter,
        first_request: Option<Deadline>,
    ) -> Self {
        slot.set_driven(true);
        ConnDriver {
            conn: Some(Box::pin(conn)),
            slot,
            shared,
            shutdown_sent: false,
            waker: None,
            synced: 0,
            reporter,
            first_request,
        }
    }

    /// While serving, a connection that has begun no request by its
    /// deadline must end: a client silent since its connect, or stopped
    /// inside its first head or HTTP/2's preface, or an HTTP/2 client that
    /// opened no stream. True when it is due. A head cut so counts as cut
    /// work if a stop began (B11), and is told as an error; once the drain
    /// runs, the core bounds such connections itself (B4, B8).
    fn first_request_due(&mut self, cx: &mut Context<'_>) -> bool {
        if self.drop_first_request_if_begun() {
            return false;
        }
        if self.shared.is_draining() {
            self.first_request = None;
            return false;
        }
        let Some((sleep, timeout)) = self.first_request.as_mut() else {
            return false;
        };
        if sleep.as_mut().poll(cx).is_pending() {
            return false;
        }
        let timeout = *timeout;
        self.first_request = None;
        // A head came in part: a client that began and stopped, worth
        // telling. A silent one, or HTTP/2 with no stream, is just idle.
        if self.slot.is_reading() {
            self.slot.mark_cut_by_driver();
            let message = format!("no request began within {timeout:?} of the connect");
            let error = std::io::Error::new(std::io::ErrorKind::TimedOut, message);
            self.reporter.report(ConnStage::Http, error.into());
        }
        true
    }

    /// Once a request began (or an upgrade), the first-request timer goes:
    /// at once, not at its deadline, so an idle keep-alive connection holds
    /// no timer. True when a request began (the timer is gone then).
    fn drop_first_request_if_begun(&mut self) -> bool {
        let begun = self.slot.has_begun();
        if begun {
            self.first_request = None;
        }
        begun
    }

    /// HTTP/2's graceful shutdown (GOAWAY) is safe at any time. An HTTP/1
    /// connection is shut down only once it is idle: hyper's graceful
    /// shutdown would close one whose head is not parsed yet (B4), or drop
    /// a request pipelined behind the response in flight, when that
    /// response's head went out before the stop without saying close (B6).
    /// Until then, each response written says `Connection: close`, which
    /// ends the connection by itself.
    fn may_shut_down(&self) -> bool {
        self.slot.is_http2() || !(self.slot.is_reading() || self.slot.is_busy())
    }

    /// The order to carry out: a `CloseIdle` whose request came meanwhile is
    /// declined, and the connection finished as for a shutdown (B4).
    fn command(&self) -> Command {
        match self.slot.command() {
            Command::CloseIdle if self.slot.close_declined() => Command::Finish,
            command => command,
        }
    }

    /// The connection ends here: the IO goes with hyper's connection, or
    /// to an upgrade's handler.
    fn end(&mut self) -> Poll<()> {
        self.conn = None;
        self.slot.set_driven(false);
        Poll::Ready(())
    }
}

impl<C> ConnDriver<C>
where
    C: GracefulConnection,
    C::Error: Into<BoxError>,
{
    /// Polls hyper's connection; ready once it ended here. Inlined in
    /// `poll`, its one hot caller: 16 instructions fewer per request
    /// (`bench --exact`, tokio HTTP/1.1).
    #[inline(always)]
    fn poll_conn(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let Some(conn) = self.conn.as_mut() else {
            return Poll::Ready(());
        };
        let Poll::Ready(result) = conn.as_mut().poll(cx) else {
            return Poll::Pending;
        };
        // Errors are mostly the peer's doing (reset, malformed request):
        // told to the user, and the connection simply ends (B8).
        if let Err(e) = result {
            let e: BoxError = e.into();
            // hyper's header-read timer also ends an idle keep-alive
            // connection: that is no error (no byte of a head came).
            let timeout = e
                .downcast_ref::<hyper::Error>()
                .is_some_and(hyper::Error::is_timeout);
            if timeout && self.slot.is_reading() {
                // A head hyper cut: cut work, if a stop began (B11).
                self.slot.mark_cut_by_driver();
            }
            if !timeout || self.slot.is_reading() {
                self.reporter.report(ConnStage::Http, e);
            }
        }
        self.end()
    }
}

impl<C> Future for ConnDriver<C>
where
    C: GracefulConnection,
    C::Error: Into<BoxError>,
{
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        // Once this connection may be told to finish, each order takes the
        // waker: register it on every poll (B23's orders come before the
        // drain: to all at the stop, or to this one at its age).
        let ordered = this.slot.command() != Command::None;
        let orders = ordered || this.shared.finishing();
        this.slot
            .register_cached(&mut this.waker, cx.waker(), orders);
        if this.first_request.is_some() && this.first_request_due(cx) {
            if !this.slot.is_http2() {
                return this.end();
            }
            // HTTP/2 (or its preface begun): hyper's graceful shutdown, as
            // at a drain (B7). Its GOAWAY names the last stream only after
            // a PING's round trip, so a stream the client opens meanwhile
            // is served, not dropped; hyper closes once none is left (or at
            // once, before the protocol is known).
            if let Some(conn) = this.conn.as_mut() {
                conn.as_mut().graceful_shutdown();
                this.shutdown_sent = true;
                this.slot.mark_goaway_sent();
            }
        }
        // Serving, with no order: hyper's connection alone. The order is
        // read again after the waker's registration: one that came before
        // it took the old waker (or none), and is seen here; one after it
        // wakes the waker just registered.
        if !ordered && !this.shared.is_draining() && this.slot.command() == Command::None {
            if this.poll_conn(cx).is_ready() {
                return Poll::Ready(());
            }
            if this.first_request.is_some() {
                this.drop_first_request_if_begun();
            }
            // A drain that began during that poll hears of this connection's
            // progress now, as below.
            if !this.shared.is_draining() {
                return Poll::Pending;
            }
        }
        loop {
            let command = this.command();
            if command == Command::Finish && !this.shutdown_sent {
                // hyper would close an idle connection without reading what
                // the client already sent: look first.
                this.slot.note_unread_bytes();
            }
            let may_shut_down = this.may_shut_down();
            let Some(conn) = this.conn.as_mut() else {
                return Poll::Ready(());
            };
            match command {
                Command::CloseIdle | Command::Cut => {
                    if this.slot.is_http2() && !this.shutdown_sent {
                        // B7: never closed without a GOAWAY, sent now if the
                        // socket takes it.
                        conn.as_mut().graceful_shutdown();
                        this.slot.mark_goaway_sent();
                        let _ = conn.as_mut().poll(cx);
                    }
                    // Dropping the IO closes it: close_notify, FIN (B9).
                    return this.end();
                }
                Command::Finish if !this.shutdown_sent && may_shut_down => {
                    conn.as_mut().graceful_shutdown();
                    this.shutdown_sent = true;
                    if this.slot.is_http2() {
                        this.slot.mark_goaway_sent();
                    }
                }
                _ => {}
            }
            if this.poll_conn(cx).is_ready() {
                return Poll::Ready(());
            }
            if !this.shared.is_draining() {
                return Poll::Pending;
            }
            let progress = digest(&this.slot.progress());
            if progress != this.synced {
                this.synced = progress;
                this.shared.sync(&this.slot);
            }
            let can_act = match this.command() {
                Command::CloseIdle | Command::Cut => true,
                Command::Finish => !this.shutdown_sent && this.may_shut_down(),
                Command::None => false,
            };
            if !can_act {
                return Poll::Pending;
            }
        }
    }
}

impl<C> Drop for ConnDriver<C> {
    fn drop(&mut self) {
        let _ = self.end();
    }
}

/// What a driver keeps of the progress it last told the core: the totals
/// only grow, so their sum changes whenever one does, and the flags ride
/// in the low bits. (A whole `Progress` made tokio's task for each
/// connection a cache line, 128 bytes, larger.)
fn digest(p: &Progress) -> u64 {
    // Every field named: a new one does not compile until it is digested.
    let Progress {
        started,
        finished,
        arrived,
        upgraded,
        output_blocked,
        http2,
    } = *p;
    let totals = started.wrapping_add(finished).wrapping_add(arrived);
    (totals << 3) | u64::from(upgraded) | (u64::from(output_blocked) << 1) | (u64::from(http2) << 2)
}
