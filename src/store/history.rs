//! The watch event history: a sled tree of every write, keyed by `resourceVersion`, trimmed to
//! the newest events, so a watch can resume from a version — also after a restart.
//!
//! Key: the version as 8 big-endian bytes (so keys sort by version). Value: one byte for the
//! kind, one byte for the event type, then the object's JSON as stored in its kind's tree.
//! The *floor* (in the `meta` tree) is the newest version that was trimmed away: every event
//! after it is retained, so a resume from `rv ≥ floor` is exact and from `rv < floor` expired.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::StoreError;
use crate::api::Kind;

const FLOOR_KEY: &[u8] = b"history_floor";

/// One write, as history and the live broadcast carry it.
#[derive(Clone, Debug)]
pub(crate) struct Event {
    /// The write's `resourceVersion`.
    pub rv: u64,
    /// Kind of the object.
    pub kind: Kind,
    /// Name of the object.
    pub name: String,
    /// Whether the object was removed (else created or changed).
    pub deleted: bool,
    /// The object's JSON (its last state, for a removal).
    pub json: sled::IVec,
}

/// The history tree, its floor and trimming.
#[derive(Clone)]
pub(crate) struct History {
    tree: sled::Tree,
    meta: sled::Tree,
    floor: Arc<AtomicU64>,
    writes_since_compaction: Arc<AtomicU64>,
    limit: usize,
}

fn kind_tag(kind: Kind) -> u8 {
    match kind {
        Kind::Recipe => 1,
        Kind::TestRun => 2,
        Kind::ProxyDeployment => 3,
        Kind::AppDeployment => 4,
    }
}

fn tag_kind(tag: u8) -> Option<Kind> {
    Kind::ALL.into_iter().find(|k| kind_tag(*k) == tag)
}

/// The history key of a version.
pub(crate) fn key(rv: u64) -> [u8; 8] {
    rv.to_be_bytes()
}

fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

impl History {
    /// Opens the history of `db`, keeping about `limit` events.
    pub(crate) fn open(
        tree: sled::Tree,
        meta: sled::Tree,
        limit: usize,
    ) -> Result<Self, StoreError> {
        let floor = match meta.get(FLOOR_KEY).map_err(backend)? {
            Some(v) => u64::from_be_bytes(v.as_ref().try_into().map_err(|_| {
                StoreError::Backend("the stored history floor is not 8 bytes".into())
            })?),
            None => 0,
        };
        Ok(Self {
            tree,
            meta,
            floor: Arc::new(AtomicU64::new(floor)),
            writes_since_compaction: Arc::new(AtomicU64::new(0)),
            limit: limit.max(1),
        })
    }

    /// The tree, for writing inside a transaction.
    pub(crate) fn tree(&self) -> &sled::Tree {
        &self.tree
    }

    /// Encodes an event's value.
    pub(crate) fn encode(kind: Kind, deleted: bool, json: &[u8]) -> Vec<u8> {
        let mut v = Vec::with_capacity(json.len() + 2);
        v.push(kind_tag(kind));
        v.push(if deleted { 2 } else { 1 });
        v.extend_from_slice(json);
        v
    }

    fn decode(k: &[u8], v: &sled::IVec) -> Result<Event, StoreError> {
        let bad = || StoreError::Backend("a stored watch event is malformed".into());
        let rv = u64::from_be_bytes(k.try_into().map_err(|_| bad())?);
        if v.len() < 2 {
            return Err(bad());
        }
        let kind = tag_kind(v[0]).ok_or_else(bad)?;
        let json = v.subslice(2, v.len() - 2);
        #[derive(serde::Deserialize)]
        struct Named {
            metadata: NameOnly,
        }
        #[derive(serde::Deserialize)]
        struct NameOnly {
            name: String,
        }
        let named: Named = serde_json::from_slice(&json).map_err(|_| bad())?;
        Ok(Event {
            rv,
            kind,
            name: named.metadata.name,
            deleted: v[1] == 2,
            json,
        })
    }

    /// Counts one more write towards the next trim.
    pub(crate) fn note_write(&self) {
        self.writes_since_compaction.fetch_add(1, Ordering::Relaxed);
    }

    /// Whether enough writes happened since the last trim to trim again.
    pub(crate) fn needs_compaction(&self) -> bool {
        self.writes_since_compaction.load(Ordering::Relaxed) as usize >= (self.limit / 10).max(1)
    }

    /// The newest trimmed version: events after it are all retained.
    pub(crate) fn floor(&self) -> u64 {
        self.floor.load(Ordering::Acquire)
    }

    /// Trims the history to its newest `limit` events, raising the floor first so a concurrent
    /// resume notices that events may be gone.
    pub(crate) fn compact(&self) -> Result<(), StoreError> {
        self.writes_since_compaction.store(0, Ordering::Relaxed);
        let Some(cut) = self.tree.iter().keys().rev().nth(self.limit) else {
            return Ok(());
        };
        let cut = cut.map_err(backend)?;
        let cut_rv = u64::from_be_bytes(cut.as_ref().try_into().map_err(backend)?);
        self.meta
            .insert(FLOOR_KEY, &cut_rv.to_be_bytes())
            .map_err(backend)?;
        self.floor.fetch_max(cut_rv, Ordering::AcqRel);
        let mut batch = sled::Batch::default();
        for k in self.tree.range(..=key(cut_rv)).keys() {
            batch.remove(k.map_err(backend)?);
        }
        self.tree.apply_batch(batch).map_err(backend)
    }

    /// The retained events after `rv`, oldest first; [`StoreError::Expired`] when events after
    /// `rv` have been trimmed.
    pub(crate) fn after(&self, rv: u64) -> Result<Vec<Event>, StoreError> {
        if rv < self.floor() {
            return Err(StoreError::Expired(rv));
        }
        let mut events = Vec::new();
        for item in self.tree.range(key(rv.saturating_add(1))..) {
            let (k, v) = item.map_err(backend)?;
            events.push(Self::decode(&k, &v)?);
        }
        // A trim racing with the scan raises the floor before removing anything.
        if rv < self.floor() {
            return Err(StoreError::Expired(rv));
        }
        Ok(events)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip_through_their_encoding() {
        let json = br#"{"metadata":{"name":"hedgedoc"},"spec":{}}"#;
        let value = sled::IVec::from(History::encode(Kind::TestRun, true, json));
        let ev = History::decode(&key(42), &value).unwrap();
        assert_eq!(ev.rv, 42);
        assert_eq!(ev.kind, Kind::TestRun);
        assert_eq!(ev.name, "hedgedoc");
        assert!(ev.deleted);
        assert_eq!(ev.json.as_ref(), json);
        assert!(History::decode(&key(1), &sled::IVec::from(&[9u8, 1][..])).is_err());
    }

    #[test]
    fn trimming_keeps_the_newest_events_and_raises_the_floor() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let history = History::open(
            db.open_tree("history").unwrap(),
            db.open_tree("meta").unwrap(),
            3,
        )
        .unwrap();
        for rv in 1..=10u64 {
            let value = History::encode(Kind::Recipe, false, br#"{"metadata":{"name":"r"}}"#);
            history.tree().insert(key(rv), value).unwrap();
        }
        history.compact().unwrap();
        assert_eq!(history.floor(), 7);
        let kept: Vec<u64> = history.after(7).unwrap().iter().map(|e| e.rv).collect();
        assert_eq!(kept, [8, 9, 10]);
        assert!(matches!(history.after(6), Err(StoreError::Expired(6))));
    }
}
