//! The [`Store`] trait on [`SledStore`]: the rules of each write (what create, replace,
//! replace_status and delete may change), each run through the serialized write path and then
//! awaited until durable.

use chrono::Utc;
use futures::stream::BoxStream;

use super::sled_store::{Decision, SledStore};
use super::{LabelSelector, Store, StoreError, WatchEvent};
use crate::api::{API_VERSION, Object, Spec, validate_name};

fn invalid<S: Spec>(message: String) -> StoreError {
    StoreError::Invalid {
        kind: S::KIND,
        message,
    }
}

/// Checks name and spec, the rules every stored spec obeys.
fn validate<S: Spec>(obj: &Object<S>) -> Result<(), StoreError> {
    validate_name(&obj.metadata.name).map_err(|e| invalid::<S>(e.to_string()))?;
    obj.spec.validate().map_err(|errors| {
        invalid::<S>(
            errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; "),
        )
    })
}

fn not_found<S: Spec>(name: &str) -> StoreError {
    StoreError::NotFound {
        kind: S::KIND,
        name: name.to_string(),
    }
}

/// Compare-and-swap on `resourceVersion`: a non-empty given version must be the stored one.
fn check_version<S: Spec>(given: &str, current: &Object<S>) -> Result<(), StoreError> {
    if !given.is_empty() && given != current.metadata.resource_version {
        return Err(StoreError::Conflict {
            kind: S::KIND,
            name: current.metadata.name.clone(),
            given: given.to_string(),
            current: current.metadata.resource_version.clone(),
        });
    }
    Ok(())
}

impl SledStore {
    async fn durable<S: Spec>(
        &self,
        applied: (Decision<S>, u64),
    ) -> Result<Decision<S>, StoreError> {
        self.inner.commit.wait(applied.1).await?;
        Ok(applied.0)
    }

    /// The decision of `create`: a fresh record, or `AlreadyExists`.
    fn decide_create<S: Spec>(
        mut obj: Object<S>,
        current: Option<Object<S>>,
    ) -> Result<Decision<S>, StoreError> {
        if current.is_some() {
            return Err(StoreError::AlreadyExists {
                kind: S::KIND,
                name: obj.metadata.name,
            });
        }
        obj.api_version = API_VERSION.to_string();
        obj.kind = S::KIND.name().to_string();
        obj.metadata.uid = uuid::Uuid::new_v4().to_string();
        obj.metadata.generation = 1;
        obj.metadata.creation_timestamp = Some(Utc::now());
        obj.metadata.deletion_timestamp = None;
        obj.status = S::Status::default();
        Ok(Decision::Put(obj))
    }

    /// The decision of `replace`: new spec and metadata on the stored record.
    fn decide_replace<S: Spec>(
        obj: Object<S>,
        current: Option<Object<S>>,
    ) -> Result<Decision<S>, StoreError> {
        let current = current.ok_or_else(|| not_found::<S>(&obj.metadata.name))?;
        check_version(&obj.metadata.resource_version, &current)?;
        let deleting = current.metadata.deletion_timestamp.is_some();
        if deleting
            && let Some(added) = obj
                .metadata
                .finalizers
                .iter()
                .find(|f| !current.metadata.finalizers.contains(f))
        {
            return Err(invalid::<S>(format!(
                "cannot add finalizer {added:?} to {:?}: it is being deleted",
                obj.metadata.name
            )));
        }
        let spec_changed = obj.spec != current.spec;
        let meta = &obj.metadata;
        let unchanged = !spec_changed
            && meta.labels == current.metadata.labels
            && meta.annotations == current.metadata.annotations
            && meta.finalizers == current.metadata.finalizers;
        if unchanged {
            return Ok(Decision::Keep(current));
        }
        let mut next = current;
        next.metadata.labels = obj.metadata.labels;
        next.metadata.annotations = obj.metadata.annotations;
        next.metadata.finalizers = obj.metadata.finalizers;
        if spec_changed {
            next.spec = obj.spec;
            next.metadata.generation += 1;
        }
        if deleting && next.metadata.finalizers.is_empty() {
            Ok(Decision::Remove(next))
        } else {
            Ok(Decision::Put(next))
        }
    }
}

impl Store for SledStore {
    async fn create<S: Spec>(&self, obj: Object<S>) -> Result<Object<S>, StoreError> {
        validate(&obj)?;
        let name = obj.metadata.name.clone();
        let applied = self
            .inner
            .apply(&name, |current| Self::decide_create(obj, current))?;
        match self.durable(applied).await? {
            Decision::Put(o) | Decision::Keep(o) | Decision::Remove(o) => Ok(o),
        }
    }

    fn get<S: Spec>(&self, name: &str) -> Result<Option<Object<S>>, StoreError> {
        self.inner.get(name)
    }

    fn list<S: Spec>(&self, selector: &LabelSelector) -> Result<Vec<Object<S>>, StoreError> {
        self.inner.list(selector)
    }

    fn list_map<S: Spec, T>(
        &self,
        selector: &LabelSelector,
        f: impl FnMut(Object<S>) -> T,
    ) -> Result<Vec<T>, StoreError> {
        self.inner.list_map(selector, f)
    }

    async fn replace<S: Spec>(&self, obj: Object<S>) -> Result<Object<S>, StoreError> {
        validate(&obj)?;
        let name = obj.metadata.name.clone();
        let applied = self
            .inner
            .apply(&name, |current| Self::decide_replace(obj, current))?;
        match self.durable(applied).await? {
            Decision::Put(o) | Decision::Keep(o) | Decision::Remove(o) => Ok(o),
        }
    }

    async fn replace_status<S: Spec>(&self, obj: Object<S>) -> Result<Object<S>, StoreError> {
        let name = obj.metadata.name.clone();
        let applied = self.inner.apply(&name, |current: Option<Object<S>>| {
            let mut current = current.ok_or_else(|| not_found::<S>(&name))?;
            check_version(&obj.metadata.resource_version, &current)?;
            if current.status == obj.status {
                return Ok(Decision::Keep(current));
            }
            current.status = obj.status;
            Ok(Decision::Put(current))
        })?;
        match self.durable(applied).await? {
            Decision::Put(o) | Decision::Keep(o) | Decision::Remove(o) => Ok(o),
        }
    }

    async fn delete<S: Spec>(&self, name: &str) -> Result<Option<Object<S>>, StoreError> {
        let applied = self.inner.apply(name, |current: Option<Object<S>>| {
            let mut current = current.ok_or_else(|| not_found::<S>(name))?;
            if current.metadata.finalizers.is_empty() {
                Ok(Decision::Remove(current))
            } else if current.metadata.deletion_timestamp.is_some() {
                Ok(Decision::Keep(current))
            } else {
                current.metadata.deletion_timestamp = Some(Utc::now());
                Ok(Decision::Put(current))
            }
        })?;
        match self.durable(applied).await? {
            Decision::Put(o) | Decision::Keep(o) => Ok(Some(o)),
            Decision::Remove(_) => Ok(None),
        }
    }

    fn watch<S: Spec>(
        &self,
        from: Option<u64>,
    ) -> Result<BoxStream<'static, Result<WatchEvent<S>, StoreError>>, StoreError> {
        super::watch::watch(self.inner.clone(), from)
    }
}
