//! A tiny in-memory `Store` for the runtime tests, following the trait's documented semantics
//! (CAS on resourceVersion, generation bumps on spec change, finalizer-gated deletion, watch =
//! list then live events). It also counts writes, so tests can assert a pass wrote nothing.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use cc_ci::api::{Kind, Object, Spec};
use cc_ci::store::{LabelSelector, Store, StoreError, WatchEvent};
use futures::StreamExt;
use futures::stream::BoxStream;
use serde_json::Value;
use tokio::sync::mpsc::{UnboundedSender, unbounded_channel};
use tokio_stream::wrappers::UnboundedReceiverStream;

/// Sends one record (as JSON) to a typed watcher; `false` when the watcher is gone.
type Sink = Box<dyn Fn(bool, &Value) -> bool + Send>;

#[derive(Default)]
struct Inner {
    rv: u64,
    records: BTreeMap<(Kind, String), Value>,
    watchers: Vec<(Kind, Sink)>,
}

#[derive(Clone, Default)]
pub struct MemoryStore {
    inner: Arc<Mutex<Inner>>,
    /// Successful `replace` + `replace_status` calls.
    pub writes: Arc<AtomicUsize>,
}

fn to_value<S: Spec>(o: &Object<S>) -> Value {
    serde_json::to_value(o).expect("record encodes")
}

fn from_value<S: Spec>(v: &Value) -> Object<S> {
    serde_json::from_value(v.clone()).expect("record decodes")
}

impl Inner {
    fn emit(&mut self, kind: Kind, deleted: bool, v: &Value) {
        self.watchers
            .retain(|(k, sink)| *k != kind || sink(deleted, v));
    }

    fn current<S: Spec>(&self, name: &str) -> Result<Object<S>, StoreError> {
        self.records
            .get(&(S::KIND, name.to_string()))
            .map(from_value)
            .ok_or_else(|| StoreError::NotFound {
                kind: S::KIND,
                name: name.to_string(),
            })
    }

    fn check_rv<S: Spec>(cur: &Object<S>, given: &Object<S>) -> Result<(), StoreError> {
        let g = &given.metadata.resource_version;
        if !g.is_empty() && *g != cur.metadata.resource_version {
            return Err(StoreError::Conflict {
                kind: S::KIND,
                name: cur.metadata.name.clone(),
                given: g.clone(),
                current: cur.metadata.resource_version.clone(),
            });
        }
        Ok(())
    }

    fn put<S: Spec>(&mut self, mut obj: Object<S>) -> Object<S> {
        self.rv += 1;
        obj.metadata.resource_version = self.rv.to_string();
        let v = to_value(&obj);
        self.records
            .insert((S::KIND, obj.metadata.name.clone()), v.clone());
        self.emit(S::KIND, false, &v);
        obj
    }

    fn remove<S: Spec>(&mut self, obj: &Object<S>) {
        self.records.remove(&(S::KIND, obj.metadata.name.clone()));
        self.emit(S::KIND, true, &to_value(obj));
    }
}

impl MemoryStore {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap()
    }
}

impl Store for MemoryStore {
    async fn create<S: Spec>(&self, mut obj: Object<S>) -> Result<Object<S>, StoreError> {
        let mut inner = self.lock();
        if inner
            .records
            .contains_key(&(S::KIND, obj.metadata.name.clone()))
        {
            return Err(StoreError::AlreadyExists {
                kind: S::KIND,
                name: obj.metadata.name,
            });
        }
        obj.metadata.uid = format!("uid-{}", inner.rv + 1);
        obj.metadata.generation = 1;
        if obj.metadata.creation_timestamp.is_none() {
            // Tests may pin it to order runs; the real store always sets it.
            obj.metadata.creation_timestamp = Some(chrono::Utc::now());
        }
        obj.metadata.deletion_timestamp = None;
        obj.status = Default::default();
        Ok(inner.put(obj))
    }

    fn get<S: Spec>(&self, name: &str) -> Result<Option<Object<S>>, StoreError> {
        Ok(self.lock().current(name).ok())
    }

    fn list<S: Spec>(&self, selector: &LabelSelector) -> Result<Vec<Object<S>>, StoreError> {
        let inner = self.lock();
        Ok(inner
            .records
            .iter()
            .filter(|((k, _), _)| *k == S::KIND)
            .map(|(_, v)| from_value::<S>(v))
            .filter(|o| selector.matches(&o.metadata.labels))
            .collect())
    }

    async fn replace<S: Spec>(&self, obj: Object<S>) -> Result<Object<S>, StoreError> {
        let mut inner = self.lock();
        let cur = inner.current::<S>(obj.name())?;
        Inner::check_rv(&cur, &obj)?;
        let mut next = cur.clone();
        if next.spec != obj.spec {
            next.metadata.generation += 1;
        }
        next.spec = obj.spec;
        next.metadata.labels = obj.metadata.labels;
        next.metadata.annotations = obj.metadata.annotations;
        next.metadata.finalizers = obj.metadata.finalizers;
        self.writes.fetch_add(1, Ordering::SeqCst);
        if next.is_deleting() && next.metadata.finalizers.is_empty() {
            inner.remove(&next);
            return Ok(next);
        }
        Ok(inner.put(next))
    }

    async fn replace_status<S: Spec>(&self, obj: Object<S>) -> Result<Object<S>, StoreError> {
        let mut inner = self.lock();
        let cur = inner.current::<S>(obj.name())?;
        Inner::check_rv(&cur, &obj)?;
        let mut next = cur;
        next.status = obj.status;
        self.writes.fetch_add(1, Ordering::SeqCst);
        Ok(inner.put(next))
    }

    async fn delete<S: Spec>(&self, name: &str) -> Result<Option<Object<S>>, StoreError> {
        let mut inner = self.lock();
        let mut cur = inner.current::<S>(name)?;
        if cur.metadata.finalizers.is_empty() {
            inner.remove(&cur);
            return Ok(None);
        }
        if cur.metadata.deletion_timestamp.is_none() {
            cur.metadata.deletion_timestamp = Some(chrono::Utc::now());
            cur = inner.put(cur);
        }
        Ok(Some(cur))
    }

    fn watch<S: Spec>(
        &self,
        _from: Option<u64>,
    ) -> Result<BoxStream<'static, Result<WatchEvent<S>, StoreError>>, StoreError> {
        let (tx, rx) = unbounded_channel::<Result<WatchEvent<S>, StoreError>>();
        let mut inner = self.lock();
        let _ = tx.send(Ok(WatchEvent::Init));
        for ((k, _), v) in &inner.records {
            if *k == S::KIND {
                let _ = tx.send(Ok(WatchEvent::InitApply(from_value(v))));
            }
        }
        let _ = tx.send(Ok(WatchEvent::InitDone));
        let sink_tx: UnboundedSender<_> = tx;
        inner.watchers.push((
            S::KIND,
            Box::new(move |deleted, v| {
                let o = from_value::<S>(v);
                let ev = if deleted {
                    WatchEvent::Delete(o)
                } else {
                    WatchEvent::Apply(o)
                };
                sink_tx.send(Ok(ev)).is_ok()
            }),
        ));
        Ok(UnboundedReceiverStream::new(rx).boxed())
    }
}
