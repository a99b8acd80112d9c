//! One connection as the core sees it, and every per-connection decision of a
//! drain in one table ([`Conn::next_step`]).

use std::time::{Duration, Instant};

/// What the driver observed on a connection: monotonic totals and a flag.
///
/// Totals rather than deltas, so that any thread may report any connection at
/// any time and a stale report is harmless: the core keeps the largest totals
/// it has seen. The per-request hot path of a driver is then two counter
/// increments on the connection's own memory, and the core hears of them
/// when it needs to (at the stop, and during a drain).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    /// Requests started on this connection since it was accepted.
    pub started: u64,
    /// Requests finished (response ended, failed or cancelled).
    pub finished: u64,
    /// Requests whose first bytes arrived. One more than `started` while a
    /// request head is being read (B4, B8); a total, so it never goes back.
    pub arrived: u64,
    /// The connection was upgraded; it stays tracked until closed (B14).
    pub upgraded: bool,
    /// Output waits that the connection could not write: the client is not
    /// reading a response it was sent. The connection has work then, even
    /// with no request in flight, and is forced if the grace ends (B9, B11).
    /// Not a total: the latest report wins.
    pub output_blocked: bool,
}

/// What a connection is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ConnState {
    /// Accepted, no byte yet.
    Fresh,
    /// Between requests.
    Idle,
    /// Part of a request head arrived; no request started yet.
    Reading,
    /// At least one request in flight, or output the client has not taken.
    Active,
    /// Upgraded; its IO belongs to a handler now.
    Upgraded,
}

/// What the core has told the driver to do with a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Told {
    /// Nothing yet.
    Nothing,
    /// Finish the current work, then close ([`Action::Shutdown`](crate::Action::Shutdown)).
    Shutdown,
    /// Close now ([`Action::Close`](crate::Action::Close)).
    Close,
}

/// What the drain does next with one connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// Nothing to do now.
    Wait,
    /// Nothing now; look again at this instant.
    WaitUntil(Instant),
    /// Tell it to finish its work and close; look again at the instant if any.
    Shutdown(Option<Instant>),
    /// Tell it to close now.
    Close,
}

#[derive(Clone, Debug)]
pub(crate) struct Conn {
    pub(crate) accepted_at: Instant,
    pub(crate) started: u64,
    pub(crate) finished: u64,
    /// When the core learned that a head is being read.
    pub(crate) reading_since: Option<Instant>,
    pub(crate) arrived: u64,
    pub(crate) upgraded: bool,
    pub(crate) output_blocked: bool,
    /// Had work at any time since the stop began (for the report, B11).
    pub(crate) worked_in_stop: bool,
    pub(crate) told: Told,
}

impl Conn {
    pub(crate) fn new(now: Instant) -> Self {
        Conn {
            accepted_at: now,
            started: 0,
            finished: 0,
            reading_since: None,
            arrived: 0,
            upgraded: false,
            output_blocked: false,
            worked_in_stop: false,
            told: Told::Nothing,
        }
    }

    pub(crate) fn in_flight(&self) -> u64 {
        self.started - self.finished
    }

    pub(crate) fn state(&self) -> ConnState {
        if self.upgraded {
            ConnState::Upgraded
        } else if self.in_flight() > 0 || self.output_blocked {
            ConnState::Active
        } else if self.reading_since.is_some() {
            ConnState::Reading
        } else if self.arrived > 0 || self.started > 0 {
            ConnState::Idle
        } else {
            ConnState::Fresh
        }
    }

    pub(crate) fn has_work(&self) -> bool {
        matches!(
            self.state(),
            ConnState::Reading | ConnState::Active | ConnState::Upgraded
        )
    }

    /// Applies observed totals; returns how many requests finished anew.
    /// Stale (smaller) totals are ignored, and `finished` never passes `started`.
    pub(crate) fn observe(&mut self, p: Progress, now: Instant) -> u64 {
        let started = p.started.max(self.started);
        let finished = p.finished.max(self.finished).min(started);
        let newly_finished = finished - self.finished;
        self.started = started;
        self.finished = finished;
        self.arrived = p.arrived.max(self.arrived);
        self.upgraded |= p.upgraded;
        self.output_blocked = p.output_blocked;
        if self.arrived > self.started {
            self.reading_since.get_or_insert(now);
        } else {
            self.reading_since = None;
        }
        newly_finished
    }

    /// The drain's decision table for one open connection, by its state and
    /// what it was already told. Pure: the caller applies the step.
    ///
    /// | state    | told nothing                          | told shutdown                   |
    /// |----------|---------------------------------------|---------------------------------|
    /// | Fresh    | window over ? close : wait for window | (never told)                    |
    /// | Idle     | shutdown (closes at once)             | wait for the close              |
    /// | Reading  | shutdown, head deadline               | deadline over ? close : wait    |
    /// | Active   | shutdown (closes after its work)      | wait for the close              |
    /// | Upgraded | wait (handlers see the drain, B15)    | wait for the close              |
    ///
    /// A connection told to close only waits for the driver's `Closed`.
    pub(crate) fn next_step(&self, window: Duration, head_timeout: Duration, now: Instant) -> Step {
        let head_deadline = self
            .reading_since
            .and_then(|since| since.checked_add(head_timeout));
        match (self.told, self.state()) {
            (Told::Close, _) => Step::Wait,
            (Told::Nothing, ConnState::Fresh) => match self.accepted_at.checked_add(window) {
                Some(end) if end > now => Step::WaitUntil(end),
                _ => Step::Close,
            },
            (Told::Nothing, ConnState::Idle | ConnState::Active) => Step::Shutdown(None),
            (Told::Nothing, ConnState::Reading) => match head_deadline {
                Some(end) if end <= now => Step::Close,
                end => Step::Shutdown(end),
            },
            (_, ConnState::Upgraded) => Step::Wait,
            (Told::Shutdown, ConnState::Reading) => match head_deadline {
                Some(end) if end > now => Step::WaitUntil(end),
                Some(_) => Step::Close,
                None => Step::Wait,
            },
            (Told::Shutdown, _) => Step::Wait,
        }
    }
}
