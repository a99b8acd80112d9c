//! Kubernetes-style rolling updates (B16): on SIGTERM the pod first reports
//! not-ready (`/ready` turns 503) while it keeps serving for the drain delay,
//! so the load balancer takes it out of rotation; then it drains.
//!
//! Run: `cargo run --example readiness`, poll `curl -i localhost:3000/ready`,
//! send SIGTERM: 503 for 5 s while `/` still answers, then the drain.
use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{body::Incoming, service::service_fn, Request, Response, StatusCode};
use stoppable_tokio::{Phase, Stopper};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    let (tx, rx) = tokio::sync::watch::channel(None::<Stopper>);
    let service = service_fn(move |req: Request<Incoming>| {
        let stopper = rx.borrow().clone();
        async move {
            let serving = stopper.is_none_or(|s| s.phase() == Phase::Serving);
            let (status, body) = match req.uri().path() {
                "/ready" if serving => (StatusCode::OK, "ready"),
                "/ready" => (StatusCode::SERVICE_UNAVAILABLE, "draining"),
                _ => (StatusCode::OK, "hello"),
            };
            let mut response = Response::new(Full::new(Bytes::from(body)));
            *response.status_mut() = status;
            Ok::<_, Infallible>(response)
        }
    });
    let server = stoppable_tokio::serve(listener, service)
        .drain_delay(Duration::from_secs(5)) // longer than the probe period
        .grace(Duration::from_secs(30)); // within terminationGracePeriodSeconds
    let stopper = server.stopper();
    tx.send_replace(Some(stopper.clone()));
    tokio::spawn(async move { stoppable_tokio::stop_on_signals(&stopper).await });
    let report = server.await.map_err(std::io::Error::other)?;
    println!("graceful: {}", report.graceful);
    Ok(())
}
