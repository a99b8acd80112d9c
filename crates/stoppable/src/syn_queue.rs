//! Handshakes under way on a TCP listener: connects the kernel answered
//! (SYN-ACK sent) but whose last ACK it has not taken yet. Their clients
//! may already count themselves connected (the ACK is on its way over a
//! long round trip, or `TCP_DEFER_ACCEPT` holds it until their first
//! bytes), so a listener closed now would reset them (B1).

use crate::socket::BorrowedSocket;

/// Whether handshakes are under way on `listener`, as the kernel lists
/// them (state `SYN_RECV`): asked over netlink (sock_diag, which sends only
/// those), else read from `/proc/net/tcp` (which prints every socket: tens
/// of milliseconds with ten thousand). False when neither tells (not
/// Linux), and the drain does not wait for them.
#[cfg(target_os = "linux")]
pub(crate) fn under_way(listener: BorrowedSocket<'_>) -> bool {
    let Some(local) = socket2::SockRef::from(&listener)
        .local_addr()
        .ok()
        .and_then(|a| a.as_socket())
    else {
        return false;
    };
    // A listener's handshakes are listed in its own family (a dual-stack
    // one's IPv4 ones as mapped IPv6 addresses): one family to ask.
    let (family, table) = match local {
        std::net::SocketAddr::V4(_) => (libc::AF_INET, "/proc/net/tcp"),
        std::net::SocketAddr::V6(_) => (libc::AF_INET6, "/proc/net/tcp6"),
    };
    diag::lists_one_for(family, local).unwrap_or_else(|_| {
        std::fs::read_to_string(table).is_ok_and(|table| lists_one_for(&table, local))
    })
}

/// Elsewhere than Linux: not told.
#[cfg(not(target_os = "linux"))]
pub(crate) fn under_way(_listener: BorrowedSocket<'_>) -> bool {
    false
}

/// Whether `ip:port` is the listener's `local` address: a listener on an
/// unspecified address takes handshakes on every address.
fn is_local(local: std::net::SocketAddr, ip: std::net::IpAddr, port: u16) -> bool {
    port == local.port()
        && (local.ip().is_unspecified() || ip.to_canonical() == local.ip().to_canonical())
}

/// The kernel's sock_diag over netlink (`linux/inet_diag.h`): a dump of the
/// TCP sockets in one state, read as bytes, with no unsafe code.
#[cfg(target_os = "linux")]
mod diag {
    use std::io::{self, Read};
    use std::net::{IpAddr, SocketAddr};
    use std::time::Duration;

    use socket2::{Domain, Protocol, Socket, Type};

    const NETLINK_SOCK_DIAG: i32 = 4;
    const SOCK_DIAG_BY_FAMILY: u16 = 20;
    const NLM_F_REQUEST: u16 = 0x1;
    const NLM_F_DUMP: u16 = 0x300;
    const NLMSG_ERROR: u16 = 2;
    const NLMSG_DONE: u16 = 3;
    const TCP_SYN_RECV: u32 = 3;
    /// `struct nlmsghdr`.
    const HEADER: usize = 16;
    /// `struct inet_diag_msg` up to the end of its `id.idiag_src`.
    const MSG_THROUGH_SRC: usize = 24;

    /// Whether the kernel lists a handshake under way to `local` among
    /// `family`'s sockets.
    pub(super) fn lists_one_for(family: i32, local: SocketAddr) -> io::Result<bool> {
        let socket = Socket::new(
            Domain::from(libc::AF_NETLINK),
            Type::DGRAM,
            Some(Protocol::from(NETLINK_SOCK_DIAG)),
        )?;
        // A dump always ends; a kernel that does not answer is no answer.
        socket.set_read_timeout(Some(Duration::from_millis(100)))?;
        socket.send(&request(family as u8))?;
        dump_lists_one_for(&socket, local)
    }

    /// `nlmsghdr` and `inet_diag_req_v2`: a dump of `family`'s TCP sockets
    /// in `SYN_RECV`.
    fn request(family: u8) -> Vec<u8> {
        let mut req = Vec::with_capacity(HEADER + 56);
        req.extend_from_slice(&((HEADER + 56) as u32).to_ne_bytes());
        req.extend_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
        req.extend_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
        req.extend_from_slice(&[0; 8]); // sequence, port id
        req.extend_from_slice(&[family, libc::IPPROTO_TCP as u8, 0, 0]);
        req.extend_from_slice(&(1u32 << TCP_SYN_RECV).to_ne_bytes());
        req.extend_from_slice(&[0; 48]); // inet_diag_sockid: no filter
        req
    }

    /// Reads one dump, to its end or to the first handshake to `local`
    /// (the socket is closed after: the rest of the dump goes with it).
    fn dump_lists_one_for(socket: &Socket, local: SocketAddr) -> io::Result<bool> {
        // Room for any one message of a dump: one cut short reads as
        // malformed, and /proc is read instead.
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = (&*socket).read(&mut buf)?;
            let mut at = &buf[..n];
            while at.len() >= HEADER {
                let len = u32::from_ne_bytes(at[0..4].try_into().expect("4 bytes")) as usize;
                let kind = u16::from_ne_bytes(at[4..6].try_into().expect("2 bytes"));
                if len < HEADER || len > at.len() {
                    return Err(io::Error::other("a malformed netlink message"));
                }
                match kind {
                    NLMSG_DONE => return Ok(false),
                    NLMSG_ERROR => return Err(io::Error::other("sock_diag refused the dump")),
                    SOCK_DIAG_BY_FAMILY if is_local(&at[HEADER..len], local) => return Ok(true),
                    _ => {}
                }
                // Messages are aligned to 4 bytes.
                at = &at[((len + 3) & !3).min(at.len())..];
            }
            if n == 0 {
                return Err(io::Error::other("the dump ended early"));
            }
        }
    }

    /// Whether an `inet_diag_msg` is a handshake to `local`.
    fn is_local(msg: &[u8], local: SocketAddr) -> bool {
        if msg.len() < MSG_THROUGH_SRC || u32::from(msg[1]) != TCP_SYN_RECV {
            return false;
        }
        let port = u16::from_be_bytes([msg[4], msg[5]]);
        let src = &msg[8..24];
        let ip = match i32::from(msg[0]) {
            libc::AF_INET => IpAddr::from(<[u8; 4]>::try_from(&src[..4]).expect("4 bytes")),
            libc::AF_INET6 => IpAddr::from(<[u8; 16]>::try_from(src).expect("16 bytes")),
            _ => return false,
        };
        super::is_local(local, ip, port)
    }
}

/// `SYN_RECV` in the kernel's tables.
const SYN_RECV: &str = "03";

/// Whether a table in the format of `/proc/net/tcp` lists a handshake
/// under way to `local`.
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
        let addr = listener.local_addr().unwrap();
        let in_proc =
            |local| lists_one_for(&std::fs::read_to_string("/proc/net/tcp").unwrap(), local);
        let both = |local| {
            let asked = diag::lists_one_for(libc::AF_INET, local).expect("sock_diag answers");
            assert_eq!(asked, in_proc(local), "sock_diag and /proc/net/tcp agree");
            asked
        };
        assert!(!under_way(listener.as_fd()), "none yet");
        assert!(!both(addr));
        let mut client = TcpStream::connect(addr).expect("connect");
        assert!(under_way(listener.as_fd()), "held at the handshake");
        assert!(both(addr));
        assert!(!under_way(other.as_fd()), "another listener's");
        assert!(!both(other.local_addr().unwrap()));
        client.write_all(b"x").expect("write");
        let (_accepted, _) = listener.accept().expect("completed by the bytes");
        assert!(!under_way(listener.as_fd()), "completed");
        assert!(!both(addr));
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
