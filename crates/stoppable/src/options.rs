//! The options of a server or tracker, checked when serving starts.

use std::time::Duration;

use stoppable_core::Config;

/// How a stop behaves. The defaults wait for all work (no grace limit),
/// give fresh connections 250 ms to send their first request (B4), allow
/// request heads 10 s (B8), close a connection that stays open 1 s after
/// it was asked to finish with nothing left to do (B7), and have no
/// readiness delay (B16).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Options {
    pub(crate) config: Config,
    pub(crate) grace: Option<Duration>,
    pub(crate) drain_signal_in_requests: bool,
    pub(crate) move_on_in_delay: bool,
    pub(crate) max_connections: Option<usize>,
    /// `None`: the default, on.
    pub(crate) tcp_nodelay: Option<bool>,
    /// `None`: the default, [`HANDSHAKE_TIMEOUT`]; zero for none.
    pub(crate) handshake_timeout: Option<Duration>,
    /// `None`: the default, [`FIRST_REQUEST_TIMEOUT`]; zero for none.
    pub(crate) first_request_timeout: Option<Duration>,
}

/// How long a connection may take to begin its first request by default:
/// as the header-read timeout, so that a balancer's pooled connection not
/// yet used is not closed under its first request.
pub(crate) const FIRST_REQUEST_TIMEOUT: Duration = crate::builder::HEADER_READ_TIMEOUT;

/// How long a handshake (TLS) may take by default: a client that opens a
/// connection and never finishes its handshake must not hold it forever.
pub(crate) const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

impl Options {
    /// Connections still busy `grace` after the drain began are force-closed,
    /// FIN first (B9). Default: no limit, wait for all work.
    pub fn grace(mut self, grace: Duration) -> Self {
        self.grace = Some(grace);
        self
    }

    /// How long a connection that sent nothing yet may still send its first
    /// request after the stop, counted from its accept (B4). A client that
    /// has just connected is about to send; closing it at once would lose a
    /// request it already committed to. Default 250 ms, at most 10 s.
    pub fn first_request_window(mut self, window: Duration) -> Self {
        self.config.first_request_window = window;
        self
    }

    /// How long a request head that was being read when the drain began may
    /// still take to arrive (B8), so a slow client cannot hold a stop.
    /// Default 10 s; must not be zero. (While serving, slow heads are
    /// hyper's business: see `Server::builder_mut`.)
    pub fn header_read_timeout(mut self, timeout: Duration) -> Self {
        self.config.header_read_timeout = timeout;
        self
    }

    /// How long a connection asked to finish (GOAWAY on HTTP/2,
    /// `Connection: close` on HTTP/1.1) may stay open once it has no work
    /// left, waiting for the client to close it or to acknowledge the
    /// GOAWAY: then it is closed (B7). It holds with or without a grace, so
    /// a hung or vanished client never holds a stop. Go's `goAwayTimeout`.
    /// Default 1 s; must not be zero.
    pub fn goaway_timeout(mut self, timeout: Duration) -> Self {
        self.config.goaway_timeout = timeout;
        self
    }

    /// Puts a [`DrainSignal`](crate::DrainSignal) in every request's
    /// extensions (B15), for handlers that cannot capture one. Off by
    /// default: it costs a heap allocation per request (hyper's extensions
    /// map), which capturing `Stopper::drain_signal` in the service does not.
    pub fn drain_signal_in_requests(mut self, on: bool) -> Self {
        self.drain_signal_in_requests = on;
        self
    }

    /// During the readiness delay, ask clients to move on while still
    /// accepting and serving (B23): HTTP/1.1 responses say
    /// `Connection: close`, idle keep-alive connections close, and HTTP/2
    /// connections open when the stop came get a GOAWAY (their streams
    /// finish). Long-lived clients then reconnect, through a load balancer
    /// that by then sends them to the new instances, before the drain.
    /// Off by default; nothing without a [`drain_delay`](Options::drain_delay).
    pub fn ask_clients_to_move_on(mut self, on: bool) -> Self {
        self.move_on_in_delay = on;
        self
    }

    /// While serving, a connection `age` old (give or take a tenth, so that
    /// connections opened together do not end together) is asked to finish
    /// once it has served a request (B23): HTTP/2 gets a GOAWAY and its
    /// streams finish; on HTTP/1.1 the next response says
    /// `Connection: close` and the connection closes after it (an idle one
    /// is not closed under a request that may be on its way: the
    /// keep-alive race); a raw connection's
    /// [`closing`](crate::ConnHandle::closing) resolves. Clients reconnect,
    /// and a load balancer spreads them over the instances it has now:
    /// long-lived keep-alive and HTTP/2 clients move to new instances
    /// during a rollout. A connection that has sent nothing yet is left
    /// alone until it has (B4). Nothing is ever cut for its age. gRPC's
    /// `MaxConnectionAge`. Default: no limit; must not be zero.
    pub fn max_connection_age(mut self, age: Duration) -> Self {
        self.config.max_connection_age = Some(age);
        self
    }

    /// At most `limit` connections open at once: at the limit the server
    /// stops accepting (new connects wait in the kernel's queue, as their
    /// clients' timeouts allow) until one closes. actix-web's
    /// `max_connections`. A stop serves what is queued all the same (B1).
    /// Default: no limit; `0` is taken as no limit too.
    pub fn max_connections(mut self, limit: usize) -> Self {
        self.max_connections = (limit > 0).then_some(limit);
        self
    }

    /// `TCP_NODELAY` on each accepted TCP connection: small responses go
    /// out at once instead of waiting for the peer's ACK (Nagle), as hyper
    /// servers usually want. Default on. Applied by the [`Server`](crate::Server)
    /// to connections whose [`Accepted`](crate::Accepted) gives a socket.
    pub fn tcp_nodelay(mut self, on: bool) -> Self {
        self.tcp_nodelay = Some(on);
        self
    }

    /// How long a connection's handshake (TLS, or any
    /// [`Handshake`](crate::Handshake) of yours) may take, from its accept:
    /// then it is closed, and the error told to
    /// [`on_connection_error`](crate::Server::on_connection_error). A
    /// client that connects and stays silent holds nothing for long.
    /// Default 10 s (Go's `TLSHandshakeTimeout`); zero for no limit.
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = Some(timeout);
        self
    }

    /// While serving, how long after its accept a connection may take to
    /// begin its first request: then it is closed. A client that connects
    /// and stays silent, or stops inside its first head, HTTP/2's preface
    /// or after its TLS handshake, holds nothing for long (hyper's own
    /// header-read timeout only starts once it knows the protocol). If
    /// bytes of a request had come, the error is told to
    /// [`on_connection_error`](crate::Server::on_connection_error). Once a
    /// drain begins, the stop bounds such connections itself (B4, B8). An
    /// HTTP/2 connection that opened no stream gets a GOAWAY, then closes
    /// (an HTTP/2 connection idle after its streams is not closed by this:
    /// see [`max_connection_age`](Options::max_connection_age)).
    /// Default 75 s, as [`HEADER_READ_TIMEOUT`](crate::builder::HEADER_READ_TIMEOUT)
    /// (which says why); zero for no limit. Not for
    /// [`Tracker::track_raw`](crate::Tracker::track_raw).
    pub fn first_request_timeout(mut self, timeout: Duration) -> Self {
        self.first_request_timeout = Some(timeout);
        self
    }

    /// The readiness delay (B16): after a stop call, keep serving for
    /// `delay` (the phase is already `Delaying`, so readiness probes can
    /// fail) before draining. Default 0.
    pub fn drain_delay(mut self, delay: Duration) -> Self {
        self.config.drain_delay = delay;
        self
    }
}
