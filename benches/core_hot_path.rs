//! The per-request path through the core: a request start and finish on one
//! connection, reported as totals ([`Progress`]). Prints the time per pair
//! and the heap allocations per pair (expected: 0).
//!
//! Run: `cargo bench --bench core_hot_path`

use std::hint::black_box;
use std::time::{Duration, Instant};

use stoppable_core::{Config, ConnEvent, Lifecycle, Progress};

#[path = "counting_alloc.rs"]
mod counting_alloc;

#[global_allocator]
static GLOBAL: counting_alloc::CountingAlloc = counting_alloc::CountingAlloc;

const PAIRS: u64 = 5_000_000;

fn main() {
    let now = Instant::now();
    let mut drain = Lifecycle::new(Config::default()).expect("default config is valid");
    // Other connections around, as on a real server.
    for _ in 0..1_000 {
        drain.accept(now).expect("serving");
    }
    let conn = drain.accept(now).expect("serving");
    let mut progress = Progress::default();
    for (label, stopping) in [("serving", false), ("draining", true)] {
        if stopping {
            drain.stop(Some(Duration::from_secs(3600)), now);
            while drain.poll_action().is_some() {}
        }
        let allocations_before = counting_alloc::allocations();
        let started = Instant::now();
        for _ in 0..PAIRS {
            progress.arrived += 1;
            progress.started += 1;
            let _ = black_box(drain.handle(conn, ConnEvent::Progress(progress), now));
            progress.finished += 1;
            let _ = black_box(drain.handle(conn, ConnEvent::Progress(progress), now));
            while drain.poll_action().is_some() {}
        }
        let elapsed = started.elapsed();
        let allocations = counting_alloc::allocations() - allocations_before;
        println!(
            "core request start+finish ({label}): {:.1} ns per pair, {} allocations per pair ({} in {} pairs)",
            elapsed.as_nanos() as f64 / PAIRS as f64,
            allocations as f64 / PAIRS as f64,
            allocations,
            PAIRS
        );
    }
}
