//! [`SledStore`]: the [`super::Store`] on sled — its layout, reads, and the one serialized write
//! path every change goes through (opening is in `open.rs`).
//!
//! # Layout
//! One tree per kind (named by [`Kind::plural`]) mapping name → the record's JSON; a `history`
//! tree of watch events (see `history.rs`); a `meta` tree with `schema_version` and the history
//! floor.
//!
//! # Writes
//! Every write runs under one mutex: read the current record, decide, take a new
//! `resourceVersion` from `generate_id()`, write record and history event in one sled
//! transaction, publish the event to live watchers. The mutex holds no I/O wait (sled writes
//! are in memory); durability comes after it, from the shared flush in `commit.rs`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use sled::Transactional;
use tokio::sync::broadcast;

use super::commit::GroupCommit;
use super::history::{Event, History};
use super::{LabelSelector, StoreError};
use crate::api::{Kind, Object, Spec};

/// Tunables of [`SledStore::open_with`].
#[derive(Clone, Debug)]
pub struct StoreOptions {
    /// How many watch events to keep for resuming (older resumes answer `Expired`).
    pub history_limit: usize,
    /// sled's page cache size in bytes.
    pub cache_bytes: u64,
    /// Capacity of the live event channel; a watcher further behind re-lists.
    pub live_capacity: usize,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            history_limit: 10_000,
            cache_bytes: 64 * 1024 * 1024,
            live_capacity: 4096,
        }
    }
}

/// The sled-backed store. Cheap to clone; all clones share one database.
#[derive(Clone)]
pub struct SledStore {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for SledStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SledStore")
            .field("path", &self.inner.path)
            .finish_non_exhaustive()
    }
}

pub(crate) struct Inner {
    // `commit` first: dropping it joins the flusher (which holds a `Db`) before `db` goes.
    pub(crate) commit: GroupCommit,
    pub(crate) db: sled::Db,
    pub(crate) path: PathBuf,
    records: Vec<sled::Tree>,
    /// Record count per kind, counted on first use and then kept by the write path.
    counts: Vec<OnceLock<AtomicUsize>>,
    pub(crate) history: History,
    write_lock: Mutex<()>,
    /// Every version `≤` this is committed (visible to reads).
    pub(crate) last_committed: AtomicU64,
    pub(crate) live: broadcast::Sender<Arc<Event>>,
}

/// What a write decided to do with the record.
pub(crate) enum Decision<S: Spec> {
    /// Nothing changes; answer with the current record.
    Keep(Object<S>),
    /// Store this record (a new `resourceVersion` is set on it).
    Put(Object<S>),
    /// Remove the record; this is its last state (a new `resourceVersion` is set on it).
    Remove(Object<S>),
}

/// A record as stored: its JSON bytes, shared without copying.
#[derive(Clone, Debug)]
pub struct RawRecord(sled::IVec);

impl RawRecord {
    /// The record's JSON.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The JSON as [`bytes::Bytes`], without copying.
    pub fn into_bytes(self) -> bytes::Bytes {
        bytes::Bytes::from_owner(self.0)
    }
}

impl AsRef<[u8]> for RawRecord {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

pub(crate) fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

impl SledStore {
    pub(crate) fn from_db(
        db: sled::Db,
        dir: &Path,
        options: StoreOptions,
    ) -> Result<SledStore, StoreError> {
        let meta = db.open_tree("meta").map_err(backend)?;
        super::open::check_schema(&meta, dir)?;
        let records = Kind::ALL
            .iter()
            .map(|k| db.open_tree(k.plural()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(backend)?;
        let history = History::open(
            db.open_tree("history").map_err(backend)?,
            meta,
            options.history_limit,
        )?;
        // Any id generated before is below this one, also across restarts (sled persists its
        // id counter ahead of use), so it bounds every version already committed.
        let base = db.generate_id().map_err(backend)?;
        let commit = GroupCommit::start(db.clone(), history.clone(), base)?;
        let (live, _) = broadcast::channel(options.live_capacity.max(16));
        Ok(SledStore {
            inner: Arc::new(Inner {
                commit,
                db,
                path: dir.to_path_buf(),
                records,
                counts: Kind::ALL.iter().map(|_| OnceLock::new()).collect(),
                history,
                write_lock: Mutex::new(()),
                last_committed: AtomicU64::new(base),
                live,
            }),
        })
    }

    /// The store's directory.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Bytes the store takes on disk (sled's estimate).
    pub fn approximate_size(&self) -> Result<u64, StoreError> {
        self.inner.db.size_on_disk().map_err(backend)
    }

    /// Number of records of `kind` (walks the kind's keys on the first call only).
    pub fn count(&self, kind: Kind) -> usize {
        let inner = &self.inner;
        let slot = &inner.counts[kind_index(kind)];
        if let Some(n) = slot.get() {
            return n.load(Ordering::Acquire);
        }
        // Counted under the write lock so no write slips between the walk and the counter.
        let _guard = inner.lock_writes();
        slot.get_or_init(|| AtomicUsize::new(inner.tree(kind).len()))
            .load(Ordering::Acquire)
    }

    /// Flushes everything written so far to disk (blocking).
    pub fn flush(&self) -> Result<(), StoreError> {
        self.inner.db.flush().map(|_| ()).map_err(backend)
    }

    /// The newest committed `resourceVersion` (a watch from it sees only later changes).
    pub fn latest_resource_version(&self) -> u64 {
        self.inner.last_committed.load(Ordering::Acquire)
    }

    /// Trims the watch history to its limit now (normally done after flushes).
    pub fn compact_history(&self) -> Result<(), StoreError> {
        self.inner.history.compact()
    }

    /// One record's stored JSON, as the API serves it.
    pub fn get_raw(&self, kind: Kind, name: &str) -> Result<Option<RawRecord>, StoreError> {
        Ok(self
            .inner
            .tree(kind)
            .get(name)
            .map_err(backend)?
            .map(RawRecord))
    }

    /// The stored JSON of the records of `kind` matching `selector`, sorted by name. Does not
    /// decode records when the selector is empty (only their labels otherwise).
    pub fn list_raw(
        &self,
        kind: Kind,
        selector: &LabelSelector,
    ) -> Result<Vec<RawRecord>, StoreError> {
        #[derive(serde::Deserialize)]
        struct Labelled {
            metadata: LabelsOnly,
        }
        #[derive(serde::Deserialize)]
        struct LabelsOnly {
            #[serde(default)]
            labels: std::collections::BTreeMap<String, String>,
        }
        let mut out = Vec::new();
        for item in self.inner.tree(kind).iter() {
            let (k, v) = item.map_err(backend)?;
            if !selector.is_empty() {
                let l: Labelled = serde_json::from_slice(&v).map_err(|e| StoreError::Decode {
                    kind,
                    name: String::from_utf8_lossy(&k).into_owned(),
                    message: e.to_string(),
                })?;
                if !selector.matches(&l.metadata.labels) {
                    continue;
                }
            }
            out.push(RawRecord(v));
        }
        Ok(out)
    }
}

/// Decodes a stored record.
pub(crate) fn decode<S: Spec>(name: &[u8], bytes: &[u8]) -> Result<Object<S>, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Decode {
        kind: S::KIND,
        name: String::from_utf8_lossy(name).into_owned(),
        message: e.to_string(),
    })
}

fn kind_index(kind: Kind) -> usize {
    Kind::ALL.iter().position(|k| *k == kind).unwrap_or(0)
}

impl Inner {
    pub(crate) fn tree(&self, kind: Kind) -> &sled::Tree {
        &self.records[kind_index(kind)]
    }

    fn lock_writes(&self) -> std::sync::MutexGuard<'_, ()> {
        self.write_lock
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn get<S: Spec>(&self, name: &str) -> Result<Option<Object<S>>, StoreError> {
        match self.tree(S::KIND).get(name).map_err(backend)? {
            Some(v) => decode(name.as_bytes(), &v).map(Some),
            None => Ok(None),
        }
    }

    pub(crate) fn list<S: Spec>(
        &self,
        selector: &LabelSelector,
    ) -> Result<Vec<Object<S>>, StoreError> {
        self.list_map(selector, |obj| obj)
    }

    /// Lists like [`Inner::list`], keeping `f(record)` of each: one decoded record at a time.
    pub(crate) fn list_map<S: Spec, T>(
        &self,
        selector: &LabelSelector,
        mut f: impl FnMut(Object<S>) -> T,
    ) -> Result<Vec<T>, StoreError> {
        let mut out = Vec::new();
        for item in self.tree(S::KIND).iter() {
            let (k, v) = item.map_err(backend)?;
            let obj: Object<S> = decode(&k, &v)?;
            if selector.matches(&obj.metadata.labels) {
                out.push(f(obj));
            }
        }
        Ok(out)
    }

    /// Runs one write: `decide` sees the current record and says what to store. Returns the
    /// decision as applied (with its new `resourceVersion`) and the ticket to wait on for
    /// durability.
    pub(crate) fn apply<S: Spec>(
        &self,
        name: &str,
        decide: impl FnOnce(Option<Object<S>>) -> Result<Decision<S>, StoreError>,
    ) -> Result<(Decision<S>, u64), StoreError> {
        let _guard = self.lock_writes();
        let tree = self.tree(S::KIND);
        let current = match tree.get(name).map_err(backend)? {
            Some(v) => Some(decode::<S>(name.as_bytes(), &v)?),
            None => None,
        };
        let existed = current.is_some();
        let decision = decide(current)?;
        let (mut obj, deleted) = match decision {
            Decision::Keep(obj) => {
                return Ok((
                    Decision::Keep(obj),
                    self.last_committed.load(Ordering::Acquire),
                ));
            }
            Decision::Put(obj) => (obj, false),
            Decision::Remove(obj) => (obj, true),
        };
        let rv = self.db.generate_id().map_err(backend)?;
        obj.metadata.resource_version = rv.to_string();
        let json = sled::IVec::from(serde_json::to_vec(&obj).map_err(backend)?);
        let event_value = History::encode(S::KIND, deleted, &json);
        let hist_key = super::history::key(rv);
        (tree, self.history.tree())
            .transaction(|(t, h)| {
                if deleted {
                    t.remove(name.as_bytes())?;
                } else {
                    t.insert(name.as_bytes(), json.clone())?;
                }
                h.insert(&hist_key, event_value.as_slice())?;
                Ok::<(), sled::transaction::ConflictableTransactionError<()>>(())
            })
            .map_err(|e| StoreError::Backend(format!("writing {} {name:?}: {e:?}", S::KIND)))?;
        self.last_committed.store(rv, Ordering::Release);
        self.history.note_write();
        if let Some(count) = self.counts[kind_index(S::KIND)].get() {
            if deleted && existed {
                count.fetch_sub(1, Ordering::AcqRel);
            } else if !deleted && !existed {
                count.fetch_add(1, Ordering::AcqRel);
            }
        }
        // No receivers is fine: nobody watches.
        let _ = self.live.send(Arc::new(Event {
            rv,
            kind: S::KIND,
            name: name.to_string(),
            deleted,
            json,
        }));
        let applied = if deleted {
            Decision::Remove(obj)
        } else {
            Decision::Put(obj)
        };
        Ok((applied, rv))
    }
}
