//! The clients' connections (TCP, or TLS with ALPN) and an HTTP/1.1
//! response reader that knows chunked bodies and pipelined responses.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::TlsConnector;

pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// A connection of a client.
pub type Stream = Box<dyn Io>;

/// TLS client connectors trusting the campaign's certificate.
pub struct Tls {
    pub http1: TlsConnector,
    pub h2: TlsConnector,
}

impl Tls {
    pub fn new(cert_pem: &str) -> Tls {
        let mut roots = tokio_rustls::rustls::RootCertStore::empty();
        let der = rustls_pem(cert_pem);
        roots.add(der).expect("a valid certificate");
        let connector = |alpn: &[u8]| {
            let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
            let mut config = tokio_rustls::rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .expect("TLS versions")
                .with_root_certificates(roots.clone())
                .with_no_client_auth();
            config.alpn_protocols = vec![alpn.to_vec()];
            TlsConnector::from(Arc::new(config))
        };
        Tls {
            http1: connector(b"http/1.1"),
            h2: connector(b"h2"),
        }
    }
}

fn rustls_pem(pem: &str) -> tokio_rustls::rustls::pki_types::CertificateDer<'static> {
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    tokio_rustls::rustls::pki_types::CertificateDer::from_pem_slice(pem.as_bytes())
        .expect("a PEM certificate")
}

/// Which protocol a TLS connection offers by ALPN.
#[derive(Clone, Copy)]
pub enum Alpn {
    Http1,
    H2,
}

/// Connects, over TLS when `tls` is given.
pub async fn connect(addr: SocketAddr, tls: Option<&Tls>, alpn: Alpn) -> io::Result<Stream> {
    connect_with(addr, tls, alpn, false).await
}

/// Like [`connect`]; with `reset`, dropping the connection resets it (RST),
/// as a client that vanishes does.
pub async fn connect_with(
    addr: SocketAddr,
    tls: Option<&Tls>,
    alpn: Alpn,
    reset: bool,
) -> io::Result<Stream> {
    let tcp = TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    if reset {
        socket2::SockRef::from(&tcp).set_linger(Some(Duration::ZERO))?;
    }
    let Some(tls) = tls else {
        return Ok(Box::new(tcp));
    };
    let connector = match alpn {
        Alpn::Http1 => &tls.http1,
        Alpn::H2 => &tls.h2,
    };
    let name = ServerName::try_from("localhost").expect("a DNS name");
    let handshake = connector.connect(name, tcp);
    // A handshake that fails after the TCP connect is no refusal: the
    // server accepted (and counts) the connection.
    match tokio::time::timeout(Duration::from_secs(10), handshake).await {
        Ok(Ok(stream)) => Ok(Box::new(stream)),
        Ok(Err(e)) => Err(io::Error::other(format!("TLS handshake: {e}"))),
        Err(_) => Err(io::Error::other("TLS handshake timed out")),
    }
}

/// How reading one response ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Response {
    /// In full; `close` when it said `Connection: close`.
    Answered { close: bool, body: Vec<u8> },
    /// The connection ended before any byte of it.
    NothingBack,
    /// It began, then the connection ended.
    Cut,
}

/// Reads HTTP/1.1 responses, one after the other, from one connection.
#[derive(Default)]
pub struct Reader {
    buf: Vec<u8>,
}

impl Reader {
    /// The next response in full, or how it ended.
    pub async fn response(&mut self, io: &mut Stream) -> Response {
        let mut began = !self.buf.is_empty();
        loop {
            if let Some((used, close, body)) = parse(&self.buf) {
                self.buf.drain(..used);
                return Response::Answered { close, body };
            }
            let mut chunk = [0u8; 16384];
            match io.read(&mut chunk).await {
                Ok(0) | Err(_) if !began => return Response::NothingBack,
                Ok(0) | Err(_) => return Response::Cut,
                Ok(n) => {
                    began = true;
                    self.buf.extend_from_slice(&chunk[..n]);
                }
            }
        }
    }

    /// Reads until the connection ends; true if it ended with no more
    /// bytes (a response after one that said close would be an error).
    pub async fn until_end(&mut self, io: &mut Stream) -> bool {
        let mut chunk = [0u8; 16384];
        loop {
            match io.read(&mut chunk).await {
                Ok(0) | Err(_) => return self.buf.is_empty(),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }
}

/// A whole response at the front of `buf`: (its length, close, body).
fn parse(buf: &[u8]) -> Option<(usize, bool, Vec<u8>)> {
    let head_end = find(buf, b"\r\n\r\n")? + 4;
    let head = std::str::from_utf8(&buf[..head_end]).ok()?;
    let close = header(head, "connection").is_some_and(|v| v.eq_ignore_ascii_case("close"));
    let rest = &buf[head_end..];
    if header(head, "transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        let mut body = Vec::new();
        let mut at = 0;
        loop {
            let line_end = at + find(&rest[at..], b"\r\n")?;
            let size_text = std::str::from_utf8(&rest[at..line_end]).ok()?;
            let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
            let data = line_end + 2;
            if rest.len() < data + size + 2 {
                return None;
            }
            body.extend_from_slice(&rest[data..data + size]);
            at = data + size + 2;
            if size == 0 {
                return Some((head_end + at, close, body));
            }
        }
    }
    let len: usize = header(head, "content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    (rest.len() >= len).then(|| (head_end + len, close, rest[..len].to_vec()))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|line| {
        let (n, value) = line.split_once(':')?;
        n.eq_ignore_ascii_case(name).then(|| value.trim())
    })
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn chunked_and_pipelined_responses_parse() {
        let two = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n5\r\nworld\r\n0\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok";
        let (used, close, body) = parse(two).expect("the first");
        assert_eq!((close, body.as_slice()), (false, &b"helloworld"[..]));
        let (rest, close, body) = parse(&two[used..]).expect("the second");
        assert_eq!(
            (rest, close, body.as_slice()),
            (two.len() - used, true, &b"ok"[..])
        );
        assert!(parse(&two[..used - 3]).is_none(), "not yet whole");
    }
}
