//! Graceful stop for hyper servers on tokio: [`serve`] a listener, take a
//! [`Stopper`], and `stop().await` the [`Report`].
//!
//! ```no_run
//! use std::convert::Infallible;
//! use std::time::Duration;
//! use bytes::Bytes;
//! use http_body_util::Full;
//! use hyper::{Request, Response, body::Incoming, service::service_fn};
//!
//! # async fn run() -> std::io::Result<()> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! let hello = service_fn(|_req: Request<Incoming>| async {
//!     Ok::<_, Infallible>(Response::new(Full::new(Bytes::from("hello"))))
//! });
//! let server = stoppable_tokio::serve(listener, hello).grace(Duration::from_secs(10));
//! let stopper = server.stopper();
//! tokio::spawn(server);
//! // ... later, on SIGTERM say:
//! let report = stopper.stop().await;
//! println!("graceful: {}", report.graceful);
//! # Ok(()) }
//! ```
//!
//! What a stop does, as a client sees it, is described in the `stoppable`
//! crate. HTTP/1.1 and HTTP/2 are served on one port (hyper-util's auto
//! builder), with upgrades.

use std::future::Future;
use std::io;
use std::task::{Context, Poll};
use std::time::Instant;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use tokio::net::{TcpListener, TcpStream};

pub use stoppable::{Counts, Draining, Error, Phase, Report, Stopper, Stopping};

/// A server on tokio; see [`stoppable::Server`] for its options.
pub type Server<S> = stoppable::Server<Listener, S, Tokio, TokioExecutor>;

/// Serves `service` on `listener` until a stop completes. Await the server
/// (or spawn it) to serve; take a [`Stopper`] first.
pub fn serve<S>(listener: TcpListener, service: S) -> Server<S> {
    let mut builder = Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new());
    builder.http2().timer(TokioTimer::new());
    stoppable::Server::new(Listener(listener), service, Tokio, builder)
}

/// The tokio runtime: `tokio::spawn` and tokio's timer.
#[derive(Clone, Copy, Debug, Default)]
pub struct Tokio;

impl stoppable::Runtime for Tokio {
    type Sleep = tokio::time::Sleep;

    fn spawn<F>(&self, future: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        tokio::spawn(future);
    }

    fn sleep_until(&self, deadline: Instant) -> Self::Sleep {
        tokio::time::sleep_until(deadline.into())
    }
}

/// A tokio `TcpListener` as a source of connections.
#[derive(Debug)]
pub struct Listener(pub TcpListener);

impl stoppable::Accept for Listener {
    type Io = TokioIo<TcpStream>;

    fn poll_accept(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<stoppable::Accepted<Self::Io>>> {
        self.0.poll_accept(cx).map_ok(|(stream, _)| {
            // Small responses go out at once, as hyper servers usually do.
            let _ = stream.set_nodelay(true);
            stoppable::Accepted {
                socket: raw_socket(&stream),
                io: TokioIo::new(stream),
            }
        })
    }
}

#[cfg(unix)]
fn raw_socket(stream: &TcpStream) -> Option<stoppable::RawSocket> {
    use std::os::fd::AsRawFd;
    Some(stream.as_raw_fd())
}

#[cfg(windows)]
fn raw_socket(stream: &TcpStream) -> Option<stoppable::RawSocket> {
    use std::os::windows::io::AsRawSocket;
    Some(stream.as_raw_socket())
}
