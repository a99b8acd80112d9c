//! Shutting a socket down from outside the task that owns it.

/// The OS handle of a connected socket, kept by a connection's slot while
/// the library owns the IO ([`ConnSocket`](crate::ConnSocket)).
#[cfg(unix)]
pub(crate) type RawSocket = std::os::fd::RawFd;
/// The OS handle of a connected socket.
#[cfg(windows)]
pub(crate) type RawSocket = std::os::windows::io::RawSocket;

/// A socket handle borrowed from its owner: the library can reach a
/// listener's socket only while its owner lends it.
#[cfg(unix)]
pub type BorrowedSocket<'a> = std::os::fd::BorrowedFd<'a>;
/// A socket handle borrowed from its owner.
#[cfg(windows)]
pub type BorrowedSocket<'a> = std::os::windows::io::BorrowedSocket<'a>;

/// Borrows the OS socket of `socket` (for [`Accept::socket`](crate::Accept::socket)).
#[cfg(unix)]
pub fn borrow_socket(socket: &impl std::os::fd::AsFd) -> BorrowedSocket<'_> {
    socket.as_fd()
}

/// Borrows the OS socket of `socket` (for [`Accept::socket`](crate::Accept::socket)).
#[cfg(windows)]
pub fn borrow_socket(socket: &impl std::os::windows::io::AsSocket) -> BorrowedSocket<'_> {
    socket.as_socket()
}

/// The OS handle of a socket.
#[cfg(unix)]
pub(crate) fn raw_socket(socket: &impl std::os::fd::AsRawFd) -> RawSocket {
    socket.as_raw_fd()
}

/// The OS handle of a socket.
#[cfg(windows)]
pub(crate) fn raw_socket(socket: &impl std::os::windows::io::AsRawSocket) -> RawSocket {
    socket.as_raw_socket()
}

/// Lends the connection socket `socket` to `f` for one call; `None`, and
/// nothing touched, for a handle no socket can have (-1,
/// `INVALID_SOCKET`: a handle taken from a `BorrowedSocket` never is, but
/// borrowing it would be undefined behaviour).
///
/// Callers make sure the handle is open for the call. Every handle comes
/// from the [`ConnSocket`](crate::ConnSocket) of an IO the library owns,
/// which keeps it open until it drops; the connection slot's lock orders
/// the call against that drop (the owner clears the handle under the lock
/// before dropping the IO).
#[allow(unsafe_code)]
fn with_socket<T>(socket: RawSocket, f: impl FnOnce(socket2::SockRef<'_>) -> T) -> Option<T> {
    #[cfg(unix)]
    {
        if socket < 0 {
            return None;
        }
        // SAFETY: open for the duration of this call (see above).
        let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(socket) };
        Some(f(socket2::SockRef::from(&fd)))
    }
    #[cfg(windows)]
    {
        // INVALID_SOCKET is !0.
        if socket == !0 {
            return None;
        }
        // SAFETY: open for the duration of this call (see above).
        let borrowed = unsafe { std::os::windows::io::BorrowedSocket::borrow_raw(socket) };
        Some(f(socket2::SockRef::from(&borrowed)))
    }
}

/// `shutdown(SHUT_RDWR)`: sends a FIN, and makes pending reads return EOF.
/// The peer may already be gone (ENOTCONN): nothing left to do then.
pub(crate) fn shutdown(socket: RawSocket) {
    with_socket(socket, |s| s.shutdown(std::net::Shutdown::Both));
}

/// Sets `TCP_NODELAY` on a connection just accepted; an error (not TCP) is
/// ignored.
pub(crate) fn set_nodelay(socket: BorrowedSocket<'_>, on: bool) {
    let _ = socket2::SockRef::from(&socket).set_tcp_nodelay(on);
}

/// Whether bytes wait unread in the kernel (or the peer closed), seen with a
/// non-blocking peek: the runtime's readiness cache may not know yet.
pub(crate) fn has_unread(socket: RawSocket) -> bool {
    with_socket(socket, peek).unwrap_or(false)
}

fn peek(socket: socket2::SockRef<'_>) -> bool {
    let mut byte = [std::mem::MaybeUninit::uninit(); 1];
    // The socket is non-blocking (the runtime set it so): WouldBlock is empty.
    matches!(socket.peek(&mut byte), Ok(n) if n > 0)
}

/// Makes a listening socket refuse new connection attempts while what is
/// already under way still lands in the accept queue, so that queue can be
/// drained before the listener closes (B1): without it, a connect
/// completing between the last accept and the close is reset.
///
/// TCP: a filter drops new SYNs (bare SYNs; handshakes under way complete);
/// a dropped SYN is retried by the client and then refused, once the
/// listener is closed. The filter belongs to the socket, not to this
/// process: [`accept_new_connections`] must remove it before the listener
/// closes, or a socket shared with another owner stays deaf (B22).
///
/// Unix domain: `shutdown(SHUT_RD)`: a connect is refused at once, what is
/// queued can still be accepted. It cannot be undone, so it is never done
/// to a socket others may hold (the drain's caller sees to that).
///
/// Linux only; elsewhere it does nothing and returns false.
#[cfg(target_os = "linux")]
pub(crate) fn refuse_new_connections(listener: BorrowedSocket<'_>) -> bool {
    use socket2::SockFilter;
    // skb data starts at the TCP header; byte 13 holds the flags.
    const PROGRAM: [SockFilter; 5] = [
        SockFilter::new(0x30, 0, 0, 13),       // ldb [13]
        SockFilter::new(0x54, 0, 0, 0x12),     // and #(SYN|ACK)
        SockFilter::new(0x15, 0, 1, 0x02),     // jeq #SYN, drop, keep
        SockFilter::new(0x06, 0, 0, 0),        // drop: ret #0
        SockFilter::new(0x06, 0, 0, u32::MAX), // keep: ret #-1
    ];
    let socket = socket2::SockRef::from(&listener);
    if is_unix(&socket) {
        return socket.shutdown(std::net::Shutdown::Read).is_ok();
    }
    socket.attach_filter(&PROGRAM).is_ok()
}

/// Removes what [`refuse_new_connections`] attached: a TCP socket accepts
/// new connections again, for whoever else holds it. (A Unix socket's
/// refusal is for good: it is only ever refused when this server holds it
/// alone.)
#[cfg(target_os = "linux")]
pub(crate) fn accept_new_connections(listener: BorrowedSocket<'_>) {
    let socket = socket2::SockRef::from(&listener);
    if !is_unix(&socket) {
        let _ = socket.detach_filter();
    }
}

/// Whether connects to this listener go through a handshake that may be
/// under way (TCP), rather than being queued or refused at once (Unix).
pub(crate) fn has_handshakes(listener: BorrowedSocket<'_>) -> bool {
    socket2::SockRef::from(&listener)
        .domain()
        .map_or(true, |d| {
            d == socket2::Domain::IPV4 || d == socket2::Domain::IPV6
        })
}

#[cfg(target_os = "linux")]
fn is_unix(socket: &socket2::SockRef<'_>) -> bool {
    socket.domain().is_ok_and(|d| d == socket2::Domain::UNIX)
}

/// Elsewhere than Linux: nothing (see the Linux version).
#[cfg(not(target_os = "linux"))]
pub(crate) fn refuse_new_connections(_listener: BorrowedSocket<'_>) -> bool {
    false
}

/// Elsewhere than Linux: nothing (see the Linux version).
#[cfg(not(target_os = "linux"))]
pub(crate) fn accept_new_connections(_listener: BorrowedSocket<'_>) {}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use std::net::{TcpListener, TcpStream};
    use std::time::Duration;

    use super::{accept_new_connections, borrow_socket, refuse_new_connections};

    /// Well under a client's first SYN retry (1 s): a connect that takes
    /// longer had its SYN dropped.
    const NO_RETRY: Duration = Duration::from_millis(300);

    /// The filter B1 relies on, on a real socket: while it is on, a new
    /// connect is not completed (its SYN is dropped); once it is off, the
    /// socket takes connections again (B22). A connect already completed
    /// before stays in the queue.
    #[test]
    fn the_filter_drops_new_syns_and_comes_off() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let before = TcpStream::connect_timeout(&addr, NO_RETRY).expect("no filter yet");
        assert!(refuse_new_connections(borrow_socket(&listener)));
        let refused = TcpStream::connect_timeout(&addr, NO_RETRY);
        assert!(refused.is_err(), "a connect completed through the filter");
        accept_new_connections(borrow_socket(&listener));
        let after = TcpStream::connect_timeout(&addr, NO_RETRY).expect("the filter is off");
        // The first and the last are queued; the dropped one never was
        // (its SYN's retry may still land later: not waited for).
        let (first, _) = listener.accept().unwrap();
        assert_eq!(first.peer_addr().unwrap(), before.local_addr().unwrap());
        let (second, _) = listener.accept().unwrap();
        assert_eq!(second.peer_addr().unwrap(), after.local_addr().unwrap());
    }

    /// A Unix domain listener refuses new connects at once, and what its
    /// queue holds can still be accepted (B1).
    #[test]
    fn a_unix_listener_refuses_new_connects_and_keeps_its_queue() {
        use std::os::unix::net::{UnixListener, UnixStream};
        let path = std::env::temp_dir().join(format!("stoppable-unit-{}.sock", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path).unwrap();
        let queued = UnixStream::connect(&path).unwrap();
        assert!(refuse_new_connections(borrow_socket(&listener)));
        let refused = UnixStream::connect(&path);
        assert_eq!(
            refused.map(|_| ()).unwrap_err().kind(),
            std::io::ErrorKind::ConnectionRefused
        );
        listener.accept().expect("the queue is kept");
        drop(queued);
        let _ = std::fs::remove_file(&path);
    }
}

#[cfg(all(test, unix))]
mod guard_tests {
    /// A handle no socket can have is never borrowed (that would be
    /// undefined behaviour): each use answers as for no socket.
    #[test]
    fn the_invalid_handle_is_never_lent() {
        assert!(super::with_socket(-1, |_| ()).is_none());
        assert!(!super::has_unread(-1));
        super::shutdown(-1);
    }
}
