//! Watch streams, kube-style: subscribe to live events first, then list (or replay history),
//! then pass on live events the list or replay did not already cover.
//!
//! # Guarantees
//! - `watch(None)`: `Init`, one `InitApply` per record (sorted by name), `InitDone`, then every
//!   later change exactly once, in `resourceVersion` order.
//! - `watch(Some(rv))`: the retained history after `rv` as `Apply`/`Delete` (no `Init`), then
//!   live events; [`StoreError::Expired`] when history after `rv` was trimmed. History is on
//!   disk, so this works across restarts.
//! - A watcher that falls behind the live channel re-lists (`Init`…`InitDone` again) instead of
//!   silently losing events.
//!
//! # Deduplication
//! A list is not a snapshot: writes may land while it runs. Before listing we note `low`, the
//! newest committed version (everything `≤ low` is in the list); after it, `high`. Live events
//! `≤ low` are skipped; events in `(low, high]` are skipped only when the list already showed
//! that object at that version or later.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use futures::StreamExt;
use futures::stream::BoxStream;
use tokio::sync::broadcast::error::RecvError;

use super::history::Event;
use super::sled_store::{Inner, decode};
use super::{StoreError, WatchEvent};
use crate::api::Spec;

/// What the last list showed, to drop live events it already covered.
struct Listed {
    /// Newest committed version before the list began.
    low: u64,
    /// Newest committed version after it ended.
    high: u64,
    /// Version of each listed object.
    versions: HashMap<String, u64>,
    /// A listed record failed to decode: the rest of this list is dropped.
    failed: bool,
}

impl Listed {
    /// A list (or replay) between these versions, before anything of it was decoded.
    fn new(low: u64, high: u64) -> Self {
        Listed {
            low,
            high,
            versions: HashMap::new(),
            failed: false,
        }
    }

    /// Whether the list (or replay) already reflected `ev`.
    fn covers(&mut self, ev: &Event) -> bool {
        if ev.rv <= self.low {
            return true;
        }
        if ev.rv > self.high {
            self.versions = HashMap::new();
            return false;
        }
        self.versions.get(&ev.name).is_some_and(|v| *v >= ev.rv)
    }

    /// Decodes one listed record, noting its version; ready events pass as they are. `None`
    /// once a listed record failed to decode: the rest of that list (and its `InitDone`) is
    /// dropped, as the list is incomplete.
    fn decode<S: Spec>(&mut self, item: First<S>) -> Option<Result<WatchEvent<S>, StoreError>> {
        if self.failed {
            return None;
        }
        match item {
            First::Ready(event) => Some(*event),
            First::Listed(k, v) => {
                let event = decode::<S>(&k, &v).map(|obj| {
                    self.versions.insert(
                        obj.metadata.name.clone(),
                        obj.metadata.resource_version_u64(),
                    );
                    WatchEvent::InitApply(obj)
                });
                self.failed = event.is_err();
                Some(event)
            }
        }
    }
}

fn to_event<S: Spec>(ev: &Event) -> Result<WatchEvent<S>, StoreError> {
    let obj = decode::<S>(ev.name.as_bytes(), &ev.json)?;
    Ok(if ev.deleted {
        WatchEvent::Delete(obj)
    } else {
        WatchEvent::Apply(obj)
    })
}

/// One event of a watch's first part: ready, or a listed record still to be decoded (a list
/// of 10,000 records is decoded one by one as it is consumed, not all at once up front).
/// (Boxed, so that a list's entries are two sled buffers each, not a whole decoded record.)
enum First<S: Spec> {
    Ready(Box<Result<WatchEvent<S>, StoreError>>),
    Listed(sled::IVec, sled::IVec),
}

/// Lists the kind (raw), returning the events to emit and what the list covered; the versions
/// of the listed records are noted as they are decoded (see [`Listed::decode`]).
fn relist<S: Spec>(inner: &Inner) -> (Vec<First<S>>, Listed) {
    let low = inner.last_committed.load(Ordering::Acquire);
    let mut out = vec![First::Ready(Box::new(Ok(WatchEvent::Init)))];
    let listed: Result<Vec<_>, _> = inner.tree(S::KIND).iter().collect();
    match listed {
        Ok(items) => {
            out.extend(items.into_iter().map(|(k, v)| First::Listed(k, v)));
            out.push(First::Ready(Box::new(Ok(WatchEvent::InitDone))));
        }
        Err(e) => out.push(First::Ready(Box::new(Err(super::sled_store::backend(e))))),
    }
    let high = inner.last_committed.load(Ordering::Acquire);
    (out, Listed::new(low, high))
}

/// Starts a watch of `S`'s kind; see the module docs.
pub(crate) fn watch<S: Spec>(
    inner: Arc<Inner>,
    from: Option<u64>,
) -> Result<BoxStream<'static, Result<WatchEvent<S>, StoreError>>, StoreError> {
    // Subscribe before reading anything, so nothing falls between the read and the live feed.
    let mut live = inner.live.subscribe();
    let (first, mut listed) = match from {
        None => relist::<S>(&inner),
        Some(rv) => {
            // A version this store never reached comes from another store (e.g. one restored
            // from an export): resuming from it would skip real events.
            if rv > inner.last_committed.load(Ordering::Acquire) {
                return Err(StoreError::Expired(rv));
            }
            let events = inner.history.after(rv)?;
            let high = events.last().map_or(rv, |e| e.rv.max(rv));
            let first = events
                .iter()
                .filter(|e| e.kind == S::KIND)
                .map(|e| First::Ready(Box::new(to_event::<S>(e))))
                .collect();
            (first, Listed::new(high, high))
        }
    };
    let stream = async_stream::stream! {
        for item in first {
            if let Some(event) = listed.decode(item) {
                yield event;
            }
        }
        loop {
            match live.recv().await {
                Ok(ev) => {
                    if ev.kind != S::KIND || listed.covers(&ev) {
                        continue;
                    }
                    yield to_event::<S>(&ev);
                }
                Err(RecvError::Lagged(missed)) => {
                    tracing::debug!(kind = %S::KIND, missed, "watcher fell behind; re-listing");
                    let (items, l) = relist::<S>(&inner);
                    listed = l;
                    for item in items {
                        if let Some(event) = listed.decode(item) {
                            yield event;
                        }
                    }
                }
                Err(RecvError::Closed) => break,
            }
        }
    };
    Ok(stream.boxed())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Kind;

    fn event(rv: u64, name: &str) -> Event {
        Event {
            rv,
            kind: Kind::Recipe,
            name: name.into(),
            deleted: false,
            json: sled::IVec::from(&b"{}"[..]),
        }
    }

    #[test]
    fn live_events_the_list_already_showed_are_dropped() {
        let mut listed = Listed {
            low: 10,
            high: 20,
            versions: HashMap::from([("a".to_string(), 15), ("b".to_string(), 5)]),
            failed: false,
        };
        assert!(
            listed.covers(&event(9, "x")),
            "at or below low: in the list"
        );
        assert!(
            listed.covers(&event(12, "a")),
            "list showed a newer version of a"
        );
        assert!(
            listed.covers(&event(15, "a")),
            "list showed exactly this version"
        );
        assert!(
            !listed.covers(&event(16, "a")),
            "newer than what the list showed"
        );
        assert!(!listed.covers(&event(13, "b")), "list showed an older b");
        assert!(!listed.covers(&event(14, "new")), "not in the list at all");
        assert!(!listed.covers(&event(21, "a")), "after the list ended");
        assert!(
            listed.versions.is_empty(),
            "past high the per-object map is dropped"
        );
    }
}
