//! Socket activation: the listening sockets a service manager (systemd) or
//! the previous process of a restart passes down, by systemd's convention
//! (`LISTEN_FDS`, `LISTEN_PID`, `LISTEN_FDNAMES`; sd_listen_fds(3)).
//!
//! ```no_run
//! # fn run() -> Result<(), Box<dyn std::error::Error>> {
//! // SAFETY: called first thing in `main`; nothing else in the process
//! // took or closed the descriptors the environment names.
//! let inherited = unsafe { stoppable::activation::take() }?;
//! for socket in inherited {
//!     let listener = socket.into_tcp()?; // non-blocking, ready for a runtime
//!     // serve it, marked shared: `serve(..).shared_listener()` (B22)
//! #   drop(listener);
//! }
//! # Ok(()) }
//! ```
//!
//! Such a socket has other owners (the service manager keeps it, so that
//! it can start the server again; a restart hands it on): serve it with
//! [`Server::shared_listener`](crate::Server::shared_listener), or drain it
//! with [`ListenerDrain::shared`](crate::ListenerDrain::shared), so a stop
//! leaves it working for them (B22).

use std::fmt;
use std::os::fd::{BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

/// The first descriptor passed (`SD_LISTEN_FDS_START`).
const FIRST_FD: RawFd = 3;

/// At most this many passed descriptors are believed; more is a bad value.
const MAX_FDS: usize = 1024;

/// The descriptors were taken: a second take would own them twice.
static TAKEN: AtomicBool = AtomicBool::new(false);

/// The handoff's ready socket, read from the environment by [`take`].
static HANDED_OVER_BY: OnceLock<Option<std::ffi::OsString>> = OnceLock::new();

/// The variable naming the socket on which a handoff's new process says
/// READY=1 (`handoff::READY_SOCKET`).
pub(crate) const READY_SOCKET: &str = "STOPPABLE_READY_SOCKET";

/// The variable by which a handoff names the descriptors it passes that
/// others keep too (a service manager, through the handing process):
/// comma-separated numbers.
pub(crate) const SHARED_FDS: &str = "STOPPABLE_SHARED_FDS";

/// A listening socket passed down to this process.
#[derive(Debug)]
pub struct Inherited {
    socket: socket2::Socket,
    name: Option<String>,
    held_elsewhere: bool,
}

/// Why the passed sockets could not be taken.
#[derive(Debug)]
#[non_exhaustive]
pub enum ActivationError {
    /// `LISTEN_FDS` or `LISTEN_PID` is not a number.
    BadVariable {
        /// The variable's name.
        name: &'static str,
        /// Its value.
        value: String,
    },
    /// The descriptors were already taken in this process.
    AlreadyTaken,
    /// A passed descriptor is not a listening stream socket.
    NotAListener {
        /// The descriptor.
        fd: RawFd,
        /// What the system said, if it said anything.
        reason: String,
    },
}

impl fmt::Display for ActivationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ActivationError::BadVariable { name, value } => {
                write!(
                    f,
                    "{name}={value:?} is not a descriptor count or process id"
                )
            }
            ActivationError::AlreadyTaken => {
                f.write_str("the passed sockets were already taken in this process")
            }
            ActivationError::NotAListener { fd, reason } => {
                write!(
                    f,
                    "passed descriptor {fd} is not a listening socket: {reason}"
                )
            }
        }
    }
}

impl std::error::Error for ActivationError {}

/// Takes the listening sockets passed to this process, in order; empty when
/// none were passed (no `LISTEN_FDS`, or `LISTEN_PID` names another
/// process, a parent's leftover). Each is made close-on-exec and
/// non-blocking, and the variables are removed from the environment, so the
/// process's own children neither inherit the sockets by accident nor try
/// to take them.
///
/// # Safety
///
/// The descriptors `3..3 + LISTEN_FDS` must be the ones passed to this
/// process and owned by nothing else in it: call this first thing in
/// `main`, before anything opens or closes descriptors (a descriptor
/// closed and reused would be taken over, and closed here). When
/// `LISTEN_PID` is absent, `LISTEN_FDS` is trusted as it is. No other
/// thread may run yet (a `#[tokio::main]` body is too late: take them in a
/// plain `main`, then build the runtime): this removes the activation
/// variables from the environment, which races any thread reading it. A
/// second call is refused ([`ActivationError::AlreadyTaken`]), never a
/// second owner.
#[allow(unsafe_code)]
pub unsafe fn take() -> Result<Vec<Inherited>, ActivationError> {
    let Some(count) = passed_count()? else {
        return Ok(Vec::new());
    };
    if TAKEN.swap(true, Ordering::AcqRel) {
        return Err(ActivationError::AlreadyTaken);
    }
    let fds = FIRST_FD..FIRST_FD + count as RawFd;
    // All are checked and prepared before any is owned: on an error none
    // is closed, and a retry sees the same.
    for fd in fds.clone() {
        // SAFETY: the caller vouches that the descriptor was passed to this
        // process; it stays open for this call.
        let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
        let socket = socket2::SockRef::from(&borrowed);
        // Not for this process's own children; ready for a runtime.
        let prepared = check_listener(socket2::SockRef::from(&borrowed)).and_then(|()| {
            socket
                .set_cloexec(true)
                .and_then(|()| socket.set_nonblocking(true))
                .map_err(|e| e.to_string())
        });
        if let Err(reason) = prepared {
            TAKEN.store(false, Ordering::Release);
            return Err(ActivationError::NotAListener { fd, reason });
        }
    }
    let from_handoff = std::env::var_os(READY_SOCKET).is_some();
    let shared_by_handoff = shared_fds();
    let names = std::env::var("LISTEN_FDNAMES").unwrap_or_default();
    let mut names = names.split(':');
    let mut taken = Vec::with_capacity(count);
    for fd in fds {
        // SAFETY: as above, and nothing else in the process owns it.
        let socket = socket2::Socket::from(unsafe { OwnedFd::from_raw_fd(fd) });
        // Passed by a service manager, which keeps it, or by a handoff from
        // a process that got it from one: a stop never refuses connections
        // on it (B22). (From a handoff otherwise, the previous process
        // drains and exits: this one will hold it alone.)
        let held_elsewhere = !from_handoff || shared_by_handoff.contains(&fd);
        if held_elsewhere {
            crate::socket_owners::kept_by_manager(crate::socket::borrow_socket(&socket));
        }
        let name = names.next().filter(|n| !n.is_empty()).map(str::to_owned);
        taken.push(Inherited {
            socket,
            name,
            held_elsewhere,
        });
    }
    // The handoff that passed them, if one did, is told READY=1 later.
    let _ = HANDED_OVER_BY.set(std::env::var_os(READY_SOCKET));
    // Taken: the process's own children must not take them again.
    for name in [
        "LISTEN_FDS",
        "LISTEN_PID",
        "LISTEN_FDNAMES",
        READY_SOCKET,
        SHARED_FDS,
    ] {
        std::env::remove_var(name);
    }
    Ok(taken)
}

/// Whether the sockets [`take`] took came from a handoff
/// ([`handoff::start`](crate::handoff)) rather than from a service manager.
pub fn from_handoff() -> bool {
    ready_target().is_some()
}

/// Where to say READY=1 to the process that handed the sockets over: kept
/// by [`take`], which clears the environment; the environment otherwise.
pub(crate) fn ready_target() -> Option<std::ffi::OsString> {
    match HANDED_OVER_BY.get() {
        Some(target) => target.clone(),
        None => std::env::var_os(READY_SOCKET),
    }
}

/// The descriptors a handoff said others keep too ([`SHARED_FDS`]).
fn shared_fds() -> Vec<RawFd> {
    std::env::var(SHARED_FDS)
        .unwrap_or_default()
        .split(',')
        .filter_map(|fd| fd.trim().parse().ok())
        .collect()
}

/// How many descriptors the environment says were passed to this process.
fn passed_count() -> Result<Option<usize>, ActivationError> {
    let Ok(fds) = std::env::var("LISTEN_FDS") else {
        return Ok(None);
    };
    if let Ok(pid) = std::env::var("LISTEN_PID") {
        let pid: u32 = pid
            .trim()
            .parse()
            .map_err(|_| ActivationError::BadVariable {
                name: "LISTEN_PID",
                value: pid.clone(),
            })?;
        if pid != std::process::id() {
            return Ok(None);
        }
    }
    match fds.trim().parse::<usize>() {
        Ok(n) if n <= MAX_FDS => Ok(Some(n).filter(|&n| n > 0)),
        _ => Err(ActivationError::BadVariable {
            name: "LISTEN_FDS",
            value: fds,
        }),
    }
}

/// A stream socket that listens; the reason if not. Changes nothing.
fn check_listener(socket: socket2::SockRef<'_>) -> Result<(), String> {
    let kind = socket.r#type().map_err(|e| e.to_string())?;
    if kind != socket2::Type::STREAM {
        return Err("not a stream socket".into());
    }
    #[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
    if !socket.is_listener().map_err(|e| e.to_string())? {
        return Err("not listening".into());
    }
    Ok(())
}

impl Inherited {
    /// The name systemd gave it (`FileDescriptorName=`), if any.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// Whether others keep it too, so that this process's stop leaves it
    /// working for them (B22; the library sees to it): a service manager
    /// passed it, directly or through a chain of
    /// [`handoff`](crate::handoff)s begun by one. False for a socket a
    /// handoff passed from a process that held it alone.
    pub fn held_elsewhere(&self) -> bool {
        self.held_elsewhere
    }

    /// Whether it is a TCP socket (IPv4 or IPv6).
    pub fn is_tcp(&self) -> bool {
        self.socket
            .local_addr()
            .is_ok_and(|addr| addr.as_socket().is_some())
    }

    /// The TCP listener, non-blocking; an error if it is not TCP.
    pub fn into_tcp(self) -> std::io::Result<std::net::TcpListener> {
        if !self.is_tcp() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "the passed socket is not a TCP socket",
            ));
        }
        Ok(self.socket.into())
    }

    /// The Unix domain listener, non-blocking; an error if it is not one.
    pub fn into_unix(self) -> std::io::Result<std::os::unix::net::UnixListener> {
        let unix = self
            .socket
            .local_addr()
            .is_ok_and(|addr| addr.domain() == socket2::Domain::UNIX);
        if !unix {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "the passed socket is not a Unix domain socket",
            ));
        }
        Ok(self.socket.into())
    }
}
