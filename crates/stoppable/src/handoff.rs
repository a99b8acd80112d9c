//! Handing the listening sockets to a new process while this one drains
//! (B22), the way systemd passes them (`LISTEN_FDS`): the new process
//! takes them with [`activation::take`](crate::activation::take), serves,
//! and says so with [`notify::ready`](crate::notify::ready); then this one
//! stops. The sockets never close, so no client sees a refused connect or
//! waits on a dropped SYN: until this process stops both accept, then the
//! new one alone.
//!
//! ```no_run
//! # fn run(listener: &std::net::TcpListener, stopper: stoppable::Stopper)
//! # -> std::io::Result<()> {
//! use std::os::fd::AsFd;
//! use std::time::Duration;
//! let next = std::process::Command::new(std::env::current_exe()?);
//! // Blocking: from a thread of its own, or `spawn_blocking`.
//! let child = stoppable::handoff::start(next, &[listener.as_fd()], Duration::from_secs(30))?;
//! stoppable::notify::main_pid(child.id())?; // under systemd
//! stopper.share_listener();
//! stopper.request_stop();
//! # Ok(()) }
//! ```

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixDatagram;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The variable naming the socket on which a new process started by
/// [`start`] tells its readiness; [`notify::ready`](crate::notify::ready)
/// writes to it.
pub const READY_SOCKET: &str = crate::activation::READY_SOCKET;

/// The first descriptor passed (`SD_LISTEN_FDS_START`).
const FIRST_FD: RawFd = 3;

/// How often the wait for readiness looks whether the child died.
const POLL: Duration = Duration::from_millis(20);

/// Starts `command` with `listeners` passed as descriptors 3, 4, … and
/// `LISTEN_FDS` set (`LISTEN_PID` and `LISTEN_FDNAMES` removed: the child
/// cannot know its pid before it runs), and waits until it says `READY=1`
/// on a private socket ([`READY_SOCKET`]). It then serves on the same
/// sockets: stop this process (after
/// [`Stopper::share_listener`](crate::Stopper::share_listener)).
///
/// From its start, the new process holds the sockets: a stop of this
/// process that begins meanwhile leaves them to it (B22). If that stop
/// ends and the handoff then fails, nobody accepts what queued meanwhile:
/// close the listeners at once (those connections are reset).
///
/// An error if it cannot start, exits, or is not ready within `timeout`
/// (then it is sent SIGTERM, and killed if it has not exited within
/// `timeout` more): this process goes on serving, alone on the
/// sockets again. An error too, before anything starts, if this process's
/// stop already refused new connections on one of them for good (a Unix
/// socket): the new process could serve nothing there. Blocking.
pub fn start(
    mut command: Command,
    listeners: &[BorrowedFd<'_>],
    timeout: Duration,
) -> io::Result<Child> {
    let ready = ReadySocket::bind()?;
    // Copies above the target range, so that no dup2 in the child
    // overwrites a listener not yet moved; close-on-exec, so only the
    // targets reach the new program.
    let above = FIRST_FD + listeners.len() as RawFd;
    let copies = listeners
        .iter()
        .map(|fd| dup_at_least(*fd, above))
        .collect::<io::Result<Vec<OwnedFd>>>()?;
    let raw: Vec<RawFd> = copies.iter().map(|fd| fd.as_raw_fd()).collect();
    // The next process holds the sockets from its start: a stop of this
    // process that begins while it gets ready must leave them to it (B22),
    // marked shared or not. An error if this process's stop already
    // refused one for good: the next process could serve nothing on it.
    let passed = crate::socket_owners::pass_on(listeners)?;
    // Those a service manager keeps stay its in the next process too.
    let shared: Vec<String> = (FIRST_FD..)
        .zip(passed.managed())
        .filter(|(_, managed)| **managed)
        .map(|(fd, _)| fd.to_string())
        .collect();
    command
        .env("LISTEN_FDS", listeners.len().to_string())
        .env_remove("LISTEN_PID")
        .env_remove("LISTEN_FDNAMES")
        .env(READY_SOCKET, &ready.target)
        .env(crate::activation::SHARED_FDS, shared.join(","));
    move_fds_on_exec(&mut command, raw);
    let started = spawn_until_ready(command, copies, &ready, timeout)?;
    // Failed (or panicked), the marks go with `passed`: this process goes
    // on alone, and its stop refuses new connections on them again (B1).
    passed.kept();
    Ok(started)
}

/// Starts the next process and waits until it is ready; stops it if it is
/// not.
fn spawn_until_ready(
    mut command: Command,
    copies: Vec<OwnedFd>,
    ready: &ReadySocket,
    timeout: Duration,
) -> io::Result<Child> {
    let mut child = command.spawn()?;
    drop(copies);
    match ready.wait(&mut child, timeout) {
        Ok(()) => Ok(child),
        Err(e) => {
            stop(&mut child, timeout);
            Err(e)
        }
    }
}

/// Stops a next process that did not get ready: SIGTERM first, since it
/// may already serve connections it accepted on the shared sockets, which
/// its own stop finishes (a SIGKILL would reset them); killed if it has
/// not exited within `grace`.
#[allow(unsafe_code)]
fn stop(child: &mut Child, grace: Duration) {
    if !matches!(child.try_wait(), Ok(None)) {
        return;
    }
    // SAFETY: kill(2) with a process id and a signal number touches no
    // memory. The child is not waited for yet, so its id is still its own.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if !matches!(child.try_wait(), Ok(None)) {
            return;
        }
        std::thread::sleep(POLL);
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// In the child, between fork and exec: `raw[i]` becomes descriptor 3 + i.
#[allow(unsafe_code)]
fn move_fds_on_exec(command: &mut Command, raw: Vec<RawFd>) {
    // SAFETY: the closure only calls dup2, async-signal-safe, on the
    // child's own copy of the descriptor table; `raw` was allocated before
    // the fork.
    unsafe {
        command.pre_exec(move || {
            for (i, &fd) in raw.iter().enumerate() {
                if libc::dup2(fd, FIRST_FD + i as RawFd) == -1 {
                    return Err(io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
}

/// A close-on-exec copy of `fd` numbered `min` or above.
#[allow(unsafe_code)]
fn dup_at_least(fd: BorrowedFd<'_>, min: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: `fd` is open (borrowed); fcntl makes a new descriptor.
    let copy = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, min) };
    if copy == -1 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fcntl just made `copy`, owned by no one else.
    Ok(unsafe { OwnedFd::from_raw_fd(copy) })
}

/// The private datagram socket a new process says `READY=1` on: an
/// abstract name on Linux (nothing in the file system to race on or leave
/// behind), else a path in a directory of its own, readable by this user
/// alone.
struct ReadySocket {
    socket: UnixDatagram,
    /// What the child is told (`@name` for an abstract name).
    target: std::ffi::OsString,
    /// The directory to remove afterwards, if one was made.
    dir: Option<PathBuf>,
}

impl ReadySocket {
    fn bind() -> io::Result<Self> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        // Unpredictable, so no one can take the name first or guess where
        // to send a false READY=1.
        let random = std::hash::BuildHasher::hash_one(
            &std::collections::hash_map::RandomState::new(),
            NEXT.fetch_add(1, Ordering::Relaxed),
        );
        let name = format!("stoppable-ready-{}-{random:016x}", std::process::id());
        let (socket, target, dir) = bind_named(&name)?;
        socket.set_read_timeout(Some(POLL))?;
        Ok(ReadySocket {
            socket,
            target,
            dir,
        })
    }

    /// Until the child says `READY=1`; an error if it exits first or the
    /// time runs out.
    fn wait(&self, child: &mut Child, timeout: Duration) -> io::Result<()> {
        let deadline = Instant::now() + timeout;
        let mut buf = [0; 4096];
        loop {
            match self.socket.recv(&mut buf) {
                Ok(n) if says_ready(&buf[..n]) => return Ok(()),
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock
                            | io::ErrorKind::TimedOut
                            | io::ErrorKind::Interrupted
                    ) => {}
                Err(e) => return Err(e),
            }
            if let Some(status) = child.try_wait()? {
                return Err(io::Error::other(format!(
                    "the new process exited before it was ready: {status}"
                )));
            }
            if Instant::now() >= deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the new process was not ready in time",
                ));
            }
        }
    }
}

impl Drop for ReadySocket {
    fn drop(&mut self) {
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn bind_named(name: &str) -> io::Result<(UnixDatagram, std::ffi::OsString, Option<PathBuf>)> {
    #[cfg(target_os = "android")]
    use std::os::android::net::SocketAddrExt;
    #[cfg(target_os = "linux")]
    use std::os::linux::net::SocketAddrExt;
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())?;
    let socket = UnixDatagram::bind_addr(&addr)?;
    Ok((socket, format!("@{name}").into(), None))
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn bind_named(name: &str) -> io::Result<(UnixDatagram, std::ffi::OsString, Option<PathBuf>)> {
    use std::os::unix::fs::DirBuilderExt;
    // A new directory (creation fails if the name exists), mode 0700.
    let dir = std::env::temp_dir().join(name);
    std::fs::DirBuilder::new().mode(0o700).create(&dir)?;
    let path = dir.join("ready.sock");
    let socket = UnixDatagram::bind(&path)?;
    Ok((socket, path.into_os_string(), Some(dir)))
}

/// Whether a notification carries `READY=1` (one assignment per line).
fn says_ready(message: &[u8]) -> bool {
    message
        .split(|&b| b == b'\n')
        .any(|line| line == b"READY=1")
}
