//! The per-request path through the core: a request start and finish on one
//! connection, reported as totals ([`Progress`]). Prints the time per pair
//! and the heap allocations per pair (expected: 0).
//!
//! Run: `cargo bench --bench core_hot_path`

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use stoppable_core::{Config, ConnEvent, Drain, Progress};

struct CountingAlloc;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards every call to the system allocator unchanged.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

const PAIRS: u64 = 5_000_000;

fn main() {
    let now = Instant::now();
    let mut drain = Drain::new(Config::default()).expect("default config is valid");
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
        let allocations_before = ALLOCATIONS.load(Ordering::Relaxed);
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
        let allocations = ALLOCATIONS.load(Ordering::Relaxed) - allocations_before;
        println!(
            "core request start+finish ({label}): {:.1} ns per pair, {} allocations per pair ({} in {} pairs)",
            elapsed.as_nanos() as f64 / PAIRS as f64,
            allocations as f64 / PAIRS as f64,
            allocations,
            PAIRS
        );
    }
}
