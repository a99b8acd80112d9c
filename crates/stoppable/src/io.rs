//! The connection's IO, seen by hyper and, after an upgrade, by the handler.
//! It notes when request bytes arrive (B4), closes politely, and reports the
//! close when it is dropped, so an upgraded connection stays tracked until
//! then (B14).

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::task::noop_waker_ref;

use hyper::rt::{Read, ReadBuf, ReadBufCursor, Write};

use crate::h2_frames::Sniff;
use crate::h2_streams::WireStreams;
use crate::shared::Shared;
use crate::slot::ConnSlot;

/// A tracked connection's IO. Dropping it closes the connection (a TLS
/// close_notify and a FIN first, if the socket takes them at once) and
/// tells the drain.
pub struct TrackedIo<T> {
    io: Option<T>,
    /// One try at shutting the write side down, never a wait.
    shut_down_once: fn(&mut T) -> bool,
    /// A shutdown completed already (hyper closed it gracefully).
    shut_down: bool,
    /// HTTP/1 or HTTP/2, and where an HTTP/2 connection's frames are
    /// before its first stream (B4).
    sniff: Sniff,
    /// HTTP/1: the last two bytes read, for a head's end split across reads.
    tail: [u8; 2],
    /// HTTP/2 (or not known yet): its responses under way on the wire.
    /// Boxed: HTTP/1 connections have none (unless their first read was
    /// too short to tell).
    wire: Option<Box<WireStreams>>,
    slot: Arc<ConnSlot>,
    shared: Arc<Shared>,
}

impl<T: Write + Unpin> TrackedIo<T> {
    pub(crate) fn new(io: T, slot: Arc<ConnSlot>, shared: Arc<Shared>) -> Self {
        TrackedIo {
            io: Some(io),
            shut_down_once,
            shut_down: false,
            sniff: Sniff::new(),
            tail: [0; 2],
            wire: None,
            slot,
            shared,
        }
    }
}

/// Polls `poll_shutdown` once, with no waker: a TLS close_notify and a FIN
/// if the socket takes them now. True when it completed.
fn shut_down_once<T: Write + Unpin>(io: &mut T) -> bool {
    let mut cx = Context::from_waker(noop_waker_ref());
    matches!(Pin::new(io).poll_shutdown(&mut cx), Poll::Ready(Ok(())))
}

impl<T> TrackedIo<T> {
    /// A write that cannot complete: the client is not reading (B9, B11).
    fn note_blocked<R>(&self, polled: Poll<R>) -> Poll<R> {
        if polled.is_pending() {
            self.slot.mark_output_blocked();
        }
        polled
    }

    /// A flush (or shutdown) that could not complete blocks too; a complete
    /// one unblocks.
    fn note_flushed(&self, polled: Poll<io::Result<()>>) -> Poll<io::Result<()>> {
        match polled {
            Poll::Pending => self.slot.mark_output_blocked(),
            Poll::Ready(Ok(())) => self.slot.output_flushed(),
            Poll::Ready(Err(_)) => {}
        }
        polled
    }

    fn io(&mut self) -> Pin<&mut T>
    where
        T: Unpin,
    {
        Pin::new(self.io.as_mut().expect("present until dropped"))
    }
}

impl<T: Read + Unpin> Read for TrackedIo<T> {
    #[allow(unsafe_code)]
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        // hyper's cursor cannot be reborrowed, so the inner IO reads into a
        // buffer over the cursor's memory, and the cursor advances after.
        // SAFETY: the inner reader only writes initialised bytes into the
        // unfilled part it is given (the `Read` contract).
        let mut inner = ReadBuf::uninit(unsafe { buf.as_mut() });
        let polled = this.io().poll_read(cx, inner.unfilled());
        let filled = inner.filled();
        let n = filled.len();
        // A read that brought nothing (pending, or the end) notes nothing.
        if n > 0 {
            note_read(&mut this.sniff, &mut this.tail, &this.slot, filled);
            if !this.sniff.is_http1() {
                follow_streams(&mut this.wire, &this.slot, |w| w.read(filled));
            }
        }
        // SAFETY: `n` bytes were initialised by the read above.
        unsafe { buf.advance(n) };
        polled
    }
}

/// HTTP/2 (or not known yet, as when the server speaks first): what the
/// bytes read or written do to its responses under way on the wire, told
/// to the slot when their number changes.
fn follow_streams(
    wire: &mut Option<Box<WireStreams>>,
    slot: &ConnSlot,
    bytes: impl FnOnce(&mut WireStreams),
) {
    let wire = wire.get_or_insert_with(|| Box::new(WireStreams::new()));
    let before = wire.open();
    bytes(wire);
    let open = wire.open();
    if open != before {
        slot.set_wire_streams(u32::try_from(open).unwrap_or(u32::MAX));
    }
}

/// The bytes of one write: what of them went out (`written` of them).
fn wrote_vectored(wire: &mut WireStreams, bufs: &[io::IoSlice<'_>], mut written: usize) {
    for buf in bufs {
        let n = buf.len().min(written);
        wire.wrote(&buf[..n]);
        written -= n;
        if written == 0 {
            return;
        }
    }
}

/// What the bytes of one read tell the connection's slot (B4). Once the
/// protocol is known (most reads), without the sniffer.
#[inline]
fn note_read(sniff: &mut Sniff, tail: &mut [u8; 2], slot: &ConnSlot, bytes: &[u8]) {
    match sniff {
        Sniff::Http1 => {
            slot.bytes_arrived();
            note_tail(slot, tail, bytes);
        }
        // From its first stream on, any bytes may be a request.
        Sniff::Http2 => slot.bytes_arrived(),
        _ => sniff_read(sniff, tail, slot, bytes),
    }
}

/// The first reads, until the protocol is known (and on HTTP/2, until its
/// first stream): out of line.
#[cold]
#[inline(never)]
fn sniff_read(sniff: &mut Sniff, tail: &mut [u8; 2], slot: &ConnSlot, bytes: &[u8]) {
    let read = sniff.read(bytes);
    if read.http2 {
        slot.mark_http2();
    }
    if read.request {
        slot.bytes_arrived();
    }
    if sniff.is_http1() {
        note_tail(slot, tail, bytes);
    }
}

/// HTTP/1: a read that stops short of a head's end may hold the start of
/// the next head, pipelined (B4, B6). A head ends with an empty line; lines
/// may end with CRLF or a bare LF (hyper takes both). The empty line may
/// come in a read of its own (a client writing line by line): what the
/// stream ends with counts, with `tail`, the last two bytes read before.
#[inline]
fn note_tail(slot: &ConnSlot, tail: &mut [u8; 2], bytes: &[u8]) {
    let last = match *bytes {
        [.., a, b, c] => [a, b, c],
        [b, c] => [tail[1], b, c],
        [c] => [tail[0], tail[1], c],
        [] => return,
    };
    *tail = [last[1], last[2]];
    let head_end = last == *b"\n\r\n" || last[1..] == *b"\n\n";
    slot.note_read_tail(!head_end);
}

impl<T: Write + Unpin> Write for TrackedIo<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let written = self.io().poll_write(cx, buf);
        if let (Poll::Ready(Ok(n)), false) = (&written, self.sniff.is_http1()) {
            let this = &mut *self;
            follow_streams(&mut this.wire, &this.slot, |w| w.wrote(&buf[..*n]));
        }
        self.note_blocked(written)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let flushed = self.io().poll_flush(cx);
        if let (Poll::Ready(Ok(())), Some(wire)) = (&flushed, &mut self.wire) {
            wire.flushed();
        }
        self.note_flushed(flushed)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let shut = self.io().poll_shutdown(cx);
        self.shut_down |= matches!(shut, Poll::Ready(Ok(())));
        self.note_flushed(shut)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.as_ref().is_some_and(Write::is_write_vectored)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let written = self.io().poll_write_vectored(cx, bufs);
        if let (Poll::Ready(Ok(n)), false) = (&written, self.sniff.is_http1()) {
            let this = &mut *self;
            follow_streams(&mut this.wire, &this.slot, |w| wrote_vectored(w, bufs, *n));
        }
        self.note_blocked(written)
    }
}

impl<T> Drop for TrackedIo<T> {
    fn drop(&mut self) {
        // No force-close reaches the handle from here on: the IO's code
        // below may panic, and close the socket as it unwinds.
        let socket = self.slot.forget_socket();
        // Politely first: close_notify over TLS, then a FIN, if they go out
        // at once; the socket's own shutdown makes sure of the FIN.
        let shut_down_once = self.shut_down_once;
        let polite = self.shut_down || self.io.as_mut().is_some_and(shut_down_once);
        if let (false, Some(socket)) = (polite, socket) {
            // Still open: the IO is not dropped yet.
            crate::socket::shutdown(socket);
        }
        drop(self.io.take());
        self.shared.closed(&self.slot);
    }
}
