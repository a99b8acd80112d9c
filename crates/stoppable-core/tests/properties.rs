//! Property tests: random interleavings of everything that can happen to a
//! server, checked after every step against a small model of the driver
//! (`model/mod.rs`).

mod model;

use std::time::Duration;

use model::{run, Change, Op};
use proptest::prelude::*;
use stoppable_core::Config;

fn change() -> impl Strategy<Value = Change> {
    prop_oneof![
        3 => Just(Change::Arrive),
        3 => Just(Change::Start),
        3 => Just(Change::Finish),
        1 => Just(Change::Upgrade),
        1 => Just(Change::Block),
        1 => Just(Change::Http2),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => Just(Op::Accept),
        12 => (any::<usize>(), change(), any::<bool>()).prop_map(|(i, c, r)| Op::Do(i, c, r)),
        1 => any::<usize>().prop_map(Op::Unread),
        2 => any::<usize>().prop_map(Op::Close),
        1 => any::<usize>().prop_map(Op::Cut),
        1 => any::<usize>().prop_map(Op::Stale),
        1 => prop::option::of(0u64..400).prop_map(Op::Stop),
        1 => Just(Op::ListenerClosed),
        1 => Just(Op::Refresh),
        2 => Just(Op::Carry),
        3 => (0u64..300).prop_map(Op::Tick),
        1 => Just(Op::TaskStart),
        1 => Just(Op::TaskFinish),
    ]
}

fn config() -> impl Strategy<Value = Config> {
    let delay = prop_oneof![Just(0u64), 1u64..600];
    let age = prop::option::of(1u64..500);
    (0u64..300, 1u64..500, delay, 1u64..500, age).prop_map(|(w, h, d, g, a)| {
        Config::default()
            .with_first_request_window(Duration::from_millis(w))
            .with_header_read_timeout(Duration::from_millis(h))
            .with_drain_delay(Duration::from_millis(d))
            .with_goaway_timeout(Duration::from_millis(g))
            .with_max_connection_age(a.map(Duration::from_millis))
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 10_000, ..ProptestConfig::default() })]

    #[test]
    fn invariants_hold_under_any_interleaving(config in config(), ops in prop::collection::vec(op(), 1..80)) {
        let first = run(config, &ops)?;
        let second = run(config, &ops)?;
        prop_assert_eq!(first, second, "the same inputs gave different actions");
    }
}
