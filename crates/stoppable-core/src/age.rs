//! The maximum connection age while serving (B23): when each connection is
//! due to be asked to finish, so that long-lived clients reconnect and a
//! load balancer spreads them over the instances it has now.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

use crate::ConnId;

/// Stale entries (closed connections) kept at most, beyond twice the open
/// connections, before they are swept out: memory follows the open
/// connections, not the ones accepted within an age.
const SLACK: usize = 64;

/// The age deadlines of open connections, earliest first.
#[derive(Default)]
pub(crate) struct Ages {
    due: BinaryHeap<Reverse<(Instant, ConnId)>>,
}

impl Ages {
    /// Arms `id`'s deadline: `age` from `from`, give or take a tenth.
    pub(crate) fn arm(&mut self, id: ConnId, from: Instant, age: Duration) {
        if let Some(at) = from.checked_add(jittered(age, id)) {
            self.due.push(Reverse((at, id)));
        }
    }

    /// The earliest deadline, if any.
    pub(crate) fn next(&self) -> Option<Instant> {
        self.due.peek().map(|Reverse((at, _))| *at)
    }

    /// The next connection whose deadline is at or before `now`.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<ConnId> {
        match self.due.peek() {
            Some(Reverse((at, _))) if *at <= now => self.due.pop().map(|Reverse((_, id))| id),
            _ => None,
        }
    }

    /// Drops the entries of closed connections once they outnumber the
    /// open ones: amortized, a constant cost per accept.
    pub(crate) fn sweep(&mut self, open: usize, is_open: impl Fn(ConnId) -> bool) {
        if self.due.len() > 2 * open + SLACK {
            self.due.retain(|Reverse((_, id))| is_open(*id));
        }
    }

    /// No more deadlines: the drain decides from now on.
    pub(crate) fn clear(&mut self) {
        self.due.clear();
    }
}

/// `age` spread over ±10 % by the connection's id, the same for the same
/// id (the core stays deterministic): connections opened together, as all
/// of them are after a deploy, do not all end together.
pub(crate) fn jittered(age: Duration, id: ConnId) -> Duration {
    let tenth = age / 10;
    let spread = tenth * 2;
    let k = u128::from(mix(u64::from(id.index) << 32 | u64::from(id.generation)) % 1024);
    let offset = Duration::from_nanos((spread.as_nanos() * k / 1024) as u64);
    age - tenth + offset
}

/// splitmix64's finalizer: a well-spread hash of one integer.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(index: u32) -> ConnId {
        ConnId {
            index,
            generation: 0,
        }
    }

    #[test]
    fn the_age_is_spread_within_a_tenth_either_way() {
        let age = Duration::from_secs(60);
        let ages: Vec<Duration> = (0..1000).map(|i| jittered(age, id(i))).collect();
        assert!(ages
            .iter()
            .all(|a| *a >= age - age / 10 && *a <= age + age / 10));
        let (lo, hi) = (ages.iter().min().unwrap(), ages.iter().max().unwrap());
        assert!(*hi - *lo > age / 10, "spread {:?}", *hi - *lo);
        assert_eq!(jittered(age, id(7)), jittered(age, id(7)));
    }

    #[test]
    fn stale_entries_are_swept_once_they_outnumber_the_open_ones() {
        let mut ages = Ages::default();
        let t0 = Instant::now();
        for i in 0..1000 {
            ages.arm(id(i), t0, Duration::from_secs(1));
        }
        ages.sweep(1000, |_| true);
        assert_eq!(ages.due.len(), 1000);
        ages.sweep(10, |id| id.index < 10);
        assert_eq!(ages.due.len(), 10);
    }
}
