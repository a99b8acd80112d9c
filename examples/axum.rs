//! An axum `Router` with a graceful stop: axum's routing, stoppable's stop
//! (grace timer, report, the races around a stop handled). The router is
//! served as axum serves it, with `ConnectInfo` for the peer's address.
//!
//! Run: `cargo run --example axum`, then `curl localhost:3000/slow` and
//! Ctrl-C the server while it waits: the request completes, then it stops.

use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::routing::get;
use axum::Router;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let app =
        Router::new()
            .route(
                "/",
                get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move {
                    format!("hello, {peer}\n")
                }),
            )
            .route(
                "/slow",
                get(|| async {
                    tokio::time::sleep(Duration::from_secs(3)).await;
                    "slow hello\n"
                }),
            );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    println!("listening on http://{}", listener.local_addr()?);
    // As with axum's own `serve`: a `Router` works too, without ConnectInfo.
    let app = app.into_make_service_with_connect_info::<SocketAddr>();
    let server = stoppable_tokio::serve(listener, app)
        .grace(Duration::from_secs(10))
        .on_connection_error(|e| eprintln!("{e}"));
    let stopper = server.stopper();
    tokio::spawn(async move { stoppable_tokio::stop_on_signals(&stopper).await });
    let report = server.await.map_err(std::io::Error::other)?;
    println!(
        "graceful: {}, requests completed during the stop: {}",
        report.graceful, report.requests_completed
    );
    Ok(())
}
