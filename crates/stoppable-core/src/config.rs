//! The options of a stop that the core needs, checked once.

use std::fmt;
use std::time::Duration;

/// The timing options of a drain.
///
/// Build it with [`Config::default`] and the `with_*` methods, then call
/// [`Config::validate`] (the [`Lifecycle`](crate::Lifecycle) constructor does).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// How long a connection that sent no byte yet may still send its first
    /// request after the stop (B4). A client that has just connected is about
    /// to send: closing it at once would lose a request it already committed
    /// to. Counted from the accept, not from the stop.
    pub first_request_window: Duration,
    /// How long a connection that has sent part of a request head may take to
    /// finish it during a drain (B8), counted from when the core learns of it.
    pub header_read_timeout: Duration,
    /// The readiness delay (B16): how long the server keeps serving normally
    /// after `stop`, so load balancers can take it out of rotation.
    pub drain_delay: Duration,
    /// How long a connection told to finish may stay open once it has no
    /// work left, waiting for the client to close it (B7): an HTTP/2 client
    /// that never acknowledges the GOAWAY's PING, a vanished peer. Go's
    /// `goAwayTimeout`; it holds with or without a grace.
    pub goaway_timeout: Duration,
    /// While serving, a connection this old (give or take a tenth, so that
    /// connections opened together do not all end together) is asked to
    /// finish once it has served a request, as a drain would ask it (B23):
    /// long-lived keep-alive and HTTP/2 clients reconnect, and a load
    /// balancer spreads them over the instances it has now. gRPC's
    /// `MaxConnectionAge`. `None` (the default): no age limit.
    pub max_connection_age: Option<Duration>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            first_request_window: Duration::from_millis(250),
            header_read_timeout: Duration::from_secs(10),
            drain_delay: Duration::ZERO,
            goaway_timeout: Duration::from_secs(1),
            max_connection_age: None,
        }
    }
}

/// Longest first-request window accepted: the window must stay short, or idle
/// connections would hold a stop.
pub const MAX_FIRST_REQUEST_WINDOW: Duration = Duration::from_secs(10);

impl Config {
    /// Sets the first-request window (B4).
    pub fn with_first_request_window(mut self, window: Duration) -> Self {
        self.first_request_window = window;
        self
    }

    /// Sets the header-read timeout that bounds a half-sent head (B8).
    pub fn with_header_read_timeout(mut self, timeout: Duration) -> Self {
        self.header_read_timeout = timeout;
        self
    }

    /// Sets the readiness delay (B16).
    pub fn with_drain_delay(mut self, delay: Duration) -> Self {
        self.drain_delay = delay;
        self
    }

    /// Sets the GOAWAY timeout (B7).
    pub fn with_goaway_timeout(mut self, timeout: Duration) -> Self {
        self.goaway_timeout = timeout;
        self
    }

    /// Sets the maximum connection age while serving (B23).
    pub fn with_max_connection_age(mut self, age: Option<Duration>) -> Self {
        self.max_connection_age = age;
        self
    }

    /// Checks the options, naming the first bad one.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.first_request_window > MAX_FIRST_REQUEST_WINDOW {
            return Err(ConfigError::FirstRequestWindowTooLong(
                self.first_request_window,
            ));
        }
        if self.header_read_timeout.is_zero() {
            return Err(ConfigError::ZeroHeaderReadTimeout);
        }
        if self.goaway_timeout.is_zero() {
            return Err(ConfigError::ZeroGoawayTimeout);
        }
        if self.max_connection_age.is_some_and(|age| age.is_zero()) {
            return Err(ConfigError::ZeroMaxConnectionAge);
        }
        Ok(())
    }
}

/// A bad option, found by [`Config::validate`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// The first-request window is above [`MAX_FIRST_REQUEST_WINDOW`].
    FirstRequestWindowTooLong(Duration),
    /// A zero header-read timeout would close every request being read.
    ZeroHeaderReadTimeout,
    /// A zero GOAWAY timeout would close an HTTP/2 connection before its
    /// client could learn of the GOAWAY.
    ZeroGoawayTimeout,
    /// A zero maximum connection age would end every connection at once.
    ZeroMaxConnectionAge,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::FirstRequestWindowTooLong(d) => write!(
                f,
                "first request window {d:?} is longer than the maximum {MAX_FIRST_REQUEST_WINDOW:?}"
            ),
            ConfigError::ZeroHeaderReadTimeout => {
                write!(f, "header read timeout must be greater than zero")
            }
            ConfigError::ZeroGoawayTimeout => {
                write!(f, "GOAWAY timeout must be greater than zero")
            }
            ConfigError::ZeroMaxConnectionAge => {
                write!(f, "maximum connection age must be greater than zero")
            }
        }
    }
}

impl std::error::Error for ConfigError {}
