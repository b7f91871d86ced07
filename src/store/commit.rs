//! Group commit: concurrent writers share one sled flush, and a write is acknowledged only once a
//! flush that started after it has finished.
//!
//! Writes carry a *ticket* (their `resourceVersion`). Writes are committed in memory in ticket
//! order, so a flush that starts after ticket `t` was committed covers every ticket `≤ t`. One
//! dedicated thread runs the flushes: it waits until some writer asks for a ticket beyond what is
//! durable, flushes, publishes the new durable mark and repeats. Writers waiting meanwhile pile up
//! behind the next flush, so N concurrent writers cost about one `fsync`, not N.
//!
//! A thread (not a tokio task) keeps this independent of the caller's runtime and immune to
//! cancelled futures: a writer that stops waiting never leaves the flush half-done.

use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

use tokio::sync::watch;

use super::StoreError;
use super::history::History;

/// What is known to be on disk.
#[derive(Clone, Debug, Default)]
struct Durable {
    /// Every ticket `≤ upto` is flushed.
    upto: u64,
    /// The last flush failed: tickets up to `.0` are not known to be durable.
    failure: Option<(u64, String)>,
}

#[derive(Default)]
struct Requests {
    /// Highest ticket any writer waits for.
    requested: u64,
    /// Set when the store closes; the thread does a final flush and ends.
    shutdown: bool,
}

struct Shared {
    requests: Mutex<Requests>,
    wake: Condvar,
}

/// The flusher thread and the durable mark writers wait on.
pub(crate) struct GroupCommit {
    shared: Arc<Shared>,
    durable: watch::Receiver<Durable>,
    thread: Option<JoinHandle<()>>,
}

impl GroupCommit {
    /// Starts the flusher for `db`; tickets `≤ durable_upto` count as already durable. After a
    /// flush the thread also trims the event `history` when it has grown past its limit.
    pub(crate) fn start(
        db: sled::Db,
        history: History,
        durable_upto: u64,
    ) -> Result<Self, StoreError> {
        let shared = Arc::new(Shared {
            requests: Mutex::new(Requests {
                requested: durable_upto,
                shutdown: false,
            }),
            wake: Condvar::new(),
        });
        let (tx, rx) = watch::channel(Durable {
            upto: durable_upto,
            failure: None,
        });
        let thread_shared = shared.clone();
        let thread = std::thread::Builder::new()
            .name("cc-ci-store-flush".into())
            .spawn(move || flush_loop(db, history, thread_shared, tx, durable_upto))
            .map_err(|e| StoreError::Backend(format!("cannot start the store flusher: {e}")))?;
        Ok(Self {
            shared,
            durable: rx,
            thread: Some(thread),
        })
    }

    /// Resolves once a flush covering `ticket` has completed.
    pub(crate) async fn wait(&self, ticket: u64) -> Result<(), StoreError> {
        let mut rx = self.durable.clone();
        if rx.borrow_and_update().upto >= ticket {
            return Ok(());
        }
        {
            let mut req = lock(&self.shared.requests);
            req.requested = req.requested.max(ticket);
        }
        self.shared.wake.notify_one();
        loop {
            {
                let d = rx.borrow_and_update();
                if d.upto >= ticket {
                    return Ok(());
                }
                if let Some((failed, message)) = &d.failure
                    && *failed >= ticket
                {
                    return Err(StoreError::Backend(format!(
                        "flushing the store failed: {message}"
                    )));
                }
            }
            rx.changed()
                .await
                .map_err(|_| StoreError::Backend("the store flusher stopped".into()))?;
        }
    }
}

impl Drop for GroupCommit {
    fn drop(&mut self) {
        lock(&self.shared.requests).shutdown = true;
        self.shared.wake.notify_one();
        if let Some(thread) = self.thread.take() {
            // The thread holds a `Db` handle: joining it makes sure the store's file lock is
            // released by the time the last `SledStore` clone is gone.
            let _ = thread.join();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn flush_loop(
    db: sled::Db,
    history: History,
    shared: Arc<Shared>,
    tx: watch::Sender<Durable>,
    mut upto: u64,
) {
    loop {
        let (target, shutdown) = {
            let mut req = lock(&shared.requests);
            while req.requested <= upto && !req.shutdown {
                req = shared
                    .wake
                    .wait(req)
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
            }
            (req.requested, req.shutdown)
        };
        match db.flush() {
            Ok(_) => {
                upto = upto.max(target);
                tx.send_replace(Durable {
                    upto,
                    failure: None,
                });
            }
            Err(e) => {
                tracing::error!(error = %e, "flushing the store failed");
                tx.send_replace(Durable {
                    upto,
                    failure: Some((target, e.to_string())),
                });
                // Writers up to `target` got the error; retry for later ones after a pause.
                std::thread::sleep(std::time::Duration::from_millis(100));
                let mut req = lock(&shared.requests);
                if req.requested == target {
                    req.requested = upto;
                }
            }
        }
        if shutdown {
            return;
        }
        if history.needs_compaction()
            && let Err(e) = history.compact()
        {
            tracing::warn!(error = %e, "trimming the store's event history failed");
        }
    }
}
