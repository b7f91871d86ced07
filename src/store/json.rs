//! Records as stored JSON bytes ([`JsonStore`]): what the HTTP API serves, read without a
//! decode/encode round trip where the store keeps JSON (as [`SledStore`] does).

use bytes::Bytes;

use super::{LabelSelector, SledStore, Store, StoreError};
use crate::api::Spec;

/// A [`Store`] that can hand out records as JSON. The defaults go through the typed [`Store`]
/// methods; a store that keeps records as JSON overrides them to serve its bytes as they are.
pub trait JsonStore: Store {
    /// The newest committed `resourceVersion`, if the store can tell.
    fn latest_resource_version(&self) -> Option<u64> {
        None
    }

    /// The JSON of each record of kind `S` matching `selector`, sorted by name.
    fn list_json<S: Spec>(&self, selector: &LabelSelector) -> Result<Vec<Bytes>, StoreError> {
        self.list::<S>(selector)?
            .iter()
            .map(|o| encode(o).map(Bytes::from))
            .collect()
    }

    /// Bytes the store takes on disk, if the store can tell (`ccci_store_size_bytes`).
    fn size_on_disk(&self) -> Option<u64> {
        None
    }

    /// Records of `kind`, if the store can tell cheaply (`ccci_records`).
    fn record_count(&self, _kind: crate::api::Kind) -> Option<usize> {
        None
    }

    /// The JSON of one record.
    fn get_json<S: Spec>(&self, name: &str) -> Result<Option<Bytes>, StoreError> {
        self.get::<S>(name)?
            .map(|o| encode(&o).map(Bytes::from))
            .transpose()
    }
}

fn encode<T: serde::Serialize>(v: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(v).map_err(|e| StoreError::Backend(format!("encoding a record: {e}")))
}

impl JsonStore for SledStore {
    fn latest_resource_version(&self) -> Option<u64> {
        Some(SledStore::latest_resource_version(self))
    }

    fn size_on_disk(&self) -> Option<u64> {
        self.approximate_size().ok()
    }

    fn record_count(&self, kind: crate::api::Kind) -> Option<usize> {
        Some(self.count(kind))
    }

    fn list_json<S: Spec>(&self, selector: &LabelSelector) -> Result<Vec<Bytes>, StoreError> {
        Ok(self
            .list_raw(S::KIND, selector)?
            .into_iter()
            .map(|r| r.into_bytes())
            .collect())
    }

    fn get_json<S: Spec>(&self, name: &str) -> Result<Option<Bytes>, StoreError> {
        Ok(self.get_raw(S::KIND, name)?.map(|r| r.into_bytes()))
    }
}
