//! Many idle keep-alive connections: how long a stop takes to close them,
//! and the floor, this machine closing as many sockets in a tight loop.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Opens `n` connections; with `request`, each is served once (keep-alive).
pub async fn open(addr: SocketAddr, n: usize, request: bool) -> Vec<TcpStream> {
    let mut conns = Vec::with_capacity(n);
    // In batches under the smallest listen backlog (std's 128), so it never
    // overflows (a dropped final ACK leaves a client that thinks itself
    // connected while the server never sees it).
    for batch in (0..n).collect::<Vec<_>>().chunks(100) {
        let tasks: Vec<_> = batch
            .iter()
            .map(|_| {
                tokio::spawn(async move {
                    let mut stream = TcpStream::connect(addr).await.expect("connect");
                    if request {
                        stream
                            .write_all(b"GET / HTTP/1.1\r\nhost: bench\r\n\r\n")
                            .await
                            .expect("request");
                        let mut buf = [0u8; 1024];
                        let mut filled = 0;
                        while !buf[..filled].ends_with(b"hello") {
                            let read = stream.read(&mut buf[filled..]).await.expect("response");
                            assert!(read > 0, "connection closed early");
                            filled += read;
                        }
                    }
                    stream
                })
            })
            .collect();
        for task in tasks {
            conns.push(task.await.expect("connect task"));
        }
    }
    conns
}

/// Starts reading every connection now, so each EOF is seen when it comes;
/// the future waits for all of them, and gives the instant each one did.
pub fn all_eof(conns: Vec<TcpStream>) -> impl std::future::Future<Output = Vec<Instant>> {
    let tasks: Vec<_> = conns
        .into_iter()
        .map(|mut stream| {
            tokio::spawn(async move {
                let mut buf = [0u8; 64];
                while let Ok(n) = stream.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                }
                Instant::now()
            })
        })
        .collect();
    async move {
        let mut eofs = Vec::with_capacity(tasks.len());
        for task in tasks {
            eofs.push(task.await.expect("eof task"));
        }
        eofs
    }
}

/// The floor, measured with a helper process that accepts `n` connections
/// and closes them in a tight loop on cue: (the loop's time, the time from
/// the cue until each client read EOF).
pub async fn floor(n: usize) -> (Duration, Vec<Duration>) {
    let (close_loop, eofs, ()) = floor_with(n, |_| ()).await;
    (close_loop, eofs)
}

/// [`floor`], calling `before_cue` with the helper's pid once its clients
/// read, just before the cue; gives back what it returned.
pub async fn floor_with<A>(
    n: usize,
    before_cue: impl FnOnce(u32) -> A,
) -> (Duration, Vec<Duration>, A) {
    let exe = std::env::current_exe().expect("own path");
    let mut child = Command::new(exe)
        .args(["floor-serve", &n.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("floor helper");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    stdout.read_line(&mut line).expect("address");
    let addr: SocketAddr = line.trim().parse().expect("address");
    let conns = open(addr, n, false).await;
    line.clear();
    stdout.read_line(&mut line).expect("ready");
    // Every client reads before the cue, as in a stop.
    let eofs = all_eof(conns);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let hooked = before_cue(child.id());
    let mut stdin = child.stdin.take().expect("stdin");
    let go = Instant::now();
    stdin.write_all(b"go\n").expect("cue");
    let eofs = eofs.await;
    line.clear();
    stdout.read_line(&mut line).expect("loop time");
    let _ = child.wait();
    let loop_us: u64 = line.trim().parse().unwrap_or(0);
    let eofs = eofs.iter().map(|eof| eof.duration_since(go)).collect();
    (Duration::from_micros(loop_us), eofs, hooked)
}

/// A listener on 127.0.0.1, port 0, with room for `backlog` connects.
fn listener_with_backlog(backlog: i32) -> TcpListener {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
    let addr: SocketAddr = ([127, 0, 0, 1], 0).into();
    socket.bind(&addr.into()).expect("bind");
    socket.listen(backlog).expect("listen");
    socket.into()
}

/// The helper's side (`xtask floor-serve N`): accept, then close on cue.
pub fn floor_serve(n: usize) {
    // A backlog above the client's batch: with std's 128, a burst of 500
    // connects overflowed it, and a client whose final ACK was dropped
    // believed itself connected while the helper waited for it forever.
    let listener = listener_with_backlog(1024);
    println!("{}", listener.local_addr().expect("addr"));
    let accepted: Vec<_> = (0..n)
        .map(|_| listener.accept().expect("accept").0)
        .collect();
    println!("ready");
    let mut cue = [0u8; 3];
    let _ = std::io::stdin().read(&mut cue);
    let start = Instant::now();
    for stream in accepted {
        drop(stream);
    }
    println!("{}", start.elapsed().as_micros());
}
