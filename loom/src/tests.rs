//! Every interleaving of a connection's driver against the stop's side.

use std::future::poll_fn;
use std::task::Poll;
use std::time::Instant;

use loom::sync::atomic::{AtomicBool, Ordering::Relaxed};
use loom::sync::Arc;
use loom::thread;
use stoppable_core::{Config, Lifecycle};

use crate::slot::{Command, ConnSlot};

fn slot(socket: Option<i32>) -> Arc<ConnSlot> {
    let mut drain = Lifecycle::new(Config::default()).expect("valid config");
    let id = drain.accept(Instant::now()).expect("accepting");
    Arc::new(ConnSlot::new(id, socket))
}

/// The stop orders a close while the driver registers its waker and looks
/// at the command: the driver always sees it (no lost wake-up), or loom
/// reports the driver parked forever.
#[test]
fn an_order_always_reaches_the_driver() {
    loom::model(|| {
        let slot = slot(None);
        let stop = {
            let slot = slot.clone();
            thread::spawn(move || slot.order(Command::CloseIdle))
        };
        loom::future::block_on(poll_fn(|cx| {
            slot.register(cx.waker());
            match slot.command() {
                Command::CloseIdle => Poll::Ready(()),
                _ => Poll::Pending,
            }
        }));
        stop.join().unwrap();
    });
}

/// A shutdown from the stop (force-close at the deadline) races the owner
/// closing the socket: it never reaches a socket already closed (whose
/// number the OS may have given to another connection).
#[test]
fn a_force_close_never_reaches_a_closed_socket() {
    loom::model(|| {
        let slot = slot(Some(7));
        let closed = Arc::new(AtomicBool::new(false));
        let owner = {
            let (slot, closed) = (slot.clone(), closed.clone());
            thread::spawn(move || {
                slot.forget_socket();
                closed.store(true, Relaxed);
            })
        };
        slot.with_socket(|_| assert!(!closed.load(Relaxed), "shut down after its close"));
        owner.join().unwrap();
    });
}

/// The stop snapshots a connection's counters while a request starts and
/// finishes on it: never more finished than started.
#[test]
fn a_snapshot_never_shows_more_finished_than_started() {
    loom::model(|| {
        let slot = slot(None);
        let driver = {
            let slot = slot.clone();
            thread::spawn(move || {
                slot.request_started(false);
                slot.request_finished();
                slot.request_started(false);
                slot.request_finished();
            })
        };
        let progress = slot.progress();
        assert!(progress.finished <= progress.started, "{progress:?}");
        driver.join().unwrap();
    });
}

/// Orders only ever raise the command: a shutdown that comes after a close
/// (or with it) never turns it back.
#[test]
fn a_close_idle_is_never_lowered_to_a_finish() {
    loom::model(|| {
        let slot = slot(None);
        let closer = {
            let slot = slot.clone();
            thread::spawn(move || slot.order(Command::CloseIdle))
        };
        slot.order(Command::Finish);
        closer.join().unwrap();
        assert_eq!(slot.command(), Command::CloseIdle);
    });
}

mod shared {
    //! The server's shared state: the stop (with the listener's close, as
    //! the accept loop reports it) racing an accept, a request and a close.

    use std::sync::Arc;

    use loom::thread;
    use stoppable_core::{Config, Report};

    use crate::shared::Shared;
    use crate::slot::Command;

    fn shared() -> Arc<Shared> {
        // No timer task here: these stops need none (no grace).
        Shared::new(Config::default(), Box::new(|_| {}), Box::new(std::time::Instant::now))
            .expect("valid config")
    }

    /// A stop with no grace, then the listener's close (B1), on a thread
    /// of its own.
    fn stop_on_a_thread(shared: &Arc<Shared>) -> thread::JoinHandle<()> {
        let shared = shared.clone();
        thread::spawn(move || {
            shared.stop(None);
            shared.listener_closed();
        })
    }

    fn report(shared: &Shared) -> Report {
        shared
            .report()
            .expect("the stop completes once all is closed")
    }

    /// A connection accepted while the stop runs is either refused (the
    /// listener already closed) or tracked and counted; either way the stop
    /// completes, gracefully, once it closes.
    #[test]
    fn stop_racing_an_accept_and_a_request() {
        loom::model(|| {
            let shared = shared();
            let stop = stop_on_a_thread(&shared);
            let accepted = shared.accept(None);
            if let Some(slot) = &accepted {
                slot.bytes_arrived();
                slot.request_started(false);
                shared.sync(slot);
                // A drain never closes a connection whose request started.
                assert_ne!(slot.command(), Command::CloseIdle);
                slot.request_finished();
                shared.sync(slot);
                shared.closed(slot);
            }
            stop.join().unwrap();
            let report = report(&shared);
            assert!(report.graceful);
            assert_eq!(report.force_closed, 0);
            assert!(report.requests_completed <= 1);
            assert!(accepted.is_some() || report.closed_after_work + report.closed_idle == 0);
            assert_eq!(shared.counts().open, 0);
        });
    }

    /// An idle connection: its request starts while the stop runs. The
    /// drain may tell it to shut down (finish, then close), never to close
    /// now, and the stop waits for it.
    #[test]
    fn stop_racing_a_request_start_on_an_idle_connection() {
        loom::model(|| {
            let shared = shared();
            let slot = shared.accept(None).expect("serving");
            // One request before the stop: the connection is idle, not fresh.
            slot.bytes_arrived();
            slot.request_started(false);
            slot.request_finished();
            shared.sync(&slot);
            let stop = stop_on_a_thread(&shared);
            slot.bytes_arrived();
            slot.request_started(false);
            shared.sync(&slot);
            let during = slot.command();
            slot.request_finished();
            shared.sync(&slot);
            stop.join().unwrap();
            assert_ne!(during, Command::CloseIdle, "closed with a request in flight");
            assert!(
                shared.report().is_none(),
                "the stop waits for the connection"
            );
            shared.closed(&slot);
            let report = report(&shared);
            assert!(report.graceful);
            assert_eq!(report.closed_idle + report.closed_after_work, 1);
        });
    }

    /// The connection closes (the peer left) while the stop runs: the stop
    /// completes in every order, counting it at most once.
    #[test]
    fn stop_racing_a_close() {
        loom::model(|| {
            let shared = shared();
            let slot = shared.accept(None).expect("serving");
            slot.bytes_arrived();
            slot.request_started(false);
            slot.request_finished();
            shared.sync(&slot);
            let stop = stop_on_a_thread(&shared);
            shared.closed(&slot);
            stop.join().unwrap();
            let report = report(&shared);
            assert!(report.graceful);
            assert!(report.closed_idle + report.closed_after_work <= 1);
        });
    }
}
