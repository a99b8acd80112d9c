//! One test per transition of the core, named after the behaviour it serves.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use stoppable_core::{
    Action, Config, ConfigError, ConnEvent, ConnId, ConnState, Error, Lifecycle, Observe, Phase,
    Progress,
};

const MS: Duration = Duration::from_millis(1);

fn drain() -> (Lifecycle, Instant) {
    (Lifecycle::new(Config::default()).unwrap(), Instant::now())
}

fn actions<O: Observe>(drain: &mut Lifecycle<O>) -> Vec<Action> {
    std::iter::from_fn(|| drain.poll_action()).collect()
}

fn progress(drain: &mut Lifecycle, id: ConnId, p: Progress, now: Instant) {
    drain.handle(id, ConnEvent::Progress(p), now).unwrap();
}

fn idle_after_one_request() -> Progress {
    Progress {
        started: 1,
        finished: 1,
        arrived: 1,
        ..Progress::default()
    }
}

fn in_flight(n: u64) -> Progress {
    Progress {
        started: n,
        finished: 0,
        arrived: n,
        ..Progress::default()
    }
}

/// Upgraded: work with no timer of its own (B14), so only the grace shows
/// in `poll_timeout`.
fn upgraded() -> Progress {
    Progress {
        started: 1,
        arrived: 1,
        upgraded: true,
        ..Progress::default()
    }
}

/// What the connections really do, as a driver's counters hold it: the core
/// reads it when it decides (B21), whether or not it was reported.
#[derive(Default)]
struct Truth {
    progress: HashMap<ConnId, Progress>,
    /// Request bytes waiting in the kernel, unread.
    unread: HashSet<ConnId>,
}

impl Observe for Truth {
    fn progress(&mut self, id: ConnId) -> Option<Progress> {
        self.progress.get(&id).copied()
    }

    fn look_closer(&mut self, id: ConnId) -> Option<Progress> {
        let mut p = self.progress(id).unwrap_or_default();
        if self.unread.remove(&id) {
            p.arrived = p.started + 1;
        }
        self.progress.insert(id, p);
        Some(p)
    }
}

fn observed() -> (Lifecycle<Truth>, Instant) {
    let drain = Lifecycle::with_observer(Config::default(), Truth::default()).unwrap();
    (drain, Instant::now())
}

fn stopped(actions: &[Action]) -> Option<stoppable_core::Report> {
    actions.iter().find_map(|a| match a {
        Action::Stopped(r) => Some(*r),
        _ => None,
    })
}

#[test]
fn b1_stop_accepting_first_and_stop_waits_for_listener_close() {
    let (mut d, t0) = drain();
    d.stop(None, t0);
    assert_eq!(actions(&mut d), vec![Action::StopAccepting]);
    assert_eq!(d.phase(), Phase::Draining);
    d.listener_closed(t0 + MS);
    let report = stopped(&actions(&mut d)).expect("stopped once the listener closed");
    assert!(report.graceful);
    assert_eq!(report.elapsed, MS);
}

#[test]
fn b1_queued_connection_accepted_during_drain_gets_the_window() {
    let (mut d, t0) = drain();
    d.stop(None, t0);
    actions(&mut d);
    let queued = d.accept(t0 + MS).unwrap();
    assert!(
        actions(&mut d).is_empty(),
        "a fresh connection is not closed at once"
    );
    assert_eq!(
        d.poll_timeout(),
        Some(t0 + MS + Config::default().first_request_window)
    );
    d.listener_closed(t0 + MS);
    assert_eq!(d.state(queued), Ok(ConnState::Fresh));
}

#[test]
fn b2_accept_after_listener_closed_is_an_error() {
    let (mut d, t0) = drain();
    d.stop(None, t0);
    d.listener_closed(t0);
    assert_eq!(d.accept(t0), Err(Error::NotAccepting));
}

#[test]
fn b3_idle_connection_is_shut_down_at_once() {
    let (mut d, t0) = drain();
    let c = d.accept(t0).unwrap();
    progress(&mut d, c, idle_after_one_request(), t0);
    d.stop(None, t0 + MS);
    assert_eq!(
        actions(&mut d),
        vec![Action::StopAccepting, Action::Finish(c)]
    );
    d.listener_closed(t0 + MS);
    d.handle(c, ConnEvent::Closed, t0 + 2 * MS).unwrap();
    let report = stopped(&actions(&mut d)).unwrap();
    assert_eq!((report.closed_idle, report.closed_after_work), (1, 0));
}

#[test]
fn b3_fresh_connection_older_than_window_is_closed() {
    let (mut d, t0) = drain();
    let c = d.accept(t0).unwrap();
    let later = t0 + Config::default().first_request_window;
    d.stop(None, later);
    assert_eq!(
        actions(&mut d),
        vec![Action::StopAccepting, Action::CloseIdle(c)]
    );
}

#[test]
fn b4_fresh_connection_gets_rest_of_window_then_closes() {
    let (mut d, t0) = drain();
    let c = d.accept(t0).unwrap();
    d.stop(None, t0 + 100 * MS);
    assert_eq!(actions(&mut d), vec![Action::StopAccepting]);
    let end = t0 + Config::default().first_request_window;
    assert_eq!(d.poll_timeout(), Some(end));
    d.handle_timeout(end - MS);
    assert!(actions(&mut d).is_empty(), "early timeout is a no-op");
    d.handle_timeout(end);
    assert_eq!(actions(&mut d), vec![Action::CloseIdle(c)]);
    assert_eq!(d.poll_timeout(), None);
}

#[test]
fn b4_request_found_by_looking_closer_turns_a_close_into_a_shutdown() {
    let (mut d, t0) = observed();
    let c = d.accept(t0).unwrap();
    // Its request waits in the kernel, unread, when the window ends.
    d.observer_mut().unread.insert(c);
    let late = t0 + Config::default().first_request_window;
    d.stop(None, late);
    assert_eq!(
        actions(&mut d),
        vec![Action::StopAccepting, Action::Finish(c)]
    );
    assert_eq!(d.state(c), Ok(ConnState::Reading));
}

#[test]
fn b21_decisions_read_the_connection_as_it_is_now() {
    let (mut d, t0) = observed();
    let c = d.accept(t0).unwrap();
    let grace = Duration::from_secs(1);
    // Served once before the stop, unreported.
    d.observer_mut()
        .progress
        .insert(c, idle_after_one_request());
    d.stop(Some(grace), t0);
    d.listener_closed(t0);
    assert_eq!(
        actions(&mut d),
        vec![Action::StopAccepting, Action::Finish(c)]
    );
    // Its next request starts and nobody reports it: the deadline sees it.
    let next = Progress {
        started: 2,
        finished: 1,
        arrived: 2,
        ..Progress::default()
    };
    d.observer_mut().progress.insert(c, next);
    d.handle_timeout(t0 + grace);
    let acts = actions(&mut d);
    assert!(acts.contains(&Action::ForceClose(c)), "{acts:?}");
    assert!(!stopped(&acts).unwrap().graceful);
}

#[test]
fn b21_a_head_after_the_one_seen_at_the_stop_gets_its_own_deadline() {
    let delay = Duration::from_secs(11);
    let config = Config::default().with_drain_delay(delay);
    let mut d = Lifecycle::with_observer(config, Truth::default()).unwrap();
    let t0 = Instant::now();
    let c = d.accept(t0).unwrap();
    // A head is being read at the stop...
    d.observer_mut().progress.insert(
        c,
        Progress {
            arrived: 1,
            ..Progress::default()
        },
    );
    d.stop(None, t0);
    // ...it completes and another begins during the delay, unreported.
    let next = Progress {
        started: 1,
        finished: 1,
        arrived: 2,
        ..Progress::default()
    };
    d.observer_mut().progress.insert(c, next);
    d.handle_timeout(t0 + delay);
    assert_eq!(
        actions(&mut d),
        vec![Action::StopAccepting, Action::Finish(c)],
        "the new head is not cut by the old one's deadline"
    );
    let end = t0 + delay + Config::default().header_read_timeout;
    assert_eq!(d.poll_timeout(), Some(end));
}

#[test]
fn b7_http2_bytes_between_streams_are_no_head() {
    let (mut d, t0) = drain();
    let c = d.accept(t0).unwrap();
    let pinged = Progress {
        started: 1,
        finished: 1,
        arrived: 2,
        http2: true,
        ..Progress::default()
    };
    progress(&mut d, c, pinged, t0);
    assert_eq!(d.state(c), Ok(ConnState::Idle));
}

#[test]
fn b7_fresh_http2_connection_is_shut_down_not_closed_after_its_window() {
    let (mut d, t0) = drain();
    let c = d.accept(t0).unwrap();
    let preface = Progress {
        http2: true,
        ..Progress::default()
    };
    progress(&mut d, c, preface, t0);
    let late = t0 + Config::default().first_request_window;
    d.stop(None, late);
    assert_eq!(
        actions(&mut d),
        vec![Action::StopAccepting, Action::Finish(c)],
        "a GOAWAY first"
    );
}

#[test]
fn b7_connection_quiet_after_its_goaway_is_closed_after_the_timeout() {
    let (mut d, t0) = drain();
    let c = d.accept(t0).unwrap();
    let served = Progress {
        http2: true,
        ..idle_after_one_request()
    };
    progress(&mut d, c, served, t0);
    d.stop(None, t0);
    d.listener_closed(t0);
    assert_eq!(
        actions(&mut d),
        vec![Action::StopAccepting, Action::Finish(c)]
    );
    let bound = t0 + Config::default().goaway_timeout;
    assert_eq!(d.poll_timeout(), Some(bound), "no grace, yet a bound");
    d.handle_timeout(bound);
    assert_eq!(actions(&mut d), vec![Action::CloseIdle(c)]);
    d.handle(c, ConnEvent::Closed, bound).unwrap();
    assert!(stopped(&actions(&mut d)).unwrap().graceful);
}

#[test]
fn b7_the_goaway_timeout_runs_from_when_the_work_ended() {
    let (mut d, t0) = drain();
    let c = d.accept(t0).unwrap();
    progress(
        &mut d,
        c,
        Progress {
            http2: true,
            ..in_flight(1)
        },
        t0,
    );
    d.stop(None, t0);
    actions(&mut d);
    let ended = t0 + 300 * MS;
    let done = Progress {
        http2: true,
        finished: 1,
        ..in_flight(1)
    };
    progress(&mut d, c, done, ended);
    let bound = ended + Config::default().goaway_timeout;
    // The look armed while it was busy comes first, and changes nothing.
    d.handle_timeout(d.poll_timeout().unwrap());
    assert!(actions(&mut d).is_empty());
    assert_eq!(d.poll_timeout(), Some(bound));
    d.handle_timeout(bound);
    assert_eq!(actions(&mut d), vec![Action::CloseIdle(c)]);
}

#[test]
fn b4_fresh_connection_that_sends_within_window_is_served() {
    let (mut d, t0) = drain();
    let c = d.accept(t0).unwrap();
    d.stop(None, t0 + MS);
    actions(&mut d);
    let head = Progress {
        arrived: 1,
        ..Progress::default()
    };
    progress(&mut d, c, head, t0 + 2 * MS);
    assert_eq!(d.state(c), Ok(ConnState::Reading));
    assert_eq!(
        actions(&mut d),
        vec![Action::Finish(c)],
        "served, then closed (B6)"
    );
    progress(&mut d, c, in_flight(1), t0 + 3 * MS);
    assert_eq!(d.state(c), Ok(ConnState::Active));
    assert!(actions(&mut d).is_empty());
}

#[test]
fn b4_bytes_already_received_are_not_cut() {
    let (mut d, t0) = drain();
    let c = d.accept(t0).unwrap();
    let next_head = Progress {
        started: 1,
        finished: 1,
        arrived: 2,
        ..Progress::default()
    };
    progress(&mut d, c, next_head, t0);
    d.stop(None, t0 + MS);
    // Finish, never CloseIdle: the driver finishes reading the head first.
    assert_eq!(
        actions(&mut d),
        vec![Action::StopAccepting, Action::Finish(c)]
    );
}

#[test]
fn b5_in_flight_request_is_waited_for_without_grace() {
    let (mut d, t0) = drain();
    let c = d.accept(t0).unwrap();
    progress(&mut d, c, in_flight(1), t0);
    d.stop(None, t0);
    d.listener_closed(t0);
    actions(&mut d);
    // No grace: no deadline, only looks at the connection now and then.
    let hour = t0 + Duration::from_secs(3600);
    d.handle_timeout(hour);
    assert!(actions(&mut d).is_empty());
    assert!(d.poll_timeout().unwrap() > hour);
    progress(
        &mut d,
        c,
        Progress {
            finished: 1,
            ..in_flight(1)
        },
        t0 + 5 * MS,
    );
    d.handle(c, ConnEvent::Closed, t0 + 5 * MS).unwrap();
    let report = stopped(&actions(&mut d)).unwrap();
    assert_eq!(
        (report.closed_after_work, report.requests_completed),
        (1, 1)
    );
}

#[test]
fn b6_active_connection_is_told_to_close_after_its_response() {
    let (mut d, t0) = drain();
    let c = d.accept(t0).unwrap();
    progress(&mut d, c, in_flight(1), t0);
    d.stop(None, t0);
    assert_eq!(
        actions(&mut d),
        vec![Action::StopAccepting, Action::Finish(c)]
    );
    assert_eq!(d.counts().closing, 1);
}

#[test]
fn b7_http2_streams_count_as_requests_in_flight() {
    let (mut d, t0) = drain();
    let c = d.accept(t0).unwrap();
    progress(&mut d, c, in_flight(3), t0);
    assert_eq!(d.counts().requests_in_flight, 3);
    d.stop(None, t0);
    assert_eq!(
        actions(&mut d),
        vec![Action::StopAccepting, Action::Finish(c)]
    );
    progress(
        &mut d,
        c,
        Progress {
            finished: 2,
            ..in_flight(3)
        },
        t0 + MS,
    );
    assert_eq!(d.counts().requests_in_flight, 1);
}

#[test]
fn b8_half_sent_head_is_bounded_by_header_read_timeout() {
    let (mut d, t0) = drain();
    let c = d.accept(t0).unwrap();
    progress(
        &mut d,
        c,
        Progress {
            arrived: 1,
            ..Progress::default()
        },
        t0,
    );
    d.stop(None, t0);
    assert_eq!(
        actions(&mut d),
        vec![Action::StopAccepting, Action::Finish(c)]
    );
    let end = t0 + Config::default().header_read_timeout;
    assert_eq!(d.poll_timeout(), Some(end));
    d.handle_timeout(end);
    assert_eq!(actions(&mut d), vec![Action::ForceClose(c)]);
    d.listener_closed(end);
    let report = stopped(&actions(&mut d)).unwrap();
    assert!(!report.graceful, "a head cut is work cut (B11)");
    assert_eq!(report.force_closed, 1);
}

#[test]
fn b8_peer_reset_counts_as_closed() {
    let (mut d, t0) = drain();
    let c = d.accept(t0).unwrap();
    progress(&mut d, c, in_flight(1), t0);
    d.stop(None, t0);
    d.listener_closed(t0);
    d.handle(c, ConnEvent::Closed, t0 + MS).unwrap();
    assert!(stopped(&actions(&mut d)).is_some());
    assert_eq!(
        d.handle(c, ConnEvent::Closed, t0 + MS),
        Err(Error::UnknownConnection)
    );
}

#[test]
fn b9_grace_force_closes_work_and_closes_idle_at_deadline() {
    let (mut d, t0) = drain();
    let busy = d.accept(t0).unwrap();
    let idle = d.accept(t0).unwrap();
    progress(&mut d, busy, in_flight(1), t0);
    progress(&mut d, idle, idle_after_one_request(), t0);
    d.stop(Some(300 * MS), t0);
    d.listener_closed(t0);
    actions(&mut d);
    assert_eq!(d.poll_timeout(), Some(t0 + 300 * MS));
    d.handle_timeout(t0 + 300 * MS);
    let acts = actions(&mut d);
    assert!(acts.contains(&Action::ForceClose(busy)));
    assert!(acts.contains(&Action::CloseIdle(idle)));
    let report = stopped(&acts).unwrap();
    assert!(!report.graceful);
    assert_eq!((report.force_closed, report.closed_idle), (1, 1));
    assert_eq!(report.elapsed, 300 * MS);
}

#[test]
fn b9_output_the_client_does_not_take_is_work_forced_at_deadline() {
    let (mut d, t0) = drain();
    let stuck = d.accept(t0).unwrap();
    // Its request finished, but the response waits unwritten: not idle.
    let blocked = Progress {
        output_blocked: true,
        ..idle_after_one_request()
    };
    progress(&mut d, stuck, blocked, t0);
    assert_eq!(d.state(stuck), Ok(ConnState::Active));
    d.stop(Some(300 * MS), t0);
    d.listener_closed(t0);
    assert!(actions(&mut d).contains(&Action::Finish(stuck)));
    d.handle_timeout(t0 + 300 * MS);
    let acts = actions(&mut d);
    assert!(acts.contains(&Action::ForceClose(stuck)));
    let report = stopped(&acts).unwrap();
    assert!(!report.graceful);
    assert_eq!((report.force_closed, report.requests_completed), (1, 0));
}

#[test]
fn b9_output_written_before_the_deadline_closes_gracefully() {
    let (mut d, t0) = drain();
    let slow = d.accept(t0).unwrap();
    let blocked = Progress {
        output_blocked: true,
        ..idle_after_one_request()
    };
    progress(&mut d, slow, blocked, t0);
    d.stop(Some(300 * MS), t0);
    d.listener_closed(t0);
    actions(&mut d);
    // The client read it all; the driver reports, then closes.
    progress(&mut d, slow, idle_after_one_request(), t0 + 100 * MS);
    d.handle(slow, ConnEvent::Closed, t0 + 100 * MS).unwrap();
    let report = stopped(&actions(&mut d)).unwrap();
    assert!(report.graceful);
    assert_eq!(report.closed_after_work, 1);
}

#[test]
fn b9_zero_grace_forces_at_once() {
    let (mut d, t0) = drain();
    let busy = d.accept(t0).unwrap();
    progress(&mut d, busy, in_flight(1), t0);
    d.stop(Some(Duration::ZERO), t0);
    assert_eq!(
        actions(&mut d),
        vec![Action::StopAccepting, Action::ForceClose(busy)]
    );
    d.listener_closed(t0);
    assert!(!stopped(&actions(&mut d)).unwrap().graceful);
}

#[test]
fn b9_zero_grace_with_only_idle_connections_is_graceful() {
    let (mut d, t0) = drain();
    let idle = d.accept(t0).unwrap();
    progress(&mut d, idle, idle_after_one_request(), t0);
    d.stop(Some(Duration::ZERO), t0);
    d.listener_closed(t0);
    let acts = actions(&mut d);
    assert!(acts.contains(&Action::CloseIdle(idle)));
    assert!(stopped(&acts).unwrap().graceful);
}

#[test]
fn b9_huge_grace_is_no_limit() {
    let (mut d, t0) = drain();
    let c = d.accept(t0).unwrap();
    progress(&mut d, c, upgraded(), t0);
    d.stop(Some(Duration::MAX), t0);
    assert_eq!(d.poll_timeout(), None);
}

#[test]
fn b10_stop_ends_with_last_connection_and_cancels_timer() {
    let (mut d, t0) = drain();
    let c = d.accept(t0).unwrap();
    progress(&mut d, c, in_flight(1), t0);
    d.stop(Some(Duration::from_secs(30)), t0);
    d.listener_closed(t0);
    actions(&mut d);
    progress(
        &mut d,
        c,
        Progress {
            finished: 1,
            ..in_flight(1)
        },
        t0 + 10 * MS,
    );
    d.handle(c, ConnEvent::Closed, t0 + 10 * MS).unwrap();
    let report = stopped(&actions(&mut d)).unwrap();
    assert_eq!(report.elapsed, 10 * MS);
    assert_eq!(d.poll_timeout(), None, "grace timer cancelled");
    assert_eq!(d.phase(), Phase::Stopped);
}

#[test]
fn b11_report_counts_each_kind_of_close() {
    let (mut d, t0) = drain();
    let idle = d.accept(t0).unwrap();
    let worked = d.accept(t0).unwrap();
    let stuck = d.accept(t0).unwrap();
    progress(&mut d, idle, idle_after_one_request(), t0);
    progress(&mut d, worked, in_flight(2), t0);
    progress(&mut d, stuck, in_flight(1), t0);
    d.stop(Some(Duration::from_secs(1)), t0);
    d.listener_closed(t0);
    d.handle(idle, ConnEvent::Closed, t0 + MS).unwrap();
    progress(
        &mut d,
        worked,
        Progress {
            finished: 2,
            ..in_flight(2)
        },
        t0 + MS,
    );
    d.handle(worked, ConnEvent::Closed, t0 + MS).unwrap();
    d.handle_timeout(t0 + Duration::from_secs(1));
    let report = stopped(&actions(&mut d)).unwrap();
    assert_eq!(
        (
            report.closed_idle,
            report.closed_after_work,
            report.force_closed,
            report.requests_completed
        ),
        (1, 1, 1, 2)
    );
    assert!(!report.graceful);
}

#[test]
fn b12_second_stop_shortens_never_lengthens() {
    let (mut d, t0) = drain();
    let c = d.accept(t0).unwrap();
    progress(&mut d, c, upgraded(), t0);
    d.stop(Some(Duration::from_secs(10)), t0);
    d.stop(Some(Duration::from_secs(60)), t0 + MS);
    assert_eq!(d.poll_timeout(), Some(t0 + Duration::from_secs(10)));
    d.stop(None, t0 + MS);
    assert_eq!(d.poll_timeout(), Some(t0 + Duration::from_secs(10)));
    d.stop(Some(100 * MS), t0 + MS);
    assert_eq!(d.poll_timeout(), Some(t0 + 101 * MS));
    let acts = actions(&mut d);
    assert_eq!(
        acts.iter().filter(|a| **a == Action::StopAccepting).count(),
        1
    );
}

#[test]
fn b12_stop_after_stopped_changes_nothing() {
    let (mut d, t0) = drain();
    d.stop(None, t0);
    d.listener_closed(t0);
    let first = d.report().unwrap();
    d.stop(Some(Duration::ZERO), t0 + MS);
    assert!(
        actions(&mut d)
            .iter()
            .filter(|a| matches!(a, Action::Stopped(_)))
            .count()
            == 1
    );
    assert_eq!(d.report(), Some(first));
}

#[test]
fn b13_stop_from_inside_a_handler_waits_for_that_request() {
    let (mut d, t0) = drain();
    let c = d.accept(t0).unwrap();
    // The handler's own request is in flight when it calls stop.
    progress(&mut d, c, in_flight(1), t0);
    d.stop(None, t0);
    d.listener_closed(t0);
    assert_eq!(d.counts().requests_in_flight, 1);
    assert!(d.report().is_none());
}

#[test]
fn b14_upgraded_connection_stays_tracked_until_closed_or_forced() {
    let (mut d, t0) = drain();
    let c = d.accept(t0).unwrap();
    let upgraded = Progress {
        started: 1,
        finished: 1,
        arrived: 1,
        upgraded: true,
        ..Progress::default()
    };
    progress(&mut d, c, upgraded, t0);
    assert_eq!(d.state(c), Ok(ConnState::Upgraded));
    d.stop(Some(Duration::from_secs(5)), t0);
    d.listener_closed(t0);
    assert_eq!(
        actions(&mut d),
        vec![Action::StopAccepting],
        "not shut down: it is not HTTP any more"
    );
    assert_eq!(d.counts().upgraded, 1);
    d.handle_timeout(t0 + Duration::from_secs(5));
    let acts = actions(&mut d);
    assert!(acts.contains(&Action::ForceClose(c)));
    assert_eq!(stopped(&acts).unwrap().force_closed, 1);
}

#[test]
fn b16_readiness_delay_keeps_serving_then_drains() {
    let config = Config::default().with_drain_delay(Duration::from_secs(2));
    let mut d = Lifecycle::new(config).unwrap();
    let t0 = Instant::now();
    let c = d.accept(t0).unwrap();
    progress(&mut d, c, idle_after_one_request(), t0);
    d.stop(Some(Duration::from_secs(1)), t0);
    assert_eq!(d.phase(), Phase::Delaying);
    assert!(actions(&mut d).is_empty(), "still serving during the delay");
    let late = d.accept(t0 + MS).unwrap();
    assert_eq!(d.poll_timeout(), Some(t0 + Duration::from_secs(2)));
    d.handle_timeout(t0 + Duration::from_secs(2));
    assert_eq!(d.phase(), Phase::Draining);
    let acts = actions(&mut d);
    assert_eq!(acts[0], Action::StopAccepting);
    assert!(acts.contains(&Action::Finish(c)));
    assert!(
        acts.contains(&Action::CloseIdle(late)),
        "its window passed during the delay"
    );
    assert_eq!(
        d.poll_timeout(),
        Some(t0 + Duration::from_secs(3)),
        "grace counts from the drain"
    );
}

#[test]
fn b18_counts_follow_each_state() {
    let (mut d, t0) = drain();
    let a = d.accept(t0).unwrap();
    let b = d.accept(t0).unwrap();
    let u = d.accept(t0).unwrap();
    progress(&mut d, a, in_flight(2), t0);
    progress(
        &mut d,
        u,
        Progress {
            upgraded: true,
            ..idle_after_one_request()
        },
        t0,
    );
    let c = d.counts();
    assert_eq!(
        (c.open, c.idle, c.active, c.closing, c.upgraded),
        (3, 1, 1, 0, 1)
    );
    assert_eq!((c.requests_in_flight, c.phase), (2, Phase::Serving));
    d.handle(b, ConnEvent::Closed, t0).unwrap();
    d.stop(None, t0);
    let c = d.counts();
    assert_eq!(
        (c.open, c.idle, c.active, c.closing, c.upgraded),
        (2, 0, 0, 1, 1)
    );
    assert_eq!(c.phase, Phase::Draining);
}

#[test]
fn stale_progress_is_ignored() {
    let (mut d, t0) = drain();
    let c = d.accept(t0).unwrap();
    progress(&mut d, c, in_flight(2), t0);
    progress(&mut d, c, in_flight(1), t0);
    assert_eq!(d.counts().requests_in_flight, 2);
    let over = Progress {
        started: 2,
        finished: 5,
        arrived: 2,
        ..Progress::default()
    };
    progress(&mut d, c, over, t0);
    assert_eq!(
        d.counts().requests_in_flight,
        0,
        "finished never passes started"
    );
}

#[test]
fn unknown_and_stale_ids_are_errors() {
    let (mut d, t0) = drain();
    let c = d.accept(t0).unwrap();
    d.handle(c, ConnEvent::Closed, t0).unwrap();
    let reused = d.accept(t0).unwrap();
    assert_eq!(reused.index(), c.index());
    assert_eq!(
        d.handle(c, ConnEvent::Progress(in_flight(1)), t0),
        Err(Error::UnknownConnection)
    );
    assert_eq!(d.state(reused), Ok(ConnState::Fresh));
}

#[test]
fn bad_config_is_a_clear_error() {
    let err = Lifecycle::new(Config::default().with_header_read_timeout(Duration::ZERO)).err();
    assert_eq!(err, Some(ConfigError::ZeroHeaderReadTimeout));
    let err =
        Lifecycle::new(Config::default().with_first_request_window(Duration::from_secs(60))).err();
    assert!(matches!(
        err,
        Some(ConfigError::FirstRequestWindowTooLong(_))
    ));
    assert!(err.unwrap().to_string().contains("first request window"));
}

#[test]
fn b7_streams_opened_after_the_goaway_do_not_hold_the_stop() {
    let (mut d, t0) = drain();
    let c = d.accept(t0).unwrap();
    let h2 = |started, finished| Progress {
        started,
        finished,
        arrived: started,
        http2: true,
        ..Progress::default()
    };
    progress(&mut d, c, h2(1, 0), t0);
    d.stop(None, t0);
    d.listener_closed(t0);
    assert_eq!(
        actions(&mut d),
        vec![Action::StopAccepting, Action::Finish(c)]
    );
    // The client answers no PING and opens a stream now and then: each
    // keeps the connection busy.
    let goaway = Config::default().goaway_timeout;
    let mut now = t0;
    let mut started = 1;
    while now < t0 + 4 * goaway {
        now += 300 * MS;
        started += 1;
        progress(&mut d, c, h2(started, started - 1), now);
        d.handle_timeout(now);
        if actions(&mut d).contains(&Action::ForceClose(c)) {
            assert!(now > t0 + goaway, "not before the GOAWAY timeout");
            let report = stopped(&actions(&mut d));
            assert!(report.is_none_or(|r| !r.graceful));
            return;
        }
    }
    panic!("streams opened after the GOAWAY held the stop");
}

#[test]
fn b5_an_http2_response_the_client_has_not_taken_is_not_cut_at_the_goaway_timeout() {
    let (mut d, t0) = drain();
    let c = d.accept(t0).unwrap();
    // Its one stream ended in the server's hands; its bytes wait for the
    // client to read them.
    let taking = |output_blocked| Progress {
        started: 1,
        finished: 1,
        arrived: 1,
        http2: true,
        output_blocked,
        ..Progress::default()
    };
    progress(&mut d, c, taking(true), t0);
    d.stop(None, t0);
    d.listener_closed(t0);
    assert_eq!(
        actions(&mut d),
        vec![Action::StopAccepting, Action::Finish(c)]
    );
    let goaway = Config::default().goaway_timeout;
    let mut now = t0;
    while now < t0 + 4 * goaway {
        now += 300 * MS;
        progress(&mut d, c, taking(true), now);
        d.handle_timeout(now);
        let acts = actions(&mut d);
        assert!(!acts.contains(&Action::ForceClose(c)), "{acts:?}");
        assert!(!acts.contains(&Action::CloseIdle(c)), "{acts:?}");
    }
    // The client took it all, and closed.
    progress(&mut d, c, taking(false), now);
    d.handle(c, ConnEvent::Closed, now).unwrap();
    let report = stopped(&actions(&mut d)).expect("stopped");
    assert!(report.graceful, "{report:?}");
}

#[test]
fn b17_zero_grace_during_the_readiness_delay_forces_at_once() {
    let delay = Duration::from_secs(5);
    let mut d = Lifecycle::new(Config::default().with_drain_delay(delay)).unwrap();
    let t0 = Instant::now();
    let c = d.accept(t0).unwrap();
    progress(&mut d, c, in_flight(1), t0);
    d.stop(None, t0);
    assert_eq!(d.phase(), Phase::Delaying);
    d.stop(Some(Duration::ZERO), t0 + MS);
    let acts = actions(&mut d);
    assert!(acts.contains(&Action::ForceClose(c)), "{acts:?}");
    d.listener_closed(t0 + MS);
    assert_eq!(stopped(&actions(&mut d)).unwrap().elapsed, MS);
}

#[test]
fn b4_a_close_the_driver_declines_becomes_a_shutdown() {
    let (mut d, t0) = drain();
    let c = d.accept(t0).unwrap();
    let late = t0 + Config::default().first_request_window;
    d.stop(None, late);
    d.listener_closed(late);
    assert_eq!(
        actions(&mut d),
        vec![Action::StopAccepting, Action::CloseIdle(c)]
    );
    // Its request arrived before the close was carried out: the driver
    // declines, serves it, and says so.
    progress(&mut d, c, in_flight(1), late + MS);
    assert_eq!(d.state(c), Ok(ConnState::Active));
    assert_eq!(d.counts().closing, 1);
    let done = Progress {
        finished: 1,
        ..in_flight(1)
    };
    progress(&mut d, c, done, late + 2 * MS);
    d.handle(c, ConnEvent::Closed, late + 2 * MS).unwrap();
    let report = stopped(&actions(&mut d)).unwrap();
    assert!(report.graceful);
    assert_eq!(
        (report.closed_after_work, report.requests_completed),
        (1, 1)
    );
}

fn aged(age: Duration) -> (Lifecycle, Instant) {
    let config = Config::default().with_max_connection_age(Some(age));
    (Lifecycle::new(config).unwrap(), Instant::now())
}

#[test]
fn b23_a_connection_past_its_age_is_asked_to_finish_while_serving() {
    let (mut drain, t0) = aged(1000 * MS);
    let id = drain.accept(t0).unwrap();
    progress(&mut drain, id, idle_after_one_request(), t0);
    let due = drain.poll_timeout().expect("an age deadline");
    assert!(
        due >= t0 + 900 * MS && due <= t0 + 1100 * MS,
        "{:?}",
        due - t0
    );
    drain.handle_timeout(due - MS);
    assert_eq!(actions(&mut drain), vec![]);
    drain.handle_timeout(due);
    assert_eq!(actions(&mut drain), vec![Action::Finish(id)]);
    assert_eq!(drain.phase(), Phase::Serving);
    // Once asked, never again while serving.
    assert_eq!(drain.poll_timeout(), None);
}

#[test]
fn b23_a_connection_that_sent_nothing_is_not_aged_until_it_has() {
    let (mut drain, t0) = aged(1000 * MS);
    let id = drain.accept(t0).unwrap();
    let due = drain.poll_timeout().unwrap();
    drain.handle_timeout(due);
    assert_eq!(
        actions(&mut drain),
        vec![],
        "its first request may be coming (B4)"
    );
    let again = drain.poll_timeout().expect("looked at again");
    assert!(again > due);
    progress(&mut drain, id, in_flight(1), again - MS);
    drain.handle_timeout(again);
    assert_eq!(actions(&mut drain), vec![Action::Finish(id)]);
}

#[test]
fn b23_ages_end_when_the_drain_begins() {
    let (mut drain, t0) = aged(1000 * MS);
    let id = drain.accept(t0).unwrap();
    progress(&mut drain, id, in_flight(1), t0);
    drain.stop(None, t0 + 10 * MS);
    assert_eq!(
        actions(&mut drain),
        vec![Action::StopAccepting, Action::Finish(id)]
    );
    // Past its age: the drain decides alone, nothing is asked twice.
    drain.handle_timeout(t0 + 1100 * MS);
    assert_eq!(actions(&mut drain), vec![]);
}

#[test]
fn b23_a_zero_age_is_refused() {
    let config = Config::default().with_max_connection_age(Some(Duration::ZERO));
    assert!(matches!(
        Lifecycle::new(config),
        Err(ConfigError::ZeroMaxConnectionAge)
    ));
}

#[test]
fn b24_stop_waits_for_an_application_task_and_counts_it_finished() {
    let (mut d, t0) = drain();
    d.task_started().unwrap();
    d.stop(None, t0);
    d.listener_closed(t0);
    assert_eq!(d.counts().tasks, 1);
    assert_eq!(stopped(&actions(&mut d)), None, "the task holds the stop");
    assert!(d.task_finished(t0 + 10 * MS));
    let report = stopped(&actions(&mut d)).expect("the stop ends with the task");
    assert!(report.graceful);
    assert_eq!((report.tasks_finished, report.tasks_cancelled), (1, 0));
    assert_eq!(report.elapsed, 10 * MS);
}

#[test]
fn b24_grace_cancels_a_running_task_and_the_stop_is_not_graceful() {
    let (mut d, t0) = drain();
    d.task_started().unwrap();
    d.stop(Some(20 * MS), t0);
    d.listener_closed(t0);
    actions(&mut d);
    d.handle_timeout(t0 + 20 * MS);
    let done = actions(&mut d);
    assert!(done.contains(&Action::CancelTasks), "{done:?}");
    let report = stopped(&done).expect("the stop ends at the deadline");
    assert!(!report.graceful);
    assert_eq!((report.tasks_finished, report.tasks_cancelled), (0, 1));
    // The cancelled task's own end changes nothing; no task starts now.
    assert!(!d.task_finished(t0 + 21 * MS));
    assert_eq!(d.task_started(), Err(Error::TooLateForTask));
}

#[test]
fn b11_a_head_cut_by_the_drivers_own_timeout_during_a_stop_counts_forced() {
    let (mut d, t0) = drain();
    let slow = d.accept(t0).unwrap();
    let idle = d.accept(t0).unwrap();
    let head = Progress {
        arrived: 1,
        ..Progress::default()
    };
    progress(&mut d, slow, head, t0);
    progress(&mut d, idle, idle_after_one_request(), t0);
    d.stop(None, t0);
    d.listener_closed(t0);
    actions(&mut d);
    // hyper's header-read timer ends the slow head before the core would.
    d.handle(slow, ConnEvent::Cut, t0 + MS).unwrap();
    // A cut of a connection with no work is a plain close.
    if d.state(idle).is_ok() {
        d.handle(idle, ConnEvent::Cut, t0 + MS).unwrap();
    }
    let report = stopped(&actions(&mut d)).expect("the stop ends");
    assert!(!report.graceful);
    assert_eq!(report.force_closed, 1);
}
