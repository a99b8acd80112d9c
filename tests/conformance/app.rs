//! The service every conformance test serves, on every runtime. Timers come
//! from async-io, which works under any executor.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream;
use http_body_util::{combinators::BoxBody, BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response, StatusCode};
use stoppable_tokio::Stopper;

pub type Body = BoxBody<Bytes, Infallible>;
pub type Spawn = Arc<dyn Fn(Pin<Box<dyn Future<Output = ()> + Send>>) + Send + Sync>;

/// What the app needs from its server: the stopper (for `/shutdown`) and a
/// way to spawn upgraded-connection handlers; and the shutdown future
/// `/signal` resolves (`Server::with_graceful_shutdown`).
#[derive(Clone)]
pub struct App {
    pub stopper: Arc<Mutex<Option<Stopper>>>,
    pub spawn: Spawn,
    pub signal: (async_channel::Sender<()>, async_channel::Receiver<()>),
    /// What the server's `on_connection_error` was told, one line each
    /// (`stage peer`): `/errors` answers with them.
    pub errors: Arc<Mutex<Vec<String>>>,
}

/// The peer's address, as the suite's make-service saw it (`/peer`).
#[derive(Clone, Copy)]
pub struct Peer(pub Option<SocketAddr>);

async fn sleep(ms: u64) {
    async_io::Timer::after(Duration::from_millis(ms)).await;
}

impl App {
    /// A new app, spawning upgraded connections' handlers with `spawn`.
    pub fn new(spawn: Spawn) -> App {
        App {
            stopper: Arc::new(Mutex::new(None)),
            spawn,
            signal: async_channel::bounded(1),
            errors: Default::default(),
        }
    }

    /// Records a connection error told to the server's hook.
    pub fn record_error(&self, error: &stoppable::ConnError) {
        let line = match error.remote_addr() {
            Some(peer) => format!("{:?} {peer}", error.stage()),
            None => format!("{:?} none", error.stage()),
        };
        self.errors.lock().unwrap().push(line);
    }

    fn errors_text(&self) -> String {
        self.errors.lock().unwrap().join("\n")
    }

    /// Resolves once `/signal` was asked for.
    pub fn shutdown_signal(&self) -> impl Future<Output = ()> + Send + 'static {
        let signalled = self.signal.1.clone();
        async move {
            let _ = signalled.recv().await;
        }
    }

    pub async fn handle(self, req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
        if req.method() == hyper::Method::CONNECT {
            return Ok(self.tunnel(req));
        }
        let path = req.uri().path().to_owned();
        let ms = |prefix: &str| {
            path.strip_prefix(prefix)
                .and_then(|v| v.parse::<u64>().ok())
        };
        Ok(match path.as_str() {
            "/" => text(StatusCode::OK, "hello"),
            "/peer" => match req.extensions().get::<Peer>() {
                Some(Peer(Some(peer))) => text(StatusCode::OK, peer.to_string()),
                _ => text(StatusCode::OK, "none"),
            },
            "/errors" => text(StatusCode::OK, self.errors_text()),
            "/task/after-drain" | "/task/hang" => self.start_task(path == "/task/hang"),
            "/big" => {
                // 64 MiB, more than any socket buffer: a client that never
                // reads holds the writer.
                let chunks = stream::iter(
                    (0..1024).map(|_| Ok(Frame::data(Bytes::from(vec![b'x'; 64 * 1024])))),
                );
                Response::new(StreamBody::new(chunks).boxed())
            }
            "/big-at-once" => {
                // 32 MiB in one frame: hyper takes the whole body at once and
                // the body ends long before the client has it.
                Response::new(Full::new(Bytes::from(vec![b'x'; 32 << 20])).boxed())
            }
            "/hang" => {
                std::future::pending::<()>().await;
                unreachable!()
            }
            "/signal" => {
                let _ = self.signal.0.try_send(());
                text(StatusCode::OK, "signalled")
            }
            "/shutdown" => {
                let stopper = self.stopper.lock().unwrap().clone();
                if let Some(stopper) = stopper {
                    stopper.request_stop();
                }
                text(StatusCode::OK, "stopping")
            }
            "/upgrade" => self.upgrade(req),
            "/until-drain" => match req.extensions().get::<stoppable::DrainSignal>() {
                Some(signal) => {
                    signal.draining().await;
                    text(StatusCode::OK, "drained")
                }
                None => text(StatusCode::INTERNAL_SERVER_ERROR, "no drain signal"),
            },
            "/ws" => self.websocket(req),
            _ if ms("/sleep/").is_some() => {
                let ms = ms("/sleep/").unwrap();
                sleep(ms).await;
                text(StatusCode::OK, format!("slept {ms}"))
            }
            _ if ms("/chunks/").is_some() => {
                // Many small chunks at once: many writes in one poll of the
                // connection.
                let n = ms("/chunks/").unwrap();
                let chunks = stream::iter((0..n).map(|_| Ok(Frame::data(Bytes::from("x")))));
                Response::new(StreamBody::new(chunks).boxed())
            }
            _ if ms("/split/").is_some() => {
                let ms = ms("/split/").unwrap();
                let chunks = stream::unfold(0u8, move |step| async move {
                    match step {
                        0 => Some((Ok(Frame::data(Bytes::from("hello"))), 1)),
                        1 => {
                            sleep(ms).await;
                            Some((Ok(Frame::data(Bytes::from("world"))), 2))
                        }
                        _ => None,
                    }
                });
                Response::new(StreamBody::new(chunks).boxed())
            }
            _ => text(StatusCode::NOT_FOUND, "not found"),
        })
    }

    /// Starts an application task the stop waits for (B24): it ends 100 ms
    /// after the drain begins, or never (`hang`).
    fn start_task(&self, hang: bool) -> Response<Body> {
        let Some(stopper) = self.stopper.lock().unwrap().clone() else {
            return text(StatusCode::INTERNAL_SERVER_ERROR, "no stopper");
        };
        let drain = stopper.drain_signal();
        let task = stopper.track_task(async move {
            if hang {
                std::future::pending::<()>().await;
            }
            drain.draining().await;
            sleep(100).await;
        });
        (self.spawn)(Box::pin(async move {
            let _ = task.await;
        }));
        text(StatusCode::OK, "started")
    }

    /// `CONNECT`: a tunnel that echoes (B14; on HTTP/2, one stream).
    fn tunnel(&self, req: Request<Incoming>) -> Response<Body> {
        (self.spawn)(Box::pin(async move {
            let Ok(upgraded) = hyper::upgrade::on(req).await else {
                return;
            };
            let mut io = hyper_util::rt::TokioIo::new(upgraded);
            let mut buf = [0u8; 1024];
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            while let Ok(n) = io.read(&mut buf).await {
                if n == 0 || io.write_all(&buf[..n]).await.is_err() {
                    break;
                }
            }
        }));
        text(StatusCode::OK, "")
    }

    /// Switches to a raw echo protocol on the upgraded IO (B14).
    fn upgrade(&self, req: Request<Incoming>) -> Response<Body> {
        (self.spawn)(Box::pin(async move {
            let Ok(upgraded) = hyper::upgrade::on(req).await else {
                return;
            };
            let mut io = hyper_util::rt::TokioIo::new(upgraded);
            let mut buf = [0u8; 1024];
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            while let Ok(n) = io.read(&mut buf).await {
                if n == 0 || io.write_all(&buf[..n]).await.is_err() {
                    break;
                }
            }
        }));
        let mut resp = text(StatusCode::SWITCHING_PROTOCOLS, "");
        resp.headers_mut()
            .insert("connection", "upgrade".parse().unwrap());
        resp.headers_mut()
            .insert("upgrade", "echo".parse().unwrap());
        resp
    }
}

impl App {
    /// A WebSocket echo that sends a close frame when the drain begins (B15)
    /// and stays tracked until the close handshake ends (B14).
    fn websocket(&self, req: Request<Incoming>) -> Response<Body> {
        use futures_util::{future, SinkExt, StreamExt};
        use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
        use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
        use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role};

        let Some(key) = req.headers().get("sec-websocket-key") else {
            return text(StatusCode::BAD_REQUEST, "not a websocket request");
        };
        let accept = derive_accept_key(key.as_bytes());
        let drain = self
            .stopper
            .lock()
            .unwrap()
            .as_ref()
            .map(|s| s.drain_signal());
        (self.spawn)(Box::pin(async move {
            let Ok(upgraded) = hyper::upgrade::on(req).await else {
                return;
            };
            let io = hyper_util::rt::TokioIo::new(upgraded);
            let mut ws =
                tokio_tungstenite::WebSocketStream::from_raw_socket(io, Role::Server, None).await;
            let mut draining = match &drain {
                Some(drain) => future::Either::Left(drain.draining()),
                None => future::Either::Right(future::pending()),
            };
            loop {
                match future::select(ws.next(), &mut draining).await {
                    future::Either::Left((Some(Ok(message)), _)) => {
                        if message.is_close() {
                            break;
                        }
                        if (message.is_text() || message.is_binary())
                            && ws.send(message).await.is_err()
                        {
                            break;
                        }
                    }
                    future::Either::Left(_) => break,
                    future::Either::Right(((), _)) => {
                        let bye = CloseFrame {
                            code: CloseCode::Away,
                            reason: "draining".into(),
                        };
                        let _ = ws.close(Some(bye)).await;
                        // Wait for the client's half of the close handshake.
                        while let Some(Ok(_)) = ws.next().await {}
                        break;
                    }
                }
            }
        }));
        let mut resp = text(StatusCode::SWITCHING_PROTOCOLS, "");
        let headers = resp.headers_mut();
        headers.insert("connection", "upgrade".parse().unwrap());
        headers.insert("upgrade", "websocket".parse().unwrap());
        headers.insert("sec-websocket-accept", accept.parse().unwrap());
        resp
    }
}

fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    let mut resp = Response::new(Full::new(body.into()).boxed());
    *resp.status_mut() = status;
    resp
}

/// The suite's app as an axum `Router`: the peer from axum's `ConnectInfo`
/// (served with `into_make_service_with_connect_info::<SocketAddr>()`).
pub fn router(app: App) -> axum::Router {
    use axum::extract::ConnectInfo;
    use axum::routing::get;
    let errors = app.clone();
    axum::Router::new()
        .route("/", get(|| async { "hello" }))
        .route(
            "/peer",
            get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move { peer.to_string() }),
        )
        .route("/errors", get(move || async move { errors.errors_text() }))
}

/// The suite's make-service: each connection's service knows its peer
/// (`/peer`), and the `n`th make panics when asked (`Options::panic_on_make`:
/// a user's code that panics inside the server's accept loop).
#[derive(Clone)]
pub struct AppMaker {
    app: App,
    makes: Arc<std::sync::atomic::AtomicUsize>,
    panic_at: Option<usize>,
}

impl AppMaker {
    pub fn new(app: App, panic_at: Option<usize>) -> Self {
        AppMaker {
            app,
            makes: Default::default(),
            panic_at,
        }
    }
}

impl stoppable::MakeService for AppMaker {
    type Service = AppService;

    fn make_service(&self, conn: &stoppable::ConnInfo) -> Result<AppService, stoppable::MakeError> {
        let n = 1 + self.makes.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        assert!(
            Some(n) != self.panic_at,
            "the make-service panics (as asked)"
        );
        Ok(AppService {
            app: self.app.clone(),
            peer: Peer(conn.remote_addr()),
        })
    }
}

/// One connection's service: the app, with the connection's peer.
#[derive(Clone)]
pub struct AppService {
    app: App,
    peer: Peer,
}

type Handled = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

impl hyper::service::Service<Request<Incoming>> for AppService {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Handled;

    fn call(&self, mut req: Request<Incoming>) -> Handled {
        req.extensions_mut().insert(self.peer);
        Box::pin(self.app.clone().handle(req))
    }
}
