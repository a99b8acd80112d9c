//! HTTPS on tokio: HTTP/2 and HTTP/1.1 by ALPN, with the same graceful stop.
//! `cargo run --example tls -- CERT.pem KEY.pem`; with no files it makes a
//! self-signed certificate for localhost. Try `curl -k https://localhost:3443/`.
use bytes::Bytes;
use http_body_util::Full;
use hyper::{body::Incoming, service::service_fn, Request, Response};
use std::convert::Infallible;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files: Vec<String> = std::env::args().skip(1).collect();
    let config = match &files[..] {
        [cert, key] => stoppable_tokio::server_config_from_files(cert, key)?,
        [] => {
            let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()])?;
            let key = made.signing_key.serialize_pem();
            stoppable_tokio::server_config(made.cert.pem().as_bytes(), key.as_bytes())?
        }
        _ => return Err("usage: tls [CERT.pem KEY.pem]".into()),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3443").await?;
    println!("listening on https://localhost:3443");
    let hello = service_fn(|req: Request<Incoming>| async move {
        let body = format!("hello over {:?}\n", req.version());
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(body))))
    });
    let server = stoppable_tokio::serve_tls(listener, config, hello);
    let stopper = server.stopper();
    tokio::spawn(async move { stoppable_tokio::stop_on_signals(&stopper).await });
    println!("graceful: {}", server.await?.graceful);
    Ok(())
}
