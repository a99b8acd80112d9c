//! A raw HTTP/2 client over std `TcpStream`: frame by frame, so a case can
//! send a PING, leave the server's PING unanswered, or see exactly which
//! frames came before the connection ended (a GOAWAY before the FIN, B7).

use std::io::{self, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};

use crate::client::DEADLINE;

/// The client preface (RFC 9113 §3.4).
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

pub const DATA: u8 = 0x0;
pub const HEADERS: u8 = 0x1;
pub const SETTINGS: u8 = 0x4;
pub const PING: u8 = 0x6;
pub const GOAWAY: u8 = 0x7;
const WINDOW_UPDATE: u8 = 0x8;
/// The largest flow-control window (RFC 9113 §6.9.1).
const LARGEST: u32 = (1 << 31) - 1;

const END_STREAM: u8 = 0x1;
const ACK: u8 = 0x1;
const END_HEADERS: u8 = 0x4;

#[derive(Debug)]
pub struct Frame {
    pub kind: u8,
    pub flags: u8,
    pub stream: u32,
    pub payload: Vec<u8>,
}

impl Frame {
    pub fn ends_stream(&self) -> bool {
        matches!(self.kind, DATA | HEADERS) && self.flags & END_STREAM != 0
    }

    pub fn is_ping(&self) -> bool {
        self.kind == PING && self.flags & ACK == 0
    }
}

/// How a stream ended, as the client saw it.
#[derive(Debug, PartialEq, Eq)]
pub enum StreamEnd {
    /// The response ended (END_STREAM), with its body.
    Complete(Vec<u8>),
    /// The connection ended first.
    Cut,
}

pub struct RawH2 {
    pub stream: TcpStream,
    buf: Vec<u8>,
    /// Every frame read so far, in order.
    pub seen: Vec<Frame>,
}

impl RawH2 {
    /// Connects and sends the preface and an empty SETTINGS frame.
    pub fn open(addr: SocketAddr) -> RawH2 {
        let mut conn = RawH2::dial(addr);
        conn.send_raw(PREFACE);
        conn.send(SETTINGS, 0, 0, &[]);
        conn
    }

    /// Like [`open`](RawH2::open), with the largest flow-control windows,
    /// for the connection and every stream: the server may send all it has
    /// at once, and only the socket holds it back.
    pub fn open_with_large_windows(addr: SocketAddr) -> RawH2 {
        let mut conn = RawH2::dial(addr);
        conn.send_raw(PREFACE);
        let mut initial_window = vec![0x00, 0x04];
        initial_window.extend_from_slice(&LARGEST.to_be_bytes());
        conn.send(SETTINGS, 0, 0, &initial_window);
        conn.send(WINDOW_UPDATE, 0, 0, &(LARGEST - 65_535).to_be_bytes());
        conn
    }

    /// Opens the connection's and `stream`'s flow-control windows to the
    /// largest, from the initial 65,535 bytes.
    pub fn open_windows(&mut self, stream: u32) {
        for id in [0, stream] {
            self.send(WINDOW_UPDATE, 0, id, &(LARGEST - 65_535).to_be_bytes());
        }
    }

    /// Connects, sending nothing.
    fn dial(addr: SocketAddr) -> RawH2 {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_read_timeout(Some(DEADLINE)).expect("timeout");
        stream.set_nodelay(true).expect("nodelay");
        RawH2 {
            stream,
            buf: Vec::new(),
            seen: Vec::new(),
        }
    }

    fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write");
    }

    /// Like [`send`](RawH2::send); false if the connection is gone.
    pub fn try_send(&mut self, kind: u8, flags: u8, stream: u32, payload: &[u8]) -> bool {
        let len = (payload.len() as u32).to_be_bytes();
        let mut frame = vec![len[1], len[2], len[3], kind, flags];
        frame.extend_from_slice(&stream.to_be_bytes());
        frame.extend_from_slice(payload);
        self.stream.write_all(&frame).is_ok()
    }

    pub fn send(&mut self, kind: u8, flags: u8, stream: u32, payload: &[u8]) {
        let len = (payload.len() as u32).to_be_bytes();
        let mut frame = vec![len[1], len[2], len[3], kind, flags];
        frame.extend_from_slice(&stream.to_be_bytes());
        frame.extend_from_slice(payload);
        self.send_raw(&frame);
    }

    /// A PING the client sends (not an acknowledgement).
    pub fn ping(&mut self) {
        self.send(PING, 0, 0, &[7; 8]);
    }

    /// Opens `stream` with `GET path` (one HEADERS frame, END_STREAM).
    pub fn get(&mut self, stream: u32, path: &str) {
        // HPACK: :method GET, :scheme http (indexed), :path and :authority
        // as literals without indexing (RFC 7541 §6.2.2).
        let mut block = vec![0x82, 0x86, 0x04, path.len() as u8];
        block.extend_from_slice(path.as_bytes());
        block.extend_from_slice(&[0x01, 4]);
        block.extend_from_slice(b"test");
        self.send(HEADERS, END_STREAM | END_HEADERS, stream, &block);
    }

    /// Opens `stream` as a `CONNECT` tunnel (HEADERS, no END_STREAM).
    pub fn connect(&mut self, stream: u32) {
        // HPACK: :method CONNECT and :authority, literals without indexing.
        let mut block = vec![0x02, 7];
        block.extend_from_slice(b"CONNECT");
        block.extend_from_slice(&[0x01, 6]);
        block.extend_from_slice(b"test:1");
        self.send(HEADERS, END_HEADERS, stream, &block);
    }

    /// DATA on `stream`; the last with END_STREAM when `end`.
    pub fn data(&mut self, stream: u32, bytes: &[u8], end: bool) {
        self.send(DATA, if end { END_STREAM } else { 0 }, stream, bytes);
    }

    /// Reads until a DATA frame on `stream`; its payload.
    pub fn data_on(&mut self, stream: u32, answer_pings: bool) -> Vec<u8> {
        loop {
            let f = self.frame(answer_pings).expect("a frame");
            if f.stream == stream && f.kind == DATA && !f.payload.is_empty() {
                return f.payload.clone();
            }
        }
    }

    /// Sends the preface in two writes, split after `at` bytes, with a
    /// pause between, so the server reads them apart.
    pub fn open_split(addr: SocketAddr, at: usize) -> RawH2 {
        let mut conn = RawH2::dial(addr);
        conn.send_raw(&PREFACE[..at]);
        std::thread::sleep(std::time::Duration::from_millis(50));
        conn.send_raw(&PREFACE[at..]);
        conn.send(SETTINGS, 0, 0, &[]);
        conn
    }

    /// The next frame; an error when the connection ends. Acknowledges the
    /// server's SETTINGS; answers PINGs only if `answer_pings`.
    pub fn frame(&mut self, answer_pings: bool) -> io::Result<&Frame> {
        loop {
            if self.buf.len() >= 9 {
                let len = u32::from_be_bytes([0, self.buf[0], self.buf[1], self.buf[2]]) as usize;
                if self.buf.len() >= 9 + len {
                    let head: Vec<u8> = self.buf.drain(..9).collect();
                    let payload: Vec<u8> = self.buf.drain(..len).collect();
                    let stream =
                        u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & !(1 << 31);
                    let frame = Frame {
                        kind: head[3],
                        flags: head[4],
                        stream,
                        payload,
                    };
                    if frame.kind == SETTINGS && frame.flags & ACK == 0 {
                        self.send(SETTINGS, ACK, 0, &[]);
                    }
                    if frame.is_ping() && answer_pings {
                        let data = frame.payload.clone();
                        self.send(PING, ACK, 0, &data);
                    }
                    self.seen.push(frame);
                    return Ok(self.seen.last().expect("just pushed"));
                }
            }
            let mut chunk = [0u8; 16384];
            match self.stream.read(&mut chunk)? {
                0 => return Err(io::Error::new(ErrorKind::UnexpectedEof, "connection ended")),
                n => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// Reads until `stream`'s response ends or the connection does.
    pub fn response(&mut self, stream: u32, answer_pings: bool) -> StreamEnd {
        let mut body = Vec::new();
        loop {
            match self.frame(answer_pings) {
                Ok(f) if f.stream == stream => {
                    if f.kind == DATA {
                        body.extend_from_slice(&f.payload);
                    }
                    if f.ends_stream() {
                        return StreamEnd::Complete(body);
                    }
                }
                Ok(_) => {}
                Err(_) => return StreamEnd::Cut,
            }
        }
    }

    /// Reads every frame until the connection ends; true if it ended with
    /// a FIN (not a reset or the read deadline).
    pub fn until_closed(&mut self, answer_pings: bool) -> bool {
        loop {
            match self.frame(answer_pings) {
                Ok(_) => {}
                Err(e) => return e.kind() == ErrorKind::UnexpectedEof,
            }
        }
    }

    /// Reads until a frame that `wanted` accepts; panics if the connection
    /// ends first.
    pub fn until(&mut self, answer_pings: bool, what: &str, wanted: impl Fn(&Frame) -> bool) {
        loop {
            match self.frame(answer_pings) {
                Ok(f) if wanted(f) => return,
                Ok(_) => {}
                Err(e) => panic!("the connection ended before {what}: {e}"),
            }
        }
    }

    /// Whether a frame of `kind` was read.
    pub fn saw(&self, kind: u8) -> bool {
        self.seen.iter().any(|f| f.kind == kind)
    }
}
