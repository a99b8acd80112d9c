//! The servers the heap benchmarks compare, each on a thread of its own:
//! plain hyper (configured as stoppable configures it) and stoppable, on
//! each runtime, answering `hello`.

use std::convert::Infallible;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use stoppable::rt::{async_io_builder, AsyncIoListener};
use stoppable::{Accept, Runtime};

async fn hello(_req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(Response::new(Full::new(Bytes::from_static(b"hello"))))
}

/// One request on a keep-alive connection, and its whole answer: a
/// blocking client that allocates nothing.
pub fn ask(stream: &mut TcpStream) {
    stream
        .write_all(b"GET / HTTP/1.1\r\nhost: bench\r\n\r\n")
        .expect("request");
    let mut buf = [0u8; 1024];
    let mut filled = 0;
    while !buf[..filled].ends_with(b"hello") {
        filled += stream.read(&mut buf[filled..]).expect("response");
    }
}

/// A server's start: stoppable's (true) or plain (false); its address.
pub type Start = fn(bool) -> SocketAddr;

/// Every runtime's server.
pub const SERVERS: [(&str, Start); 3] = [
    ("tokio", tokio_server),
    ("smol", smol_server),
    ("async-std", async_std_server),
];

/// Runs `serve` on a thread of its own; returns the address it listens on.
fn background(serve: impl FnOnce(mpsc::Sender<SocketAddr>) + Send + 'static) -> SocketAddr {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || serve(tx));
    rx.recv().expect("server up")
}

fn tokio_server(stoppable: bool) -> SocketAddr {
    background(move |tx| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            if stoppable {
                let _ = stoppable_tokio::serve(listener, service_fn(hello)).await;
                return;
            }
            // hyper as stoppable configures it (tokio's timer, the
            // header-read timeout), as the async-io side below does: hyper
            // boxes a new header-read sleep for each request head, which is
            // the configuration's cost, not the tracking's.
            let builder = stoppable_tokio::builder();
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                let conn = builder
                    .serve_connection_with_upgrades(
                        hyper_util::rt::TokioIo::new(stream),
                        service_fn(hello),
                    )
                    .into_owned();
                tokio::spawn(conn);
            }
        })
    })
}

/// plain: hyper over the same async-io bridge, with no stoppable tracking.
async fn plain_async_io<R: Runtime>(mut listener: AsyncIoListener, runtime: R) {
    let builder = async_io_builder(runtime.clone());
    loop {
        let accepted = std::future::poll_fn(|cx| listener.poll_accept(cx))
            .await
            .unwrap();
        let conn = builder
            .serve_connection_with_upgrades(accepted.io, service_fn(hello))
            .into_owned();
        // Not `async move { conn.await }`: that future would hold the
        // connection twice (captured, and awaited), and the task twice its size.
        runtime.spawn(futures_util::FutureExt::map(conn, drop));
    }
}

fn smol_server(stoppable: bool) -> SocketAddr {
    background(move |tx| {
        smol::block_on(async move {
            let listener = smol::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            if stoppable {
                let _ = stoppable_smol::serve(listener, service_fn(hello)).await;
            } else {
                plain_async_io(
                    AsyncIoListener(listener.into()),
                    stoppable_smol::Smol::global(),
                )
                .await;
            }
        })
    })
}

fn async_std_server(stoppable: bool) -> SocketAddr {
    background(move |tx| {
        async_std::task::block_on(async move {
            let listener = async_std::net::TcpListener::bind("127.0.0.1:0")
                .await
                .unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            if stoppable {
                let _ = stoppable_async_std::serve(listener, service_fn(hello))
                    .unwrap()
                    .await;
            } else {
                let listener = std::net::TcpListener::try_from(listener).unwrap();
                let listener =
                    AsyncIoListener(std::sync::Arc::new(async_io::Async::new(listener).unwrap()));
                plain_async_io(listener, stoppable_async_std::AsyncStd).await;
            }
        })
    })
}
