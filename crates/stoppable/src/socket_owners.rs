//! Which listening sockets other processes hold too (B22): got by socket
//! activation, or passed on by a handoff. A stop never refuses connections
//! on those; and a socket this process's stop refused for good (a Unix
//! socket's `shutdown(SHUT_RD)`) is never passed on. One lock orders the
//! two, so a handoff and a stop racing each other cannot both act on a
//! socket: the stop refuses it and the handoff fails, or the handoff
//! passes it and the stop leaves it alone.

use crate::socket::{self, BorrowedSocket};

#[cfg(unix)]
struct Owners {
    /// Others may hold these.
    elsewhere: Vec<Identity>,
    /// This process refused new connections on these, for good.
    refused_for_good: Vec<Identity>,
}

#[cfg(unix)]
static OWNERS: std::sync::Mutex<Owners> = std::sync::Mutex::new(Owners {
    elsewhere: Vec::new(),
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
#[derive(PartialEq, Eq)]
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

/// Records that other processes may hold `socket` too (B22).
#[cfg(unix)]
pub(crate) fn held_elsewhere_too(socket: BorrowedSocket<'_>) {
    if let Some(id) = identity(socket) {
        let mut owners = owners();
        if !owners.elsewhere.contains(&id) {
            owners.elsewhere.push(id);
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
    if owners.elsewhere.is_empty() {
        return false;
    }
    match identity(socket) {
        Some(id) => owners.elsewhere.contains(&id),
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

/// A handoff passes `sockets` to another process, which holds them from
/// its start on: they are recorded as held elsewhere. An error, and
/// nothing recorded, if this process's stop refused one of them for good.
/// Which of them this call recorded, for [`take_back`]: the others were
/// held elsewhere already (or cannot be told apart, and count so).
#[cfg(all(unix, feature = "handoff"))]
pub(crate) fn pass_on(sockets: &[BorrowedSocket<'_>]) -> std::io::Result<Vec<bool>> {
    use std::os::fd::AsRawFd;
    let mut owners = owners();
    let ids: Vec<Option<Identity>> = sockets.iter().map(|s| identity(*s)).collect();
    for (socket, id) in sockets.iter().zip(&ids) {
        if id
            .as_ref()
            .is_some_and(|id| owners.refused_for_good.contains(id))
        {
            return Err(std::io::Error::other(format!(
                "descriptor {} refuses new connections for good: this process's \
                 stop began before the handoff",
                socket.as_raw_fd()
            )));
        }
    }
    let mut recorded = Vec::with_capacity(ids.len());
    for id in ids {
        recorded.push(match id {
            Some(id) if !owners.elsewhere.contains(&id) => {
                owners.elsewhere.push(id);
                true
            }
            _ => false,
        });
    }
    Ok(recorded)
}

/// A handoff failed: the sockets [`pass_on`] recorded are this process's
/// alone again, so its stop refuses new connections on them (B1).
#[cfg(all(unix, feature = "handoff"))]
pub(crate) fn take_back(sockets: &[BorrowedSocket<'_>], recorded: &[bool]) {
    let mut owners = owners();
    for (socket, _) in sockets.iter().zip(recorded).filter(|(_, r)| **r) {
        if let Some(id) = identity(*socket) {
            owners.elsewhere.retain(|known| *known != id);
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

#[cfg(all(test, target_os = "linux", feature = "handoff"))]
mod tests {
    use std::net::TcpListener;
    use std::os::unix::net::UnixListener;

    use super::{
        held_elsewhere_too, is_held_elsewhere, pass_on, refuse_unless_held_elsewhere, take_back,
    };
    use crate::socket::borrow_socket;

    /// A socket passed between processes is known by its identity, so
    /// every descriptor of it (a duplicate, another process's) counts.
    #[test]
    fn a_socket_held_elsewhere_is_known_by_any_of_its_descriptors() {
        let passed = TcpListener::bind("127.0.0.1:0").unwrap();
        let own = TcpListener::bind("127.0.0.1:0").unwrap();
        held_elsewhere_too(borrow_socket(&passed));
        let duplicate = passed.try_clone().unwrap();
        assert!(is_held_elsewhere(borrow_socket(&passed)));
        assert!(is_held_elsewhere(borrow_socket(&duplicate)));
        assert!(!is_held_elsewhere(borrow_socket(&own)));
    }

    /// Passed on, a socket is left alone by a stop; taken back, it is
    /// refused again; refused for good (Unix), it cannot be passed on.
    #[test]
    fn pass_on_take_back_and_refusal_order_each_other() {
        let path =
            std::env::temp_dir().join(format!("stoppable-owners-{}.sock", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path).unwrap();
        let socket = [borrow_socket(&listener)];
        let recorded = pass_on(&socket).expect("passed on");
        assert_eq!(recorded, [true]);
        assert!(
            !refuse_unless_held_elsewhere(socket[0]),
            "left to the next process"
        );
        take_back(&socket, &recorded);
        assert!(!is_held_elsewhere(socket[0]));
        assert!(
            refuse_unless_held_elsewhere(socket[0]),
            "this process's alone again"
        );
        let again = pass_on(&socket);
        assert!(
            again.is_err(),
            "a socket refused for good is passed on: {again:?}"
        );
        assert!(
            !is_held_elsewhere(socket[0]),
            "nothing recorded by the failed pass"
        );
        let _ = std::fs::remove_file(&path);
    }
}
