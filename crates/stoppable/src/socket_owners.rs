//! Which listening sockets other processes hold too (B22): kept by a
//! service manager (socket activation), or passed on by a handoff. A stop
//! never refuses connections on those; and a socket this process's stop
//! refused for good (a Unix socket's `shutdown(SHUT_RD)`) is never passed
//! on. One lock orders the two, so a handoff and a stop racing each other
//! cannot both act on a socket: the stop refuses it and the handoff fails,
//! or the handoff passes it and the stop leaves it alone.

use crate::socket::{self, BorrowedSocket};

#[cfg(unix)]
struct Owners {
    /// Kept by a service manager: passed by it, directly or through
    /// handoffs that said so.
    kept_by_manager: Vec<Identity>,
    /// Passed on by this process's handoffs (under way or done), and by
    /// how many: a failed one takes back its own mark only.
    passed_on: Vec<(Identity, usize)>,
    /// This process refused new connections on these, for good.
    refused_for_good: Vec<Identity>,
}

#[cfg(unix)]
static OWNERS: std::sync::Mutex<Owners> = std::sync::Mutex::new(Owners {
    kept_by_manager: Vec::new(),
    passed_on: Vec::new(),
    refused_for_good: Vec::new(),
});

#[cfg(unix)]
fn owners() -> std::sync::MutexGuard<'static, Owners> {
    // A panic elsewhere must not make every later stop panic too.
    OWNERS.lock().unwrap_or_else(|e| e.into_inner())
}

/// A socket's identity, which every descriptor of it shares, in any
/// process: its inode, and its address (inode numbers wrap, in time).
#[cfg(unix)]
#[derive(Clone, PartialEq, Eq)]
struct Identity {
    dev: u64,
    ino: u64,
    addr: socket2::SockAddr,
}

#[cfg(unix)]
#[allow(unsafe_code)]
// `stat`'s field types differ between platforms.
#[allow(clippy::unnecessary_cast)]
fn identity(socket: BorrowedSocket<'_>) -> Option<Identity> {
    use std::os::fd::AsRawFd;
    let mut stat = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: the descriptor is borrowed, so open for this call; fstat
    // fills `stat` when it returns 0, and only then is it read.
    let stat = unsafe {
        if libc::fstat(socket.as_raw_fd(), stat.as_mut_ptr()) != 0 {
            return None;
        }
        stat.assume_init()
    };
    let addr = socket2::SockRef::from(&socket).local_addr().ok()?;
    Some(Identity {
        dev: stat.st_dev as u64,
        ino: stat.st_ino as u64,
        addr,
    })
}

/// Records that a service manager keeps `socket` (B22).
#[cfg(unix)]
pub(crate) fn kept_by_manager(socket: BorrowedSocket<'_>) {
    if let Some(id) = identity(socket) {
        let mut owners = owners();
        if !owners.kept_by_manager.contains(&id) {
            owners.kept_by_manager.push(id);
        }
    }
}

/// Whether other processes may hold `socket` too. When that cannot be
/// told (fstat failed), a Unix domain socket, whose refusal cannot be
/// undone, counts as held elsewhere.
#[cfg(unix)]
pub(crate) fn is_held_elsewhere(socket: BorrowedSocket<'_>) -> bool {
    held_elsewhere_in(&owners(), socket)
}

#[cfg(unix)]
fn held_elsewhere_in(owners: &Owners, socket: BorrowedSocket<'_>) -> bool {
    if owners.kept_by_manager.is_empty() && owners.passed_on.is_empty() {
        return false;
    }
    match identity(socket) {
        Some(id) => {
            owners.kept_by_manager.contains(&id) || owners.passed_on.iter().any(|(p, _)| *p == id)
        }
        None => !socket::has_handshakes(socket),
    }
}

/// Refuses new connections on `socket` ([`socket::refuse_new_connections`])
/// unless other processes may hold it; true when refused. A refusal that
/// cannot be undone (a Unix socket) is remembered: no handoff passes that
/// socket on afterwards.
#[cfg(unix)]
pub(crate) fn refuse_unless_held_elsewhere(socket: BorrowedSocket<'_>) -> bool {
    let mut owners = owners();
    if held_elsewhere_in(&owners, socket) {
        return false;
    }
    let for_good = !socket::has_handshakes(socket);
    let refused = socket::refuse_new_connections(socket);
    if let (true, true, Some(id)) = (refused, for_good, identity(socket)) {
        owners.refused_for_good.push(id);
    }
    refused
}

/// The sockets one handoff passes on, marked held elsewhere from before
/// the next process starts until it is dropped, unless [`kept`]: a failed
/// handoff (or one that panicked) gives them back, so this process's stop
/// refuses new connections on them again (B1).
///
/// [`kept`]: PassedOn::kept
#[cfg(all(unix, feature = "handoff"))]
pub(crate) struct PassedOn {
    ids: Vec<Identity>,
    /// Which of them a service manager keeps too.
    managed: Vec<bool>,
}

/// Marks `sockets` as passed on by a handoff. An error, and nothing
/// marked, if this process's stop refused one of them for good, or one
/// cannot be told apart from others (its identity unread).
#[cfg(all(unix, feature = "handoff"))]
pub(crate) fn pass_on(sockets: &[BorrowedSocket<'_>]) -> std::io::Result<PassedOn> {
    use std::os::fd::AsRawFd;
    let mut owners = owners();
    let mut ids = Vec::with_capacity(sockets.len());
    for socket in sockets {
        let Some(id) = identity(*socket) else {
            return Err(std::io::Error::other(format!(
                "descriptor {} cannot be told apart from other sockets",
                socket.as_raw_fd()
            )));
        };
        if owners.refused_for_good.contains(&id) {
            return Err(std::io::Error::other(format!(
                "descriptor {} refuses new connections for good: this process's \
                 stop began before the handoff",
                socket.as_raw_fd()
            )));
        }
        ids.push(id);
    }
    let managed = ids
        .iter()
        .map(|id| owners.kept_by_manager.contains(id))
        .collect();
    for id in &ids {
        match owners.passed_on.iter_mut().find(|(p, _)| p == id) {
            Some((_, count)) => *count += 1,
            None => owners.passed_on.push((id.clone(), 1)),
        }
    }
    Ok(PassedOn { ids, managed })
}

#[cfg(all(unix, feature = "handoff"))]
impl PassedOn {
    /// Which of the sockets a service manager keeps too, in order.
    pub(crate) fn managed(&self) -> &[bool] {
        &self.managed
    }

    /// The handoff succeeded: the marks stay.
    pub(crate) fn kept(mut self) {
        self.ids.clear();
    }
}

#[cfg(all(unix, feature = "handoff"))]
impl Drop for PassedOn {
    fn drop(&mut self) {
        if self.ids.is_empty() {
            return;
        }
        let mut owners = owners();
        for id in &self.ids {
            if let Some(at) = owners.passed_on.iter().position(|(p, _)| p == id) {
                owners.passed_on[at].1 -= 1;
                if owners.passed_on[at].1 == 0 {
                    owners.passed_on.swap_remove(at);
                }
            }
        }
    }
}

/// Elsewhere than Unix no socket is passed between processes.
#[cfg(not(unix))]
pub(crate) fn is_held_elsewhere(_socket: BorrowedSocket<'_>) -> bool {
    false
}

/// Elsewhere than Unix no socket is passed between processes.
#[cfg(not(unix))]
pub(crate) fn refuse_unless_held_elsewhere(socket: BorrowedSocket<'_>) -> bool {
    socket::refuse_new_connections(socket)
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use std::net::TcpListener;

    use super::{is_held_elsewhere, kept_by_manager};
    use crate::socket::borrow_socket;

    /// A socket passed between processes is known by its identity, so
    /// every descriptor of it (a duplicate, another process's) counts.
    #[test]
    fn a_socket_held_elsewhere_is_known_by_any_of_its_descriptors() {
        let passed = TcpListener::bind("127.0.0.1:0").unwrap();
        let own = TcpListener::bind("127.0.0.1:0").unwrap();
        kept_by_manager(borrow_socket(&passed));
        let duplicate = passed.try_clone().unwrap();
        assert!(is_held_elsewhere(borrow_socket(&passed)));
        assert!(is_held_elsewhere(borrow_socket(&duplicate)));
        assert!(!is_held_elsewhere(borrow_socket(&own)));
    }
}

#[cfg(all(test, target_os = "linux", feature = "handoff"))]
mod handoff_tests {
    use std::os::unix::net::UnixListener;

    use super::{is_held_elsewhere, kept_by_manager, pass_on, refuse_unless_held_elsewhere};
    use crate::socket::borrow_socket;

    fn unix_listener(name: &str) -> (UnixListener, std::path::PathBuf) {
        let path = std::env::temp_dir().join(format!(
            "stoppable-owners-{name}-{}.sock",
            std::process::id()
        ));
        let _ = std::fs::remove_file(&path);
        (UnixListener::bind(&path).unwrap(), path)
    }

    /// Passed on, a socket is left alone by a stop; given back, it is
    /// refused again; refused for good (Unix), it cannot be passed on.
    #[test]
    fn pass_on_give_back_and_refusal_order_each_other() {
        let (listener, path) = unix_listener("order");
        let socket = [borrow_socket(&listener)];
        let passed = pass_on(&socket).expect("passed on");
        assert_eq!(passed.managed(), [false]);
        assert!(
            !refuse_unless_held_elsewhere(socket[0]),
            "left to the next process"
        );
        drop(passed);
        assert!(!is_held_elsewhere(socket[0]));
        assert!(
            refuse_unless_held_elsewhere(socket[0]),
            "this process's alone again"
        );
        let again = pass_on(&socket);
        assert!(again.is_err(), "a socket refused for good is passed on");
        assert!(
            !is_held_elsewhere(socket[0]),
            "nothing marked by the failed pass"
        );
        let _ = std::fs::remove_file(&path);
    }

    /// Two handoffs of one socket at once: the one that fails gives back
    /// its own mark only; the socket stays the other's next process's.
    /// And a handoff tells which sockets a manager keeps, not which this
    /// process passed on before.
    #[test]
    fn handoffs_count_their_own_marks() {
        let (listener, path) = unix_listener("count");
        let socket = [borrow_socket(&listener)];
        let first = pass_on(&socket).expect("passed on");
        let second = pass_on(&socket).expect("passed on again");
        assert_eq!(second.managed(), [false], "passed on before, not managed");
        drop(first);
        assert!(is_held_elsewhere(socket[0]), "still the second's");
        second.kept();
        assert!(is_held_elsewhere(socket[0]));
        let (managed, managed_path) = unix_listener("managed");
        kept_by_manager(borrow_socket(&managed));
        let passed = pass_on(&[borrow_socket(&managed)]).expect("passed on");
        assert_eq!(passed.managed(), [true]);
        let _ = std::fs::remove_file(&path);
        let _ = std::fs::remove_file(&managed_path);
    }
}
