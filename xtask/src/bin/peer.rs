//! The benchmarks' peer: the best Rust practice today, a tokio server with
//! hyper-util's `GracefulShutdown`. SIGTERM starts its graceful shutdown (no
//! grace limit) and prints the time it took as `{"elapsed_ms":N}`. Same
//! first line as the example server, and `GET /` costs what it costs there
//! (a routed handler with a boxed body), so only the stop machinery differs.

use std::convert::Infallible;
use std::io::Write;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::signal::unix::{signal, SignalKind};

type Body = UnsyncBoxBody<Bytes, Infallible>;

/// The example server's shape: shared state cloned per request, a route match.
#[derive(Clone, Default)]
struct App {
    state: Arc<std::sync::OnceLock<()>>,
}

impl App {
    async fn route(
        self,
        req: Request<hyper::body::Incoming>,
    ) -> Result<Response<Body>, Infallible> {
        let path = req.uri().path().to_owned();
        let _state = self.state.get();
        let (status, body) = match (req.method(), path.as_str()) {
            (&Method::GET, "/") => (StatusCode::OK, "hello"),
            _ => (StatusCode::NOT_FOUND, "not found"),
        };
        let mut response = Response::new(Full::new(Bytes::from(body)).boxed_unsync());
        *response.status_mut() = status;
        Ok(response)
    }
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("listening on http://{}", listener.local_addr()?);
    std::io::stdout().flush()?;
    // hyper configured as stoppable's servers are (tokio's timer, a 75 s
    // header-read timeout), so the bench compares the stop's cost alone.
    let builder = stoppable_tokio::builder();
    let graceful = GracefulShutdown::new();
    let mut term = signal(SignalKind::terminate())?;
    let app = App::default();
    let service = service_fn(move |req| app.clone().route(req));
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, _) = accepted?;
                let _ = stream.set_nodelay(true);
                let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service.clone());
                let conn = graceful.watch(conn.into_owned());
                tokio::spawn(conn);
            }
            _ = term.recv() => break,
        }
    }
    drop(listener);
    let started = Instant::now();
    graceful.shutdown().await;
    println!(r#"{{"elapsed_ms":{}}}"#, started.elapsed().as_millis());
    Ok(())
}
