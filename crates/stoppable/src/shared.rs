//! The state one server shares between its accept task, its connection
//! tasks and its stoppers. The lock is taken on accept, on close, at the
//! stop and during a drain, never per request while serving.

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
use stoppable_core::{Action, ConnEvent, ConnId, ConnState, Counts, Drain, Phase, Report};

use crate::slot::{Command, ConnSlot};
use crate::socket::RawSocket;

pub(crate) struct Shared {
    /// Set when the drain begins: the one relaxed load on the hot path (B15).
    draining: AtomicBool,
    /// Requests carry a `DrainSignal` (fixed once serving starts).
    pub(crate) signal_in_requests: AtomicBool,
    inner: Mutex<Inner>,
    /// Notified when the drain begins and when the stop completes.
    changed: Event,
}

pub(crate) struct Inner {
    pub(crate) core: Drain,
    slots: Vec<Option<Arc<ConnSlot>>>,
    /// Serving started (the server was polled, or a tracker made): options
    /// are fixed from then on.
    pub(crate) serving: bool,
    pub(crate) stop_accepting: bool,
    /// The grace a plain `stop()` uses.
    pub(crate) default_grace: Option<Duration>,
    server_waker: Option<Waker>,
}

impl Shared {
    pub(crate) fn new(core: Drain) -> Arc<Self> {
        Arc::new(Shared {
            draining: AtomicBool::new(false),
            signal_in_requests: AtomicBool::new(false),
            inner: Mutex::new(Inner {
                core,
                slots: Vec::new(),
                serving: false,
                stop_accepting: false,
                default_grace: None,
                server_waker: None,
            }),
            changed: Event::new(),
        })
    }

    pub(crate) fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic elsewhere must not make every later stop panic too.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn listen(&self) -> event_listener::EventListener {
        self.changed.listen()
    }

    /// Tracks a new connection; `None` once the server no longer accepts.
    pub(crate) fn accept(&self, socket: Option<RawSocket>) -> Option<Arc<ConnSlot>> {
        let mut inner = self.lock();
        let id = inner.core.accept(Instant::now()).ok()?;
        let slot = Arc::new(ConnSlot::new(id, socket));
        let index = id.index();
        if inner.slots.len() <= index {
            inner.slots.resize(index + 1, None);
        }
        inner.slots[index] = Some(slot.clone());
        self.run_actions(&mut inner);
        Some(slot)
    }

    /// Tells the core what a connection did since it last heard.
    pub(crate) fn sync(&self, slot: &ConnSlot) {
        let mut inner = self.lock();
        let _ = inner.core.handle(
            slot.id,
            ConnEvent::Progress(slot.progress()),
            Instant::now(),
        );
        self.run_actions(&mut inner);
    }

    /// The connection's socket is closed.
    pub(crate) fn closed(&self, slot: &ConnSlot) {
        let now = Instant::now();
        let mut inner = self.lock();
        // Stale ids (force-closed at the deadline) are refused: nothing to do.
        let _ = inner
            .core
            .handle(slot.id, ConnEvent::Progress(slot.progress()), now);
        let _ = inner.core.handle(slot.id, ConnEvent::Closed, now);
        if self.is_draining() {
            event!(
                debug,
                open = inner.core.counts().open,
                "stoppable: connection closed during the drain"
            );
        }
        if let Some(entry) = inner.slots.get_mut(slot.id.index()) {
            if entry.as_ref().is_some_and(|s| s.id == slot.id) {
                *entry = None;
            }
        }
        self.run_actions(&mut inner);
    }

    /// Starts or shortens the stop (B12); `None` takes the server's grace.
    pub(crate) fn stop(&self, grace: Option<Duration>) {
        let now = Instant::now();
        let mut inner = self.lock();
        let grace = grace.or(inner.default_grace);
        event!(
            info,
            grace_ms = grace.map(|g| g.as_millis() as u64),
            "stoppable: stop requested"
        );
        if inner.core.phase() == Phase::Serving {
            // The core hears of requests lazily: bring it up to date first.
            inner.sync_all(now);
        }
        inner.core.stop(grace, now);
        self.run_actions(&mut inner);
        inner.wake_server();
    }

    /// Fires the core's due timeouts.
    pub(crate) fn handle_timeout(&self) {
        let mut inner = self.lock();
        inner.core.handle_timeout(Instant::now());
        self.run_actions(&mut inner);
    }

    /// The listener is closed, its queue drained (B1).
    pub(crate) fn listener_closed(&self) {
        let mut inner = self.lock();
        inner.stop_accepting = true;
        inner.core.listener_closed(Instant::now());
        self.run_actions(&mut inner);
    }

    pub(crate) fn counts(&self) -> Counts {
        let mut inner = self.lock();
        inner.sync_all(Instant::now());
        let counts = inner.core.counts();
        self.run_actions(&mut inner);
        counts
    }

    pub(crate) fn report(&self) -> Option<Report> {
        self.lock().core.report()
    }

    /// Carries out what the core decided.
    pub(crate) fn run_actions(&self, inner: &mut Inner) {
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
                    self.draining.store(true, Ordering::Release);
                    self.changed.notify(usize::MAX);
                    inner.wake_server();
                }
                Action::Shutdown(id) => inner.order(id, Command::Shutdown),
                Action::Close(id) if inner.core.state(id) == Ok(ConnState::Fresh) => {
                    // A fresh connection at the end of its window: unless
                    // its request arrived meanwhile (B4), which the driver
                    // saw but has not reported yet, or which waits unread
                    // in the kernel. Then the core hears of it and shuts it
                    // down after serving it instead.
                    let Some(slot) = inner.slot(id).cloned() else {
                        continue;
                    };
                    slot.note_unread_bytes();
                    let progress = slot.progress();
                    if progress.arrived > 0 || progress.started > 0 {
                        let now = Instant::now();
                        let _ = inner.core.handle(id, ConnEvent::Progress(progress), now);
                        continue;
                    }
                    inner.close(id);
                }
                Action::Close(id) | Action::ForceClose(id) => {
                    if matches!(action, Action::ForceClose(_)) {
                        event!(
                            warn,
                            conn = id.index(),
                            "stoppable: grace over, force-closing a busy connection"
                        );
                    }
                    inner.close(id);
                }
                Action::Stopped(_report) => {
                    event!(
                        info,
                        graceful = _report.graceful,
                        closed_idle = _report.closed_idle,
                        closed_after_work = _report.closed_after_work,
                        force_closed = _report.force_closed,
                        requests_completed = _report.requests_completed,
                        elapsed_ms = _report.elapsed.as_millis() as u64,
                        "stoppable: stopped"
                    );
                    // The report stays in the core; wake every waiter.
                    self.changed.notify(usize::MAX);
                    inner.wake_server();
                }
                _ => {}
            }
        }
        // The next deadline may have moved: the accept task re-arms its timer.
        if self.is_draining() || inner.core.phase() != Phase::Serving {
            inner.wake_server();
        }
    }
}

impl Inner {
    fn slot(&self, id: ConnId) -> Option<&Arc<ConnSlot>> {
        self.slots
            .get(id.index())?
            .as_ref()
            .filter(|slot| slot.id == id)
    }

    fn order(&self, id: ConnId, command: Command) {
        if let Some(slot) = self.slot(id) {
            slot.order(command);
        }
    }

    /// Shuts the socket down (a FIN first, even if a handler owns it) and
    /// tells the driver to drop the connection.
    fn close(&self, id: ConnId) {
        if let Some(slot) = self.slot(id) {
            slot.shutdown_socket();
            slot.order(Command::Close);
        }
    }

    fn sync_all(&mut self, now: Instant) {
        for slot in self.slots.iter().flatten() {
            let _ = self
                .core
                .handle(slot.id, ConnEvent::Progress(slot.progress()), now);
        }
    }

    pub(crate) fn set_server_waker(&mut self, waker: &Waker) {
        match &self.server_waker {
            Some(current) if current.will_wake(waker) => {}
            _ => self.server_waker = Some(waker.clone()),
        }
    }

    fn wake_server(&self) {
        if let Some(waker) = &self.server_waker {
            waker.wake_by_ref();
        }
    }
}
