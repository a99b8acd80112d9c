//! An axum `Router` with a graceful stop: axum's routing, stoppable's stop
//! (grace timer, report, the races around a stop handled).
//!
//! Run: `cargo run --example axum`, then `curl localhost:3000/slow` and
//! Ctrl-C the server while it waits: the request completes, then it stops.

use std::time::Duration;

use axum::routing::get;
use axum::Router;
use hyper_util::service::TowerToHyperService;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let app = Router::new().route("/", get(|| async { "hello" })).route(
        "/slow",
        get(|| async {
            tokio::time::sleep(Duration::from_secs(3)).await;
            "slow hello"
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    println!("listening on http://{}", listener.local_addr()?);
    // A Router is a tower service; hyper-util adapts it to hyper.
    let server = stoppable_tokio::serve(listener, TowerToHyperService::new(app))
        .grace(Duration::from_secs(10));
    let stopper = server.stopper();
    tokio::spawn(async move { stoppable_tokio::stop_on_signals(&stopper).await });
    let report = server.await.map_err(std::io::Error::other)?;
    println!(
        "graceful: {}, requests completed during the stop: {}",
        report.graceful, report.requests_completed
    );
    Ok(())
}
