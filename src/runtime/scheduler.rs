//! Delays and deduplicates keys: one entry per key, the earliest requested time wins, and keys in
//! progress are held back until they finish.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::hash::Hash;

use tokio::time::Instant;

/// A delay queue of keys, after kube-runtime's scheduler.
///
/// # Guarantees
/// - At most one entry per key. Scheduling a key that is already queued keeps the **earlier** of
///   the two times: an earlier request moves it forward, a later one never postpones it.
/// - [`Scheduler::next`] hands keys out in time order (ties in request order), each no sooner
///   than its time.
/// - A key handed out by [`Scheduler::next`] is *in progress* until [`Scheduler::finish`]. Requests
///   for it meanwhile are held back (deduplicated the same way) and queued when it finishes, so a
///   consumer never gets the same key twice at once.
#[derive(Debug)]
pub struct Scheduler<K> {
    /// Queued entries ordered by (due time, request sequence).
    queue: BTreeSet<(Instant, u64, K)>,
    /// Where each queued key sits in `queue`.
    entries: HashMap<K, (Instant, u64)>,
    /// Requests for keys in progress, with the earliest time asked for.
    held: HashMap<K, Instant>,
    /// Keys handed out and not finished yet.
    in_progress: HashSet<K>,
    /// Request counter, to keep equal times in request order.
    seq: u64,
}

impl<K: Clone + Eq + Hash + Ord> Default for Scheduler<K> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: Clone + Eq + Hash + Ord> Scheduler<K> {
    /// An empty scheduler.
    pub fn new() -> Self {
        Self {
            queue: BTreeSet::new(),
            entries: HashMap::new(),
            held: HashMap::new(),
            in_progress: HashSet::new(),
            seq: 0,
        }
    }

    /// Asks for `key` to be handed out at `at` (or as soon as possible after it). Returns `true`
    /// when this added a new entry, `false` when it merged into an existing one.
    pub fn schedule(&mut self, key: K, at: Instant) -> bool {
        if self.in_progress.contains(&key) {
            return match self.held.get_mut(&key) {
                Some(held_at) => {
                    *held_at = (*held_at).min(at);
                    false
                }
                None => {
                    self.held.insert(key, at);
                    true
                }
            };
        }
        match self.entries.get(&key).copied() {
            Some((queued_at, _)) if queued_at <= at => false,
            Some((queued_at, seq)) => {
                self.queue.remove(&(queued_at, seq, key.clone()));
                self.insert(key, at);
                false
            }
            None => {
                self.insert(key, at);
                true
            }
        }
    }

    fn insert(&mut self, key: K, at: Instant) {
        self.seq += 1;
        self.entries.insert(key.clone(), (at, self.seq));
        self.queue.insert((at, self.seq, key));
    }

    /// Forgets any queued or held request for `key` (e.g. its record was deleted). A key in
    /// progress stays in progress until [`Scheduler::finish`].
    pub fn remove(&mut self, key: &K) {
        if let Some((at, seq)) = self.entries.remove(key) {
            self.queue.remove(&(at, seq, key.clone()));
        }
        self.held.remove(key);
    }

    /// Waits until the earliest entry is due, removes it and returns its key, now in progress.
    /// Never completes while the queue is empty. Cancel-safe: dropping the future loses nothing.
    pub async fn next(&mut self) -> K {
        loop {
            let Some(&(at, _, _)) = self.queue.first() else {
                return std::future::pending::<K>().await;
            };
            tokio::time::sleep_until(at).await;
            if let Some((_, _, key)) = self.queue.pop_first() {
                self.entries.remove(&key);
                self.in_progress.insert(key.clone());
                return key;
            }
        }
    }

    /// Marks `key` as no longer in progress; a request held back meanwhile is queued now.
    pub fn finish(&mut self, key: &K) {
        if self.in_progress.remove(key) {
            if let Some(at) = self.held.remove(key) {
                self.schedule(key.clone(), at);
            }
        }
    }

    /// When `key` is due, if it is queued or held back.
    pub fn due(&self, key: &K) -> Option<Instant> {
        self.entries
            .get(key)
            .map(|(at, _)| *at)
            .or_else(|| self.held.get(key).copied())
    }

    /// Whether `key` was handed out and not finished.
    pub fn is_in_progress(&self, key: &K) -> bool {
        self.in_progress.contains(key)
    }

    /// Number of keys waiting: queued plus held back.
    pub fn len(&self) -> usize {
        self.entries.len() + self.held.len()
    }

    /// Whether no key is waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use proptest::prelude::*;

    use super::*;

    fn paused_runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .expect("runtime")
    }

    /// Drains every queued key, recording when each came out.
    async fn drain(s: &mut Scheduler<u8>) -> Vec<(u8, Instant)> {
        let mut out = Vec::new();
        while !s.is_empty() {
            let k = s.next().await;
            out.push((k, Instant::now()));
            s.finish(&k);
        }
        out
    }

    proptest! {
        #[test]
        fn each_key_comes_out_once_at_its_earliest_time_in_time_order(
            requests in proptest::collection::vec((0u8..8, 0u64..1000), 0..60)
        ) {
            paused_runtime().block_on(async {
                let start = Instant::now();
                let mut s = Scheduler::new();
                let mut earliest: BTreeMap<u8, Instant> = BTreeMap::new();
                for (key, ms) in &requests {
                    let at = start + Duration::from_millis(*ms);
                    s.schedule(*key, at);
                    let e = earliest.entry(*key).or_insert(at);
                    *e = (*e).min(at);
                }
                let out = drain(&mut s).await;
                let keys: BTreeMap<u8, Instant> = out.iter().copied().collect();
                prop_assert_eq!(out.len(), keys.len(), "a key came out twice: {:?}", out);
                prop_assert_eq!(&keys, &earliest);
                prop_assert!(out.windows(2).all(|w| w[0].1 <= w[1].1), "not in time order: {:?}", out);
                Ok(())
            })?;
        }

        #[test]
        fn requests_during_progress_are_held_and_emitted_once_after_finish(
            later in proptest::collection::vec(0u64..1000, 1..10)
        ) {
            paused_runtime().block_on(async {
                let start = Instant::now();
                let mut s = Scheduler::new();
                s.schedule(1u8, start);
                let k = s.next().await;
                prop_assert_eq!(k, 1);
                for ms in &later {
                    s.schedule(1, start + Duration::from_millis(*ms));
                }
                let min = start + Duration::from_millis(*later.iter().min().unwrap());
                prop_assert_eq!(s.due(&1), Some(min));
                // Still in progress: nothing comes out, however long we wait.
                let held = tokio::time::timeout(Duration::from_secs(5), s.next()).await;
                prop_assert!(held.is_err(), "an in-progress key was handed out again");
                s.finish(&1);
                let out = drain(&mut s).await;
                prop_assert_eq!(out.len(), 1);
                Ok(())
            })?;
        }
    }

    #[test]
    fn a_later_request_does_not_postpone_an_earlier_one() {
        paused_runtime().block_on(async {
            let start = Instant::now();
            let mut s = Scheduler::new();
            assert!(s.schedule("a", start + Duration::from_secs(10)));
            assert!(!s.schedule("a", start + Duration::from_secs(60)));
            assert_eq!(s.due(&"a"), Some(start + Duration::from_secs(10)));
            assert!(!s.schedule("a", start + Duration::from_secs(1)));
            assert_eq!(s.next().await, "a");
            assert_eq!(Instant::now(), start + Duration::from_secs(1));
        });
    }

    #[test]
    fn removed_keys_never_come_out() {
        paused_runtime().block_on(async {
            let start = Instant::now();
            let mut s = Scheduler::new();
            s.schedule("gone", start);
            s.schedule("kept", start + Duration::from_secs(1));
            s.remove(&"gone");
            assert_eq!(s.len(), 1);
            assert_eq!(s.next().await, "kept");
        });
    }
}
