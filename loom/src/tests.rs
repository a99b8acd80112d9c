//! Every interleaving of a connection's driver against the stop's side.

use std::future::poll_fn;
use std::task::Poll;
use std::time::Instant;

use loom::sync::atomic::{AtomicBool, Ordering::Relaxed};
use loom::sync::Arc;
use loom::thread;
use stoppable_core::{Config, Drain};

use crate::slot::{Command, ConnSlot};

fn slot(socket: Option<i32>) -> Arc<ConnSlot> {
    let mut drain = Drain::new(Config::default()).expect("valid config");
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
            thread::spawn(move || slot.order(Command::Close))
        };
        loom::future::block_on(poll_fn(|cx| {
            slot.register(cx.waker());
            match slot.command() {
                Command::Close => Poll::Ready(()),
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
                let _forgotten = slot.forget_socket();
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
                slot.request_started();
                slot.request_finished();
                slot.request_started();
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
fn a_close_is_never_lowered_to_a_shutdown() {
    loom::model(|| {
        let slot = slot(None);
        let closer = {
            let slot = slot.clone();
            thread::spawn(move || slot.order(Command::Close))
        };
        slot.order(Command::Shutdown);
        closer.join().unwrap();
        assert_eq!(slot.command(), Command::Close);
    });
}
