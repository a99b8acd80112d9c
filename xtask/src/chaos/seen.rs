//! What the clients saw, request by request and connection by connection:
//! the material the oracle judges.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use tokio::sync::Notify;

use super::io::Tls;

/// How one request (or unit of work) ended, as its client saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// In full.
    Answered,
    /// The connect was refused (or its TLS handshake failed): nothing sent.
    Refused,
    /// The server said it did not process it: an HTTP/2 stream refused by a
    /// GOAWAY (RFC 9113 §6.8), a request pipelined behind a response that
    /// said `Connection: close` (RFC 9112 §9.6).
    NotProcessed,
    /// No byte of an answer came before the connection ended: on a reused
    /// keep-alive connection (the race HTTP/1.1 clients retry) or a fresh one.
    NothingBack { reused: bool },
    /// The answer began (or the unit of work: a head, a line, a WebSocket,
    /// an event stream), then the server ended the connection.
    Cut,
    /// The client broke it itself (a reset, a half-close).
    Fault,
    /// Nothing came back for a new connection's first request, sent a
    /// while after its connect: the oracle tells whether its first-request
    /// window allowed the server to close it first (B3, B4).
    LateNothingBack { connected: Instant },
}

#[derive(Clone, Copy, Debug)]
pub struct Seen {
    /// Of the line protocol's stop (else HTTP's).
    pub lines: bool,
    pub conn: u64,
    pub sent: Instant,
    pub ended: Instant,
    pub outcome: Outcome,
}

/// One connection's life, from its connect to its end (either side's).
#[derive(Clone, Copy, Debug)]
pub struct Span {
    pub lines: bool,
    pub closed: Instant,
    /// The server may never have had it: a handshake its kernel held
    /// until the first request (`TCP_DEFER_ACCEPT`), which came after the
    /// listener closed. The report may count it closed, or not.
    pub unsure: bool,
}

tokio::task_local! {
    /// The client kind of the current task, for the failure reports.
    pub static CLIENT: &'static str;
}

#[derive(Clone, Default)]
pub struct Record {
    /// Each connection's client kind, by connection number.
    pub kinds: std::collections::HashMap<u64, &'static str>,
    pub requests: Vec<Seen>,
    pub spans: Vec<Span>,
    /// What a client saw that breaks a rule outright (B7's GOAWAY, a
    /// response after one that said close...).
    pub violations: Vec<String>,
}

/// What every client shares: where to connect, whether the stop reported,
/// and the record.
pub struct Ctx {
    pub addr: SocketAddr,
    pub lines: SocketAddr,
    pub tls: Option<Tls>,
    done: AtomicBool,
    done_notify: Notify,
    next_conn: AtomicU64,
    record: Mutex<Record>,
}

impl Ctx {
    pub fn new(addr: SocketAddr, lines: SocketAddr, tls: Option<Tls>) -> Ctx {
        Ctx {
            addr,
            lines,
            tls,
            done: AtomicBool::new(false),
            done_notify: Notify::new(),
            next_conn: AtomicU64::new(0),
            record: Mutex::new(Record::default()),
        }
    }

    /// Both stops reported: clients finish what they do and return.
    pub fn finish(&self) {
        self.done.store(true, Ordering::SeqCst);
        self.done_notify.notify_waiters();
    }

    pub fn is_done(&self) -> bool {
        self.done.load(Ordering::SeqCst)
    }

    /// Resolves once both stops reported.
    pub async fn done(&self) {
        loop {
            let notified = self.done_notify.notified();
            if self.is_done() {
                return;
            }
            notified.await;
        }
    }

    /// A new connection's number.
    pub fn conn(&self) -> u64 {
        let conn = self.next_conn.fetch_add(1, Ordering::Relaxed);
        let kind = CLIENT.try_with(|k| *k).unwrap_or("shutdown");
        self.record.lock().expect("record").kinds.insert(conn, kind);
        conn
    }

    pub fn seen(&self, lines: bool, conn: u64, sent: Instant, outcome: Outcome) {
        let seen = Seen {
            lines,
            conn,
            sent,
            ended: Instant::now(),
            outcome,
        };
        self.record.lock().expect("record").requests.push(seen);
    }

    /// A connection ended (the client closed it, or saw the server's end).
    pub fn span(&self, lines: bool) {
        self.push_span(lines, false);
    }

    /// A connection ended that the server may never have had.
    pub fn unsure_span(&self, lines: bool) {
        self.push_span(lines, true);
    }

    fn push_span(&self, lines: bool, unsure: bool) {
        let span = Span {
            lines,
            closed: Instant::now(),
            unsure,
        };
        self.record.lock().expect("record").spans.push(span);
    }

    /// A connect that failed: refused (nothing to count), or its TLS
    /// handshake failed after the TCP connect (a connection the server
    /// accepted, and counts).
    pub fn connect_failed(&self, lines: bool, opened: Instant, error: &std::io::Error) {
        let conn = self.conn();
        self.seen(lines, conn, opened, Outcome::Refused);
        if error.kind() != std::io::ErrorKind::ConnectionRefused {
            self.span(lines);
        }
    }

    pub fn violation(&self, what: String) {
        self.record.lock().expect("record").violations.push(what);
    }

    pub fn take_record(&self) -> Record {
        std::mem::take(&mut *self.record.lock().expect("record"))
    }
}
