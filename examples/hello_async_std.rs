//! The smallest graceful server on async-std (discontinued upstream; prefer smol).
use bytes::Bytes;
use http_body_util::Full;
use hyper::{body::Incoming, service::service_fn, Request, Response};
use std::convert::Infallible;

#[async_std::main]
async fn main() -> std::io::Result<()> {
    let listener = async_std::net::TcpListener::bind("127.0.0.1:3000").await?;
    let hello = service_fn(|_: Request<Incoming>| async {
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from("hello"))))
    });
    let server = stoppable_async_std::serve(listener, hello)?;
    let stopper = server.stopper();
    async_std::task::spawn(async move { stoppable_async_std::stop_on_signals(&stopper).await });
    let report = server.await.map_err(std::io::Error::other)?;
    println!("graceful: {}", report.graceful);
    Ok(())
}
