//! The server's side of a stop: phases, the grace deadline, the per-connection
//! timers, the counts and the report.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::time::{Duration, Instant};

use crate::age::Ages;
use crate::conn::{Clock, Conn, ConnState, Progress, Step, Told};
use crate::{Config, ConfigError, ConnId, Counts, Error, Observe, Phase, Report};

/// What the driver must do. Drain them with [`Lifecycle::poll_action`] after
/// every call that changes the state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Action {
    /// Accept what the kernel already queued (B1), then close the listener
    /// and report [`Lifecycle::listener_closed`].
    StopAccepting,
    /// Finish the current work, then close: HTTP/1.1 answers what it has
    /// read with `Connection: close` (B6), HTTP/2 sends GOAWAY (B7); an idle
    /// connection closes at once (B3). A driver must not cut a request head
    /// it is still reading ([`Progress::arrived`]). Also ordered while
    /// serving, to a connection past its maximum age (B23).
    Finish(ConnId),
    /// Close now, politely: the connection has no work (no first request in
    /// its window, B4; idle at the grace deadline, B9; or told to finish
    /// and quiet past the GOAWAY timeout, B7). An HTTP/2 connection gets its
    /// GOAWAY first if it had none, TLS its close_notify, then a FIN.
    /// Report [`ConnEvent::Closed`] when done, except at the grace
    /// deadline, where the core counts it closed at once. Before this
    /// action the core asked [`Observe::look_closer`] for request bytes.
    CloseIdle(ConnId),
    /// Cut the connection's work: its grace is over (B9), or its request
    /// head did not arrive within the header-read timeout (B8). Shut the
    /// socket down (FIN first), then close it, even if a handler holds it
    /// (B14). The core counts it force-closed at once, and the stop is not
    /// graceful (B11).
    ForceClose(ConnId),
    /// Cancel every application task still running: the grace is over
    /// (B9). The core counts them cancelled at once (the stop is not
    /// graceful, B11) and ignores their later
    /// [`task_finished`](Lifecycle::task_finished).
    CancelTasks,
    /// The stop completed; the report is also in [`Lifecycle::report`].
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
    /// The driver closed the connection for a limit of its own (hyper's
    /// header-read timeout, a first-request timeout while serving): closed,
    /// and if it had work during a stop, that work counts cut (B11), as
    /// if the core had cut it.
    Cut,
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
    tasks_finished: usize,
    tasks_cancelled: usize,
}

struct Slot {
    generation: u32,
    conn: Option<Conn>,
}

/// The sans-IO life of one server: serving (connection ages, B23), the
/// readiness delay, the drain, the grace and the report.
///
/// Feed it what happens ([`accept`](Lifecycle::accept), [`handle`](Lifecycle::handle),
/// [`stop`](Lifecycle::stop), [`listener_closed`](Lifecycle::listener_closed),
/// [`handle_timeout`](Lifecycle::handle_timeout)), with the time as an argument;
/// it never reads a clock. After each call a driver must
/// 1. take every [`Action`] from [`poll_action`](Lifecycle::poll_action) and carry it out, then
/// 2. read [`poll_timeout`](Lifecycle::poll_timeout) and call `handle_timeout` no later than that instant.
///
/// Spurious `handle_timeout` calls are no-ops, and after `handle_timeout(now)`
/// `poll_timeout` is never `<= now`, so a driver cannot busy-loop.
///
/// Before it decides about a connection, the core reads what the connection
/// is doing through its [`Observe`] (B21): give it one with
/// [`Lifecycle::with_observer`] if your connections count their own progress;
/// [`Lifecycle::new`] relies on your reports alone.
///
/// ```
/// use std::time::{Duration, Instant};
/// use stoppable_core::{Action, Config, ConnEvent, Lifecycle, Progress};
///
/// let t0 = Instant::now();
/// let mut drain = Lifecycle::new(Config::default()).unwrap();
/// let conn = drain.accept(t0).unwrap();
/// // A request is in flight when the stop comes, with a grace of 1 s.
/// let busy = Progress { started: 1, arrived: 1, ..Progress::default() };
/// drain.handle(conn, ConnEvent::Progress(busy), t0).unwrap();
/// drain.stop(Some(Duration::from_secs(1)), t0);
/// assert_eq!(drain.poll_action(), Some(Action::StopAccepting));
/// assert_eq!(drain.poll_action(), Some(Action::Finish(conn)));
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
pub struct Lifecycle<O = ()> {
    config: Config,
    slots: Vec<Slot>,
    free: Vec<u32>,
    phase: Phase,
    stop: Option<StopState>,
    listener_closed: bool,
    /// When to look at a connection again. Only the entry that matches its
    /// connection's `wake_at` counts; the others are stale and skipped.
    timers: BinaryHeap<Reverse<(Instant, ConnId)>>,
    /// While serving: when each connection reaches its maximum age (B23).
    ages: Ages,
    actions: VecDeque<Action>,
    counts: Counts,
    tally: Tally,
    report: Option<Report>,
    observer: O,
}

impl Lifecycle {
    /// A server that is serving, with no connection yet, that learns what
    /// its connections do from the driver's reports alone.
    pub fn new(config: Config) -> Result<Self, ConfigError> {
        Lifecycle::with_observer(config, ())
    }
}

impl<O: Observe> Lifecycle<O> {
    /// A server that is serving, with no connection yet, that reads what a
    /// connection is doing through `observer` before it decides about it.
    pub fn with_observer(config: Config, observer: O) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(Lifecycle {
            config,
            slots: Vec::new(),
            free: Vec::new(),
            phase: Phase::Serving,
            stop: None,
            listener_closed: false,
            timers: BinaryHeap::new(),
            ages: Ages::default(),
            actions: VecDeque::new(),
            counts: Counts::default(),
            tally: Tally::default(),
            report: None,
            observer,
        })
    }

    /// The observer given to [`with_observer`](Lifecycle::with_observer).
    pub fn observer(&self) -> &O {
        &self.observer
    }

    /// The observer, to change (track a new connection's counters, say).
    pub fn observer_mut(&mut self) -> &mut O {
        &mut self.observer
    }

    /// The options in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The current phase.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// The live counts (B18), as fresh as the last report or
    /// [`refresh`](Lifecycle::refresh).
    pub fn counts(&self) -> Counts {
        self.counts
    }

    /// The report, once the stop completed (B11).
    pub fn report(&self) -> Option<Report> {
        self.report
    }

    /// The state of an open connection, as last seen.
    pub fn state(&self, id: ConnId) -> Result<ConnState, Error> {
        self.conn(id).map(Conn::state)
    }

    /// What the core last saw of an open connection: its totals as of its
    /// last report or look.
    pub fn seen(&self, id: ConnId) -> Result<Progress, Error> {
        self.conn(id).map(|conn| Progress {
            started: conn.started,
            finished: conn.finished,
            arrived: conn.arrived,
            upgraded: conn.upgraded,
            output_blocked: conn.output_blocked,
            http2: conn.http2,
        })
    }

    /// The id the next [`accept`](Lifecycle::accept) gives: a driver registers
    /// the connection with its observer first, so the core can read it when
    /// it decides about it at once (a connection accepted after the grace).
    pub fn next_id(&self) -> ConnId {
        match self.free.last() {
            Some(&index) => ConnId {
                index,
                generation: self.slots[index as usize].generation,
            },
            None => ConnId {
                index: self.slots.len() as u32,
                generation: 0,
            },
        }
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
    /// [`listener_closed`](Lifecycle::listener_closed) this is an error.
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
        } else if let Some(age) = self.config.max_connection_age {
            let open = self.counts.open;
            let slots = &self.slots;
            self.ages.sweep(open, |id| is_open(slots, id));
            self.ages.arm(id, now, age);
        }
        Ok(id)
    }

    /// Something happened on a connection.
    pub fn handle(&mut self, id: ConnId, event: ConnEvent, now: Instant) -> Result<(), Error> {
        match event {
            ConnEvent::Progress(progress) => {
                self.apply(id, progress, now)?;
                if self.is_draining() {
                    self.decide(id, now);
                }
            }
            ConnEvent::Closed | ConnEvent::Cut => {
                // What it did last, for the report.
                self.look(id, now);
                let conn = self.remove(id)?;
                if self.stop.is_some() {
                    if event == ConnEvent::Cut && conn.has_work() {
                        self.tally.force_closed += 1;
                    } else {
                        self.tally_close(&conn);
                    }
                }
                self.try_finish(now);
            }
        }
        Ok(())
    }

    /// Starts the stop, or (when one runs) shortens its grace (B12). `None`
    /// waits for all work; `Some(ZERO)` force-closes at once (B9), readiness
    /// delay or not (B17's second signal). A second call never lengthens
    /// the deadline and never starts anything new.
    pub fn stop(&mut self, grace: Option<Duration>, now: Instant) {
        if let Some(stop) = &mut self.stop {
            stop.grace = shortest(stop.grace, grace);
            if stop.drain_started_at.is_some() {
                let asked = grace.and_then(|g| now.checked_add(g));
                stop.deadline = shortest(stop.deadline, asked);
                self.handle_timeout(now);
            } else if grace == Some(Duration::ZERO) && self.phase == Phase::Delaying {
                // No grace at all: the delay ends too (a second signal, B17).
                self.begin_drain(now, now);
            }
            return;
        }
        // As they are at the stop: what finished before it is not counted.
        let ids: Vec<ConnId> = self.open_connections().collect();
        for &id in &ids {
            self.look(id, now);
        }
        self.stop = Some(StopState {
            began_at: now,
            grace,
            drain_started_at: None,
            deadline: None,
        });
        for id in ids {
            let _ = self.update(id, |conn| conn.worked_in_stop = conn.has_work());
        }
        // No grace at all means now: no readiness delay either.
        match now.checked_add(self.config.drain_delay) {
            Some(end) if end > now && grace != Some(Duration::ZERO) => {
                self.set_phase(Phase::Delaying)
            }
            _ => self.begin_drain(now, now),
        }
    }

    /// The application began a task that the stop must wait for (work
    /// that is no connection's: a write-behind, a job a handler spawned).
    /// Refused once the grace is over or the stop completed: there is no
    /// time left to wait for it.
    pub fn task_started(&mut self) -> Result<(), Error> {
        if matches!(self.phase, Phase::Forcing | Phase::Stopped) {
            return Err(Error::TooLateForTask);
        }
        self.counts.tasks += 1;
        Ok(())
    }

    /// A task ended by itself (done, or dropped). False, and nothing
    /// changes, if it was already counted cancelled ([`Action::CancelTasks`]).
    pub fn task_finished(&mut self, now: Instant) -> bool {
        if matches!(self.phase, Phase::Forcing | Phase::Stopped) || self.counts.tasks == 0 {
            return false;
        }
        self.counts.tasks -= 1;
        if self.stop.is_some() {
            self.tally.tasks_finished += 1;
        }
        self.try_finish(now);
        true
    }

    /// The listener is closed, after the queued connections were accepted.
    pub fn listener_closed(&mut self, now: Instant) {
        self.listener_closed = true;
        self.try_finish(now);
    }

    /// Time passed. Spurious calls do nothing.
    pub fn handle_timeout(&mut self, now: Instant) {
        if matches!(self.phase, Phase::Serving | Phase::Delaying) {
            self.age_connections(now);
        }
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
            let due = self.conn_mut(id).filter(|conn| conn.wake_at == Some(at));
            if let Some(conn) = due {
                conn.wake_at = None;
                self.decide(id, now);
            }
        }
    }

    /// While serving (B23): each connection past its maximum age that has
    /// served a request is asked to finish; one that has not yet is looked
    /// at again an age later (its client may be about to send its first
    /// request: closing it would lose that, B4).
    fn age_connections(&mut self, now: Instant) {
        let Some(age) = self.config.max_connection_age else {
            return;
        };
        while let Some(id) = self.ages.pop_due(now) {
            if !self.look(id, now) {
                continue;
            }
            match self.conn(id) {
                Ok(conn) if conn.started > 0 || conn.upgraded => {
                    self.actions.push_back(Action::Finish(id));
                }
                Ok(_) => self.ages.arm(id, now, age),
                Err(_) => {}
            }
        }
    }

    /// Reads every open connection through the observer, so the counts are
    /// fresh; during a drain, decides about each as well. A driver calls it
    /// for the live counts (B18); it adds no timer.
    pub fn refresh(&mut self, now: Instant) {
        let ids: Vec<ConnId> = self.open_connections().collect();
        for id in ids {
            if self.is_draining() {
                self.decide(id, now);
            } else {
                self.look(id, now);
            }
        }
    }

    /// The next action to carry out, in order.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// When to call [`handle_timeout`](Lifecycle::handle_timeout) next, if ever.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let Some(stop) = self.stop else {
            return self.ages.next();
        };
        match self.phase {
            Phase::Delaying => shortest(
                stop.began_at.checked_add(self.config.drain_delay),
                self.ages.next(),
            ),
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
        self.ages.clear();
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

    /// Grace is over: close what has no work, force the rest (B9), each as
    /// it is now.
    fn force(&mut self, now: Instant) {
        self.set_phase(Phase::Forcing);
        self.timers.clear();
        let ids: Vec<ConnId> = self.open_connections().collect();
        for id in ids {
            self.force_one(id, now);
        }
        if self.counts.tasks > 0 {
            self.tally.tasks_cancelled += self.counts.tasks;
            self.counts.tasks = 0;
            self.actions.push_back(Action::CancelTasks);
        }
        self.try_finish(now);
    }

    fn force_one(&mut self, id: ConnId, now: Instant) {
        self.look(id, now);
        if self.conn(id).is_ok_and(|conn| !conn.has_work()) {
            self.look_closer(id, now);
        }
        let Ok(conn) = self.remove(id) else { return };
        let action = if conn.has_work() {
            self.tally.force_closed += 1;
            Action::ForceClose(id)
        } else {
            self.tally_close(&conn);
            Action::CloseIdle(id)
        };
        self.actions.push_back(action);
    }

    /// Applies the decision table ([`Conn::next_step`]) to one open
    /// connection, as it is now (B21).
    fn decide(&mut self, id: ConnId, now: Instant) {
        if self.phase == Phase::Forcing {
            // Accepted from the queue after the deadline: nothing to wait for.
            self.force_one(id, now);
            return self.try_finish(now);
        }
        if !self.look(id, now) {
            return;
        }
        let config = self.config;
        if let Some(conn) = self.conn_mut(id) {
            conn.note_allowed_streams(&config, now);
        }
        let drain_started_at = self.stop.and_then(|s| s.drain_started_at).unwrap_or(now);
        let mut looked_closer = false;
        loop {
            let Ok(conn) = self.conn(id) else { return };
            let clock = Clock {
                config: &self.config,
                drain_started_at,
                now,
            };
            match conn.next_step(clock) {
                Step::Wait => return,
                Step::WaitUntil(at) => return self.schedule(id, at),
                Step::Finish => {
                    let _ = self.update(id, |conn| conn.shut_down(now));
                    self.actions.push_back(Action::Finish(id));
                }
                // Before closing what looks idle, look harder (B4).
                Step::CloseIdle if !looked_closer => {
                    looked_closer = true;
                    self.look_closer(id, now);
                }
                Step::CloseIdle => {
                    let _ = self.update(id, |conn| {
                        conn.told = Told::CloseIdle {
                            arrived: conn.arrived,
                        }
                    });
                    self.actions.push_back(Action::CloseIdle(id));
                    return;
                }
                Step::Cut => {
                    if self.remove(id).is_ok() {
                        self.tally.force_closed += 1;
                        self.actions.push_back(Action::ForceClose(id));
                    }
                    return self.try_finish(now);
                }
            }
        }
    }

    /// Looks at the connection again at `at`, unless an earlier look is
    /// already due: one timer per connection, however often it is decided
    /// about.
    fn schedule(&mut self, id: ConnId, at: Instant) {
        let Some(conn) = self.conn_mut(id) else {
            return;
        };
        if conn.wake_at.is_some_and(|pending| pending <= at) {
            return;
        }
        conn.wake_at = Some(at);
        self.timers.push(Reverse((at, id)));
    }

    /// Reads the connection through the observer; false if it is not open.
    fn look(&mut self, id: ConnId, now: Instant) -> bool {
        if self.conn(id).is_err() {
            return false;
        }
        if let Some(progress) = self.observer.progress(id) {
            let _ = self.apply(id, progress, now);
        }
        true
    }

    fn look_closer(&mut self, id: ConnId, now: Instant) {
        if let Some(progress) = self.observer.look_closer(id) {
            let _ = self.apply(id, progress, now);
        }
    }

    /// Takes in observed totals, for the counts and the report.
    fn apply(&mut self, id: ConnId, progress: Progress, now: Instant) -> Result<(), Error> {
        let stopping = self.stop.is_some();
        let finished = self.update(id, |conn| {
            let started_before = conn.started;
            let finished = conn.observe(progress, now);
            conn.worked_in_stop |= stopping && (conn.has_work() || conn.started > started_before);
            finished
        })?;
        if stopping {
            self.tally.requests_completed += finished;
        }
        Ok(())
    }

    fn tally_close(&mut self, conn: &Conn) {
        if conn.worked_in_stop || conn.has_work() {
            self.tally.closed_after_work += 1;
        } else {
            self.tally.closed_idle += 1;
        }
    }

    fn try_finish(&mut self, now: Instant) {
        let Some(stop) = self.stop else { return };
        let open = self.counts.open + self.counts.tasks;
        if !self.is_draining() || !self.listener_closed || open > 0 {
            return;
        }
        self.set_phase(Phase::Stopped);
        self.timers.clear();
        let report = Report {
            graceful: self.tally.force_closed == 0 && self.tally.tasks_cancelled == 0,
            closed_idle: self.tally.closed_idle,
            closed_after_work: self.tally.closed_after_work,
            force_closed: self.tally.force_closed,
            requests_completed: self.tally.requests_completed,
            tasks_finished: self.tally.tasks_finished,
            tasks_cancelled: self.tally.tasks_cancelled,
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

    /// The connection, for changes that do not move it between counts.
    fn conn_mut(&mut self, id: ConnId) -> Option<&mut Conn> {
        match self.slots.get_mut(id.index as usize) {
            Some(Slot {
                generation,
                conn: Some(conn),
            }) if *generation == id.generation => Some(conn),
            _ => None,
        }
    }

    /// Changes one connection and keeps the counts in step.
    fn update<R>(&mut self, id: ConnId, change: impl FnOnce(&mut Conn) -> R) -> Result<R, Error> {
        let counts = &mut self.counts;
        let conn = match self.slots.get_mut(id.index as usize) {
            Some(Slot {
                generation,
                conn: Some(conn),
            }) if *generation == id.generation => conn,
            _ => return Err(Error::UnknownConnection),
        };
        count(counts, conn, Sign::Minus);
        let out = change(conn);
        count(counts, conn, Sign::Plus);
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

/// Whether `id` names an open connection.
fn is_open(slots: &[Slot], id: ConnId) -> bool {
    slots
        .get(id.index as usize)
        .is_some_and(|slot| slot.generation == id.generation && slot.conn.is_some())
}

enum Sign {
    Plus,
    Minus,
}

/// Adds or takes away one connection's share of the counts.
fn count(counts: &mut Counts, conn: &Conn, sign: Sign) {
    let bucket = match (conn.told, conn.state()) {
        (_, ConnState::Upgraded) => &mut counts.upgraded,
        (Told::Finish | Told::CloseIdle { .. }, _) => &mut counts.closing,
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Reports repeated during a drain (each progress report, each call
    /// of the live counts) add no timer: one per connection at most.
    #[test]
    fn repeated_reports_do_not_grow_the_timers() {
        let t0 = Instant::now();
        let mut drain = Lifecycle::new(Config::default()).expect("valid");
        let ids: Vec<ConnId> = (0..10)
            .map(|_| drain.accept(t0).expect("accepting"))
            .collect();
        let reading = Progress {
            arrived: 1,
            ..Progress::default()
        };
        for &id in &ids[5..] {
            drain.handle(id, ConnEvent::Progress(reading), t0).unwrap();
        }
        drain.stop(None, t0);
        for _ in 0..1000 {
            for (i, &id) in ids.iter().enumerate() {
                let progress = if i < 5 { Progress::default() } else { reading };
                drain.handle(id, ConnEvent::Progress(progress), t0).unwrap();
            }
        }
        assert!(
            drain.timers.len() <= ids.len(),
            "{} timers for {} connections",
            drain.timers.len(),
            ids.len()
        );
    }
}
