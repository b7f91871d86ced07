//! Kube's four-case finalizer helper: guarantees a cleanup runs before a record disappears.

use std::future::Future;
use std::sync::Arc;

use super::Action;
use crate::api::{Object, Spec};
use crate::store::{Store, StoreError};

/// What the wrapped reconcile is asked to do.
#[derive(Debug, Clone)]
pub enum Event<S: Spec> {
    /// Bring the world in line with the record (it is not being deleted and carries our
    /// finalizer). Must be idempotent.
    Apply(Arc<Object<S>>),
    /// The record is being deleted: undo what `Apply` did. Must be idempotent; the finalizer is
    /// removed only after it succeeds.
    Cleanup(Arc<Object<S>>),
}

/// Why [`finalizer`] failed. Every variant is retried by the controller's backoff.
#[derive(Debug, thiserror::Error)]
pub enum FinalizerError<E: std::error::Error + 'static> {
    /// The `Apply` reconcile failed.
    #[error("apply failed: {0}")]
    ApplyFailed(#[source] E),
    /// The `Cleanup` reconcile failed; the finalizer stays.
    #[error("cleanup failed: {0}")]
    CleanupFailed(#[source] E),
    /// Writing the finalizer failed (e.g. a Conflict: the cached record was stale).
    #[error("adding the finalizer failed: {0}")]
    AddFinalizer(#[source] StoreError),
    /// Removing the finalizer after cleanup failed; cleanup will run again.
    #[error("removing the finalizer failed: {0}")]
    RemoveFinalizer(#[source] StoreError),
}

/// Runs `reconcile` under the finalizer `name`, after kube-runtime's `finalizer`.
///
/// # Expected flow
/// 1. Not deleting, no finalizer `name`: adds it (a `replace` of the record) and returns
///    [`Action::await_change`]; the write is a change, so the next reconcile lands in case 2.
/// 2. Not deleting, has the finalizer: `reconcile(Event::Apply)`.
/// 3. Deleting, has the finalizer: `reconcile(Event::Cleanup)`, then removes the finalizer
///    (the store then removes the record if no other finalizer is left).
/// 4. Deleting, no finalizer `name`: nothing to do; returns [`Action::await_change`].
///
/// # Guarantees
/// - `Cleanup` runs at least once for every record that had `Apply` run on it, before the
///   record disappears (provided nothing else removes our finalizer).
/// - Writes are compare-and-swap on the given record's `resourceVersion`: a stale record makes a
///   [`StoreError::Conflict`], returned as an error so the key is retried with a fresh copy.
///
/// # Assumptions
/// `name` is unique to one controller (e.g. `cc-ci/testrun-teardown`) and `obj` comes from the
/// controller's cache.
///
/// # Caveats
/// `Cleanup` may run more than once (e.g. when removing the finalizer conflicts); make it
/// idempotent. A record deleted before its first reconcile gets no `Apply` and no `Cleanup`.
pub async fn finalizer<S, St, E, F, Fut>(
    store: &St,
    name: &str,
    obj: Arc<Object<S>>,
    reconcile: F,
) -> Result<Action, FinalizerError<E>>
where
    S: Spec,
    St: Store,
    E: std::error::Error + 'static,
    F: FnOnce(Event<S>) -> Fut,
    Fut: Future<Output = Result<Action, E>>,
{
    let has_ours = obj.metadata.finalizers.iter().any(|f| f == name);
    match (obj.is_deleting(), has_ours) {
        (false, true) => reconcile(Event::Apply(obj))
            .await
            .map_err(FinalizerError::ApplyFailed),
        (true, true) => {
            let action = reconcile(Event::Cleanup(obj.clone()))
                .await
                .map_err(FinalizerError::CleanupFailed)?;
            let mut updated = (*obj).clone();
            updated.metadata.finalizers.retain(|f| f != name);
            match store.replace(updated).await {
                // Already gone: someone else finished the deletion.
                Ok(_) | Err(StoreError::NotFound { .. }) => Ok(action),
                Err(e) => Err(FinalizerError::RemoveFinalizer(e)),
            }
        }
        (true, false) => Ok(Action::await_change()),
        (false, false) => {
            let mut updated = (*obj).clone();
            updated.metadata.finalizers.push(name.to_string());
            store
                .replace(updated)
                .await
                .map_err(FinalizerError::AddFinalizer)?;
            Ok(Action::await_change())
        }
    }
}
