//! Heap bytes held per idle keep-alive connection, plain hyper against
//! stoppable, on each runtime: a counting global allocator, the server in
//! this process, and blocking clients that hold no heap memory. Each
//! connection asks one request, then stays open and silent. Unlike the
//! resident size `cargo xtask bench` reads, this count does not move with
//! how the allocator lays memory out. Prints `held RUNTIME SIDE BYTES`
//! lines (read by `cargo xtask bench`).
//!
//! Run: `cargo bench --bench heap_per_conn`

use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

#[path = "counting_alloc.rs"]
mod counting_alloc;
#[path = "servers.rs"]
mod servers;

#[global_allocator]
static GLOBAL: counting_alloc::CountingAlloc = counting_alloc::CountingAlloc;

const CONNECTIONS: usize = 1_000;

/// One connection, after one answered request.
fn connect(addr: SocketAddr) -> TcpStream {
    let mut stream = TcpStream::connect(addr).expect("connect");
    servers::ask(&mut stream);
    stream
}

/// The bytes held once the server has stopped changing them: the same
/// count over 200 ms (a driver may free its request's state a moment
/// after the answer left). At most 10 s.
fn settled() -> u64 {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut last = counting_alloc::held();
    let mut same = 0;
    while same < 4 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        let now = counting_alloc::held();
        same = if now == last { same + 1 } else { 0 };
        last = now;
    }
    last
}

/// Bytes per idle connection: what `CONNECTIONS` more of them hold.
fn measure(addr: SocketAddr) -> f64 {
    let warm: Vec<TcpStream> = (0..16).map(|_| connect(addr)).collect();
    let before = settled();
    let conns: Vec<TcpStream> = (0..CONNECTIONS).map(|_| connect(addr)).collect();
    let after = settled();
    drop((warm, conns));
    after.saturating_sub(before) as f64 / CONNECTIONS as f64
}

fn main() {
    for (runtime, start) in servers::SERVERS {
        for (side, stoppable) in [("plain", false), ("stoppable", true)] {
            let per_conn = measure(start(stoppable));
            println!("held {runtime} {side} {per_conn:.1}");
        }
    }
}
