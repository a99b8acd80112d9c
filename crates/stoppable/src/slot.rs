//! The shared memory of one connection: written by its own tasks only, so
//! the per-request path touches no cache line that other connections write.

use std::sync::atomic::Ordering::{Acquire, Relaxed, Release, SeqCst};
use std::task::Waker;

use event_listener::Event;
// Under `--cfg loom` the same code runs on loom's primitives, so that the
// model checker explores every interleaving (see `loom/` at the root).
#[cfg(not(loom))]
use futures_util::task::AtomicWaker;
#[cfg(loom)]
use loom::future::AtomicWaker;
#[cfg(loom)]
use loom::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8};
#[cfg(loom)]
use loom::sync::Mutex;
#[cfg(not(loom))]
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8};
#[cfg(not(loom))]
use std::sync::Mutex;
use stoppable_core::{ConnId, Progress};

use crate::socket::{self, RawSocket};

/// What the drain asks of a connection's driver. Orders only rise.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Command {
    None = 0,
    /// Finish the current work, then close (hyper's graceful shutdown).
    Finish = 1,
    /// Close, politely, unless a request came since the core decided (see
    /// [`ConnSlot::close_declined`]): then finish it, as for `Finish`.
    CloseIdle = 2,
    /// Close now (the grace is over, a head is late): politely if the
    /// driver can at once, else the socket is shut down from outside.
    Cut = 3,
}

pub(crate) struct ConnSlot {
    pub(crate) id: ConnId,
    started: AtomicU64,
    finished: AtomicU64,
    arrived: AtomicU64,
    upgraded: AtomicBool,
    http2: AtomicBool,
    /// HTTP/1: the request in flight has no body, so bytes read now begin
    /// the next head (pipelining, B4, B6).
    next_head_may_begin: AtomicBool,
    /// HTTP/1: the last read did not end at a head's end: it may hold the
    /// start of a head after the one just parsed.
    read_tail: AtomicBool,
    /// A driver of ours (`ConnDriver`, `Handshaking`) owns the IO and
    /// carries out a close order itself: politely (GOAWAY, close_notify,
    /// FIN). Without one (raw, upgraded), a cut shuts the socket down.
    driven: AtomicBool,
    /// HTTP/2: a GOAWAY went out.
    goaway_sent: AtomicBool,
    /// Its responses say `Connection: close`, and hyper closes it after
    /// the next one: the drain began (B6), clients move on, or an HTTP/1
    /// connection is past its maximum age (B23). An idle one is not closed
    /// for it: a request may be on its way.
    says_close: AtomicBool,
    /// Tracked through `Tracker::track_raw` (B20): bytes are work only once
    /// its owner says so.
    raw: AtomicBool,
    /// Its driver closed it for a limit of its own (a timeout while
    /// serving): its work, if any, counts cut (`ConnEvent::Cut`).
    cut_by_driver: AtomicBool,
    /// A write or flush could not complete: the client is not taking a
    /// response that hyper holds whole, so the connection still has work
    /// (B9, B11). Cleared by the next complete flush.
    output_blocked: AtomicBool,
    /// HTTP/2: the responses under way on the wire (`WireStreams`). More
    /// than the requests in flight: a response that ended in hyper's hands
    /// still waits in h2's send queue, for the client (B5, B9).
    wire_streams: AtomicU32,
    command: AtomicU8,
    /// `arrived` as the core saw it when it decided a `CloseIdle`.
    close_unless: AtomicU64,
    /// The driver's waker (one task).
    waker: AtomicWaker,
    /// Raw connections' `Closing` futures, any number of them.
    closing: Event,
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
            next_head_may_begin: AtomicBool::new(false),
            read_tail: AtomicBool::new(false),
            driven: AtomicBool::new(false),
            goaway_sent: AtomicBool::new(false),
            says_close: AtomicBool::new(false),
            raw: AtomicBool::new(false),
            cut_by_driver: AtomicBool::new(false),
            output_blocked: AtomicBool::new(false),
            wire_streams: AtomicU32::new(0),
            command: AtomicU8::new(Command::None as u8),
            close_unless: AtomicU64::new(0),
            waker: AtomicWaker::new(),
            closing: Event::new(),
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
            output_blocked: self.output_blocked.load(Relaxed)
                || u64::from(self.wire_streams.load(Relaxed)) > started.saturating_sub(finished),
            http2: self.http2.load(Relaxed),
        }
    }

    /// Bytes arrived. With no request in flight, or behind one that has no
    /// body, they begin the next request: an HTTP/1 head, or on HTTP/2
    /// frames that may open a stream (B4).
    #[inline]
    pub(crate) fn bytes_arrived(&self) {
        let started = self.started.load(Relaxed);
        let idle = self.finished.load(Relaxed) == started;
        if (idle || self.next_head_may_begin.load(Relaxed)) && self.arrived.load(Relaxed) <= started
        {
            // A maximum: the driver and a look from the stop may race.
            self.arrived.fetch_max(started + 1, Relaxed);
        }
    }

    /// HTTP/1: whether the last read stopped short of a head's end.
    #[inline]
    pub(crate) fn note_read_tail(&self, mid_head: bool) {
        if self.read_tail.load(Relaxed) != mid_head {
            self.read_tail.store(mid_head, Relaxed);
        }
    }

    /// A request head is being read and no request accounts for it yet.
    #[inline]
    pub(crate) fn is_reading(&self) -> bool {
        self.arrived.load(Relaxed) > self.started.load(Relaxed)
    }

    /// The connection speaks HTTP/2: hyper's graceful shutdown (GOAWAY) is
    /// safe at any time, with no head to protect.
    #[inline]
    pub(crate) fn mark_http2(&self) {
        self.http2.store(true, Relaxed);
    }

    /// A request starts; `body_less` for an HTTP/1 one with no body, after
    /// which any byte read begins the next head. If the read that brought
    /// its head went on past it, the next head has begun already.
    #[inline]
    pub(crate) fn request_started(&self, body_less: bool) {
        let started = self.started.fetch_add(1, Relaxed) + 1;
        if self.next_head_may_begin.load(Relaxed) != body_less {
            self.next_head_may_begin.store(body_less, Relaxed);
        }
        if body_less && self.read_tail.load(Relaxed) {
            self.arrived.fetch_max(started + 1, Relaxed);
        }
    }

    #[inline]
    pub(crate) fn request_finished(&self) {
        self.finished.fetch_add(1, Release);
    }

    /// A write or flush could not complete.
    #[inline]
    pub(crate) fn mark_output_blocked(&self) {
        self.output_blocked.store(true, Relaxed);
    }

    /// HTTP/2: how many responses are under way on the wire now.
    #[inline]
    pub(crate) fn set_wire_streams(&self, open: u32) {
        self.wire_streams.store(open, Relaxed);
    }

    /// Everything written is flushed: one load, a store only after a block.
    #[inline]
    pub(crate) fn output_flushed(&self) {
        if self.output_blocked.load(Relaxed) {
            self.output_blocked.store(false, Relaxed);
        }
    }

    pub(crate) fn mark_upgraded(&self) {
        self.upgraded.store(true, Relaxed);
    }

    #[inline]
    pub(crate) fn is_http2(&self) -> bool {
        self.http2.load(Relaxed)
    }

    /// Past its maximum age while serving (B23). HTTP/2 and raw connections
    /// are told to finish (a GOAWAY protects what is on its way; a raw
    /// connection's owner decides between its units); an HTTP/1 connection
    /// driven by hyper only closes after its next response, never while
    /// idle, where a request may be on the wire (the keep-alive race).
    pub(crate) fn finish_for_age(&self) {
        let hyper_http1 = self.driven.load(SeqCst) && !self.is_http2();
        if hyper_http1 {
            self.says_close.store(true, Relaxed);
        } else {
            self.order(Command::Finish);
        }
    }

    /// Connections are asked to finish (the drain began, B6; or clients
    /// move on, B23): from now on its HTTP/1.1 responses say
    /// `Connection: close`. Kept here, not read from the server's state,
    /// so a response touches only its own connection's memory.
    pub(crate) fn finish_responses(&self) {
        self.says_close.store(true, Relaxed);
    }

    /// Its next response says `Connection: close`: told to finish, asked
    /// to with every connection, or aged.
    #[inline]
    pub(crate) fn closes_after_response(&self) -> bool {
        self.command() != Command::None || self.says_close.load(Relaxed)
    }

    pub(crate) fn mark_goaway_sent(&self) {
        self.goaway_sent.store(true, Relaxed);
    }

    pub(crate) fn mark_raw(&self) {
        self.raw.store(true, Relaxed);
    }

    /// The driver is closing it for a timeout of its own.
    pub(crate) fn mark_cut_by_driver(&self) {
        self.cut_by_driver.store(true, Relaxed);
    }

    pub(crate) fn was_cut_by_driver(&self) -> bool {
        self.cut_by_driver.load(Relaxed)
    }

    pub(crate) fn is_raw(&self) -> bool {
        self.raw.load(Relaxed)
    }

    /// The order (acquire: a `CloseIdle` comes with its `close_unless`).
    #[inline]
    pub(crate) fn command(&self) -> Command {
        match self.command.load(Acquire) {
            1 => Command::Finish,
            2 => Command::CloseIdle,
            3 => Command::Cut,
            _ => Command::None,
        }
    }

    /// Raises the command (never lowers it) and wakes the driver.
    pub(crate) fn order(&self, command: Command) {
        self.command.fetch_max(command as u8, SeqCst);
        self.waker.wake();
        self.closing.notify(usize::MAX);
    }

    /// Carries out the core's close of a connection with no work, as the
    /// core saw it (`arrived`): a request that comes before the driver acts
    /// makes it decline, and serve the request (B4).
    pub(crate) fn close_if_idle(&self, arrived: u64) {
        self.close_unless.store(arrived, Relaxed);
        self.order(Command::CloseIdle);
    }

    /// A `CloseIdle` its driver must not carry out: a request came (or work
    /// began) since the core decided it.
    pub(crate) fn close_declined(&self) -> bool {
        self.arrived.load(Relaxed) > self.close_unless.load(Relaxed) || self.is_busy()
    }

    /// Carries out a close that may not wait: a driver of ours closes it;
    /// unless it may first send what it must (`polite`: an HTTP/2 GOAWAY),
    /// the socket is shut down from here at once too, even if a handler owns
    /// it or blocks its task (B9, B14).
    pub(crate) fn cut(&self, polite: bool) {
        self.order(Command::Cut);
        // SeqCst against `set_driven`: a driver that just ended either saw
        // the order or is seen to have ended here.
        if !(polite && self.driven.load(SeqCst)) {
            self.shutdown_socket();
        }
    }

    /// A cut may first send a GOAWAY: an HTTP/2 connection that had none.
    pub(crate) fn cut_may_wait_for_goaway(&self) -> bool {
        self.is_http2() && !self.goaway_sent.load(Relaxed)
    }

    /// A driver of ours owns the IO (`true`), or no longer does.
    pub(crate) fn set_driven(&self, driven: bool) {
        self.driven.store(driven, SeqCst);
        if !driven && self.command.load(SeqCst) == Command::Cut as u8 {
            // Cut as it ended (an upgrade handed over): the socket may be
            // a handler's now, so shut it down from here.
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

    /// Bytes wait unread in the kernel now (or the peer closed).
    pub(crate) fn has_unread(&self) -> bool {
        self.with_socket(socket::has_unread) == Some(true)
    }

    /// Request bytes may wait in the kernel that hyper has not read: then
    /// they begin a request (B4), and the shutdown waits for its head.
    pub(crate) fn note_unread_bytes(&self) {
        if !self.is_reading() && self.has_unread() {
            self.bytes_arrived();
        }
    }

    /// The socket is ready to be shut down from outside: after a handshake,
    /// which owned it until now (so a failed one leaves no stale handle).
    pub(crate) fn set_socket(&self, socket: Option<RawSocket>) {
        *self.socket.lock().unwrap_or_else(|e| e.into_inner()) = socket;
    }

    /// The owner is about to close the socket: no shutdown from outside
    /// reaches it once this returns (one under way holds the lock, and
    /// ends first). Gives the handle, for the owner's own last shutdown.
    /// The owner calls this before running any code of the IO's, which
    /// might panic and close the socket in the unwinding.
    pub(crate) fn forget_socket(&self) -> Option<RawSocket> {
        self.socket.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    /// A request (or unit of work) is in flight.
    #[inline]
    pub(crate) fn is_busy(&self) -> bool {
        self.finished.load(Relaxed) < self.started.load(Relaxed)
    }

    /// A request began here, or the connection was upgraded.
    pub(crate) fn has_begun(&self) -> bool {
        self.started.load(Relaxed) > 0 || self.upgraded.load(Relaxed)
    }

    pub(crate) fn wake(&self) {
        self.waker.wake();
        self.closing.notify(usize::MAX);
    }

    /// Listens for the next order (or end of work) on a raw connection.
    pub(crate) fn listen(&self) -> event_listener::EventListener {
        self.closing.listen()
    }

    pub(crate) fn register(&self, waker: &Waker) {
        #[cfg(not(loom))]
        self.waker.register(waker);
        #[cfg(loom)]
        self.waker.register_by_ref(waker);
    }

    /// Registers the driver's waker, skipping it while it is the one the
    /// slot already holds (`cached`) and no order can come: nothing takes it
    /// then. Once orders can come, every order takes the stored waker
    /// (`wake`), so a driver registers on each poll, or a second order would
    /// wake nothing.
    #[inline]
    pub(crate) fn register_cached(&self, cached: &mut Option<Waker>, waker: &Waker, orders: bool) {
        let same = cached.as_ref().is_some_and(|w| w.will_wake(waker));
        if same && !orders {
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
        let mut drain = stoppable_core::Lifecycle::new(Default::default()).expect("valid");
        let id = drain.accept(std::time::Instant::now()).expect("accepting");
        let slot = ConnSlot::new(id, None);
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(count.clone());
        let mut cached = None;
        // Serving: registered once.
        slot.register_cached(&mut cached, &waker, false);
        slot.order(Command::Finish);
        assert_eq!(count.0.load(SeqCst), 1);
        // Woken, the driver polls again, in the stop now.
        slot.register_cached(&mut cached, &waker, true);
        slot.order(Command::CloseIdle);
        assert_eq!(count.0.load(SeqCst), 2, "the close woke the driver");
    }
}
