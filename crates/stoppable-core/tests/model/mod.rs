//! A small model of a driver, run against the core: the ops that can happen
//! to a server, applied in any order, with the invariants checked after
//! every step. Shared by the property test and the fuzz target
//! (`fuzz/fuzz_targets/drain_events.rs`).

use std::time::{Duration, Instant};

use proptest::prelude::*;
use stoppable_core::{Action, Config, ConnEvent, ConnId, Counts, Drain, Phase, Progress, Report};

#[derive(Clone, Debug)]
pub enum Op {
    Accept,
    /// Bytes of the next request arrive on connection `i % open`.
    Arrive(usize),
    Start(usize),
    Finish(usize),
    Upgrade(usize),
    /// The connection's output blocks, or unblocks (the client reads again).
    Block(usize),
    /// The peer (or the driver, carrying out an action) closes it.
    Close(usize),
    /// The driver re-sends an older report.
    Stale(usize),
    Stop(Option<u64>),
    ListenerClosed,
    Tick(u64),
}

/// The driver's side of one connection: the totals it reports.
#[derive(Clone, Debug)]
struct Tracked {
    id: ConnId,
    now: Progress,
    earlier: Progress,
}

/// What a run produced, to compare two runs of the same inputs.
#[derive(Debug, PartialEq)]
pub struct Trace(Vec<(u64, Action)>);

struct Run {
    drain: Drain,
    t0: Instant,
    now: Instant,
    conns: Vec<Tracked>,
    trace: Vec<(u64, Action)>,
    forced: bool,
    stopped: Option<Report>,
    listener_closed: bool,
    stop_called: bool,
    deadline: Option<Instant>,
}

impl Run {
    fn new(config: Config) -> Self {
        let t0 = Instant::now();
        Run {
            drain: Drain::new(config).unwrap(),
            t0,
            now: t0,
            conns: Vec::new(),
            trace: Vec::new(),
            forced: false,
            stopped: None,
            listener_closed: false,
            stop_called: false,
            deadline: None,
        }
    }

    fn report(&mut self, i: usize, p: Progress) {
        let id = self.conns[i].id;
        self.drain
            .handle(id, ConnEvent::Progress(p), self.now)
            .unwrap();
    }

    fn apply(&mut self, op: &Op) -> Result<(), TestCaseError> {
        let pick = |i: usize, n: usize| (n > 0).then(|| i % n);
        let n = self.conns.len();
        match *op {
            Op::Accept => match self.drain.accept(self.now) {
                Ok(id) => self.conns.push(Tracked {
                    id,
                    now: Progress::default(),
                    earlier: Progress::default(),
                }),
                Err(_) => prop_assert!(self.listener_closed || self.stopped.is_some()),
            },
            Op::Arrive(i) => {
                if let Some(i) = pick(i, n) {
                    let c = &mut self.conns[i];
                    if c.now.arrived == c.now.started && !c.now.upgraded {
                        c.earlier = c.now;
                        c.now.arrived += 1;
                        let p = c.now;
                        self.report(i, p);
                    }
                }
            }
            Op::Start(i) => {
                if let Some(i) = pick(i, n) {
                    let c = &mut self.conns[i];
                    if !c.now.upgraded {
                        c.earlier = c.now;
                        c.now.started += 1;
                        c.now.arrived = c.now.arrived.max(c.now.started);
                        let p = c.now;
                        self.report(i, p);
                    }
                }
            }
            Op::Finish(i) => {
                if let Some(i) = pick(i, n) {
                    let c = &mut self.conns[i];
                    if c.now.finished < c.now.started {
                        c.earlier = c.now;
                        c.now.finished += 1;
                        let p = c.now;
                        self.report(i, p);
                    }
                }
            }
            Op::Upgrade(i) => {
                if let Some(i) = pick(i, n) {
                    let c = &mut self.conns[i];
                    c.earlier = c.now;
                    c.now.upgraded = true;
                    let p = c.now;
                    self.report(i, p);
                }
            }
            Op::Block(i) => {
                if let Some(i) = pick(i, n) {
                    let c = &mut self.conns[i];
                    c.earlier = c.now;
                    c.now.output_blocked = !c.now.output_blocked;
                    let p = c.now;
                    self.report(i, p);
                }
            }
            Op::Close(i) => {
                if let Some(i) = pick(i, n) {
                    let c = self.conns.swap_remove(i);
                    self.drain
                        .handle(c.id, ConnEvent::Closed, self.now)
                        .unwrap();
                    // A second close of the same id is refused, not a panic.
                    prop_assert!(self
                        .drain
                        .handle(c.id, ConnEvent::Closed, self.now)
                        .is_err());
                }
            }
            Op::Stale(i) => {
                if let Some(i) = pick(i, n) {
                    let before = self.drain.counts();
                    let p = self.conns[i].earlier;
                    self.report(i, p);
                    let after = self.drain.counts();
                    prop_assert_eq!(before.requests_in_flight, after.requests_in_flight);
                }
            }
            Op::Stop(grace) => {
                let grace = grace.map(Duration::from_millis);
                let first = !self.stop_called;
                self.stop_called = true;
                self.drain.stop(grace, self.now);
                if first && self.drain.phase() == Phase::Delaying {
                    prop_assert!(self.drain.config().drain_delay > Duration::ZERO);
                }
            }
            Op::ListenerClosed => {
                if self.stop_called
                    && matches!(self.drain.phase(), Phase::Draining | Phase::Forcing)
                {
                    self.listener_closed = true;
                    self.drain.listener_closed(self.now);
                }
            }
            Op::Tick(ms) => {
                self.now += Duration::from_millis(ms);
                self.drain.handle_timeout(self.now);
                if let Some(next) = self.drain.poll_timeout() {
                    prop_assert!(
                        next > self.now,
                        "poll_timeout in the past after handle_timeout"
                    );
                }
                if let Some(deadline) = self.deadline {
                    if deadline <= self.now {
                        prop_assert_eq!(
                            self.drain.counts().open,
                            0,
                            "open after the grace deadline"
                        );
                    }
                }
            }
        }
        self.take_actions()?;
        self.check()
    }

    fn take_actions(&mut self) -> Result<(), TestCaseError> {
        let step = self.now.duration_since(self.t0).as_millis() as u64;
        while let Some(action) = self.drain.poll_action() {
            self.trace.push((step, action));
            match action {
                Action::StopAccepting => prop_assert!(self.stop_called),
                Action::ForceClose(id) | Action::Close(id) => {
                    if matches!(action, Action::ForceClose(_)) {
                        self.forced = true;
                    }
                    // At the deadline the core counted it closed already;
                    // otherwise the driver closes it now.
                    if let Some(pos) = self.conns.iter().position(|c| c.id == id) {
                        let c = self.conns.swap_remove(pos);
                        let _ = self.drain.handle(c.id, ConnEvent::Closed, self.now);
                    }
                }
                Action::Shutdown(id) => {
                    prop_assert!(
                        self.conns.iter().any(|c| c.id == id),
                        "shutdown of a closed connection"
                    );
                }
                Action::Stopped(report) => {
                    prop_assert!(self.stopped.is_none(), "stopped twice");
                    self.stopped = Some(report);
                    prop_assert_eq!(report.graceful, !self.forced);
                }
                other => prop_assert!(false, "unknown action {:?}", other),
            }
        }
        Ok(())
    }

    fn check(&mut self) -> Result<(), TestCaseError> {
        let c: Counts = self.drain.counts();
        prop_assert_eq!(c.open, self.conns.len());
        prop_assert_eq!(c.idle + c.active + c.closing + c.upgraded, c.open);
        let in_flight: u64 = self
            .conns
            .iter()
            .map(|t| t.now.started - t.now.finished)
            .sum();
        prop_assert_eq!(c.requests_in_flight, in_flight);
        let phase = self.drain.phase();
        prop_assert_eq!(c.phase, phase);
        if matches!(phase, Phase::Draining | Phase::Forcing) {
            // After the drain began, only connections that never sent a
            // byte may still count as idle: none becomes idle again.
            let fresh = self
                .conns
                .iter()
                .filter(|t| t.now.arrived == 0 && t.now.started == 0)
                .count();
            prop_assert!(c.idle <= fresh, "a connection became idle after the stop");
        }
        let should_stop = self.listener_closed && self.conns.is_empty() && self.stop_called;
        prop_assert_eq!(
            self.stopped.is_some(),
            should_stop,
            "stop completes exactly when all are closed"
        );
        if let Some(report) = self.stopped {
            prop_assert_eq!(phase, Phase::Stopped);
            prop_assert_eq!(self.drain.poll_timeout(), None);
            prop_assert_eq!(report.graceful, report.force_closed == 0);
        }
        if let (Some(deadline), Some(next)) = (self.deadline, self.drain.poll_timeout()) {
            prop_assert!(next <= deadline, "a timeout armed past the grace deadline");
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
    Ok(Trace(run.trace))
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
    let start = first_stop? + delay;
    graces.iter().map(|&(at, g)| at.max(start) + g).min()
}
