//! Property tests: random interleavings of everything that can happen to a
//! server, checked after every step against a small model of the driver
//! (`model/mod.rs`).

mod model;

use std::time::Duration;

use model::{run, Op};
use proptest::prelude::*;
use stoppable_core::Config;

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => Just(Op::Accept),
        3 => any::<usize>().prop_map(Op::Arrive),
        3 => any::<usize>().prop_map(Op::Start),
        3 => any::<usize>().prop_map(Op::Finish),
        1 => any::<usize>().prop_map(Op::Upgrade),
        1 => any::<usize>().prop_map(Op::Block),
        2 => any::<usize>().prop_map(Op::Close),
        1 => any::<usize>().prop_map(Op::Stale),
        1 => prop::option::of(0u64..400).prop_map(Op::Stop),
        1 => Just(Op::ListenerClosed),
        3 => (0u64..300).prop_map(Op::Tick),
    ]
}

fn config() -> impl Strategy<Value = Config> {
    (0u64..300, 1u64..500, prop_oneof![Just(0u64), 1u64..300]).prop_map(|(w, h, d)| {
        Config::default()
            .with_first_request_window(Duration::from_millis(w))
            .with_header_read_timeout(Duration::from_millis(h))
            .with_drain_delay(Duration::from_millis(d))
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
