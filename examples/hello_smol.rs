//! The smallest graceful server on smol: Ctrl-C stops it, a second Ctrl-C forces.
use bytes::Bytes;
use http_body_util::Full;
use hyper::{body::Incoming, service::service_fn, Request, Response};
use std::convert::Infallible;

fn main() -> std::io::Result<()> {
    smol::block_on(async {
        let listener = smol::net::TcpListener::bind("127.0.0.1:3000").await?;
        let hello = service_fn(|_: Request<Incoming>| async {
            Ok::<_, Infallible>(Response::new(Full::new(Bytes::from("hello"))))
        });
        let server = stoppable_smol::serve(listener, hello);
        let stopper = server.stopper();
        smol::spawn(async move { stoppable_smol::stop_on_signals(&stopper).await }).detach();
        let report = server.await.map_err(std::io::Error::other)?;
        println!("graceful: {}", report.graceful);
        Ok(())
    })
}
