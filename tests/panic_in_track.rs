//! A panic inside `Tracker::track` (here: a runtime whose timers panic, as
//! tokio's do in a runtime built without them) must not leave the stop a
//! handle on the connection's socket: the IO is dropped in the unwinding,
//! its descriptor closed, and the number goes to the next socket opened.
//! The stop's force-close must not reach that socket.
//!
//! A test binary of its own: descriptor numbers are per process, and no
//! other test may take the freed number first.

#![cfg(unix)]

use std::io::Read;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Instant;

use hyper_util::rt::TokioIo;
use stoppable::{Options, Runtime};

/// tokio, whose sleeps panic while `panics` is set.
#[derive(Clone)]
struct PanickyTimers {
    tokio: stoppable_tokio::Tokio,
    panics: Arc<AtomicBool>,
}

impl Runtime for PanickyTimers {
    type Sleep = tokio::time::Sleep;

    fn spawn<F>(&self, future: F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        self.tokio.spawn(future);
    }

    fn sleep_until(&self, deadline: Instant) -> Self::Sleep {
        assert!(!self.panics.load(SeqCst), "no timers in this runtime");
        self.tokio.sleep_until(deadline)
    }
}

#[test]
fn a_panic_in_track_leaves_the_stop_no_handle_on_a_reused_descriptor() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let panics = Arc::new(AtomicBool::new(false));
        let rt = PanickyTimers {
            tokio: stoppable_tokio::Tokio::current(),
            panics: panics.clone(),
        };
        let tracker = stoppable::Tracker::new(rt, Options::default()).expect("valid");
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let _first_client = std::net::TcpStream::connect(addr).unwrap();
        let (first, _) = listener.accept().unwrap();
        first.set_nonblocking(true).unwrap();
        let first = tokio::net::TcpStream::from_std(first).unwrap();
        let freed = first.as_raw_fd();
        // Queued now: its client's descriptor must not take the number.
        let _second_client = std::net::TcpStream::connect(addr).unwrap();
        panics.store(true, SeqCst);
        let tracked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            tracker.track(TokioIo::new(first)).is_some()
        }));
        assert!(tracked.is_err(), "the runtime's timer panicked");
        panics.store(false, SeqCst);
        // The next socket gets the freed number (the lowest free one).
        let (mut second, _) = listener.accept().unwrap();
        assert_eq!(second.as_raw_fd(), freed, "the number is reused");
        // Non-blocking, or a stale peek by the stop would hang the test
        // (it did, before the fix) rather than fail it.
        second.set_nonblocking(true).unwrap();
        // A force-close of everything the stop tracks.
        drop(tracker.stopper().stop_within(std::time::Duration::ZERO));
        let read = second.read(&mut [0u8; 1]);
        assert_eq!(
            read.map_err(|e| e.kind()),
            Err(std::io::ErrorKind::WouldBlock),
            "the other socket was shut down by the stop"
        );
    });
}
