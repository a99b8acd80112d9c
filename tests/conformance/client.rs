//! A raw HTTP/1.1 client over std `TcpStream`: exact bytes, exact headers,
//! and the difference between a FIN (EOF) and a reset.

use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// How long any read waits before the test fails: a deadline, not a sleep.
pub const DEADLINE: Duration = Duration::from_secs(10);

/// A raw HTTP/1.1 connection over plain TCP or, in TLS cases, over a
/// blocking TLS stream.
pub struct Conn<S = TcpStream> {
    pub stream: S,
    buf: Vec<u8>,
}

#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn says_close(&self) -> bool {
        self.header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// How a connection ended, as the client sees it.
#[derive(Debug, PartialEq, Eq)]
pub enum End {
    /// A clean FIN.
    Eof,
    /// A reset.
    Reset,
    /// More bytes came instead.
    Data(Vec<u8>),
}

impl Conn {
    pub fn open(addr: SocketAddr) -> Conn {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_read_timeout(Some(DEADLINE)).expect("timeout");
        stream.set_nodelay(true).expect("nodelay");
        Conn::over(stream)
    }

    /// Resets the connection (RST), as a client that vanishes does.
    pub fn reset(self) {
        let socket = socket2::SockRef::from(&self.stream);
        socket.set_linger(Some(Duration::ZERO)).expect("linger");
        drop(self.stream);
    }

    pub fn half_close(&self) {
        self.stream.shutdown(Shutdown::Write).expect("shutdown");
    }
}

impl<S: Read + Write> Conn<S> {
    /// A connection over a stream already open.
    pub fn over(stream: S) -> Conn<S> {
        Conn {
            stream,
            buf: Vec::new(),
        }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write");
    }

    pub fn get(&mut self, path: &str) {
        self.send(format!("GET {path} HTTP/1.1\r\nhost: test\r\n\r\n").as_bytes());
    }

    /// One full response; an error if the connection ends first.
    pub fn response(&mut self) -> io::Result<Resp> {
        let head_end = loop {
            if let Some(i) = find(&self.buf, b"\r\n\r\n") {
                break i;
            }
            self.fill()?;
        };
        let head = String::from_utf8_lossy(&self.buf[..head_end]).into_owned();
        self.buf.drain(..head_end + 4);
        let mut lines = head.split("\r\n");
        let status = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| io::Error::new(ErrorKind::InvalidData, "bad status line"))?;
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        let mut resp = Resp {
            status,
            headers,
            body: Vec::new(),
        };
        if resp.header("transfer-encoding").is_some() {
            resp.body = self.chunked()?;
        } else if let Some(len) = resp.header("content-length") {
            let len: usize = len.parse().unwrap_or(0);
            while self.buf.len() < len {
                self.fill()?;
            }
            resp.body = self.buf.drain(..len).collect();
        }
        Ok(resp)
    }

    /// Reads the head of a chunked response and its first chunk only.
    pub fn head_and_first_chunk(&mut self) -> io::Result<Vec<u8>> {
        loop {
            if let Some(head_end) = find(&self.buf, b"\r\n\r\n") {
                let rest = &self.buf[head_end + 4..];
                if let Some(size_end) = find(rest, b"\r\n") {
                    let size =
                        usize::from_str_radix(&String::from_utf8_lossy(&rest[..size_end]), 16)
                            .map_err(|_| io::Error::new(ErrorKind::InvalidData, "chunk size"))?;
                    if rest.len() >= size_end + 2 + size {
                        return Ok(rest[size_end + 2..size_end + 2 + size].to_vec());
                    }
                }
            }
            self.fill()?;
        }
    }

    fn chunked(&mut self) -> io::Result<Vec<u8>> {
        let mut body = Vec::new();
        loop {
            let size_end = loop {
                if let Some(i) = find(&self.buf, b"\r\n") {
                    break i;
                }
                self.fill()?;
            };
            let size = usize::from_str_radix(&String::from_utf8_lossy(&self.buf[..size_end]), 16)
                .map_err(|_| io::Error::new(ErrorKind::InvalidData, "chunk size"))?;
            while self.buf.len() < size_end + 2 + size + 2 {
                self.fill()?;
            }
            body.extend_from_slice(&self.buf[size_end + 2..size_end + 2 + size]);
            self.buf.drain(..size_end + 2 + size + 2);
            if size == 0 {
                return Ok(body);
            }
        }
    }

    fn fill(&mut self) -> io::Result<()> {
        let mut chunk = [0u8; 4096];
        match self.stream.read(&mut chunk)? {
            0 => Err(io::Error::new(ErrorKind::UnexpectedEof, "connection ended")),
            n => {
                self.buf.extend_from_slice(&chunk[..n]);
                Ok(())
            }
        }
    }

    /// Waits for the connection to end and says how; with the time it took.
    pub fn end(&mut self) -> (End, Duration) {
        let start = Instant::now();
        if !self.buf.is_empty() {
            return (End::Data(std::mem::take(&mut self.buf)), start.elapsed());
        }
        let mut chunk = [0u8; 4096];
        let end = match self.stream.read(&mut chunk) {
            Ok(0) => End::Eof,
            Ok(n) => End::Data(chunk[..n].to_vec()),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => End::Reset,
            Err(e) => panic!("no end of connection within the deadline: {e}"),
        };
        (end, start.elapsed())
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

impl Conn<std::os::unix::net::UnixStream> {
    /// A connection over a Unix domain socket.
    pub fn open_unix(path: &std::path::Path) -> Self {
        let stream = std::os::unix::net::UnixStream::connect(path).expect("connect");
        stream.set_read_timeout(Some(DEADLINE)).expect("timeout");
        Conn::over(stream)
    }
}

/// True when a connect to a Unix domain socket is refused (B1).
pub fn unix_refused(path: &std::path::Path) -> bool {
    match std::os::unix::net::UnixStream::connect(path) {
        Err(e) => e.kind() == ErrorKind::ConnectionRefused,
        Ok(_) => false,
    }
}

/// True when a connect is refused (B1).
pub fn refused(addr: SocketAddr) -> bool {
    match TcpStream::connect_timeout(&addr, DEADLINE) {
        Err(e) => e.kind() == ErrorKind::ConnectionRefused,
        Ok(_) => false,
    }
}

/// The test's own runtime for async clients (hyper's, tungstenite): one
/// thread, apart from the server's.
pub fn tokio_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a client runtime")
}
