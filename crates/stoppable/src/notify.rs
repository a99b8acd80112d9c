//! systemd's readiness protocol (sd_notify(3)), so a `Type=notify` unit
//! knows when the server serves, when it stops, and which process is the
//! service's main one after a handoff (B22).
//!
//! ```no_run
//! # fn run() -> std::io::Result<()> {
//! // Once the listeners are bound (or inherited) and the server spawned:
//! stoppable::notify::ready()?;
//! // When the stop begins:
//! stoppable::notify::stopping()?;
//! # Ok(()) }
//! ```
//!
//! Each call sends one datagram to the socket named by `NOTIFY_SOCKET` and
//! answers whether there was one: outside systemd it does nothing.

use std::io;
use std::os::unix::net::UnixDatagram;

/// Tells the service manager that the server is ready (`READY=1`), and
/// the process that handed it its sockets, if one did
/// ([`handoff::start`](crate::handoff::start)): that one stops then.
///
/// The previous process may have given up waiting (and killed this one, or
/// gone on serving): an error telling it is not this process's error, so
/// only the service manager's is returned.
pub fn ready() -> io::Result<bool> {
    let told_manager = notify("READY=1")?;
    let told_previous =
        crate::activation::ready_target().is_some_and(|target| send(&target, "READY=1").is_ok());
    Ok(told_manager || told_previous)
}

/// Tells the service manager that the server is stopping (`STOPPING=1`).
pub fn stopping() -> io::Result<bool> {
    notify("STOPPING=1")
}

/// Tells the service manager that process `pid` is now the service's main
/// process (`MAINPID=`): a handoff's new process, which the manager then
/// watches instead of this one.
pub fn main_pid(pid: u32) -> io::Result<bool> {
    notify(&format!("MAINPID={pid}"))
}

/// Sends `state` (newline-separated `KEY=value` assignments) to the socket
/// named by `NOTIFY_SOCKET`: a path, or an abstract name after `@`. False
/// when the variable is unset.
pub fn notify(state: &str) -> io::Result<bool> {
    let Some(target) = std::env::var_os("NOTIFY_SOCKET") else {
        return Ok(false);
    };
    send(&target, state)?;
    Ok(true)
}

/// One datagram to `target`: a path, or an abstract name after `@`.
pub(crate) fn send(target: &std::ffi::OsStr, state: &str) -> io::Result<()> {
    let socket = UnixDatagram::unbound()?;
    match target.as_encoded_bytes() {
        [] => return Err(io::Error::other("NOTIFY_SOCKET is empty")),
        #[cfg(any(target_os = "linux", target_os = "android"))]
        [b'@', name @ ..] => {
            #[cfg(target_os = "android")]
            use std::os::android::net::SocketAddrExt;
            #[cfg(target_os = "linux")]
            use std::os::linux::net::SocketAddrExt;
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
            socket.send_to_addr(state.as_bytes(), &addr)?;
        }
        _ => {
            socket.send_to(state.as_bytes(), target)?;
        }
    }
    Ok(())
}
