//! Drives one hyper connection and applies what the drain commands.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use hyper_util::server::graceful::GracefulConnection;
use stoppable_core::Progress;

use crate::conn_error::{ConnStage, Reporter};
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
    /// What the core last heard from this driver.
    synced: Progress,
    reporter: Reporter,
}

impl<C> ConnDriver<C> {
    pub(crate) fn new(
        conn: C,
        slot: Arc<ConnSlot>,
        shared: Arc<Shared>,
        reporter: Reporter,
    ) -> Self {
        slot.set_driven(true);
        ConnDriver {
            conn: Some(Box::pin(conn)),
            slot,
            shared,
            shutdown_sent: false,
            waker: None,
            synced: Progress::default(),
            reporter,
        }
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

    /// The order to carry out: a `Close` whose request came meanwhile is
    /// declined, and the connection finished as for a shutdown (B4).
    fn command(&self) -> Command {
        match self.slot.command() {
            Command::Close if self.slot.close_declined() => Command::Shutdown,
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
        let orders = this.shared.finishing() || this.slot.command() != Command::None;
        this.slot
            .register_cached(&mut this.waker, cx.waker(), orders);
        loop {
            let command = this.command();
            if command == Command::Shutdown && !this.shutdown_sent {
                // hyper would close an idle connection without reading what
                // the client already sent: look first.
                this.slot.note_unread_bytes();
            }
            let may_shut_down = this.may_shut_down();
            let Some(conn) = this.conn.as_mut() else {
                return Poll::Ready(());
            };
            match command {
                Command::Close | Command::Cut => {
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
                Command::Shutdown if !this.shutdown_sent && may_shut_down => {
                    conn.as_mut().graceful_shutdown();
                    this.shutdown_sent = true;
                    if this.slot.is_http2() {
                        this.slot.mark_goaway_sent();
                    }
                }
                _ => {}
            }
            // Errors are mostly the peer's doing (reset, malformed request):
            // told to the user, and the connection simply ends (B8).
            if let Poll::Ready(result) = conn.as_mut().poll(cx) {
                if let Err(e) = result {
                    this.reporter.report(ConnStage::Http, e.into());
                }
                return this.end();
            }
            if !this.shared.is_draining() {
                return Poll::Pending;
            }
            let progress = this.slot.progress();
            if progress != this.synced {
                this.synced = progress;
                this.shared.sync(&this.slot);
            }
            let can_act = match this.command() {
                Command::Close | Command::Cut => true,
                Command::Shutdown => !this.shutdown_sent && this.may_shut_down(),
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
