//! The smallest graceful server on tokio: Ctrl-C stops it, a second Ctrl-C forces.
use bytes::Bytes;
use http_body_util::Full;
use hyper::{body::Incoming, service::service_fn, Request, Response};
use std::convert::Infallible;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    let hello = service_fn(|_: Request<Incoming>| async {
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from("hello"))))
    });
    let server = stoppable_tokio::serve(listener, hello);
    let stopper = server.stopper();
    tokio::spawn(async move { stoppable_tokio::stop_on_signals(&stopper).await });
    let report = server.await.map_err(std::io::Error::other)?;
    println!("graceful: {}", report.graceful);
    Ok(())
}
