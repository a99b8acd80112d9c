//! HTTPS on tokio with tokio-rustls (feature `tls`).

use std::sync::Arc;

use futures_util::future::MapOk;
use futures_util::TryFutureExt;
use hyper_util::rt::{TokioExecutor, TokioIo};
use stoppable::tls::rustls::ServerConfig;
use stoppable::{Handshake, IntoMakeService, Started};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::server::TlsStream;

use crate::{Listener, Tokio};

pub use stoppable::tls::{server_config, server_config_from_files};

/// A server over TLS on tokio; see [`stoppable::Server`] for its options.
pub type TlsServer<S> = stoppable::Server<Listener, S, Tokio, TokioExecutor, TlsAcceptor>;

/// Serves `service` over TLS on `listener` until a stop completes; HTTP/2
/// and HTTP/1.1 by ALPN when `config` offers them ([`server_config`] does).
/// The handshake runs in each connection's task and counts as the start of
/// the connection: one under way at the stop gets the first-request window
/// to finish and send its request (B4).
///
/// ```no_run
/// # use std::convert::Infallible;
/// # use bytes::Bytes;
/// # use http_body_util::Full;
/// # use hyper::{Request, Response, body::Incoming, service::service_fn};
/// # async fn run() -> std::io::Result<()> {
/// # let service = service_fn(|_req: Request<Incoming>| async {
/// #     Ok::<_, Infallible>(Response::new(Full::new(Bytes::from("hello"))))
/// # });
/// let config = stoppable_tokio::server_config_from_files("cert.pem", "key.pem")?;
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:3443").await?;
/// let server = stoppable_tokio::serve_tls(listener, config, service);
/// # Ok(()) }
/// ```
pub fn serve_tls<App, M>(
    listener: TcpListener,
    config: Arc<ServerConfig>,
    app: App,
) -> TlsServer<App::MakeService>
where
    App: IntoMakeService<M>,
{
    stoppable::Server::with_handshake(
        Listener(listener),
        TlsAcceptor::new(config),
        app.into_make_service(),
        Tokio::current(),
        crate::builder(),
    )
}

/// Runs a rustls server handshake on each connection. With your own accept
/// loop, track the handshake so it counts from the accept (B4):
///
/// ```no_run
/// # async fn run(
/// #     tracker: stoppable_tokio::Tracker<stoppable_tokio::Tokio>,
/// #     acceptor: stoppable_tokio::TlsAcceptor,
/// #     stream: tokio::net::TcpStream,
/// # ) {
/// let handshake = acceptor.accept(stream);
/// if let Some(handshaking) = tracker.track_handshake(handshake) {
///     tokio::spawn(async move {
///         if let Some(conn) = handshaking.await {
///             // serve `conn` as a connection from `Tracker::track`
/// #           drop(conn);
///         }
///     });
/// }
/// # }
/// ```
#[derive(Clone)]
pub struct TlsAcceptor(tokio_rustls::TlsAcceptor);

impl TlsAcceptor {
    /// An acceptor with `config`.
    pub fn new(config: Arc<ServerConfig>) -> Self {
        TlsAcceptor(config.into())
    }

    /// The handshake of one connection; it gives the IO to serve HTTP over.
    pub fn accept(&self, stream: TcpStream) -> Accepting {
        self.0.accept(stream).map_ok(TokioIo::new)
    }
}

impl std::fmt::Debug for TlsAcceptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TlsAcceptor")
    }
}

/// The handshake of one connection ([`TlsAcceptor::accept`]).
pub type Accepting = MapOk<
    tokio_rustls::Accept<TcpStream>,
    fn(TlsStream<TcpStream>) -> TokioIo<TlsStream<TcpStream>>,
>;

impl Handshake<TokioIo<TcpStream>> for TlsAcceptor {
    type Io = TokioIo<TlsStream<TcpStream>>;
    type Future = Accepting;

    fn start(&self, io: TokioIo<TcpStream>) -> Started<Self::Io, Accepting> {
        Started::Running(self.accept(io.into_inner()))
    }
}
