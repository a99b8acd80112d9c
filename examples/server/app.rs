//! The routes of the example server (examples/server/README.md), the same on every
//! runtime: only `sleep` comes from the runtime.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::{select, Either};
use futures_util::stream;
use http_body_util::{combinators::UnsyncBoxBody, BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use stoppable::{Phase, Stopper};

pub type Body = UnsyncBoxBody<Bytes, Infallible>;
pub type Sleep = fn(Duration) -> Pin<Box<dyn Future<Output = ()> + Send>>;
pub type Spawn = Arc<dyn Fn(Pin<Box<dyn Future<Output = ()> + Send>>) + Send + Sync>;

/// The routes, with the server's stopper once it exists (`--plain` has none).
#[derive(Clone)]
pub struct App {
    stopper: Arc<OnceLock<Stopper>>,
    sleep: Sleep,
    spawn: Spawn,
}

impl App {
    /// The routes, with the runtime's timer and spawn.
    pub fn new(sleep: Sleep, spawn: Spawn) -> Self {
        App {
            stopper: Arc::default(),
            sleep,
            spawn,
        }
    }

    /// The service needs the stopper and the stopper comes from the server
    /// built with the service: it is handed over once the server exists.
    pub fn set_stopper(&self, stopper: Stopper) {
        let _ = self.stopper.set(stopper);
    }

    pub async fn route(self, req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
        let path = req.uri().path().to_owned();
        let millis = |prefix: &str| path.strip_prefix(prefix)?.parse::<u64>().ok();
        let stopper = self.stopper.get();
        Ok(match (req.method(), path.as_str()) {
            (&Method::GET, "/") => text(StatusCode::OK, "hello"),
            (&Method::GET, _) if millis("/sleep/").is_some() => {
                let ms = millis("/sleep/").unwrap_or_default();
                (self.sleep)(Duration::from_millis(ms)).await;
                text(StatusCode::OK, format!("slept {ms}"))
            }
            (&Method::GET, _) if millis("/split/").is_some() => {
                self.split(Duration::from_millis(millis("/split/").unwrap_or_default()))
            }
            (&Method::GET, "/stream") => self.event_stream(),
            (&Method::GET, "/ws") => self.websocket(req),
            (&Method::GET, "/stats") => match stopper {
                Some(stopper) => json(counts_json(stopper)),
                None => json(r#"{"phase":"plain"}"#.into()),
            },
            (&Method::GET, "/ready") => match stopper.map(Stopper::phase) {
                Some(Phase::Serving) | None => text(StatusCode::OK, "ready"),
                Some(_) => text(StatusCode::SERVICE_UNAVAILABLE, "draining"),
            },
            (&Method::POST, "/echo") => match req.into_body().collect().await {
                Ok(body) => Response::new(Full::new(body.to_bytes()).boxed_unsync()),
                Err(_) => text(StatusCode::BAD_REQUEST, "bad body"),
            },
            (&Method::POST, "/shutdown") => {
                // B13: this request is in flight, and completes.
                if let Some(stopper) = stopper {
                    stopper.request_stop();
                }
                text(StatusCode::OK, "stopping")
            }
            _ => text(StatusCode::NOT_FOUND, "not found"),
        })
    }

    /// `hello` at once, `world` after `delay`.
    fn split(&self, delay: Duration) -> Response<Body> {
        let sleep = self.sleep;
        let chunks = stream::unfold(0, move |step| async move {
            let chunk = match step {
                0 => "hello",
                1 => {
                    sleep(delay).await;
                    "world"
                }
                _ => return None,
            };
            Some((Ok(Frame::data(Bytes::from(chunk))), step + 1))
        });
        Response::new(StreamBody::new(chunks).boxed_unsync())
    }

    /// An endless event stream; when the drain begins it says goodbye (B15).
    fn event_stream(&self) -> Response<Body> {
        let (sleep, stopper) = (self.sleep, self.stopper.get().cloned());
        let events = stream::unfold(Some(0u64), move |n| {
            let stopper = stopper.clone();
            async move {
                let n = n?;
                let tick = sleep(Duration::from_millis(100));
                let draining = match &stopper {
                    Some(stopper) => {
                        matches!(select(stopper.draining(), tick).await, Either::Left(_))
                    }
                    None => {
                        tick.await;
                        false
                    }
                };
                let (event, next) = if draining {
                    ("event: bye\ndata: draining\n\n".to_owned(), None)
                } else {
                    (format!("data: {n}\n\n"), Some(n + 1))
                };
                Some((Ok(Frame::data(Bytes::from(event))), next))
            }
        });
        let mut response = Response::new(StreamBody::new(events).boxed_unsync());
        response
            .headers_mut()
            .insert("content-type", "text/event-stream".parse().expect("valid"));
        response
    }
}

impl App {
    /// WebSocket echo; when the drain begins it sends a close frame (B15)
    /// and the connection stays tracked until the handshake ends (B14).
    fn websocket(&self, req: Request<Incoming>) -> Response<Body> {
        use futures_util::{SinkExt, StreamExt};
        use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
        use tokio_tungstenite::tungstenite::protocol::{
            frame::coding::CloseCode, CloseFrame, Role,
        };

        let Some(key) = req.headers().get("sec-websocket-key") else {
            return text(StatusCode::BAD_REQUEST, "expected a WebSocket handshake");
        };
        let accept = derive_accept_key(key.as_bytes());
        let drain = self.stopper.get().map(Stopper::drain_signal);
        (self.spawn)(Box::pin(async move {
            let Ok(upgraded) = hyper::upgrade::on(req).await else {
                return;
            };
            let io = hyper_util::rt::TokioIo::new(upgraded);
            let mut ws =
                tokio_tungstenite::WebSocketStream::from_raw_socket(io, Role::Server, None).await;
            let mut draining = std::pin::pin!(async move {
                match drain {
                    Some(drain) => drain.draining().await,
                    None => std::future::pending().await,
                }
            });
            loop {
                match select(ws.next(), draining.as_mut()).await {
                    Either::Left((Some(Ok(message)), _))
                        if message.is_text() || message.is_binary() =>
                    {
                        if ws.send(message).await.is_err() {
                            return;
                        }
                    }
                    Either::Left((Some(Ok(message)), _)) if !message.is_close() => {}
                    Either::Left(_) => return,
                    Either::Right(_) => {
                        let bye = CloseFrame {
                            code: CloseCode::Away,
                            reason: "draining".into(),
                        };
                        let _ = ws.close(Some(bye)).await;
                        while let Some(Ok(_)) = ws.next().await {}
                        return;
                    }
                }
            }
        }));
        let mut response = text(StatusCode::SWITCHING_PROTOCOLS, "");
        let headers = response.headers_mut();
        headers.insert("connection", "upgrade".parse().expect("valid"));
        headers.insert("upgrade", "websocket".parse().expect("valid"));
        headers.insert("sec-websocket-accept", accept.parse().expect("valid"));
        response
    }
}

pub fn counts_json(stopper: &Stopper) -> String {
    let c = stopper.counts();
    format!(
        r#"{{"phase":"{}","open":{},"idle":{},"active":{},"closing":{},"upgraded":{},"requests_in_flight":{}}}"#,
        c.phase.as_str(),
        c.open,
        c.idle,
        c.active,
        c.closing,
        c.upgraded,
        c.requests_in_flight
    )
}

/// The report (B11) as the JSON line the server prints when it stops.
pub fn report_json(r: &stoppable::Report) -> String {
    format!(
        r#"{{"graceful":{},"closed_idle":{},"closed_after_work":{},"force_closed":{},"requests_completed":{},"elapsed_ms":{}}}"#,
        r.graceful,
        r.closed_idle,
        r.closed_after_work,
        r.force_closed,
        r.requests_completed,
        r.elapsed.as_millis()
    )
}

fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    let mut response = Response::new(Full::new(body.into()).boxed_unsync());
    *response.status_mut() = status;
    response
}

fn json(body: String) -> Response<Body> {
    let mut response = text(StatusCode::OK, body);
    response
        .headers_mut()
        .insert("content-type", "application/json".parse().expect("valid"));
    response
}
