//! The shared memory of one connection: written by its own tasks only, so
//! the per-request path touches no cache line that other connections write.

use std::sync::atomic::Ordering::{Acquire, Relaxed, Release, SeqCst};
use std::task::Waker;

// Under `--cfg loom` the same code runs on loom's primitives, so that the
// model checker explores every interleaving (see `loom/` at the root).
#[cfg(not(loom))]
use futures_util::task::AtomicWaker;
#[cfg(loom)]
use loom::future::AtomicWaker;
#[cfg(loom)]
use loom::sync::atomic::{AtomicBool, AtomicU64, AtomicU8};
#[cfg(loom)]
use loom::sync::{Mutex, MutexGuard};
#[cfg(not(loom))]
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8};
#[cfg(not(loom))]
use std::sync::{Mutex, MutexGuard};
use stoppable_core::{ConnId, Progress};

use crate::socket::{self, RawSocket};

/// What the drain asks of a connection's driver.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Command {
    None = 0,
    /// Finish the current work, then close (hyper's graceful shutdown).
    Shutdown = 1,
    /// Close now; the socket is already shut down.
    Close = 2,
}

pub(crate) struct ConnSlot {
    pub(crate) id: ConnId,
    started: AtomicU64,
    finished: AtomicU64,
    arrived: AtomicU64,
    upgraded: AtomicBool,
    http2: AtomicBool,
    /// A driver of ours (`ConnDriver`, `Handshaking`) owns the IO and
    /// carries out a close order itself: politely (GOAWAY, close_notify,
    /// FIN). Without one (raw, upgraded), the stop shuts the socket down.
    driven: AtomicBool,
    /// A write or flush could not complete: the client is not taking a
    /// response that hyper holds whole, so the connection still has work
    /// (B9, B11). Cleared by the next complete flush.
    output_blocked: AtomicBool,
    command: AtomicU8,
    waker: AtomicWaker,
    /// The socket, while its owner keeps it open; the lock orders a force
    /// close from outside against the owner closing it.
    socket: Mutex<Option<RawSocket>>,
}

impl ConnSlot {
    pub(crate) fn new(id: ConnId, socket: Option<RawSocket>) -> Self {
        ConnSlot {
            id,
            started: AtomicU64::new(0),
            finished: AtomicU64::new(0),
            arrived: AtomicU64::new(0),
            upgraded: AtomicBool::new(false),
            http2: AtomicBool::new(false),
            driven: AtomicBool::new(false),
            output_blocked: AtomicBool::new(false),
            command: AtomicU8::new(Command::None as u8),
            waker: AtomicWaker::new(),
            socket: Mutex::new(socket),
        }
    }

    pub(crate) fn progress(&self) -> Progress {
        // Finished before started, with acquire against the release of
        // `request_finished`: a snapshot that sees a request finished also
        // sees it started, so it never shows more finished than started.
        let finished = self.finished.load(Acquire);
        let started = self.started.load(Relaxed);
        Progress {
            started,
            finished,
            arrived: self.arrived.load(Relaxed),
            upgraded: self.upgraded.load(Relaxed),
            output_blocked: self.output_blocked.load(Relaxed),
            http2: self.http2.load(Relaxed),
        }
    }

    /// Bytes arrived. If no request is in flight they begin the next one:
    /// an HTTP/1 head, or on HTTP/2 frames that may open a stream (B4).
    pub(crate) fn bytes_arrived(&self) {
        let started = self.started.load(Relaxed);
        if self.arrived.load(Relaxed) <= started && self.finished.load(Relaxed) == started {
            self.arrived.store(started + 1, Relaxed);
        }
    }

    /// A request head is being read and no request accounts for it yet.
    pub(crate) fn is_reading(&self) -> bool {
        self.arrived.load(Relaxed) > self.started.load(Relaxed)
    }

    /// The connection speaks HTTP/2: hyper's graceful shutdown (GOAWAY) is
    /// safe at any time, with no head to protect.
    pub(crate) fn mark_http2(&self) {
        self.http2.store(true, Relaxed);
    }

    pub(crate) fn request_started(&self) {
        self.started.fetch_add(1, Relaxed);
    }

    pub(crate) fn request_finished(&self) {
        self.finished.fetch_add(1, Release);
    }

    /// A write or flush could not complete.
    pub(crate) fn mark_output_blocked(&self) {
        self.output_blocked.store(true, Relaxed);
    }

    /// Everything written is flushed: one load, a store only after a block.
    pub(crate) fn output_flushed(&self) {
        if self.output_blocked.load(Relaxed) {
            self.output_blocked.store(false, Relaxed);
        }
    }

    pub(crate) fn mark_upgraded(&self) {
        self.upgraded.store(true, Relaxed);
    }

    pub(crate) fn is_http2(&self) -> bool {
        self.http2.load(Relaxed)
    }

    pub(crate) fn command(&self) -> Command {
        match self.command.load(Relaxed) {
            1 => Command::Shutdown,
            2 => Command::Close,
            _ => Command::None,
        }
    }

    /// Raises the command (never lowers it) and wakes the driver.
    pub(crate) fn order(&self, command: Command) {
        self.command.fetch_max(command as u8, SeqCst);
        self.waker.wake();
    }

    /// Carries out the core's close (and force-close): a driver of ours
    /// closes politely; without one, the socket is shut down from here,
    /// even if a handler owns it (B9, B14).
    pub(crate) fn close(&self) {
        self.order(Command::Close);
        // SeqCst against `set_driven`: a driver that just ended either saw
        // the order or is seen to have ended here.
        if !self.driven.load(SeqCst) {
            self.shutdown_socket();
        }
    }

    /// A driver of ours owns the IO (`true`), or no longer does.
    pub(crate) fn set_driven(&self, driven: bool) {
        self.driven.store(driven, SeqCst);
        if !driven && self.command.load(SeqCst) == Command::Close as u8 {
            // Ordered to close as it ended (an upgrade handed over): the
            // socket is now the handler's, so shut it down from here.
            self.shutdown_socket();
        }
    }

    /// Shuts the socket down in both directions (a FIN goes out first), so a
    /// handler's pending read ends even when it owns the socket (B9, B14).
    pub(crate) fn shutdown_socket(&self) {
        self.with_socket(socket::shutdown);
    }

    /// Runs `f` on the socket unless its owner has closed it: the slot's
    /// lock keeps the owner from closing it meanwhile.
    pub(crate) fn with_socket<T>(&self, f: impl FnOnce(RawSocket) -> T) -> Option<T> {
        let socket = self.socket.lock().unwrap_or_else(|e| e.into_inner());
        socket.map(f)
    }

    /// Request bytes may wait in the kernel that hyper has not read: then
    /// they begin a request (B4), and the shutdown waits for its head.
    pub(crate) fn note_unread_bytes(&self) {
        if !self.is_reading() && self.with_socket(socket::has_unread) == Some(true) {
            self.bytes_arrived();
        }
    }

    /// The socket is ready to be shut down from outside: after a handshake,
    /// which owned it until now (so a failed one leaves no stale handle).
    pub(crate) fn set_socket(&self, socket: Option<RawSocket>) {
        *self.socket.lock().unwrap_or_else(|e| e.into_inner()) = socket;
    }

    /// The owner is about to close the socket: no shutdown from outside may
    /// reach it after. Gives the lock, to hold until the socket is closed,
    /// and the socket, for the owner's own last shutdown.
    pub(crate) fn forget_socket(&self) -> (MutexGuard<'_, Option<RawSocket>>, Option<RawSocket>) {
        let mut guard = self.socket.lock().unwrap_or_else(|e| e.into_inner());
        let socket = guard.take();
        (guard, socket)
    }

    /// A request (or unit of work) is in flight.
    pub(crate) fn is_busy(&self) -> bool {
        self.finished.load(Relaxed) < self.started.load(Relaxed)
    }

    pub(crate) fn wake(&self) {
        self.waker.wake();
    }

    pub(crate) fn register(&self, waker: &Waker) {
        #[cfg(not(loom))]
        self.waker.register(waker);
        #[cfg(loom)]
        self.waker.register_by_ref(waker);
    }

    /// Registers the driver's waker, skipping it while it is the one the
    /// slot already holds (`cached`) and no stop runs: nothing takes it then.
    /// Once a stop runs, every order takes the stored waker (`wake`), so a
    /// driver registers on each poll, or a second order would wake nothing.
    pub(crate) fn register_cached(&self, cached: &mut Option<Waker>, waker: &Waker, stop: bool) {
        let same = cached.as_ref().is_some_and(|w| w.will_wake(waker));
        if same && !stop {
            return;
        }
        self.register(waker);
        if !same {
            *cached = Some(waker.clone());
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use std::sync::atomic::AtomicUsize;
    use std::sync::Arc;
    use std::task::Wake;

    use super::*;

    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, SeqCst);
        }
    }

    /// A driver that caches its waker still hears a second order: the
    /// first order's wake takes the stored waker, so once a stop runs the
    /// driver registers again on each poll. (Before, a shutdown then a
    /// close woke a driver without a socket only once, B9.)
    #[test]
    fn a_second_order_wakes_a_driver_that_caches_its_waker() {
        let mut drain = stoppable_core::Drain::new(Default::default()).expect("valid");
        let id = drain.accept(std::time::Instant::now()).expect("accepting");
        let slot = ConnSlot::new(id, None);
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(count.clone());
        let mut cached = None;
        // Serving: registered once.
        slot.register_cached(&mut cached, &waker, false);
        slot.order(Command::Shutdown);
        assert_eq!(count.0.load(SeqCst), 1);
        // Woken, the driver polls again, in the stop now.
        slot.register_cached(&mut cached, &waker, true);
        slot.order(Command::Close);
        assert_eq!(count.0.load(SeqCst), 2, "the close woke the driver");
    }
}
