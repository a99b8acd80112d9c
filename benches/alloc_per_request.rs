//! Heap allocations per request, plain hyper against stoppable, on each
//! runtime: a counting global allocator, the server in this process, and a
//! blocking keep-alive client that allocates nothing per request. Prints
//! `alloc RUNTIME SIDE PER_REQUEST` lines (read by `cargo xtask bench`).
//!
//! Run: `cargo bench --bench alloc_per_request`

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

#[path = "counting_alloc.rs"]
mod counting_alloc;

#[global_allocator]
static GLOBAL: counting_alloc::CountingAlloc = counting_alloc::CountingAlloc;

const WARMUP: u64 = 2_000;
const REQUESTS: u64 = 20_000;

async fn hello(_req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(Response::new(Full::new(Bytes::from_static(b"hello"))))
}

/// Allocations per request on one keep-alive connection.
fn measure(addr: SocketAddr) -> f64 {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    let mut buf = [0u8; 1024];
    let mut one = |stream: &mut TcpStream| {
        stream
            .write_all(b"GET / HTTP/1.1\r\nhost: bench\r\n\r\n")
            .expect("request");
        let mut filled = 0;
        while !buf[..filled].ends_with(b"hello") {
            filled += stream.read(&mut buf[filled..]).expect("response");
        }
    };
    for _ in 0..WARMUP {
        one(&mut stream);
    }
    let before = counting_alloc::allocations();
    for _ in 0..REQUESTS {
        one(&mut stream);
    }
    (counting_alloc::allocations() - before) as f64 / REQUESTS as f64
}

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
        runtime.spawn(async move {
            let _ = conn.await;
        });
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

fn main() {
    type Start = fn(bool) -> SocketAddr;
    let servers: [(&str, Start); 3] = [
        ("tokio", tokio_server),
        ("smol", smol_server),
        ("async-std", async_std_server),
    ];
    for (runtime, start) in servers {
        for (side, stoppable) in [("plain", false), ("stoppable", true)] {
            let per_request = measure(start(stoppable));
            println!("alloc {runtime} {side} {per_request:.4}");
        }
    }
}
