//! Runs keyed tasks with bounded concurrency, never two tasks of the same key at once.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::hash::Hash;

use tokio::task::{Id, JoinError, JoinSet};

/// Why [`Runner::spawn`] refused a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SpawnError {
    /// A task of the same key is still running.
    #[error("a task for this key is already running")]
    KeyBusy,
    /// The concurrency limit is reached.
    #[error("the concurrency limit is reached")]
    Full,
}

/// A set of running tasks, each tied to a key, on the tokio runtime.
///
/// # Guarantees
/// - At most `limit` tasks run at once; [`Runner::spawn`] refuses beyond that.
/// - At most one task per key runs at once; [`Runner::spawn`] refuses a busy key.
/// - A key stays busy until its result was taken with [`Runner::next_done`] (also when the task
///   panicked or was aborted), so the consumer always sees every key finish.
#[derive(Debug)]
pub struct Runner<K, O> {
    tasks: JoinSet<O>,
    keys: HashMap<Id, K>,
    running: HashSet<K>,
    limit: usize,
}

impl<K: Clone + Eq + Hash, O: Send + 'static> Runner<K, O> {
    /// A runner that runs at most `limit` tasks at once (at least one).
    pub fn new(limit: usize) -> Self {
        Self {
            tasks: JoinSet::new(),
            keys: HashMap::new(),
            running: HashSet::new(),
            limit: limit.max(1),
        }
    }

    /// Whether another task may start now.
    pub fn has_capacity(&self) -> bool {
        self.running.len() < self.limit
    }

    /// Whether a task of `key` is running.
    pub fn is_running(&self, key: &K) -> bool {
        self.running.contains(key)
    }

    /// Number of running tasks.
    pub fn len(&self) -> usize {
        self.running.len()
    }

    /// Whether no task is running.
    pub fn is_empty(&self) -> bool {
        self.running.is_empty()
    }

    /// Starts `task` for `key`, unless that key is busy or the runner is full.
    pub fn spawn<F>(&mut self, key: K, task: F) -> Result<(), SpawnError>
    where
        F: Future<Output = O> + Send + 'static,
    {
        if self.running.contains(&key) {
            return Err(SpawnError::KeyBusy);
        }
        if !self.has_capacity() {
            return Err(SpawnError::Full);
        }
        let handle = self.tasks.spawn(task);
        self.keys.insert(handle.id(), key.clone());
        self.running.insert(key);
        Ok(())
    }

    /// Waits for the next task to end and returns its key with its output, or the
    /// [`JoinError`] if it panicked or was aborted. Never completes while nothing runs.
    /// Cancel-safe.
    pub async fn next_done(&mut self) -> (K, Result<O, JoinError>) {
        loop {
            match self.tasks.join_next_with_id().await {
                None => return std::future::pending().await,
                Some(Ok((id, out))) => {
                    if let Some(key) = self.release(id) {
                        return (key, Ok(out));
                    }
                }
                Some(Err(e)) => {
                    if let Some(key) = self.release(e.id()) {
                        return (key, Err(e));
                    }
                }
            }
        }
    }

    fn release(&mut self, id: Id) -> Option<K> {
        let key = self.keys.remove(&id)?;
        self.running.remove(&key);
        Some(key)
    }

    /// Aborts every running task. Their keys are reported by [`Runner::next_done`] as cancelled.
    pub fn abort_all(&mut self) {
        self.tasks.abort_all();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn refuses_a_busy_key_and_beyond_the_limit() {
        let mut r: Runner<&str, u32> = Runner::new(2);
        r.spawn("a", async { 1 }).unwrap();
        assert_eq!(r.spawn("a", async { 2 }), Err(SpawnError::KeyBusy));
        r.spawn("b", async { 3 }).unwrap();
        assert_eq!(r.spawn("c", async { 4 }), Err(SpawnError::Full));
        let (k1, o1) = r.next_done().await;
        let (k2, o2) = r.next_done().await;
        let mut done = vec![(k1, o1.unwrap()), (k2, o2.unwrap())];
        done.sort();
        assert_eq!(done, vec![("a", 1), ("b", 3)]);
        assert!(r.is_empty());
        r.spawn("a", async { 5 }).unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn keeps_at_most_limit_tasks_running() {
        let limit = 3;
        let now = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let mut r: Runner<usize, ()> = Runner::new(limit);
        let mut pending: Vec<usize> = (0..20).collect();
        let mut finished = 0;
        while finished < 20 {
            while r.has_capacity() {
                let Some(k) = pending.pop() else { break };
                let (now, peak) = (now.clone(), peak.clone());
                r.spawn(k, async move {
                    let n = now.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(n, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(10 + k as u64)).await;
                    now.fetch_sub(1, Ordering::SeqCst);
                })
                .unwrap();
            }
            let (_, out) = r.next_done().await;
            out.unwrap();
            finished += 1;
        }
        assert_eq!(peak.load(Ordering::SeqCst), limit);
    }

    #[tokio::test(start_paused = true)]
    async fn an_aborted_task_still_reports_its_key() {
        let mut r: Runner<&str, ()> = Runner::new(1);
        r.spawn("slow", std::future::pending()).unwrap();
        r.abort_all();
        let (k, out) = r.next_done().await;
        assert_eq!(k, "slow");
        assert!(out.unwrap_err().is_cancelled());
        assert!(!r.is_running(&"slow"));
    }
}
