//! `Options::tcp_nodelay`: the server sets `TCP_NODELAY` on each TCP
//! connection it accepts (on by default; off when asked), on every runtime.
//! Seen on the server's own socket: a client cannot tell Nagle's algorithm
//! from its timing without a benchmark. (Unix: it reads the option on a
//! borrowed file descriptor.)
#![cfg(unix)]

use std::convert::Infallible;
use std::future::Future;
use std::io::{Read, Write};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use std::os::fd::{AsRawFd, RawFd};

use stoppable::{Accept, Accepted, ConnSocket, Options};

/// A listener that remembers the sockets it hands out.
struct Recording<A> {
    inner: A,
    sockets: Arc<Mutex<Vec<RawFd>>>,
}

impl<A: Accept> Accept for Recording<A> {
    type Io = A::Io;

    fn poll_accept(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<Accepted<A::Io>>> {
        let accepted = std::task::ready!(self.inner.poll_accept(cx))?;
        let fd = accepted.io.conn_socket().map(|s| s.as_raw_fd());
        self.sockets.lock().unwrap().extend(fd);
        Poll::Ready(Ok(accepted))
    }

    fn socket(&self) -> Option<stoppable::BorrowedSocket<'_>> {
        self.inner.socket()
    }
}

type Hello = Response<Full<Bytes>>;

fn hello() -> impl hyper::service::Service<
    Request<Incoming>,
    Response = Hello,
    Error = Infallible,
    Future = impl Future<Output = Result<Hello, Infallible>> + Send,
> + Clone
       + Send
       + 'static {
    service_fn(|_req: Request<Incoming>| async {
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from("hello"))))
    })
}

/// Asks one request over a connection that stays open, then reads
/// `TCP_NODELAY` on the server's side of it.
fn nodelay_seen(addr: std::net::SocketAddr, sockets: &Mutex<Vec<RawFd>>) -> bool {
    let mut client = std::net::TcpStream::connect(addr).unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    client
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut answer = [0u8; 1024];
    let n = client.read(&mut answer).unwrap();
    assert!(answer[..n].starts_with(b"HTTP/1.1 200"));
    let fd = sockets.lock().unwrap()[0];
    // SAFETY: the server's side of this connection stays open while the
    // client keeps its side open and idle (no timeout is near).
    #[allow(unsafe_code)]
    let server_side = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    let nodelay = socket2::SockRef::from(&server_side).tcp_nodelay().unwrap();
    drop(client);
    nodelay
}

fn options(on: Option<bool>) -> Options {
    match on {
        Some(on) => Options::default().tcp_nodelay(on),
        None => Options::default(),
    }
}

fn on_tokio(on: Option<bool>) -> bool {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let sockets = Arc::new(Mutex::new(Vec::new()));
    let recorded = sockets.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let listener = Recording {
                inner: stoppable_tokio::Listener(listener),
                sockets: recorded,
            };
            let runtime = stoppable_tokio::Tokio::current();
            let server =
                stoppable::Server::new(listener, hello(), runtime, stoppable_tokio::builder())
                    .options(options(on));
            let stopper = server.stopper();
            tx.send((addr, stopper)).unwrap();
            server.await.unwrap();
        })
    });
    let (addr, stopper) = rx.recv().unwrap();
    let seen = nodelay_seen(addr, &sockets);
    stopper.request_stop();
    seen
}

fn on_async_io<R: stoppable::Runtime>(
    runtime: R,
    on: Option<bool>,
    block_on: fn(Pin<Box<dyn Future<Output = ()> + Send>>),
) -> bool {
    let sockets = Arc::new(Mutex::new(Vec::new()));
    let recorded = sockets.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        block_on(Box::pin(async move {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            let listener = async_io::Async::new(listener).unwrap();
            let listener = Recording {
                inner: stoppable::rt::AsyncIoListener(Arc::new(listener)),
                sockets: recorded,
            };
            let builder = stoppable::rt::async_io_builder(runtime.clone());
            let server =
                stoppable::Server::new(listener, hello(), runtime, builder).options(options(on));
            let stopper = server.stopper();
            tx.send((addr, stopper)).unwrap();
            server.await.unwrap();
        }))
    });
    let (addr, stopper) = rx.recv().unwrap();
    let seen = nodelay_seen(addr, &sockets);
    stopper.request_stop();
    seen
}

fn smol(on: Option<bool>) -> bool {
    on_async_io(stoppable_smol::Smol::global(), on, smol::block_on)
}

fn async_std(on: Option<bool>) -> bool {
    on_async_io(stoppable_async_std::AsyncStd, on, |f| {
        async_std::task::block_on(f)
    })
}

#[test]
fn tokio_sets_tcp_nodelay_unless_told_not_to() {
    assert!(on_tokio(None), "on by default");
    assert!(!on_tokio(Some(false)), "off when asked");
}

#[test]
fn smol_sets_tcp_nodelay_unless_told_not_to() {
    assert!(smol(None), "on by default");
    assert!(!smol(Some(false)), "off when asked");
}

#[test]
fn async_std_sets_tcp_nodelay_unless_told_not_to() {
    assert!(async_std(None), "on by default");
    assert!(!async_std(Some(false)), "off when asked");
}
