//! Per-key exponential backoff for failed reconciles, reset by a success.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::Duration;

use rand::Rng;

/// Tracks consecutive failures per key and turns them into retry delays.
///
/// The n-th consecutive failure of a key waits `initial × 2^(n-1)`, capped at `max`. With
/// `jitter` the delay is drawn uniformly from `[delay/2, delay]`, so keys failing together
/// spread out. [`Backoff::reset`] (called on success) starts the key over at `initial` — the
/// behaviour kube-runtime lacks.
#[derive(Debug, Clone)]
pub struct Backoff<K> {
    initial: Duration,
    max: Duration,
    jitter: bool,
    failures: HashMap<K, u32>,
}

impl<K: Eq + Hash> Backoff<K> {
    /// A backoff starting at `initial`, doubling up to `max`.
    pub fn new(initial: Duration, max: Duration, jitter: bool) -> Self {
        Self {
            initial,
            max: max.max(initial),
            jitter,
            failures: HashMap::new(),
        }
    }

    /// Records a failure of `key` and returns how long to wait before retrying it.
    pub fn failed(&mut self, key: K) -> Duration {
        let n = self.failures.entry(key).or_insert(0);
        *n = n.saturating_add(1);
        let factor = 2u32.saturating_pow((*n - 1).min(31));
        let delay = self.initial.saturating_mul(factor).min(self.max);
        if self.jitter && !delay.is_zero() {
            rand::rng().random_range(delay / 2..=delay)
        } else {
            delay
        }
    }

    /// Forgets the failures of `key` (after a success, or when the key is gone).
    pub fn reset(&mut self, key: &K) {
        self.failures.remove(key);
    }

    /// Consecutive failures recorded for `key`.
    pub fn failures(&self, key: &K) -> u32 {
        self.failures.get(key).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap_and_resets() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(300), false);
        let delays: Vec<u64> = (0..12).map(|_| b.failed("k").as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300]);
        assert_eq!(b.failed("other"), Duration::from_secs(1));
        b.reset(&"k");
        assert_eq!(b.failures(&"k"), 0);
        assert_eq!(b.failed("k"), Duration::from_secs(1));
    }

    #[test]
    fn jitter_stays_within_half_to_full_delay() {
        let mut b = Backoff::new(Duration::from_secs(8), Duration::from_secs(8), true);
        for _ in 0..100 {
            let d = b.failed("k");
            assert!(
                d >= Duration::from_secs(4) && d <= Duration::from_secs(8),
                "{d:?}"
            );
        }
    }
}
