//! Passing a listening socket to a program as a service manager does
//! (socket activation, B22): shared by the example tests.

use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::process::Command;

/// Makes the program `command` starts get `listener` as descriptor 3, with
/// `LISTEN_FDS=1` (and no `LISTEN_PID`).
#[allow(unsafe_code)]
pub fn pass_as_activated(command: &mut Command, listener: &impl AsRawFd) {
    let fd = listener.as_raw_fd();
    command.env("LISTEN_FDS", "1").env_remove("LISTEN_PID");
    // SAFETY: between fork and exec only async-signal-safe calls (dup2,
    // fcntl) on descriptors of the child's own copy of the table.
    unsafe {
        command.pre_exec(move || {
            let moved = if fd == 3 {
                libc::fcntl(3, libc::F_SETFD, 0)
            } else {
                libc::dup2(fd, 3)
            };
            match moved {
                -1 => Err(std::io::Error::last_os_error()),
                _ => Ok(()),
            }
        });
    }
}
