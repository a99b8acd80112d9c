//! What the suite needs from a runtime: start a server in a thread of its
//! own, block its executor on demand, and count its live tasks.

pub mod tokio;
pub mod tokio_tracker;

use std::net::SocketAddr;
use std::sync::mpsc;
use std::time::Duration;

use stoppable::{Report, Stopper};

use crate::client::DEADLINE;

#[derive(Clone, Copy, Default)]
pub struct Options {
    pub grace: Option<Duration>,
    pub window: Option<Duration>,
    pub drain_delay: Option<Duration>,
}

pub trait TestRuntime {
    /// Starts a server on 127.0.0.1, port 0, serving the test app.
    fn start(options: Options) -> TestServer;
    /// Stops a server before it serves, then serves it (B2).
    fn serve_after_stop() -> (Report, Result<Report, stoppable::Error>);
}

/// A running server, driven by its runtime in its own thread.
pub struct TestServer {
    pub addr: SocketAddr,
    pub stopper: Stopper,
    pub done: mpsc::Receiver<Result<Report, stoppable::Error>>,
    pub control: Box<dyn Control>,
}

pub trait Control {
    /// Blocks the server's (single) executor thread until the guard drops.
    fn block(&self) -> Blocked;
    /// Tasks alive on the server's runtime, the suite's own excluded.
    fn alive_tasks(&self) -> usize;
}

/// Keeps a server's executor blocked; dropping it lets it run again.
pub struct Blocked {
    /// Dropping the sender wakes the blocked executor.
    _release: mpsc::Sender<()>,
}

impl Blocked {
    pub fn new(release: mpsc::Sender<()>) -> Self {
        Blocked { _release: release }
    }
}

impl TestServer {
    /// Waits for the server future to resolve, within the deadline.
    pub fn finished(&self) -> Report {
        self.done
            .recv_timeout(DEADLINE)
            .expect("the stop completes within the deadline")
            .expect("the server ends with a report")
    }

    /// Starts a stop and waits for its report.
    pub fn stop(&self) -> Report {
        self.stopper.request_stop();
        self.finished()
    }
}

/// Applies the options to a server of any runtime.
pub fn configure<A, S, R: stoppable::Runtime, E>(
    mut server: stoppable::Server<A, S, R, E>,
    options: Options,
) -> stoppable::Server<A, S, R, E> {
    if let Some(grace) = options.grace {
        server = server.grace(grace);
    }
    if let Some(window) = options.window {
        server = server.first_request_window(window);
    }
    if let Some(delay) = options.drain_delay {
        server = server.drain_delay(delay);
    }
    server
}
