//! Handshakes under way on a TCP listener: connects the kernel answered
//! (SYN-ACK sent) but whose last ACK it has not taken yet. Their clients
//! may already count themselves connected (the ACK is on its way over a
//! long round trip, or `TCP_DEFER_ACCEPT` holds it until their first
//! bytes), so a listener closed now would reset them (B1).

use crate::socket::BorrowedSocket;

/// Whether handshakes are under way on `listener`, as the kernel lists
/// them (`/proc/net/tcp`, state `SYN_RECV`). False when that cannot be
/// told (not Linux, no procfs), and the drain does not wait for them.
#[cfg(target_os = "linux")]
pub(crate) fn under_way(listener: BorrowedSocket<'_>) -> bool {
    let Some(local) = socket2::SockRef::from(&listener)
        .local_addr()
        .ok()
        .and_then(|a| a.as_socket())
    else {
        return false;
    };
    // A dual-stack listener's IPv4 handshakes may be listed in either.
    ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .any(|table| std::fs::read_to_string(table).is_ok_and(|table| lists_one_for(&table, local)))
}

/// Elsewhere than Linux: not told.
#[cfg(not(target_os = "linux"))]
pub(crate) fn under_way(_listener: BorrowedSocket<'_>) -> bool {
    false
}

/// `SYN_RECV` in the kernel's tables.
const SYN_RECV: &str = "03";

/// Whether a table in the format of `/proc/net/tcp` lists a handshake
/// under way to `local` (a listener on an unspecified address takes them
/// on every address).
fn lists_one_for(table: &str, local: std::net::SocketAddr) -> bool {
    table.lines().skip(1).any(|line| {
        let mut fields = line.split_whitespace().skip(1);
        let (Some(address), Some(_remote), Some(state)) =
            (fields.next(), fields.next(), fields.next())
        else {
            return false;
        };
        state == SYN_RECV
            && parse_address(address).is_some_and(|(ip, port)| {
                port == local.port()
                    && (local.ip().is_unspecified()
                        || ip.to_canonical() == local.ip().to_canonical())
            })
    })
}

/// An address as the kernel's tables print it: the address's bytes as
/// native 32-bit words in hex, a colon, the port in hex.
fn parse_address(field: &str) -> Option<(std::net::IpAddr, u16)> {
    let (address, port) = field.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let mut bytes = Vec::with_capacity(16);
    for word in address.as_bytes().chunks(8) {
        let word = u32::from_str_radix(std::str::from_utf8(word).ok()?, 16).ok()?;
        bytes.extend_from_slice(&word.to_ne_bytes());
    }
    let ip = match bytes.len() {
        4 => std::net::IpAddr::from(<[u8; 4]>::try_from(bytes).ok()?),
        16 => std::net::IpAddr::from(<[u8; 16]>::try_from(bytes).ok()?),
        _ => return None,
    };
    Some((ip, port))
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use std::net::{SocketAddr, TcpListener, TcpStream};
    use std::os::fd::{AsFd, AsRawFd};

    use super::*;

    /// Holds each handshake until the client's first bytes.
    #[allow(unsafe_code)]
    fn defer_accept(listener: &TcpListener) {
        let seconds: libc::c_int = 10;
        // SAFETY: a valid descriptor, and an option value of the size given.
        let set = unsafe {
            libc::setsockopt(
                listener.as_raw_fd(),
                libc::IPPROTO_TCP,
                libc::TCP_DEFER_ACCEPT,
                (&seconds as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        assert_eq!(set, 0, "{}", std::io::Error::last_os_error());
    }

    /// A connect the kernel holds at the handshake is seen, on its own
    /// listener only, and no longer once its first bytes complete it.
    #[test]
    fn a_handshake_held_by_the_kernel_is_seen_until_it_completes() {
        use std::io::Write;
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let other = TcpListener::bind("127.0.0.1:0").expect("bind");
        defer_accept(&listener);
        assert!(!under_way(listener.as_fd()), "none yet");
        let mut client = TcpStream::connect(listener.local_addr().unwrap()).expect("connect");
        assert!(under_way(listener.as_fd()), "held at the handshake");
        assert!(!under_way(other.as_fd()), "another listener's");
        client.write_all(b"x").expect("write");
        let (_accepted, _) = listener.accept().expect("completed by the bytes");
        assert!(!under_way(listener.as_fd()), "completed");
    }

    /// The kernel's format (as a little-endian machine prints it), IPv4
    /// and IPv6, and addresses that differ.
    #[test]
    #[cfg(target_endian = "little")]
    fn the_tables_format_is_read() {
        let header = "  sl  local_address rem_address   st tx_queue rx_queue\n";
        let v4 = format!("{header}   3: 0100007F:E193 0100007F:A4D0 03 00000000:00000000\n");
        let at = |s: &str| s.parse::<SocketAddr>().unwrap();
        assert!(lists_one_for(&v4, at("127.0.0.1:57747")));
        assert!(lists_one_for(&v4, at("0.0.0.0:57747")));
        assert!(!lists_one_for(&v4, at("127.0.0.2:57747")));
        assert!(!lists_one_for(&v4, at("127.0.0.1:57748")));
        let established = v4.replace(" 03 ", " 01 ");
        assert!(!lists_one_for(&established, at("127.0.0.1:57747")));
        let v6 = format!(
            "{header}   0: 00000000000000000000000001000000:1F90 \
             00000000000000000000000001000000:C350 03 00000000:00000000\n"
        );
        assert!(lists_one_for(&v6, at("[::1]:8080")));
        assert!(lists_one_for(&v6, at("[::]:8080")));
        let mapped = format!(
            "{header}   0: 0000000000000000FFFF00000100007F:1F90 \
             0000000000000000FFFF00000100007F:C350 03 00000000:00000000\n"
        );
        assert!(lists_one_for(&mapped, at("127.0.0.1:8080")));
        assert!(!lists_one_for("garbage\n: :: 03\n", at("127.0.0.1:8080")));
    }
}
