//! Arbitrary event streams into the sans-IO core, reported or not, checked
//! after every step by the property test's model
//! (`crates/stoppable-core/tests/model`): every close judged by what the
//! connection was really doing then (a close never cuts work, a force-close
//! always does), exact report counts, graceful exactly when nothing was
//! cut, the stop completes exactly when all is closed and within its bound
//! once the work ends, all is closed at the grace deadline, timeouts never
//! lie in the past, and the same input gives the same actions.
//!
//! `cargo +nightly fuzz run drain_events -- -max_total_time=60`
#![no_main]

#[path = "../../crates/stoppable-core/tests/model/mod.rs"]
mod model;

use std::time::Duration;

use model::{Change, Op};
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

/// Five bytes of configuration (an odd fifth byte sets a maximum
/// connection age, B23), then two bytes per event, weighted about as
/// in the property test. The top bit of an event's first byte says whether
/// the driver reports a change.
fn decode(data: &[u8]) -> (Config, Vec<Op>) {
    let byte = |i: usize| u64::from(data.get(i).copied().unwrap_or(0));
    let config = Config::default()
        .with_first_request_window(Duration::from_millis(byte(0) * 2 % 300))
        .with_header_read_timeout(Duration::from_millis(1 + byte(1) * 2))
        .with_drain_delay(Duration::from_millis(if byte(2) % 2 == 0 {
            0
        } else {
            byte(2) * 2
        }))
        .with_goaway_timeout(Duration::from_millis(1 + byte(3) * 2))
        .with_max_connection_age((byte(4) % 2 == 1).then(|| Duration::from_millis(1 + byte(4) * 2)));
    let ops = data
        .get(5..)
        .unwrap_or_default()
        .chunks_exact(2)
        .take(200)
        .map(|pair| {
            let (kind, report, arg) = (pair[0] % 30, pair[0] & 0x80 != 0, pair[1]);
            let i = usize::from(arg);
            let change = |c| Op::Do(i, c, report);
            match kind {
                0..=2 => Op::Accept,
                3..=5 => change(Change::Arrive),
                6..=8 => change(Change::Start),
                9..=11 => change(Change::Finish),
                12 => change(Change::Upgrade),
                13 => change(Change::Block),
                14 => change(Change::Http2),
                15 => Op::Unread(i),
                16..=17 => Op::Close(i),
                18 => Op::Stale(i),
                19 => Op::Stop((arg % 2 == 0).then_some(u64::from(arg) * 2)),
                20 => Op::ListenerClosed,
                21 => Op::Refresh,
                22 => Op::Carry,
                23 => Op::TaskStart,
                24 => Op::TaskFinish,
                25 => Op::Cut(i),
                _ => Op::Tick(u64::from(arg) * 2),
            }
        })
        .collect();
    (config, ops)
}
