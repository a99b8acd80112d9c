//! Shutting a socket down from outside the task that owns it.

/// The OS handle of a connected TCP socket.
#[cfg(unix)]
pub type RawSocket = std::os::fd::RawFd;
/// The OS handle of a connected TCP socket.
#[cfg(windows)]
pub type RawSocket = std::os::windows::io::RawSocket;

/// `shutdown(SHUT_RDWR)`: sends a FIN, and makes pending reads return EOF.
///
/// Callers hold the connection slot's lock, and the owner clears the handle
/// under the same lock before it closes the socket, so the handle is open.
#[cfg(unix)]
#[allow(unsafe_code)]
pub(crate) fn shutdown(socket: RawSocket) {
    use std::os::fd::BorrowedFd;
    // SAFETY: the fd is open for the duration of this call (see above).
    let fd = unsafe { BorrowedFd::borrow_raw(socket) };
    // The peer may already be gone (ENOTCONN): nothing left to do then.
    let _ = socket2::SockRef::from(&fd).shutdown(std::net::Shutdown::Both);
}

/// `shutdown(SD_BOTH)`: sends a FIN, and makes pending reads return EOF.
#[cfg(windows)]
#[allow(unsafe_code)]
pub(crate) fn shutdown(socket: RawSocket) {
    use std::os::windows::io::BorrowedSocket;
    // SAFETY: the socket is open for the duration of this call (see above).
    let socket = unsafe { BorrowedSocket::borrow_raw(socket) };
    let _ = socket2::SockRef::from(&socket).shutdown(std::net::Shutdown::Both);
}
