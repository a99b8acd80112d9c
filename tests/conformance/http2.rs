//! hyper's HTTP/2 client for the suite's cases, over TCP (prior knowledge)
//! or TLS (ALPN), on the test's own runtime (`client::tokio_runtime`).

use bytes::Bytes;
use http_body_util::Empty;
use hyper::client::conn::http2::{self, SendRequest};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::task::JoinHandle;

/// An HTTP/2 connection over `io`; its task is spawned and returned.
pub async fn connect<T>(io: T) -> (SendRequest<Empty<Bytes>>, JoinHandle<hyper::Result<()>>)
where
    T: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let (send, conn) = http2::handshake(TokioExecutor::new(), TokioIo::new(io))
        .await
        .expect("h2 handshake");
    (send, tokio::spawn(conn))
}

/// A GET of `path` on `authority` (`host:port`).
pub fn get(authority: impl std::fmt::Display, path: &str) -> hyper::Request<Empty<Bytes>> {
    hyper::Request::get(format!("http://{authority}{path}"))
        .body(Empty::new())
        .expect("a valid request")
}
