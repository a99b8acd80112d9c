//! Where the server listens: the socket passed by socket activation
//! (`LISTEN_FDS=1`, B22), or a fresh one bound to `--addr`.

use std::io;
use std::net::{SocketAddr, TcpListener};

/// The listening socket, non-blocking, and whether others hold it too.
pub struct Listening {
    pub listener: TcpListener,
    /// Kept by a service manager (passed by it, or by a handoff from a
    /// process it started): other owners (the manager, sibling servers)
    /// keep accepting on it after this stop.
    pub shared: bool,
}

/// The inherited socket when the environment passes one, else a new one
/// bound to `addr`.
pub fn listen(addr: SocketAddr) -> io::Result<Listening> {
    if let Some(inherited) = inherited()? {
        return Ok(inherited);
    }
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        None,
    )?;
    // As tokio binds: a restart may bind while old connections linger.
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    socket.set_nonblocking(true)?;
    Ok(Listening {
        listener: socket.into(),
        shared: false,
    })
}

#[cfg(unix)]
#[allow(unsafe_code)]
fn inherited() -> io::Result<Option<Listening>> {
    // SAFETY: called at the start of `main`, before the runtime or anything
    // else opens or closes a descriptor, so those passed are still ours.
    let mut passed = unsafe { stoppable::activation::take() }.map_err(io::Error::other)?;
    match passed.len() {
        0 => Ok(None),
        1 => passed
            .pop()
            .map(|socket| {
                let shared = socket.held_elsewhere();
                socket
                    .into_tcp()
                    .map(|listener| Listening { listener, shared })
            })
            .transpose(),
        n => Err(io::Error::other(format!(
            "LISTEN_FDS={n}: this server serves one socket"
        ))),
    }
}

#[cfg(not(unix))]
fn inherited() -> io::Result<Option<Listening>> {
    Ok(None)
}
