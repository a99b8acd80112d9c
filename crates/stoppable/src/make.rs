//! The service of each connection, made when it is accepted from what the
//! server knows of it (its peer's address), as axum's make-services are:
//! a hyper service is cloned, a tower service (an axum `Router`) adapted,
//! and a tower make-service (`into_make_service_with_connect_info`) called.

use std::error::Error as StdError;
use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::task::{Context, Poll};

use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::service::TowerToHyperService;

/// What a boxed error is here: anything a user's service may fail with.
pub(crate) type BoxError = Box<dyn StdError + Send + Sync>;

/// What the server knows of a connection when it makes its service.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ConnInfo {
    remote_addr: Option<SocketAddr>,
}

impl ConnInfo {
    /// What a [`Tracker`](crate::Tracker)'s user knows of a connection it
    /// accepted, to call a [`MakeService`] itself.
    pub fn new(remote_addr: Option<SocketAddr>) -> Self {
        ConnInfo { remote_addr }
    }

    /// The peer's address: `None` on a Unix domain socket (or from a
    /// listener that does not tell).
    pub fn remote_addr(&self) -> Option<SocketAddr> {
        self.remote_addr
    }
}

/// Makes the service of each connection. Implemented by every hyper
/// service that is `Clone` (cloned per connection) and by
/// [`make_service_fn`]; the runtime crates' `serve` also takes tower
/// services and make-services, such as axum's ([`IntoMakeService`]).
///
/// It runs in the server's accept loop, for each connection: it must be
/// quick and must not block, and a panic in it ends the server future (the
/// stop still completes, B21).
pub trait MakeService {
    /// The service of one connection.
    type Service;

    /// The service for the connection `conn`. An error closes the
    /// connection, and reaches the server's
    /// [`on_connection_error`](crate::Server::on_connection_error).
    fn make_service(&self, conn: &ConnInfo) -> Result<Self::Service, MakeError>;
}

impl<S> MakeService for S
where
    S: hyper::service::Service<Request<Incoming>> + Clone,
{
    type Service = S;

    fn make_service(&self, _conn: &ConnInfo) -> Result<S, MakeError> {
        Ok(self.clone())
    }
}

/// Why a make-service gave no service for a connection.
#[derive(Debug)]
pub struct MakeError(BoxError);

impl MakeError {
    /// A failure to make a connection's service, for your own
    /// [`MakeService`].
    pub fn new(error: impl Into<BoxError>) -> Self {
        MakeError(error.into())
    }

    pub(crate) fn into_inner(self) -> BoxError {
        self.0
    }
}

impl std::fmt::Display for MakeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl StdError for MakeError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.0.source()
    }
}

/// A make-service from a function of the connection: it sees each
/// connection's [`ConnInfo`] (the peer's address) and returns its service.
///
/// ```
/// use std::convert::Infallible;
/// use bytes::Bytes;
/// use http_body_util::Full;
/// use hyper::{Request, Response, body::Incoming, service::service_fn};
///
/// let make = stoppable::make_service_fn(|conn: &stoppable::ConnInfo| {
///     let peer = conn.remote_addr();
///     service_fn(move |_req: Request<Incoming>| async move {
///         let hello = format!("hello, {peer:?}");
///         Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(hello))))
///     })
/// });
/// # let _ = make;
/// ```
pub fn make_service_fn<F, S>(f: F) -> MakeServiceFn<F>
where
    F: Fn(&ConnInfo) -> S,
{
    MakeServiceFn(f)
}

/// See [`make_service_fn`].
#[derive(Clone, Copy, Debug)]
pub struct MakeServiceFn<F>(F);

impl<F, S> MakeService for MakeServiceFn<F>
where
    F: Fn(&ConnInfo) -> S,
{
    type Service = S;

    fn make_service(&self, conn: &ConnInfo) -> Result<S, MakeError> {
        Ok((self.0)(conn))
    }
}

/// A tower make-service (axum's `into_make_service` and
/// `into_make_service_with_connect_info::<SocketAddr>()`), called with
/// each connection's peer address; what it makes is adapted to hyper.
#[derive(Clone, Debug)]
pub struct TowerMakeService<M>(M);

/// Where the peer of a Unix domain socket has no IP address, tower
/// make-services are given this one (`0.0.0.0:0`).
const NO_IP_PEER: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0));

impl<M, S> MakeService for TowerMakeService<M>
where
    M: tower_service::Service<SocketAddr, Response = S> + Clone,
    M::Error: Into<BoxError>,
{
    type Service = TowerToHyperService<S>;

    fn make_service(&self, conn: &ConnInfo) -> Result<Self::Service, MakeError> {
        // A make-service must answer at once (axum's always do): the
        // accept loop does not wait on one connection's service.
        let mut cx = Context::from_waker(futures_util::task::noop_waker_ref());
        let mut make = self.0.clone();
        let not_ready = || MakeError::new("the make-service was not ready at once");
        match make.poll_ready(&mut cx) {
            Poll::Ready(Ok(())) => {}
            Poll::Ready(Err(e)) => return Err(MakeError::new(e)),
            Poll::Pending => return Err(not_ready()),
        }
        let future = make.call(conn.remote_addr.unwrap_or(NO_IP_PEER));
        let mut future = std::pin::pin!(future);
        match future.as_mut().poll(&mut cx) {
            Poll::Ready(Ok(service)) => Ok(TowerToHyperService::new(service)),
            Poll::Ready(Err(e)) => Err(MakeError::new(e)),
            Poll::Pending => Err(not_ready()),
        }
    }
}

/// What `serve` takes as the application: a hyper service, a tower service
/// (an axum `Router`), a tower make-service over the peer's `SocketAddr`
/// (axum's `into_make_service_with_connect_info::<SocketAddr>()`, so that
/// `ConnectInfo` works), or any [`MakeService`]. `Marker` only tells the
/// kinds apart; it is inferred.
///
/// A tower make-service must answer at once, as axum's do: it is called
/// in the accept loop, polled once; one that is not ready closes the
/// connection with a [`MakeError`]. It is given `0.0.0.0:0` for a peer with
/// no IP address (a Unix domain socket): use [`make_service_fn`] to tell.
/// A type that is both a hyper and a tower service is ambiguous here: name
/// the kind, `serve::<_, _, stoppable::marker::Made>(..)`.
pub trait IntoMakeService<Marker> {
    /// The make-service the server calls per connection.
    type MakeService: MakeService;

    /// Converts it.
    fn into_make_service(self) -> Self::MakeService;
}

/// Markers of [`IntoMakeService`]'s kinds.
pub mod marker {
    /// A [`MakeService`](crate::MakeService) already (a hyper service).
    #[derive(Debug)]
    pub enum Made {}
    /// A tower service of requests (an axum `Router`).
    #[derive(Debug)]
    pub enum TowerService {}
    /// A tower make-service over the peer's address.
    #[derive(Debug)]
    pub enum TowerMakeService {}
}

impl<M: MakeService> IntoMakeService<marker::Made> for M {
    type MakeService = M;

    fn into_make_service(self) -> M {
        self
    }
}

impl<S, B> IntoMakeService<(marker::TowerService, B)> for S
where
    S: tower_service::Service<Request<Incoming>, Response = Response<B>> + Clone,
{
    type MakeService = TowerToHyperService<S>;

    fn into_make_service(self) -> Self::MakeService {
        TowerToHyperService::new(self)
    }
}

impl<M, S> IntoMakeService<(marker::TowerMakeService, S)> for M
where
    M: tower_service::Service<SocketAddr, Response = S> + Clone,
    M::Error: Into<BoxError>,
    S: tower_service::Service<Request<Incoming>>,
{
    type MakeService = TowerMakeService<M>;

    fn into_make_service(self) -> Self::MakeService {
        TowerMakeService(self)
    }
}
