//! `TCP_DEFER_ACCEPT` on a listening socket, which neither std nor socket2
//! sets: shared by the conformance suite and the chaos server.

use std::os::fd::{AsRawFd, BorrowedFd};

/// Sets `TCP_DEFER_ACCEPT` (10 s): the kernel holds each handshake until
/// the client's first bytes come, so a connect that succeeded stays a
/// handshake under way at the server, as over a long round trip.
#[allow(unsafe_code)]
pub fn set(listener: BorrowedFd<'_>) -> std::io::Result<()> {
    let seconds: libc::c_int = 10;
    // SAFETY: a descriptor borrowed for the call, and an option value of
    // the size given.
    let set = unsafe {
        libc::setsockopt(
            listener.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_DEFER_ACCEPT,
            (&seconds as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if set == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}
