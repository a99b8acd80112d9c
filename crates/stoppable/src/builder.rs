//! hyper's builder as the runtime crates give it: with the runtime's timer,
//! so that hyper's own timeouts protect a server while it serves.

use std::time::Duration;

use hyper_util::server::conn::auto::Builder;

/// How long an HTTP/1.1 request head may take to arrive while serving:
/// 75 s, as nginx's `keepalive_timeout`. hyper starts this clock when it
/// waits for a head (once it knows the connection speaks HTTP/1.1: before
/// that, [`Options::first_request_timeout`](crate::Options::first_request_timeout)
/// bounds it), so it also bounds how long a keep-alive connection may stay
/// idle between requests. HTTP/1.1 only. A head it cuts during a stop
/// counts as cut work (B11). During a drain the stop's own
/// [`Options::header_read_timeout`](crate::Options::header_read_timeout)
/// bounds heads too.
///
/// Why not hyper's 30 s: because this clock also ends idle keep-alive
/// connections, it must outlast the idle timeout of a load balancer in
/// front (AWS's ALB keeps idle connections 60 s). A server that closes an
/// idle connection first races the balancer's next request on it, which
/// then fails (Node's `keepAliveTimeout` and ALB's 502s). Behind a
/// balancer that keeps connections longer (Google Cloud's: 600 s), raise
/// it above that, and
/// [`Options::first_request_timeout`](crate::Options::first_request_timeout)
/// with it (a pooled connection not yet used is idle too).
///
/// Its cost: hyper boxes a new sleep for each request head, one heap
/// allocation per HTTP/1.1 request (the allocation bench's plain side has
/// the same timeout, so this is not counted as stoppable's).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(75);

/// Gives `builder` the runtime's `timer` for HTTP/1.1 and HTTP/2, with
/// [`HEADER_READ_TIMEOUT`]: a client that sends its head byte by byte
/// (slowloris), or holds an idle keep-alive connection, is closed after
/// it. What the runtime crates' `serve` functions use; change it with
/// [`Server::builder_mut`](crate::Server::builder_mut)
/// (`http1().header_read_timeout(..)`).
pub fn with_timer<E, T>(mut builder: Builder<E>, timer: T) -> Builder<E>
where
    T: hyper::rt::Timer + Clone + Send + Sync + 'static,
{
    builder
        .http1()
        .timer(timer.clone())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    builder.http2().timer(timer);
    builder
}
