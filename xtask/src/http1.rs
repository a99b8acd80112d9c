//! Reading one HTTP/1.1 response with a `content-length` body: what the
//! load generator and the stress run both need.

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

/// How reading a response ended.
pub enum Response {
    /// In full; `close` when it said `Connection: close`.
    Answered { close: bool },
    /// The connection ended before any byte of it.
    NothingBack,
    /// It began, then the connection ended (or it did not fit `buf`).
    Cut,
}

/// Reads one response into `buf` (no pipelining: nothing follows it).
pub async fn read_response(stream: &mut TcpStream, buf: &mut [u8]) -> Response {
    let mut filled = 0;
    loop {
        match stream.read(&mut buf[filled..]).await {
            Ok(0) | Err(_) if filled == 0 => return Response::NothingBack,
            Ok(0) | Err(_) => return Response::Cut,
            Ok(n) => filled += n,
        }
        let Some(head) = buf[..filled].windows(4).position(|w| w == b"\r\n\r\n") else {
            if filled == buf.len() {
                return Response::Cut;
            }
            continue;
        };
        let head_text = std::str::from_utf8(&buf[..head]).unwrap_or("");
        let len = header(head_text, "content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        if filled >= head + 4 + len {
            let close =
                header(head_text, "connection").is_some_and(|v| v.eq_ignore_ascii_case("close"));
            return Response::Answered { close };
        }
    }
}

/// A header's value, by case-insensitive name.
fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|line| {
        let (n, value) = line.split_once(':')?;
        n.eq_ignore_ascii_case(name).then(|| value.trim())
    })
}
