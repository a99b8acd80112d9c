//! Heap allocations per request, plain hyper against stoppable, on each
//! runtime: a counting global allocator, the server in this process, and a
//! blocking keep-alive client that allocates nothing per request. Prints
//! `alloc RUNTIME SIDE PER_REQUEST` lines (read by `cargo xtask bench`).
//!
//! Run: `cargo bench --bench alloc_per_request`

use std::net::{SocketAddr, TcpStream};

#[path = "counting_alloc.rs"]
mod counting_alloc;
#[path = "servers.rs"]
mod servers;

#[global_allocator]
static GLOBAL: counting_alloc::CountingAlloc = counting_alloc::CountingAlloc;

const WARMUP: u64 = 2_000;
const REQUESTS: u64 = 20_000;

/// Allocations per request on one keep-alive connection.
fn measure(addr: SocketAddr) -> f64 {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    for _ in 0..WARMUP {
        servers::ask(&mut stream);
    }
    let before = counting_alloc::allocations();
    for _ in 0..REQUESTS {
        servers::ask(&mut stream);
    }
    (counting_alloc::allocations() - before) as f64 / REQUESTS as f64
}

fn main() {
    for (runtime, start) in servers::SERVERS {
        for (side, stoppable) in [("plain", false), ("stoppable", true)] {
            let per_request = measure(start(stoppable));
            println!("alloc {runtime} {side} {per_request:.4}");
        }
    }
}
