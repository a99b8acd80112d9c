//! TLS on async-io (smol, async-std) with futures-rustls: the handshake for
//! [`Server::with_handshake`](crate::Server::with_handshake) and the stream
//! hyper reads and writes after it.

use std::io;
use std::mem::MaybeUninit;
use std::net::TcpStream;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use async_io::Async;
use futures_io::{AsyncRead, AsyncWrite};
use futures_rustls::server::TlsStream;
use futures_util::future::MapOk;
use futures_util::TryFutureExt;
use hyper::rt::{Read, ReadBufCursor, Write};
use rustls::ServerConfig;

use crate::async_io::AsyncIoStream;
use crate::handshake::{Handshake, Started};

/// The most plaintext one TLS record carries: no read needs more.
const MAX_RECORD: usize = 16 * 1024;

/// Runs a rustls server handshake on each connection (see
/// [`crate::tls::server_config`]).
#[derive(Clone)]
pub struct TlsAcceptor(futures_rustls::TlsAcceptor);

impl TlsAcceptor {
    /// An acceptor with `config`.
    pub fn new(config: Arc<ServerConfig>) -> Self {
        TlsAcceptor(config.into())
    }

    /// The handshake of one connection; it gives the IO to serve HTTP over.
    pub fn accept(&self, stream: Async<TcpStream>) -> Accepting {
        self.0.accept(stream).map_ok(AsyncIoTlsStream)
    }
}

impl std::fmt::Debug for TlsAcceptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TlsAcceptor")
    }
}

/// The handshake of one connection ([`TlsAcceptor::accept`]).
pub type Accepting = MapOk<
    futures_rustls::Accept<Async<TcpStream>>,
    fn(TlsStream<Async<TcpStream>>) -> AsyncIoTlsStream,
>;

impl Handshake<AsyncIoStream> for TlsAcceptor {
    type Io = AsyncIoTlsStream;
    type Future = Accepting;

    fn start(&self, io: AsyncIoStream) -> Started<AsyncIoTlsStream, Accepting> {
        Started::Running(self.accept(io.0))
    }
}

/// A TLS stream on async-io's reactor, as hyper reads and writes it.
#[derive(Debug)]
pub struct AsyncIoTlsStream(pub TlsStream<Async<TcpStream>>);

// SAFETY: its IO methods go through the TLS stream to the inner socket,
// never closing or replacing it.
#[allow(unsafe_code)]
unsafe impl crate::ConnSocket for AsyncIoTlsStream {
    fn conn_socket(&self) -> Option<crate::BorrowedSocket<'_>> {
        self.0.conn_socket()
    }
}

impl Read for AsyncIoTlsStream {
    #[allow(unsafe_code)]
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        // futures-io reads into initialised memory: zero what one record
        // can fill (small beside decrypting it).
        // SAFETY: only initialised bytes are written into the cursor's
        // memory, and the cursor advances by the count the read filled.
        let unfilled = unsafe { buf.as_mut() };
        let len = unfilled.len().min(MAX_RECORD);
        let part = &mut unfilled[..len];
        part.fill(MaybeUninit::new(0));
        // SAFETY: every byte of `part` was just initialised.
        let part = unsafe { &mut *(part as *mut [MaybeUninit<u8>] as *mut [u8]) };
        let n = ready!(Pin::new(&mut self.0).poll_read(cx, part))?;
        // SAFETY: `n` bytes were filled by the read.
        unsafe { buf.advance(n) };
        Poll::Ready(Ok(()))
    }
}

impl Write for AsyncIoTlsStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    /// Sends TLS's close_notify, then the FIN.
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_close(cx)
    }
}
