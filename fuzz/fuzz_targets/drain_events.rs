//! Arbitrary event streams into the sans-IO core, checked after every step
//! by the property test's model (`crates/stoppable-core/tests/model`):
//! counts add up, nothing idles again after the stop, the stop completes
//! exactly when all is closed, graceful means nothing was forced, all is
//! closed at the grace deadline, timeouts never lie in the past, and the
//! same input gives the same actions.
//!
//! `cargo +nightly fuzz run drain_events -- -max_total_time=60`
#![no_main]

#[path = "../../crates/stoppable-core/tests/model/mod.rs"]
mod model;

use std::time::Duration;

use model::Op;
use stoppable_core::Config;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let (config, ops) = decode(data);
    let first = model::run(config, &ops);
    let second = model::run(config, &ops);
    match (first, second) {
        (Ok(first), Ok(second)) => assert!(first == second, "the same input gave other actions"),
        (Err(e), _) | (_, Err(e)) => panic!("{e}\n{config:?}\n{ops:?}"),
    }
});

/// Three bytes of configuration, then two bytes per event, weighted as in
/// the property test.
fn decode(data: &[u8]) -> (Config, Vec<Op>) {
    let byte = |i: usize| u64::from(data.get(i).copied().unwrap_or(0));
    let config = Config::default()
        .with_first_request_window(Duration::from_millis(byte(0) * 2 % 300))
        .with_header_read_timeout(Duration::from_millis(1 + byte(1) * 2))
        .with_drain_delay(Duration::from_millis(if byte(2) % 2 == 0 {
            0
        } else {
            byte(2)
        }));
    let ops = data
        .get(3..)
        .unwrap_or_default()
        .chunks_exact(2)
        .take(200)
        .map(|pair| {
            let (kind, arg) = (pair[0] % 22, pair[1]);
            let i = usize::from(arg);
            match kind {
                0..=2 => Op::Accept,
                3..=5 => Op::Arrive(i),
                6..=8 => Op::Start(i),
                9..=11 => Op::Finish(i),
                12 => Op::Upgrade(i),
                13..=14 => Op::Close(i),
                15 => Op::Stale(i),
                16 => Op::Stop((arg % 2 == 0).then_some(u64::from(arg) * 2)),
                17 => Op::ListenerClosed,
                18 => Op::Block(i),
                _ => Op::Tick(u64::from(arg) * 2),
            }
        })
        .collect();
    (config, ops)
}
