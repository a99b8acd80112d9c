//! One connection as the core sees it, and every per-connection decision of a
//! drain in one table ([`Conn::next_step`]).

use std::time::{Duration, Instant};

use crate::Config;

/// What the driver observed on a connection: monotonic totals and flags.
///
/// Totals rather than deltas, so that any thread may report any connection at
/// any time and a stale report is harmless: the core keeps the largest totals
/// it has seen. The per-request hot path of a driver is then two counter
/// increments on the connection's own memory; the core reads them through
/// the driver's [`Observe`](crate::Observe) whenever it decides about the
/// connection (B21), and hears of them when the driver reports.
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
    /// The connection speaks HTTP/2 (its preface arrived). It is never
    /// closed without a GOAWAY first (B7), and has no request head to read
    /// between streams: HTTP/2's own GOAWAY protects a stream that is
    /// arriving, so bytes after its first stream (pings, settings, window
    /// updates) are no head. Once set, it stays set.
    pub http2: bool,
}

/// What a connection is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ConnState {
    /// Accepted, no byte yet.
    Fresh,
    /// Between requests.
    Idle,
    /// Part of an HTTP/1 request head arrived; no request started yet.
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
    /// Finish the current work, then close ([`Action::Finish`](crate::Action::Finish)).
    Finish,
    /// Close now ([`Action::CloseIdle`](crate::Action::CloseIdle)), as it was when
    /// decided: if a request arrives before the driver carries it out, the
    /// driver serves it instead, and the core hears of it.
    CloseIdle { arrived: u64 },
}

/// What the drain does next with one connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// Nothing to do until the driver reports.
    Wait,
    /// Nothing now; look again at this instant.
    WaitUntil(Instant),
    /// Tell it to finish its work and close.
    Finish,
    /// Close it: it has no work.
    CloseIdle,
    /// Close it, cutting its work: a request head late past its deadline,
    /// or HTTP/2 streams opened after the GOAWAY.
    Cut,
}

/// The instants a drain's decisions are measured from.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Clock<'a> {
    pub(crate) config: &'a Config,
    /// When the drain began: a head's deadline runs from then at the
    /// earliest, since the readiness delay serves as usual (B16).
    pub(crate) drain_started_at: Instant,
    pub(crate) now: Instant,
}

#[derive(Clone, Debug)]
pub(crate) struct Conn {
    pub(crate) accepted_at: Instant,
    pub(crate) started: u64,
    pub(crate) finished: u64,
    pub(crate) arrived: u64,
    pub(crate) upgraded: bool,
    pub(crate) output_blocked: bool,
    pub(crate) http2: bool,
    /// The head being read: its `arrived` total, and when the core first
    /// saw it. A later head is a new one, with a clock of its own.
    pub(crate) head: Option<(u64, Instant)>,
    /// Told to finish and seen with no work left since then: the wait for
    /// the client to close (or to acknowledge a GOAWAY) runs from here (B7).
    pub(crate) quiet_since: Option<Instant>,
    /// When it was told to finish.
    pub(crate) told_at: Option<Instant>,
    /// HTTP/2: the streams begun by the end of the GOAWAY timeout after the
    /// shutdown. A client must open none once it has the GOAWAY (RFC 9113
    /// §6.8); those it opens later hold the stop no longer than these.
    pub(crate) allowed_streams: Option<u64>,
    /// The one instant at which the core looks at it again, if any.
    pub(crate) wake_at: Option<Instant>,
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
            arrived: 0,
            upgraded: false,
            output_blocked: false,
            http2: false,
            head: None,
            quiet_since: None,
            told_at: None,
            allowed_streams: None,
            wake_at: None,
            worked_in_stop: false,
            told: Told::Nothing,
        }
    }

    pub(crate) fn in_flight(&self) -> u64 {
        self.started - self.finished
    }

    /// An HTTP/1 request head is being read: bytes arrived that no started
    /// request accounts for.
    fn is_reading(&self) -> bool {
        !self.http2 && self.arrived > self.started
    }

    pub(crate) fn state(&self) -> ConnState {
        if self.upgraded {
            ConnState::Upgraded
        } else if self.in_flight() > 0 || self.output_blocked {
            ConnState::Active
        } else if self.is_reading() {
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
        self.http2 |= p.http2;
        self.head = match self.head {
            _ if !self.is_reading() => None,
            Some((arrived, since)) if arrived == self.arrived => Some((arrived, since)),
            _ => Some((self.arrived, now)),
        };
        if let Told::CloseIdle { arrived } = self.told {
            if self.arrived > arrived || self.has_work() {
                // Its request came before the close was carried out: the
                // driver serves it, then closes (B4).
                self.told = Told::Finish;
                self.told_at.get_or_insert(now);
            }
        }
        if self.told == Told::Finish {
            self.quiet_since = match self.quiet_since {
                _ if self.has_work() => None,
                since => Some(since.unwrap_or(now)),
            };
        }
        newly_finished
    }

    /// Told to finish now.
    pub(crate) fn shut_down(&mut self, now: Instant) {
        self.told = Told::Finish;
        self.told_at = Some(now);
        if !self.has_work() {
            self.quiet_since = Some(now);
        }
    }

    /// HTTP/2, told to finish a GOAWAY timeout ago: the streams begun until
    /// now are all it may still finish (see `allowed_streams`).
    pub(crate) fn note_allowed_streams(&mut self, config: &Config, now: Instant) {
        let due = self
            .told_at
            .and_then(|at| at.checked_add(config.goaway_timeout));
        if self.http2 && self.allowed_streams.is_none() && due.is_some_and(|due| due <= now) {
            self.allowed_streams = Some(self.started);
        }
    }

    /// The drain's decision table for one open connection, by what it was
    /// told and its state. Pure: the caller applies the step, and looks at
    /// the connection as it is now before asking (B21).
    ///
    /// | state    | told nothing                              | told to finish (shut down)                 |
    /// |----------|-------------------------------------------|--------------------------------------------|
    /// | Fresh    | window over ? (HTTP/2 ? shut down : close) : wait for the window | quiet too long ? close : wait |
    /// | Idle     | shut down (HTTP/1 closes at once)         | quiet too long ? close : wait              |
    /// | Reading  | head late ? cut : shut down               | head late ? cut : wait for its deadline    |
    /// | Active   | shut down (closes after its work)         | HTTP/2 with only streams opened after its GOAWAY in flight, and no output waiting ? cut : look again in a while |
    /// | Upgraded | wait (handlers see the drain, B15)        | wait for the close                         |
    ///
    /// "Quiet too long": told to finish, with no work, for the GOAWAY
    /// timeout (B7): the client neither closed nor let the server close. A
    /// connection told to close only waits for the driver's `Closed`.
    pub(crate) fn next_step(&self, clock: Clock<'_>) -> Step {
        let Clock {
            config,
            drain_started_at,
            now,
        } = clock;
        let after = |since: Instant, wait: Duration| since.checked_add(wait);
        let due = |at: Option<Instant>| match at {
            Some(at) if at > now => Step::WaitUntil(at),
            Some(_) => Step::CloseIdle,
            None => Step::Wait,
        };
        let head_deadline = self
            .head
            .and_then(|(_, since)| after(since.max(drain_started_at), config.header_read_timeout));
        let head_late = head_deadline.is_some_and(|at| at <= now);
        let quiet_deadline = self
            .quiet_since
            .and_then(|since| after(since, config.goaway_timeout));
        match (self.told, self.state()) {
            (Told::CloseIdle { .. }, _) | (_, ConnState::Upgraded) => Step::Wait,
            (_, ConnState::Reading) if head_late => Step::Cut,
            (Told::Nothing, ConnState::Fresh) => {
                match due(after(self.accepted_at, config.first_request_window)) {
                    Step::CloseIdle if self.http2 => Step::Finish,
                    step => step,
                }
            }
            (Told::Nothing, _) => Step::Finish,
            (Told::Finish, ConnState::Reading) => due(head_deadline),
            (Told::Finish, ConnState::Fresh | ConnState::Idle) => due(quiet_deadline),
            // Every stream it may finish has, and those still in flight
            // were opened after the client had the GOAWAY. Not while output
            // waits for the client: it may be an allowed stream's end, which
            // the client is owed (B5).
            (Told::Finish, ConnState::Active)
                if self.in_flight() > 0
                    && !self.output_blocked
                    && self.allowed_streams.is_some_and(|n| self.finished >= n) =>
            {
                Step::Cut
            }
            // Its driver reports when the work ends; look again anyway, so
            // a report that never comes cannot hold the stop.
            (Told::Finish, ConnState::Active) => match after(now, config.goaway_timeout) {
                Some(at) => Step::WaitUntil(at),
                None => Step::Wait,
            },
        }
    }
}
