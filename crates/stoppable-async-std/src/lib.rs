//! Graceful stop for hyper servers on async-std: [`serve`] a listener,
//! take a [`Stopper`], and `stop().await` the [`Report`].
//!
//! **async-std is discontinued upstream in favour of smol.** This adapter
//! is kept working and tested for the servers that still run on it; new
//! code should use `stoppable-smol`. It is its own crate so that nobody
//! else compiles async-std.
//!
//! ```no_run
//! use std::convert::Infallible;
//! use std::time::Duration;
//! use bytes::Bytes;
//! use http_body_util::Full;
//! use hyper::{Request, Response, body::Incoming, service::service_fn};
//!
//! # #[async_std::main]
//! # async fn main() -> std::io::Result<()> {
//! let listener = async_std::net::TcpListener::bind("127.0.0.1:3000").await?;
//! let hello = service_fn(|_req: Request<Incoming>| async {
//!     Ok::<_, Infallible>(Response::new(Full::new(Bytes::from("hello"))))
//! });
//! let server = stoppable_async_std::serve(listener, hello)?.grace(Duration::from_secs(10));
//! let stopper = server.stopper();
//! async_std::task::spawn(server);
//! // ... later, on SIGTERM say:
//! let report = stopper.stop().await;
//! println!("graceful: {}", report.graceful);
//! # Ok(()) }
//! ```

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Instant;

use stoppable::rt::{async_io_builder, AsyncIoListener, AsyncIoSleep, SpawnExecutor};

/// Resolves on SIGTERM or SIGINT: the first starts a graceful stop, a
/// second one forces it (grace 0); resolves to the report (B17).
#[cfg(feature = "signal")]
pub use stoppable::stop_on_signals;
pub use stoppable::{
    ConnHandle, Counts, DrainSignal, Draining, Drive, Error, Options, Phase, RawConn, Report,
    Stopper, Stopping, Tracked, Tracker,
};

/// A server on async-std; see [`stoppable::Server`] for its options.
pub type Server<S> = stoppable::Server<AsyncIoListener, S, AsyncStd, SpawnExecutor<AsyncStd>>;

/// Serves `service` on `listener` until a stop completes. Await the server
/// (or spawn it) to serve. Fails only if the listener cannot be moved to
/// async-io's reactor.
pub fn serve<S>(listener: async_std::net::TcpListener, service: S) -> io::Result<Server<S>> {
    let listener = std::net::TcpListener::try_from(listener)?;
    let listener = AsyncIoListener(Arc::new(async_io::Async::new(listener)?));
    Ok(stoppable::Server::new(
        listener,
        service,
        AsyncStd,
        async_io_builder(AsyncStd),
    ))
}

/// Tracks the connections of your own accept loop (see
/// [`stoppable::Tracker`]).
pub fn tracker(options: Options) -> Result<Tracker<AsyncStd>, Error> {
    Tracker::new(AsyncStd, options)
}

/// async-std as a runtime: `task::spawn` and async-io's timer (which
/// async-std itself uses).
#[derive(Clone, Copy, Debug, Default)]
pub struct AsyncStd;

impl stoppable::Runtime for AsyncStd {
    type Sleep = AsyncIoSleep;

    fn spawn<F>(&self, future: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        // Dropping the handle detaches the task.
        drop(async_std::task::spawn(future));
    }

    fn sleep_until(&self, deadline: Instant) -> AsyncIoSleep {
        AsyncIoSleep::until(deadline)
    }
}
