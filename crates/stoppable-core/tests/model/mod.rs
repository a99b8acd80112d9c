//! A small model of a driver, run against the core: the ops that can happen
//! to a server, applied in any order, with the invariants checked after
//! every step. Shared by the property test and the fuzz target
//! (`fuzz/fuzz_targets/drain_events.rs`).
//!
//! The model holds the truth of each connection (what its counters say,
//! and request bytes waiting unread in the kernel); the driver reports some
//! changes and not others, and the core reads the truth through its
//! [`Observe`] when it decides. The oracle judges every close by the truth
//! at that moment (B21): a close never cuts work, a force-close always
//! does, `graceful` is true exactly when nothing was cut, the report's
//! counts are exact, and every stop ends within its bound.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use proptest::prelude::*;
use stoppable_core::{
    Action, Config, ConnEvent, ConnId, Counts, Lifecycle, Observe, Phase, Progress, Report,
};

#[derive(Clone, Copy, Debug)]
pub enum Change {
    /// Bytes of the next request arrive.
    Arrive,
    Start,
    Finish,
    Upgrade,
    /// The connection's output blocks, or unblocks (the client reads again).
    Block,
    /// Its first bytes were HTTP/2's preface.
    Http2,
}

#[derive(Clone, Debug)]
pub enum Op {
    Accept,
    /// `change` happens on connection `i % open`; the driver reports it
    /// (`true`), or the core sees it only when it looks (`false`).
    Do(usize, Change, bool),
    /// Request bytes wait unread in the kernel: only looking closer sees them.
    Unread(usize),
    /// The peer (or the driver, carrying out an action) closes it.
    Close(usize),
    /// The driver closes it for a limit of its own (a timeout): its work,
    /// if any, counts cut.
    Cut(usize),
    /// The driver re-sends an older report.
    Stale(usize),
    Stop(Option<u64>),
    ListenerClosed,
    /// Someone reads the live counts.
    Refresh,
    /// The drivers carry out the closes the core ordered (else at the next
    /// tick): a request that arrived meanwhile makes its driver decline.
    Carry,
    Tick(u64),
    /// The application starts a task the stop waits for.
    TaskStart,
    /// One of its tasks ends by itself (if any runs).
    TaskFinish,
}

/// What the connections really do.
#[derive(Default)]
pub struct Truth {
    progress: HashMap<ConnId, Progress>,
    unread: HashSet<ConnId>,
    /// When the head being read began to arrive.
    head_since: HashMap<ConnId, Instant>,
}

impl Truth {
    fn get(&self, id: ConnId) -> Progress {
        self.progress.get(&id).copied().unwrap_or_default()
    }

    /// Begun work, as B11 means it: a request in flight, a head arriving
    /// (or waiting unread), an upgrade, output the client has not taken.
    fn has_work(&self, id: ConnId) -> bool {
        let p = self.get(id);
        let head = p.arrived > p.started || self.unread.contains(&id);
        p.upgraded || p.started > p.finished || p.output_blocked || (!p.http2 && head)
    }

    /// Work the core does not end by itself (a head it cuts at its deadline).
    fn has_lasting_work(&self, id: ConnId) -> bool {
        let p = self.get(id);
        p.upgraded || p.started > p.finished || p.output_blocked
    }
}

impl Observe for Truth {
    fn progress(&mut self, id: ConnId) -> Option<Progress> {
        self.progress.get(&id).copied()
    }

    fn look_closer(&mut self, id: ConnId) -> Option<Progress> {
        let mut p = self.get(id);
        if self.unread.remove(&id) && p.arrived <= p.started {
            p.arrived = p.started + 1;
        }
        self.progress.insert(id, p);
        Some(p)
    }
}

/// The driver's side of one connection: the last totals it reported.
#[derive(Clone, Debug)]
struct Tracked {
    id: ConnId,
    earlier: Progress,
    accepted_at: Instant,
    /// Since when it has served a request (or was upgraded): from then on
    /// its maximum age applies (B23).
    working_since: Option<Instant>,
}

/// What a run produced, to compare two runs of the same inputs.
#[derive(Debug, PartialEq)]
pub struct Trace(Vec<(u64, Action)>);

struct Run {
    drain: Lifecycle<Truth>,
    config: Config,
    t0: Instant,
    now: Instant,
    conns: Vec<Tracked>,
    trace: Vec<(u64, Action)>,
    force_closes: usize,
    /// Connections closed since the stop began, and requests finished.
    closed_in_stop: usize,
    finished_in_stop: u64,
    stopped: Option<Report>,
    /// Connections told to finish (a GOAWAY, for HTTP/2).
    shut_down: HashSet<ConnId>,
    /// Closes ordered, not yet carried out: with the `arrived` the core saw.
    to_close: Vec<(ConnId, u64)>,
    listener_closed: bool,
    /// The drain began (`StopAccepting` taken): no more ageing.
    drain_began: bool,
    stop_at: Option<Instant>,
    deadline: Option<Instant>,
    /// The last op other than time passing, or the last time the core
    /// learned something new of a connection (see `note_learned`).
    last_event: Instant,
    /// What the core had seen of each connection at the last check.
    learned: HashMap<ConnId, Progress>,
    /// The application's tasks running, as the model counts them; and,
    /// since the stop, those that ended and those cancelled.
    tasks: usize,
    tasks_finished: usize,
    tasks_cancelled: usize,
}

impl Run {
    fn new(config: Config) -> Self {
        let t0 = Instant::now();
        Run {
            drain: Lifecycle::with_observer(config, Truth::default()).unwrap(),
            config,
            t0,
            now: t0,
            conns: Vec::new(),
            trace: Vec::new(),
            force_closes: 0,
            closed_in_stop: 0,
            finished_in_stop: 0,
            stopped: None,
            shut_down: HashSet::new(),
            to_close: Vec::new(),
            listener_closed: false,
            drain_began: false,
            stop_at: None,
            deadline: None,
            last_event: t0,
            learned: HashMap::new(),
            tasks: 0,
            tasks_finished: 0,
            tasks_cancelled: 0,
        }
    }

    fn truth(&self) -> &Truth {
        self.drain.observer()
    }

    /// Changes the truth of connection `i`; reports it if `report`.
    fn change(&mut self, i: usize, change: Change, report: bool) {
        let id = self.conns[i].id;
        let unread = self.truth().unread.contains(&id);
        let mut p = self.truth().get(id);
        let before = p;
        match change {
            Change::Arrive if (p.arrived == p.started || unread) && !p.upgraded => {
                p.arrived = p.started + 1;
            }
            Change::Start if !p.upgraded => {
                p.started += 1;
                p.arrived = p.arrived.max(p.started);
            }
            Change::Finish if p.finished < p.started => {
                p.finished += 1;
                if self.stop_at.is_some() {
                    self.finished_in_stop += 1;
                }
            }
            Change::Upgrade => p.upgraded = true,
            Change::Block => p.output_blocked = !p.output_blocked,
            Change::Http2 if p.arrived == 0 && p.started == 0 => p.http2 = true,
            _ => return,
        }
        let now = self.now;
        let truth = self.drain.observer_mut();
        if matches!(change, Change::Arrive | Change::Start) {
            // The driver read the bytes that waited.
            truth.unread.remove(&id);
        }
        // A head waiting unread is still arriving, whatever else changed.
        if p.arrived > p.started || truth.unread.contains(&id) {
            truth.head_since.entry(id).or_insert(now);
        } else {
            truth.head_since.remove(&id);
        }
        truth.progress.insert(id, p);
        if p.started > 0 || p.upgraded {
            self.conns[i].working_since.get_or_insert(now);
        }
        if report {
            self.conns[i].earlier = before;
            self.drain
                .handle(id, ConnEvent::Progress(p), self.now)
                .unwrap();
        }
    }

    /// A connection is gone: the model forgets it.
    fn forget(&mut self, id: ConnId) {
        self.conns.retain(|c| c.id != id);
        self.shut_down.remove(&id);
        let truth = self.drain.observer_mut();
        truth.progress.remove(&id);
        truth.unread.remove(&id);
        truth.head_since.remove(&id);
        if self.stop_at.is_some() {
            self.closed_in_stop += 1;
        }
    }

    fn apply(&mut self, op: &Op) -> Result<(), TestCaseError> {
        let pick = |i: usize, n: usize| (n > 0).then(|| i % n);
        let n = self.conns.len();
        if !matches!(op, Op::Tick(_)) {
            self.last_event = self.now;
        }
        match *op {
            Op::Accept => match self.drain.accept(self.now) {
                Ok(id) => self.conns.push(Tracked {
                    id,
                    earlier: Progress::default(),
                    accepted_at: self.now,
                    working_since: None,
                }),
                Err(_) => prop_assert!(self.listener_closed || self.stopped.is_some()),
            },
            Op::Do(i, change, report) => {
                if let Some(i) = pick(i, n) {
                    self.change(i, change, report);
                }
            }
            Op::Unread(i) => {
                if let Some(i) = pick(i, n) {
                    let id = self.conns[i].id;
                    let p = self.truth().get(id);
                    // HTTP/2's GOAWAY protects its streams, not the bytes.
                    if !p.upgraded && !p.http2 && p.arrived <= p.started {
                        let now = self.now;
                        let truth = self.drain.observer_mut();
                        truth.unread.insert(id);
                        truth.head_since.entry(id).or_insert(now);
                    }
                }
            }
            Op::Close(i) => {
                if let Some(i) = pick(i, n) {
                    let id = self.conns[i].id;
                    self.drain.handle(id, ConnEvent::Closed, self.now).unwrap();
                    // A second close of the same id is refused, not a panic.
                    prop_assert!(self.drain.handle(id, ConnEvent::Closed, self.now).is_err());
                    self.forget(id);
                }
            }
            Op::Cut(i) => {
                if let Some(i) = pick(i, n) {
                    let id = self.conns[i].id;
                    // What the core sees when it looks: not unread bytes.
                    let p = self.truth().get(id);
                    let head = !p.http2 && p.arrived > p.started;
                    let work = p.upgraded || p.started > p.finished || p.output_blocked || head;
                    self.drain.handle(id, ConnEvent::Cut, self.now).unwrap();
                    prop_assert!(self.drain.handle(id, ConnEvent::Cut, self.now).is_err());
                    if work && self.stop_at.is_some() {
                        self.force_closes += 1;
                    }
                    self.forget(id);
                }
            }
            Op::Stale(i) => {
                if let Some(i) = pick(i, n) {
                    let before = self.drain.counts();
                    let (id, p) = (self.conns[i].id, self.conns[i].earlier);
                    self.drain
                        .handle(id, ConnEvent::Progress(p), self.now)
                        .unwrap();
                    if self.drain.phase() == Phase::Serving {
                        let after = self.drain.counts();
                        prop_assert_eq!(before.requests_in_flight, after.requests_in_flight);
                    }
                }
            }
            Op::Stop(grace) => {
                let grace = grace.map(Duration::from_millis);
                let first = self.stop_at.is_none();
                self.stop_at.get_or_insert(self.now);
                self.drain.stop(grace, self.now);
                if first && self.drain.phase() == Phase::Delaying {
                    prop_assert!(self.config.drain_delay > Duration::ZERO);
                }
            }
            Op::ListenerClosed => {
                if matches!(self.drain.phase(), Phase::Draining | Phase::Forcing) {
                    self.listener_closed = true;
                    self.drain.listener_closed(self.now);
                }
            }
            Op::Refresh => self.drain.refresh(self.now),
            Op::Carry => self.carry_out()?,
            Op::TaskStart => {
                let phase = self.drain.phase();
                let too_late = matches!(phase, Phase::Forcing | Phase::Stopped);
                match self.drain.task_started() {
                    Ok(()) => {
                        prop_assert!(!too_late, "a task started in {:?}", phase);
                        self.tasks += 1;
                    }
                    Err(_) => prop_assert!(too_late, "a task refused in {:?}", phase),
                }
            }
            Op::TaskFinish => {
                let counted = self.drain.task_finished(self.now);
                prop_assert_eq!(counted, self.tasks > 0, "only a running task is counted");
                if counted {
                    self.tasks -= 1;
                    if self.stop_at.is_some() {
                        self.tasks_finished += 1;
                    }
                }
            }
            Op::Tick(ms) => {
                self.carry_out()?;
                // Time passes as a driver's timer sees it: each timeout
                // fires at its instant, then the rest of the span.
                let until = self.now + Duration::from_millis(ms);
                loop {
                    let at = match self.drain.poll_timeout() {
                        Some(at) if at <= until => at,
                        _ => until,
                    };
                    self.now = at;
                    self.drain.handle_timeout(at);
                    if let Some(next) = self.drain.poll_timeout() {
                        prop_assert!(next > at, "poll_timeout in the past after handle_timeout");
                    }
                    self.take_actions()?;
                    self.carry_out()?;
                    self.check()?;
                    if at == until {
                        break;
                    }
                }
            }
        }
        self.take_actions()?;
        self.check()
    }

    /// The drivers carry out the ordered closes, each as its connection is
    /// now: one whose request arrived since the order declines, reports,
    /// and serves it (B4); the core must go along.
    fn carry_out(&mut self) -> Result<(), TestCaseError> {
        for (id, seen) in std::mem::take(&mut self.to_close) {
            if !self.conns.iter().any(|c| c.id == id) {
                continue;
            }
            // What its driver can see: its counters, not the kernel's
            // unread bytes (bytes that came after the order are the race
            // every close has).
            let p = self.truth().get(id);
            let busy = p.upgraded || p.started > p.finished || p.output_blocked;
            if p.arrived > seen || busy {
                // Declined: the driver finishes the work, then closes, as a
                // shutdown does (a GOAWAY on HTTP/2).
                self.shut_down.insert(id);
                self.drain
                    .handle(id, ConnEvent::Progress(p), self.now)
                    .unwrap();
                self.take_actions()?;
                continue;
            }
            self.drain.handle(id, ConnEvent::Closed, self.now).unwrap();
            self.forget(id);
            self.take_actions()?;
        }
        Ok(())
    }

    fn take_actions(&mut self) -> Result<(), TestCaseError> {
        let step = self.now.duration_since(self.t0).as_millis() as u64;
        while let Some(action) = self.drain.poll_action() {
            self.trace.push((step, action));
            match action {
                Action::StopAccepting => {
                    prop_assert!(self.stop_at.is_some());
                    self.drain_began = true;
                }
                Action::Finish(id) if !self.drain_began => self.check_aged(id)?,
                Action::CloseIdle(id) => {
                    let at_deadline = self.deadline.is_some_and(|d| d <= self.now);
                    prop_assert!(
                        at_deadline || !self.truth().get(id).http2 || self.shut_down.contains(&id),
                        "an HTTP/2 connection closed before its GOAWAY had its time (B7)"
                    );
                    prop_assert!(
                        !self.truth().has_work(id),
                        "closed with work (B21): {:?} {:?}",
                        self.truth().get(id),
                        self.truth().unread.contains(&id)
                    );
                    // At the deadline the core counted it closed already;
                    // else its driver carries the close out soon.
                    match self.drain.seen(id) {
                        Ok(seen) => self.to_close.push((id, seen.arrived)),
                        Err(_) => self.forget(id),
                    }
                }
                Action::ForceClose(id) => {
                    prop_assert!(
                        self.truth().has_work(id),
                        "force-closed without work: {:?}",
                        self.truth().get(id)
                    );
                    self.check_head_was_late(id)?;
                    self.force_closes += 1;
                    prop_assert!(self.drain.handle(id, ConnEvent::Closed, self.now).is_err());
                    self.forget(id);
                }
                Action::Finish(id) => {
                    self.shut_down.insert(id);
                    prop_assert!(
                        self.conns.iter().any(|c| c.id == id),
                        "shutdown of a closed connection"
                    );
                }
                Action::CancelTasks => {
                    prop_assert!(self.tasks > 0, "tasks cancelled with none running");
                    prop_assert!(
                        self.deadline.is_some_and(|d| d <= self.now),
                        "tasks cancelled before the grace deadline"
                    );
                    self.tasks_cancelled += self.tasks;
                    self.tasks = 0;
                }
                Action::Stopped(report) => {
                    prop_assert!(self.stopped.is_none(), "stopped twice");
                    self.stopped = Some(report);
                    prop_assert_eq!(report.force_closed, self.force_closes);
                    prop_assert_eq!(report.tasks_cancelled, self.tasks_cancelled);
                    prop_assert_eq!(report.tasks_finished, self.tasks_finished);
                    prop_assert_eq!(
                        report.graceful,
                        self.force_closes == 0 && self.tasks_cancelled == 0
                    );
                    prop_assert_eq!(
                        report.closed_idle + report.closed_after_work + report.force_closed,
                        self.closed_in_stop,
                        "every close since the stop, counted once"
                    );
                    prop_assert_eq!(report.requests_completed, self.finished_in_stop);
                }
                other => prop_assert!(false, "unknown action {:?}", other),
            }
        }
        Ok(())
    }

    /// A shutdown before the drain comes from the maximum age (B23): only
    /// to a connection that served a request, no earlier than its age less
    /// a tenth.
    fn check_aged(&mut self, id: ConnId) -> Result<(), TestCaseError> {
        let age = self.config.max_connection_age;
        prop_assert!(age.is_some(), "a shutdown while serving, with no age limit");
        let age = age.unwrap_or_default();
        let conn = self.conns.iter().find(|c| c.id == id);
        prop_assert!(conn.is_some(), "an age shutdown of a closed connection");
        let conn = conn.expect("checked");
        prop_assert!(
            conn.working_since.is_some(),
            "aged before its first request"
        );
        prop_assert!(
            self.now >= conn.accepted_at + age - age / 10,
            "aged {:?} after its accept, age {age:?}",
            self.now - conn.accepted_at
        );
        prop_assert!(self.shut_down.insert(id), "aged twice");
        Ok(())
    }

    /// While serving, a connection that served a request is asked to
    /// finish within its age and a tenth of the first request (B23).
    fn check_ages(&self) -> Result<(), TestCaseError> {
        let Some(age) = self.config.max_connection_age else {
            return Ok(());
        };
        if self.drain_began {
            return Ok(());
        }
        for conn in &self.conns {
            let Some(since) = conn.working_since else {
                continue;
            };
            if self.now >= since + age + age / 10 {
                prop_assert!(
                    self.shut_down.contains(&conn.id),
                    "not asked to finish {:?} after its accept (age {age:?})",
                    self.now - conn.accepted_at
                );
            }
        }
        Ok(())
    }

    /// A head is cut (B8) no earlier than the header-read timeout after it
    /// began, or after the drain began (the delay serves as usual, B16).
    fn check_head_was_late(&self, id: ConnId) -> Result<(), TestCaseError> {
        let truth = self.truth();
        let at_deadline = self.deadline.is_some_and(|d| d <= self.now);
        if at_deadline || truth.has_lasting_work(id) {
            return Ok(());
        }
        let (Some(&since), Some(stop_at)) = (truth.head_since.get(&id), self.stop_at) else {
            return Ok(());
        };
        let from = since.max(stop_at + self.config.drain_delay);
        prop_assert!(
            self.now >= from + self.config.header_read_timeout,
            "a head cut {:?} after it began",
            self.now.duration_since(since)
        );
        Ok(())
    }

    /// A change the core sees only when it looks happened, for the core,
    /// when it looked: a request begun and ended unreported during a head
    /// deadline's wait, then a pipelined head found unread, may take a
    /// second header-read timeout from that look. The bound of
    /// `check_bounded` runs from there.
    fn note_learned(&mut self) {
        let mut changed = false;
        for conn in &self.conns {
            let seen = self.drain.seen(conn.id).ok();
            if seen != self.learned.get(&conn.id).copied() {
                changed = true;
                match seen {
                    Some(seen) => self.learned.insert(conn.id, seen),
                    None => self.learned.remove(&conn.id),
                };
            }
        }
        if changed {
            self.last_event = self.last_event.max(self.now);
        }
    }

    fn check(&mut self) -> Result<(), TestCaseError> {
        self.note_learned();
        let c: Counts = self.drain.counts();
        prop_assert_eq!(c.open, self.conns.len());
        prop_assert_eq!(c.tasks, self.tasks);
        prop_assert_eq!(c.idle + c.active + c.closing + c.upgraded, c.open);
        let phase = self.drain.phase();
        prop_assert_eq!(c.phase, phase);
        let should_stop = self.listener_closed
            && self.conns.is_empty()
            && self.tasks == 0
            && self.stop_at.is_some();
        prop_assert_eq!(
            self.stopped.is_some(),
            should_stop,
            "stop completes exactly when all are closed"
        );
        if let Some(report) = self.stopped {
            prop_assert_eq!(phase, Phase::Stopped);
            prop_assert_eq!(self.drain.poll_timeout(), None);
            prop_assert_eq!(
                report.graceful,
                report.force_closed == 0 && report.tasks_cancelled == 0
            );
        }
        if let Some(deadline) = self.deadline {
            if deadline <= self.now && self.stopped.is_none() {
                prop_assert!(self.conns.is_empty(), "open after the grace deadline");
                prop_assert_eq!(self.tasks, 0, "a task running after the grace deadline");
            }
            if let Some(next) = self.drain.poll_timeout() {
                prop_assert!(next <= deadline, "a timeout armed past the grace deadline");
            }
        }
        self.check_ages()?;
        self.check_bounded()
    }

    /// Every stop ends (B21): once the drain runs and the listener is
    /// closed, with no lasting work anywhere, nothing waits on a peer for
    /// longer than the window, the header-read timeout and the GOAWAY
    /// timeout (twice: the look that finds a connection quiet may come one
    /// timeout late) after the last thing that happened.
    fn check_bounded(&self) -> Result<(), TestCaseError> {
        let (Some(stop_at), true) = (self.stop_at, self.listener_closed) else {
            return Ok(());
        };
        let truth = self.truth();
        if self.tasks > 0 || self.conns.iter().any(|c| truth.has_lasting_work(c.id)) {
            return Ok(());
        }
        let bound = self.config.first_request_window
            + self.config.header_read_timeout
            + 2 * self.config.goaway_timeout;
        let from = self.last_event.max(stop_at + self.config.drain_delay);
        if self.now >= from + bound {
            prop_assert!(
                self.stopped.is_some(),
                "a stop with nothing left to wait for did not end: {} open",
                self.conns.len()
            );
        }
        Ok(())
    }
}

pub fn run(config: Config, ops: &[Op]) -> Result<Trace, TestCaseError> {
    let mut run = Run::new(config);
    for (k, op) in ops.iter().enumerate() {
        // The deadline the ops so far ask for; a later stop may shorten it.
        run.deadline =
            deadline_model(&config, &ops[..=k]).map(|ms| run.t0 + Duration::from_millis(ms));
        run.apply(op)?;
    }
    run.all_work_ends()?;
    Ok(Trace(run.trace))
}

impl Run {
    /// Every stop ends (B21): the work ends, unreported (an upgraded
    /// connection's peer closes it), the listener closes, then time passes:
    /// the stop must complete within the window, the header-read timeout
    /// and twice the GOAWAY timeout, whatever the peers left open.
    fn all_work_ends(&mut self) -> Result<(), TestCaseError> {
        if self.stop_at.is_none() || self.stopped.is_some() {
            return Ok(());
        }
        while self.tasks > 0 {
            self.apply(&Op::TaskFinish)?;
        }
        let ids: Vec<ConnId> = self.conns.iter().map(|c| c.id).collect();
        for id in ids {
            let mut p = self.truth().get(id);
            if p.upgraded {
                self.drain.handle(id, ConnEvent::Closed, self.now).unwrap();
                self.forget(id);
                continue;
            }
            if p.finished < p.started && self.stop_at.is_some() {
                self.finished_in_stop += p.started - p.finished;
            }
            p.finished = p.started;
            p.output_blocked = false;
            self.drain.observer_mut().progress.insert(id, p);
        }
        self.last_event = self.now;
        self.take_actions()?;
        self.carry_out()?;
        let delay = self.config.drain_delay.as_millis() as u64;
        self.apply(&Op::Tick(delay))?;
        self.apply(&Op::ListenerClosed)?;
        let bound = self.config.first_request_window
            + self.config.header_read_timeout
            + 2 * self.config.goaway_timeout;
        // Each round the core may learn one more thing (a pipelined head
        // found unread); `check_bounded` holds it to the bound after each.
        for _ in 0..4 {
            if self.stopped.is_some() {
                break;
            }
            self.apply(&Op::Tick(bound.as_millis() as u64 + 1))?;
        }
        prop_assert!(
            self.stopped.is_some(),
            "the stop did not end once all work had: {} open",
            self.conns.len()
        );
        Ok(())
    }
}

/// When the grace deadline falls, from the ops alone: the drain starts at
/// the first stop plus the readiness delay; each stop with a grace bounds
/// the deadline by max(its time, drain start) + grace. `None` if no grace.
fn deadline_model(config: &Config, ops: &[Op]) -> Option<u64> {
    let delay = config.drain_delay.as_millis() as u64;
    let mut now = 0u64;
    let mut first_stop = None;
    let mut graces: Vec<(u64, u64)> = Vec::new();
    for op in ops {
        match op {
            Op::Tick(ms) => now += ms,
            Op::Stop(grace) => {
                first_stop.get_or_insert(now);
                if let Some(g) = grace {
                    graces.push((now, *g));
                }
            }
            _ => {}
        }
    }
    // A zero grace during the delay ends the delay at once.
    let mut start = first_stop? + delay;
    if let Some(&(at, _)) = graces.iter().find(|&&(at, g)| g == 0 && at < start) {
        start = at;
    }
    graces.iter().map(|&(at, g)| at.max(start) + g).min()
}
