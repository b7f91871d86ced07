//! The record store: the `Store` trait every part of cc-ci reads and writes records through.
//!
//! One implementation exists ([`SledStore`], on `sled = "=0.34.7"`); the trait keeps the rest of
//! the program independent of it.
//!
//! # Guarantees every implementation gives
//! - A write future resolves only after the write is durable (flushed); a crash after that keeps it.
//! - `resourceVersion` strictly increases across all writes of a store.
//! - `replace`/`replace_status` with a non-empty `resourceVersion` are compare-and-swap: a stale one
//!   answers [`StoreError::Conflict`]. An empty `resourceVersion` means "unconditional".
//! - `generation` bumps only when `spec` changes; `replace_status` never touches spec or metadata.
//! - `delete` of a record with finalizers only sets `deletionTimestamp`; the record disappears
//!   when a later `replace` leaves `finalizers` empty.
//! - A `replace`/`replace_status` that changes nothing writes nothing: no new
//!   `resourceVersion`, no watch event (the current record is returned).
//!
//! # Beyond the trait
//! [`SledStore`] also offers raw reads for the API ([`SledStore::list_raw`],
//! [`SledStore::get_raw`]: stored JSON without decoding), [`SledStore::count`],
//! [`SledStore::approximate_size`], [`SledStore::flush`] and
//! [`SledStore::latest_resource_version`]; [`JsonStore`] serves those raw reads to the API;
//! [`export`]/[`import`] do backups.

mod commit;
mod history;
mod json;
mod open;
mod ops;
mod selector;
mod sled_store;
mod transfer;
mod watch;

pub use json::JsonStore;
pub use open::SCHEMA_VERSION;
pub use selector::LabelSelector;
pub use sled_store::{RawRecord, SledStore, StoreOptions};
pub use transfer::{ImportSummary, TransferError, export, import};

use std::future::Future;

use futures::stream::BoxStream;

use crate::api::{Kind, Object, Spec};

/// What a watch stream yields, after kube-runtime's watcher events.
#[derive(Clone, Debug, PartialEq)]
pub enum WatchEvent<S: Spec> {
    /// A (re)list begins: the consumer should forget what it knew.
    Init,
    /// One object of the (re)list.
    InitApply(Object<S>),
    /// The (re)list is complete; live events follow.
    InitDone,
    /// An object was created or changed.
    Apply(Object<S>),
    /// An object disappeared (its last state).
    Delete(Object<S>),
}

/// Errors from store operations.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// `create` of a name that exists.
    #[error("{kind} {name:?} already exists")]
    AlreadyExists {
        /// Kind of the record.
        kind: Kind,
        /// Its name.
        name: String,
    },
    /// The record does not exist.
    #[error("{kind} {name:?} not found")]
    NotFound {
        /// Kind of the record.
        kind: Kind,
        /// Its name.
        name: String,
    },
    /// The write was based on a stale `resourceVersion`.
    #[error(
        "{kind} {name:?} was modified (resourceVersion {given} is stale, current is {current}); re-read it and try again"
    )]
    Conflict {
        /// Kind of the record.
        kind: Kind,
        /// Its name.
        name: String,
        /// The version the caller sent.
        given: String,
        /// The version stored now.
        current: String,
    },
    /// The record is invalid (bad name, spec or a change that is not allowed).
    #[error("invalid {kind}: {message}")]
    Invalid {
        /// Kind of the record.
        kind: Kind,
        /// What is wrong.
        message: String,
    },
    /// A watch asked to resume from a version older than the retained history; relist.
    #[error("resourceVersion {0} is too old to resume from; start a new watch without it")]
    Expired(u64),
    /// The store is used by another process.
    #[error("the store at {path} is locked by another process (is another cc-ci running?)")]
    Locked {
        /// Store directory.
        path: String,
    },
    /// The store's files are damaged or of an unknown schema.
    #[error("the store at {path} cannot be opened: {message}")]
    Corrupt {
        /// Store directory.
        path: String,
        /// What sled or the schema check said.
        message: String,
    },
    /// Any other I/O or database failure.
    #[error("store failure: {0}")]
    Backend(String),
    /// A stored value did not decode.
    #[error("stored {kind} {name:?} does not decode: {message}")]
    Decode {
        /// Kind of the record.
        kind: Kind,
        /// Its name.
        name: String,
        /// The decoder's message.
        message: String,
    },
}

/// Durable, versioned storage of records, one keyspace per [`Kind`].
pub trait Store: Clone + Send + Sync + 'static {
    /// Stores a new record. Sets `uid`, `resourceVersion`, `generation = 1` and
    /// `creationTimestamp`; ignores any status given. [`StoreError::AlreadyExists`] on a taken name.
    fn create<S: Spec>(
        &self,
        obj: Object<S>,
    ) -> impl Future<Output = Result<Object<S>, StoreError>> + Send;

    /// Reads one record.
    fn get<S: Spec>(&self, name: &str) -> Result<Option<Object<S>>, StoreError>;

    /// Lists records of a kind matching `selector`, sorted by name.
    fn list<S: Spec>(&self, selector: &LabelSelector) -> Result<Vec<Object<S>>, StoreError>;

    /// Lists like [`Store::list`], keeping only `f(record)` of each. A store may decode one
    /// record at a time, so a reader that needs little of each never holds every whole record.
    fn list_map<S: Spec, T>(
        &self,
        selector: &LabelSelector,
        f: impl FnMut(Object<S>) -> T,
    ) -> Result<Vec<T>, StoreError> {
        Ok(self.list::<S>(selector)?.into_iter().map(f).collect())
    }

    /// Replaces spec and metadata (labels, annotations, finalizers) of an existing record; keeps
    /// its status, uid, creation and deletion timestamps. Bumps `generation` if spec changed.
    /// Removes the record when it is being deleted and `finalizers` ends up empty.
    fn replace<S: Spec>(
        &self,
        obj: Object<S>,
    ) -> impl Future<Output = Result<Object<S>, StoreError>> + Send;

    /// Replaces only the status of an existing record. Never bumps `generation`.
    fn replace_status<S: Spec>(
        &self,
        obj: Object<S>,
    ) -> impl Future<Output = Result<Object<S>, StoreError>> + Send;

    /// Requests deletion. Without finalizers the record is removed at once and `None` returned;
    /// with finalizers `deletionTimestamp` is set and the updated record returned.
    fn delete<S: Spec>(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Option<Object<S>>, StoreError>> + Send;

    /// Watches a kind. With `from = None`: `Init`, one `InitApply` per record, `InitDone`, then
    /// live events. With `from = Some(rv)`: the events after `rv` (from retained history, or a
    /// relist), then live events; [`StoreError::Expired`] if `rv` cannot be served.
    fn watch<S: Spec>(
        &self,
        from: Option<u64>,
    ) -> Result<BoxStream<'static, Result<WatchEvent<S>, StoreError>>, StoreError>;
}
