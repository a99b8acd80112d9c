//! The server's side of a stop: phases, the grace deadline, the per-connection
//! timers, the counts and the report.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::time::{Duration, Instant};

use crate::conn::{Conn, ConnState, Progress, Step, Told};
use crate::{Config, ConfigError, ConnId, Counts, Error, Phase, Report};

/// What the driver must do. Drain them with [`Drain::poll_action`] after
/// every call that changes the state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Action {
    /// Accept what the kernel already queued (B1), then close the listener
    /// and report [`Drain::listener_closed`].
    StopAccepting,
    /// Finish the current work, then close: HTTP/1.1 answers what it has
    /// read with `Connection: close` (B6), HTTP/2 sends GOAWAY (B7); an idle
    /// connection closes at once (B3). A driver must not cut a request head
    /// it is still reading ([`Progress::arrived`]).
    Shutdown(ConnId),
    /// Close now, with a FIN: the connection has no work (no first request
    /// in its window, B4; a head not finished in time, B8; or idle at the
    /// grace deadline). Report [`ConnEvent::Closed`] when done, except at
    /// the deadline, where the core counts it closed at once. A driver that
    /// finds request bytes waiting before it closes reports them instead
    /// ([`Progress::arrived`]): the core then serves the request (B4).
    Close(ConnId),
    /// Grace is over (B9): shut the socket down (FIN first), then close it,
    /// even if a handler holds it (B14). The core counts it closed at once.
    ForceClose(ConnId),
    /// The stop completed; the report is also in [`Drain::report`].
    Stopped(Report),
}

/// What happened on one connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnEvent {
    /// New totals observed on the connection (see [`Progress`]).
    Progress(Progress),
    /// The connection is closed (by either side); the id is now stale.
    Closed,
}

#[derive(Clone, Copy, Debug)]
struct StopState {
    began_at: Instant,
    /// The shortest grace asked for, counted from the drain's start.
    grace: Option<Duration>,
    drain_started_at: Option<Instant>,
    deadline: Option<Instant>,
}

#[derive(Default)]
struct Tally {
    closed_idle: usize,
    closed_after_work: usize,
    force_closed: usize,
    requests_completed: u64,
}

struct Slot {
    generation: u32,
    conn: Option<Conn>,
}

/// The sans-IO stop of one server.
///
/// Feed it what happens ([`accept`](Drain::accept), [`handle`](Drain::handle),
/// [`stop`](Drain::stop), [`listener_closed`](Drain::listener_closed),
/// [`handle_timeout`](Drain::handle_timeout)), with the time as an argument;
/// it never reads a clock. After each call a driver must
/// 1. take every [`Action`] from [`poll_action`](Drain::poll_action) and carry it out, then
/// 2. read [`poll_timeout`](Drain::poll_timeout) and call `handle_timeout` no later than that instant.
///
/// Spurious `handle_timeout` calls are no-ops, and after `handle_timeout(now)`
/// `poll_timeout` is never `<= now`, so a driver cannot busy-loop.
///
/// ```
/// use std::time::{Duration, Instant};
/// use stoppable_core::{Action, Config, ConnEvent, Drain, Progress};
///
/// let t0 = Instant::now();
/// let mut drain = Drain::new(Config::default()).unwrap();
/// let conn = drain.accept(t0).unwrap();
/// // A request is in flight when the stop comes, with a grace of 1 s.
/// let busy = Progress { started: 1, arrived: 1, ..Progress::default() };
/// drain.handle(conn, ConnEvent::Progress(busy), t0).unwrap();
/// drain.stop(Some(Duration::from_secs(1)), t0);
/// assert_eq!(drain.poll_action(), Some(Action::StopAccepting));
/// assert_eq!(drain.poll_action(), Some(Action::Shutdown(conn)));
/// drain.listener_closed(t0);
/// // The response ends and the connection closes before the deadline.
/// let t1 = t0 + Duration::from_millis(20);
/// let done = Progress { finished: 1, ..busy };
/// drain.handle(conn, ConnEvent::Progress(done), t1).unwrap();
/// drain.handle(conn, ConnEvent::Closed, t1).unwrap();
/// match drain.poll_action() {
///     Some(Action::Stopped(report)) => {
///         assert!(report.graceful);
///         assert_eq!(report.closed_after_work, 1);
///         assert_eq!(report.requests_completed, 1);
///         assert_eq!(report.elapsed, Duration::from_millis(20));
///     }
///     other => panic!("expected the report, got {other:?}"),
/// }
/// assert_eq!(drain.poll_timeout(), None);
/// ```
pub struct Drain {
    config: Config,
    slots: Vec<Slot>,
    free: Vec<u32>,
    phase: Phase,
    stop: Option<StopState>,
    listener_closed: bool,
    /// Per-connection wake-ups during a drain; entries may be stale.
    timers: BinaryHeap<Reverse<(Instant, ConnId)>>,
    actions: VecDeque<Action>,
    counts: Counts,
    tally: Tally,
    report: Option<Report>,
}

impl Drain {
    /// A server that is serving, with no connection yet.
    pub fn new(config: Config) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(Drain {
            config,
            slots: Vec::new(),
            free: Vec::new(),
            phase: Phase::Serving,
            stop: None,
            listener_closed: false,
            timers: BinaryHeap::new(),
            actions: VecDeque::new(),
            counts: Counts::default(),
            tally: Tally::default(),
            report: None,
        })
    }

    /// The options in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The current phase.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// The live counts (B18). As fresh as the last [`ConnEvent::Progress`]
    /// the driver reported for each connection.
    pub fn counts(&self) -> Counts {
        self.counts
    }

    /// The report, once the stop completed (B11).
    pub fn report(&self) -> Option<Report> {
        self.report
    }

    /// The state of an open connection.
    pub fn state(&self, id: ConnId) -> Result<ConnState, Error> {
        self.conn(id).map(Conn::state)
    }

    /// The ids of the open connections, in slot order.
    pub fn open_connections(&self) -> impl Iterator<Item = ConnId> + '_ {
        self.slots.iter().enumerate().filter_map(|(index, slot)| {
            slot.conn.as_ref().map(|_| ConnId {
                index: index as u32,
                generation: slot.generation,
            })
        })
    }

    /// A new connection was accepted. Connections keep being accepted during
    /// the readiness delay and the accept-queue drain (B1); after
    /// [`listener_closed`](Drain::listener_closed) this is an error.
    pub fn accept(&mut self, now: Instant) -> Result<ConnId, Error> {
        if self.listener_closed || self.phase == Phase::Stopped {
            return Err(Error::NotAccepting);
        }
        let conn = Conn::new(now);
        let id = match self.free.pop() {
            Some(index) => {
                let slot = &mut self.slots[index as usize];
                slot.conn = Some(conn);
                ConnId {
                    index,
                    generation: slot.generation,
                }
            }
            None => {
                let index = u32::try_from(self.slots.len()).map_err(|_| Error::NotAccepting)?;
                self.slots.push(Slot {
                    generation: 0,
                    conn: Some(conn),
                });
                ConnId {
                    index,
                    generation: 0,
                }
            }
        };
        self.counts.open += 1;
        self.counts.idle += 1;
        if self.is_draining() {
            self.decide(id, now);
        }
        Ok(id)
    }

    /// Something happened on a connection.
    pub fn handle(&mut self, id: ConnId, event: ConnEvent, now: Instant) -> Result<(), Error> {
        match event {
            ConnEvent::Progress(progress) => {
                let stopping = self.stop.is_some();
                let finished = self.update(id, |conn| {
                    let (started_before, arrived_before) = (conn.started, conn.arrived);
                    let finished = conn.observe(progress, now);
                    conn.worked_in_stop |=
                        stopping && (conn.has_work() || conn.started > started_before);
                    if conn.told == Told::Close && conn.arrived > arrived_before {
                        // Its first request arrived before the close was
                        // carried out (B4): serve it, then close.
                        conn.told = Told::Nothing;
                    }
                    finished
                })?;
                if stopping {
                    self.tally.requests_completed += finished;
                }
                if self.is_draining() {
                    self.decide(id, now);
                }
            }
            ConnEvent::Closed => {
                let conn = self.remove(id)?;
                if self.stop.is_some() {
                    if conn.worked_in_stop || conn.has_work() {
                        self.tally.closed_after_work += 1;
                    } else {
                        self.tally.closed_idle += 1;
                    }
                }
                self.try_finish(now);
            }
        }
        Ok(())
    }

    /// Starts the stop, or (when one runs) shortens its grace (B12). `None`
    /// waits for all work; `Some(ZERO)` force-closes at once (B9). A second
    /// call never lengthens the deadline and never starts anything new.
    pub fn stop(&mut self, grace: Option<Duration>, now: Instant) {
        if let Some(stop) = &mut self.stop {
            stop.grace = shortest(stop.grace, grace);
            if stop.drain_started_at.is_some() {
                let asked = grace.and_then(|g| now.checked_add(g));
                stop.deadline = shortest(stop.deadline, asked);
                self.handle_timeout(now);
            }
            return;
        }
        self.stop = Some(StopState {
            began_at: now,
            grace,
            drain_started_at: None,
            deadline: None,
        });
        for slot in &mut self.slots {
            if let Some(conn) = &mut slot.conn {
                conn.worked_in_stop = conn.has_work();
            }
        }
        match now.checked_add(self.config.drain_delay) {
            Some(end) if end > now => self.set_phase(Phase::Delaying),
            _ => self.begin_drain(now, now),
        }
    }

    /// The listener is closed, after the queued connections were accepted.
    pub fn listener_closed(&mut self, now: Instant) {
        self.listener_closed = true;
        self.try_finish(now);
    }

    /// Time passed. Spurious calls do nothing.
    pub fn handle_timeout(&mut self, now: Instant) {
        let Some(stop) = self.stop else { return };
        if self.phase == Phase::Delaying {
            match stop.began_at.checked_add(self.config.drain_delay) {
                Some(end) if end > now => return,
                // The drain starts when the delay ended, even if told late.
                Some(end) => return self.begin_drain(end, now),
                None => return self.begin_drain(now, now),
            }
        }
        if self.phase != Phase::Draining {
            return;
        }
        if stop.deadline.is_some_and(|deadline| deadline <= now) {
            return self.force(now);
        }
        while let Some(&Reverse((at, id))) = self.timers.peek() {
            if at > now {
                break;
            }
            self.timers.pop();
            self.decide(id, now);
        }
    }

    /// The next action to carry out, in order.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// When to call [`handle_timeout`](Drain::handle_timeout) next, if ever.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let stop = self.stop?;
        match self.phase {
            Phase::Delaying => stop.began_at.checked_add(self.config.drain_delay),
            Phase::Draining => {
                let conn_timer = self.timers.peek().map(|Reverse((at, _))| *at);
                shortest(stop.deadline, conn_timer)
            }
            _ => None,
        }
    }

    fn set_phase(&mut self, phase: Phase) {
        self.phase = phase;
        self.counts.phase = phase;
    }

    fn is_draining(&self) -> bool {
        matches!(self.phase, Phase::Draining | Phase::Forcing)
    }

    fn begin_drain(&mut self, started_at: Instant, now: Instant) {
        let Some(stop) = self.stop.as_mut() else {
            return;
        };
        stop.drain_started_at = Some(started_at);
        // A grace too long to represent is no limit.
        stop.deadline = stop.grace.and_then(|g| started_at.checked_add(g));
        let deadline = stop.deadline;
        self.set_phase(Phase::Draining);
        self.actions.push_back(Action::StopAccepting);
        if deadline.is_some_and(|d| d <= now) {
            return self.force(now);
        }
        let ids: Vec<ConnId> = self.open_connections().collect();
        for id in ids {
            self.decide(id, now);
        }
        self.handle_timeout(now);
        self.try_finish(now);
    }

    /// Grace is over: close what has no work, force the rest (B9).
    fn force(&mut self, now: Instant) {
        self.set_phase(Phase::Forcing);
        self.timers.clear();
        let ids: Vec<ConnId> = self.open_connections().collect();
        for id in ids {
            self.force_one(id);
        }
        self.try_finish(now);
    }

    fn force_one(&mut self, id: ConnId) {
        let Ok(conn) = self.remove(id) else { return };
        let action = if conn.has_work() {
            self.tally.force_closed += 1;
            Action::ForceClose(id)
        } else {
            self.tally.closed_idle += 1;
            Action::Close(id)
        };
        self.actions.push_back(action);
    }

    /// Applies the decision table ([`Conn::next_step`]) to one open connection.
    fn decide(&mut self, id: ConnId, now: Instant) {
        if self.phase == Phase::Forcing {
            // Accepted from the queue after the deadline: nothing to wait for.
            self.force_one(id);
            return self.try_finish(now);
        }
        let Ok(conn) = self.conn(id) else { return };
        let window = self.config.first_request_window;
        let head_timeout = self.config.header_read_timeout;
        match conn.next_step(window, head_timeout, now) {
            Step::Wait => {}
            Step::WaitUntil(at) => self.timers.push(Reverse((at, id))),
            Step::Shutdown(at) => {
                let _ = self.update(id, |conn| conn.told = Told::Shutdown);
                self.actions.push_back(Action::Shutdown(id));
                if let Some(at) = at {
                    self.timers.push(Reverse((at, id)));
                }
            }
            Step::Close => {
                let _ = self.update(id, |conn| conn.told = Told::Close);
                self.actions.push_back(Action::Close(id));
            }
        }
    }

    fn try_finish(&mut self, now: Instant) {
        let Some(stop) = self.stop else { return };
        if !self.is_draining() || !self.listener_closed || self.counts.open > 0 {
            return;
        }
        self.set_phase(Phase::Stopped);
        self.timers.clear();
        let report = Report {
            graceful: self.tally.force_closed == 0,
            closed_idle: self.tally.closed_idle,
            closed_after_work: self.tally.closed_after_work,
            force_closed: self.tally.force_closed,
            requests_completed: self.tally.requests_completed,
            elapsed: now.saturating_duration_since(stop.began_at),
        };
        self.report = Some(report);
        self.actions.push_back(Action::Stopped(report));
    }

    fn conn(&self, id: ConnId) -> Result<&Conn, Error> {
        match self.slots.get(id.index as usize) {
            Some(Slot {
                generation,
                conn: Some(conn),
            }) if *generation == id.generation => Ok(conn),
            _ => Err(Error::UnknownConnection),
        }
    }

    /// Changes one connection and keeps the counts in step.
    fn update<R>(&mut self, id: ConnId, change: impl FnOnce(&mut Conn) -> R) -> Result<R, Error> {
        self.conn(id)?;
        let conn = self.slots[id.index as usize]
            .conn
            .as_mut()
            .ok_or(Error::UnknownConnection)?;
        count(&mut self.counts, conn, Sign::Minus);
        let out = change(conn);
        count(&mut self.counts, conn, Sign::Plus);
        Ok(out)
    }

    fn remove(&mut self, id: ConnId) -> Result<Conn, Error> {
        self.conn(id)?;
        let slot = &mut self.slots[id.index as usize];
        let conn = slot.conn.take().ok_or(Error::UnknownConnection)?;
        slot.generation = slot.generation.wrapping_add(1);
        self.free.push(id.index);
        count(&mut self.counts, &conn, Sign::Minus);
        self.counts.open -= 1;
        Ok(conn)
    }
}

enum Sign {
    Plus,
    Minus,
}

/// Adds or takes away one connection's share of the counts.
fn count(counts: &mut Counts, conn: &Conn, sign: Sign) {
    let bucket = match (conn.told, conn.state()) {
        (_, ConnState::Upgraded) => &mut counts.upgraded,
        (Told::Shutdown | Told::Close, _) => &mut counts.closing,
        (Told::Nothing, ConnState::Fresh | ConnState::Idle) => &mut counts.idle,
        (Told::Nothing, ConnState::Reading | ConnState::Active) => &mut counts.active,
    };
    match sign {
        Sign::Plus => {
            *bucket += 1;
            counts.requests_in_flight += conn.in_flight();
        }
        Sign::Minus => {
            *bucket -= 1;
            counts.requests_in_flight -= conn.in_flight();
        }
    }
}

/// The smaller of two optional bounds, where `None` is no bound.
fn shortest<T: Ord>(a: Option<T>, b: Option<T>) -> Option<T> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}
