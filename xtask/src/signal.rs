//! Signals to the processes a task started.

/// Sends `signal` to `pid`, a process this run started.
pub fn send(pid: u32, signal: libc::c_int) {
    // SAFETY: kill(2) on a pid this run started.
    #[allow(unsafe_code)]
    unsafe {
        libc::kill(pid as libc::pid_t, signal);
    }
}
