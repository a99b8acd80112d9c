//! The state one server shares between its accept task, its connection
//! tasks, its stoppers and the stop's timer task. The lock is taken on
//! accept, on close, at the stop and during a drain, never per request
//! while serving.
//!
//! Every decision of the core goes through one funnel ([`Shared::decide`]):
//! under the lock the core decides, reading each connection it decides
//! about through the slots ([`ConnTable`]), so never on an earlier snapshot
//! (B21); then what it decided is carried out, still under the lock.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::Waker;

// Under `--cfg loom` the lock and the flags are loom's (see `loom/`).
#[cfg(loom)]
use loom::sync::{atomic::AtomicBool, Mutex, MutexGuard};
#[cfg(not(loom))]
use std::sync::{atomic::AtomicBool, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use event_listener::Event;
use stoppable_core::{Action, Config, ConfigError, ConnEvent, Counts, Lifecycle, Phase, Report};

use crate::conn_table::ConnTable;
use crate::slot::{Command, ConnSlot};
use crate::socket::RawSocket;

/// Starts the timer task on the server's runtime.
pub(crate) type SpawnTimers = Box<dyn Fn(&Arc<Shared>) + Send + Sync>;
/// The runtime's clock ([`Runtime::now`](crate::Runtime::now)): the one
/// its sleeps run on, virtual or not.
pub(crate) type Clock = Box<dyn Fn() -> Instant + Send + Sync>;

pub(crate) struct Shared {
    /// Set when the drain begins: the one relaxed load on the hot path (B15).
    draining: AtomicBool,
    /// Requests carry a `DrainSignal` (fixed once serving starts).
    pub(crate) signal_in_requests: AtomicBool,
    /// Connections are being asked to finish: from the drain's start (B6),
    /// or from the stop when clients are asked to move on during the delay
    /// (B23). HTTP/1.1 responses say `Connection: close` (the one relaxed
    /// load per response), and drivers register their waker on every poll,
    /// since each order takes it.
    finishing: AtomicBool,
    /// Ask clients to move on during the delay (fixed once serving starts).
    move_on_in_delay: AtomicBool,
    /// The grace is over: every application task still running is
    /// cancelled (its `TrackedTask` resolves at its next poll).
    tasks_cut: AtomicBool,
    inner: Mutex<Inner>,
    /// Notified when the drain begins and when the stop completes.
    changed: Event,
    /// Notified when a connection closes: room under a connection limit.
    room: Event,
    spawn_timers: SpawnTimers,
    clock: Clock,
}

struct Inner {
    /// The core, with the connections' slots as what it reads. Private to
    /// this file: every call goes through [`Shared::decide`].
    core: Lifecycle<ConnTable>,
    /// Serving started (the server was polled, or a tracker made): options
    /// are fixed from then on.
    serving: bool,
    stop_accepting: bool,
    /// The listening socket has other owners: the stop leaves it to them (B22).
    listener_shared: bool,
    /// The grace a plain `stop()` uses.
    default_grace: Option<Duration>,
    /// The accept loop, to wake when it must drain its listener or resolve.
    server_waker: Option<Waker>,
    /// The timer task, to wake when the next timeout moves.
    timer_waker: Option<Waker>,
    /// The timer task runs: from the start of serving when connections
    /// have a maximum age (B23), else from the stop.
    timers_running: bool,
    /// The latest time the core was given: it never goes back, even when
    /// a clock is read from threads that see it differently (tokio's
    /// paused clock is real time outside its runtime).
    now: Instant,
}

impl Shared {
    pub(crate) fn new(
        config: Config,
        spawn_timers: SpawnTimers,
        clock: Clock,
    ) -> Result<Arc<Self>, ConfigError> {
        let core = Lifecycle::with_observer(config, ConnTable::default())?;
        let now = clock();
        Ok(Arc::new(Shared {
            draining: AtomicBool::new(false),
            signal_in_requests: AtomicBool::new(false),
            finishing: AtomicBool::new(false),
            move_on_in_delay: AtomicBool::new(false),
            tasks_cut: AtomicBool::new(false),
            inner: Mutex::new(Inner {
                core,
                serving: false,
                stop_accepting: false,
                listener_shared: false,
                default_grace: None,
                server_waker: None,
                timer_waker: None,
                timers_running: false,
                now,
            }),
            changed: Event::new(),
            room: Event::new(),
            spawn_timers,
            clock,
        }))
    }

    #[inline]
    pub(crate) fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic elsewhere must not make every later stop panic too.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn listen(&self) -> event_listener::EventListener {
        self.changed.listen()
    }

    /// The funnel: the core decides (reading the connections it decides
    /// about as they are now), then its actions are carried out, all under
    /// one lock; the timer task hears if its next timeout moved.
    fn decide<T>(&self, f: impl FnOnce(&mut Inner, Instant) -> T) -> T {
        let mut inner = self.lock();
        let now = (self.clock)().max(inner.now);
        inner.now = now;
        let before = inner.core.poll_timeout();
        let out = f(&mut inner, now);
        self.run_actions(&mut inner);
        if inner.core.poll_timeout() != before {
            wake(&inner.timer_waker);
        }
        out
    }

    /// Installs the options before serving, so that even a stop that comes
    /// before the first poll honours them. Ignored once serving started or
    /// a stop began; bad options wait for [`start`](Shared::start).
    pub(crate) fn configure(
        &self,
        config: Config,
        grace: Option<Duration>,
        signal: bool,
        move_on: bool,
    ) {
        let mut inner = self.lock();
        if inner.serving || inner.core.phase() != Phase::Serving {
            return;
        }
        if let Ok(mut core) = Lifecycle::with_observer(config, ConnTable::default()) {
            std::mem::swap(core.observer_mut(), inner.core.observer_mut());
            // Tasks tracked before serving (B24) are still running.
            for _ in 0..inner.core.counts().tasks {
                let _ = core.task_started();
            }
            inner.core = core;
        }
        inner.default_grace = grace;
        self.signal_in_requests.store(signal, Ordering::Relaxed);
        self.move_on_in_delay.store(move_on, Ordering::Relaxed);
    }

    /// Serving starts: an error if a stop already completed (B2). With a
    /// maximum connection age the timer task starts now (B23).
    pub(crate) fn start(self: &Arc<Self>) -> Result<(), crate::Error> {
        let spawn = {
            let mut inner = self.lock();
            if inner.core.report().is_some() {
                return Err(crate::Error::Stopped);
            }
            inner.serving = true;
            let ageing = inner.core.config().max_connection_age.is_some();
            ageing && !std::mem::replace(&mut inner.timers_running, true)
        };
        if spawn {
            (self.spawn_timers)(self);
        }
        Ok(())
    }

    /// Tracks a new connection; `None` once the server no longer accepts.
    /// Its slot is registered before the core decides about it, so the core
    /// can read it at once (after the grace, a queued request is cut:
    /// `socket` lets the core peek at it).
    ///
    /// The caller holds the IO that owns `socket`, and wraps it at once in
    /// the owner that forgets the handle before dropping it; should this
    /// panic first (in a waker), the unwinding drops that IO, so the slot
    /// forgets the handle then.
    pub(crate) fn accept(&self, socket: Option<RawSocket>) -> Option<Arc<ConnSlot>> {
        struct ForgetOnPanic(Option<Arc<ConnSlot>>);
        impl Drop for ForgetOnPanic {
            fn drop(&mut self) {
                if let (Some(slot), true) = (&self.0, std::thread::panicking()) {
                    slot.forget_socket();
                }
            }
        }
        let mut made = ForgetOnPanic(None);
        let accepted = self.decide(|inner, now| {
            let slot = Arc::new(ConnSlot::new(inner.core.next_id(), socket));
            made.0 = Some(slot.clone());
            if self.finishing() {
                slot.finish_responses();
            }
            inner.core.observer_mut().insert(slot.clone());
            match inner.core.accept(now) {
                Ok(id) if id == slot.id => Some(slot),
                _ => {
                    inner.core.observer_mut().remove(slot.id);
                    None
                }
            }
        });
        made.0 = None;
        accepted
    }

    /// Tells the core what a connection did since it last heard.
    pub(crate) fn sync(&self, slot: &ConnSlot) {
        self.decide(|inner, now| {
            let progress = ConnEvent::Progress(slot.progress());
            let _ = inner.core.handle(slot.id, progress, now);
        });
    }

    /// How long a connection may take to begin its first request (B4).
    pub(crate) fn first_request_window(&self) -> Duration {
        self.lock().core.config().first_request_window
    }

    /// How many connections are open now.
    pub(crate) fn open(&self) -> usize {
        self.lock().core.counts().open
    }

    /// Listens for the next close of a connection.
    pub(crate) fn listen_for_room(&self) -> event_listener::EventListener {
        self.room.listen()
    }

    /// The connection's socket is closed.
    pub(crate) fn closed(&self, slot: &ConnSlot) {
        self.decide(|inner, now| {
            // Stale ids (force-closed) are refused: nothing to do.
            let event = match slot.was_cut_by_driver() {
                true => ConnEvent::Cut,
                false => ConnEvent::Closed,
            };
            let _ = inner.core.handle(slot.id, event, now);
            inner.core.observer_mut().remove(slot.id);
            if self.is_draining() {
                event!(
                    debug,
                    open = inner.core.counts().open,
                    "stoppable: connection closed during the drain"
                );
            }
        });
        // After the count went down: a waiter that wakes sees the room.
        self.room.notify(usize::MAX);
    }

    /// Starts or shortens the stop (B12); `None` takes the server's grace.
    /// The stop that begins here starts its own timer task, so it ends
    /// whether or not anything else is still polled (B21).
    pub(crate) fn stop(self: &Arc<Self>, grace: Option<Duration>) {
        let spawn = self.decide(|inner, now| {
            let grace = grace.or(inner.default_grace);
            event!(
                info,
                grace_ms = grace.map(|g| g.as_millis() as u64),
                "stoppable: stop requested"
            );
            let began = inner.core.phase() == Phase::Serving;
            inner.core.stop(grace, now);
            let delaying = inner.core.phase() == Phase::Delaying;
            if began && delaying && self.move_on_in_delay.load(Ordering::Relaxed) {
                self.ask_to_move_on(inner);
            }
            wake(&inner.server_waker);
            began && !std::mem::replace(&mut inner.timers_running, true)
        });
        if spawn {
            (self.spawn_timers)(self);
        }
    }

    /// B23: every connection open at the stop that has served a request is
    /// asked to finish, as at a drain's start, and every response from now
    /// on says `Connection: close`, while the server still accepts and
    /// serves. A connection that has sent nothing yet is left alone: its
    /// client may be about to send its first request (B4), and its response
    /// will say `Connection: close`.
    fn ask_to_move_on(&self, inner: &mut Inner) {
        self.finish_responses(inner);
        let ids: Vec<_> = inner.core.open_connections().collect();
        for id in ids {
            if let Some(slot) = inner.core.observer().get(id) {
                if slot.progress().started > 0 {
                    slot.order(Command::Finish);
                }
            }
        }
    }

    /// Every response from now on says `Connection: close` (B6, B23): each
    /// open connection's slot is told, then the flag that tells the slots
    /// of connections accepted later (under the same lock as `accept`).
    fn finish_responses(&self, inner: &mut Inner) {
        let ids: Vec<_> = inner.core.open_connections().collect();
        for id in ids {
            if let Some(slot) = inner.core.observer().get(id) {
                slot.finish_responses();
            }
        }
        self.finishing.store(true, Ordering::Release);
    }

    /// Whether connections are being asked to finish (B6, B23).
    #[inline]
    pub(crate) fn finishing(&self) -> bool {
        self.finishing.load(Ordering::Relaxed)
    }

    /// Fires the core's due timeouts.
    pub(crate) fn handle_timeout(&self) {
        self.decide(|inner, now| inner.core.handle_timeout(now));
    }

    /// The listener is closed, its queue drained (B1).
    pub(crate) fn listener_closed(&self) {
        self.decide(|inner, now| {
            inner.stop_accepting = true;
            inner.core.listener_closed(now);
        });
    }

    /// From now on the listening socket has other owners (B22).
    pub(crate) fn share_listener(&self) {
        self.lock().listener_shared = true;
    }

    /// Whether the listening socket has other owners (B22).
    pub(crate) fn listener_shared(&self) -> bool {
        self.lock().listener_shared
    }

    /// Whether the accept loop must drain its listener now (B1).
    pub(crate) fn stop_accepting(&self) -> bool {
        self.lock().stop_accepting
    }

    /// The report, if the stop completed; `waker` is woken when the accept
    /// loop must act (drain the listener, resolve).
    pub(crate) fn poll_server(&self, waker: &Waker) -> Option<Report> {
        let mut inner = self.lock();
        set_waker(&mut inner.server_waker, waker);
        inner.core.report()
    }

    /// The report if the stop completed, else when to fire the timeouts
    /// next; `waker` is woken when that moves.
    pub(crate) fn poll_timer(&self, waker: &Waker) -> Result<Report, Option<Instant>> {
        let mut inner = self.lock();
        set_waker(&mut inner.timer_waker, waker);
        inner.core.report().ok_or(inner.core.poll_timeout())
    }

    /// The live counts, each connection read as it is now (B18).
    pub(crate) fn counts(&self) -> Counts {
        self.decide(|inner, now| {
            inner.core.refresh(now);
            inner.core.counts()
        })
    }

    /// The grace ran out: the stop force-closes what is left.
    pub(crate) fn is_forcing(&self) -> bool {
        self.phase() == Phase::Forcing
    }

    pub(crate) fn phase(&self) -> Phase {
        self.lock().core.phase()
    }

    pub(crate) fn report(&self) -> Option<Report> {
        self.lock().core.report()
    }

    /// Counts an application task the stop waits for; false once the
    /// grace is over or the stop completed.
    pub(crate) fn task_started(&self) -> bool {
        self.decide(|inner, _| inner.core.task_started().is_ok())
    }

    /// An application task ended by itself (unless it was cancelled).
    pub(crate) fn task_finished(&self) {
        self.decide(|inner, now| {
            inner.core.task_finished(now);
        });
    }

    /// The grace is over: tasks still running are cancelled.
    pub(crate) fn tasks_cut(&self) -> bool {
        self.tasks_cut.load(Ordering::Acquire)
    }

    /// Carries out what the core decided.
    fn run_actions(&self, inner: &mut Inner) {
        while let Some(action) = inner.core.poll_action() {
            match action {
                Action::StopAccepting => {
                    event!(
                        info,
                        open = inner.core.counts().open,
                        in_flight = inner.core.counts().requests_in_flight,
                        "stoppable: drain started"
                    );
                    inner.stop_accepting = true;
                    self.finish_responses(inner);
                    self.draining.store(true, Ordering::Release);
                    self.changed.notify(usize::MAX);
                    wake(&inner.server_waker);
                }
                Action::Finish(id) => {
                    let serving = matches!(inner.core.phase(), Phase::Serving | Phase::Delaying);
                    if let Some(slot) = inner.core.observer().get(id) {
                        // Before the drain, only a connection's age asks.
                        if serving {
                            slot.finish_for_age();
                        } else {
                            slot.order(Command::Finish);
                        }
                    }
                }
                Action::CloseIdle(id) => {
                    let seen = inner.core.seen(id);
                    if let Some(slot) = inner.core.observer().get(id) {
                        match seen {
                            // Still open to the core: unless a request came.
                            Ok(seen) => slot.close_if_idle(seen.arrived),
                            // At the grace deadline: counted closed already.
                            Err(_) => slot.cut(true),
                        }
                    }
                }
                Action::ForceClose(id) => {
                    event!(
                        warn,
                        conn = id.index(),
                        "stoppable: force-closing a connection with work"
                    );
                    if let Some(slot) = inner.core.observer().get(id) {
                        slot.cut(slot.cut_may_wait_for_goaway());
                    }
                }
                Action::CancelTasks => {
                    event!(
                        warn,
                        "stoppable: cancelling the application's tasks still running"
                    );
                    self.tasks_cut.store(true, Ordering::Release);
                    self.changed.notify(usize::MAX);
                }
                Action::Stopped(_report) => {
                    event!(
                        info,
                        graceful = _report.graceful,
                        closed_idle = _report.closed_idle,
                        closed_after_work = _report.closed_after_work,
                        force_closed = _report.force_closed,
                        requests_completed = _report.requests_completed,
                        tasks_finished = _report.tasks_finished,
                        tasks_cancelled = _report.tasks_cancelled,
                        elapsed_ms = _report.elapsed.as_millis() as u64,
                        "stoppable: stopped"
                    );
                    // The report stays in the core; wake every waiter.
                    self.changed.notify(usize::MAX);
                    wake(&inner.server_waker);
                    wake(&inner.timer_waker);
                }
                _ => {}
            }
        }
    }
}

impl Drop for Shared {
    /// A timer task still waiting on this server (serving, never stopped)
    /// wakes, finds it gone, and ends.
    fn drop(&mut self) {
        if let Some(waker) = self.lock().timer_waker.take() {
            waker.wake();
        }
    }
}

fn set_waker(slot: &mut Option<Waker>, waker: &Waker) {
    match slot {
        Some(current) if current.will_wake(waker) => {}
        _ => *slot = Some(waker.clone()),
    }
}

fn wake(waker: &Option<Waker>) {
    if let Some(waker) = waker {
        waker.wake_by_ref();
    }
}
