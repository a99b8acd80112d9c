//! The benchmarks' peer: the best Rust practice today, a tokio server with
//! hyper-util's `GracefulShutdown`. `GET /` answers `hello`; SIGTERM starts
//! its graceful shutdown (no grace limit) and prints the time it took as
//! `{"elapsed_ms":N}`. Same first line as the example server.

use std::convert::Infallible;
use std::io::Write;
use std::time::Instant;

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::signal::unix::{signal, SignalKind};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("listening on http://{}", listener.local_addr()?);
    std::io::stdout().flush()?;
    let builder = Builder::new(TokioExecutor::new());
    let graceful = GracefulShutdown::new();
    let mut term = signal(SignalKind::terminate())?;
    let hello = service_fn(|_req: Request<hyper::body::Incoming>| async {
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"hello"))))
    });
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, _) = accepted?;
                let _ = stream.set_nodelay(true);
                let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), hello);
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
