//! The service every conformance test serves, on every runtime. Timers come
//! from async-io, which works under any executor.

use std::convert::Infallible;
use std::future::Future;
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
}

async fn sleep(ms: u64) {
    async_io::Timer::after(Duration::from_millis(ms)).await;
}

impl App {
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
