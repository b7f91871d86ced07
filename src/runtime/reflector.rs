//! The in-memory cache of one record kind, kept current from a watch stream: whole records
//! ([`Cache`]) or, where a controller reads only a little of each, a projection of each
//! ([`Index`] through [`projected`]), so that memory per record is the projection's.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

use futures::{Stream, StreamExt, stream};
use tokio::sync::watch;

use crate::api::{Object, Spec};
use crate::store::{StoreError, WatchEvent};

type Map<V> = HashMap<String, Arc<V>>;

/// A cached value that knows the name of the record it stands for.
pub trait Keyed {
    /// The record's name.
    fn key(&self) -> &str;
}

impl<S: Spec> Keyed for Object<S> {
    fn key(&self) -> &str {
        self.name()
    }
}

/// A read handle on one value per cached record of a kind, by record name. Cheap to clone;
/// every clone sees the same map.
///
/// Reconcilers read it instead of the store: lookups are lock-and-clone-an-`Arc` cheap.
#[derive(Debug)]
pub struct Index<V> {
    map: Arc<RwLock<Map<V>>>,
    ready: watch::Sender<bool>,
}

/// The cache of whole records of kind `S`.
pub type Cache<S> = Index<Object<S>>;

impl<V> Clone for Index<V> {
    fn clone(&self) -> Self {
        Self {
            map: self.map.clone(),
            ready: self.ready.clone(),
        }
    }
}

impl<V> Index<V> {
    /// The cached value of the record called `name`.
    pub fn get(&self, name: &str) -> Option<Arc<V>> {
        self.read(|m| m.get(name).cloned())
    }

    /// Every cached value, in no particular order.
    pub fn list(&self) -> Vec<Arc<V>> {
        self.read(|m| m.values().cloned().collect())
    }

    /// The cached values for which `keep` holds, in no particular order.
    pub fn list_where(&self, keep: impl Fn(&V) -> bool) -> Vec<Arc<V>> {
        self.read(|m| m.values().filter(|v| keep(v)).cloned().collect())
    }

    /// The names of every cached record.
    pub fn keys(&self) -> Vec<String> {
        self.read(|m| m.keys().cloned().collect())
    }

    /// Number of cached records.
    pub fn len(&self) -> usize {
        self.read(|m| m.len())
    }

    /// Whether the cache holds no record.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the first full list has arrived (`InitDone` seen).
    pub fn is_ready(&self) -> bool {
        *self.ready.borrow()
    }

    /// Waits until the first full list has arrived. Returns at once if it has.
    pub async fn wait_ready(&self) {
        let mut rx = self.ready.subscribe();
        // The sender lives in `self`, so `wait_for` cannot fail while we wait.
        let _ = rx.wait_for(|ready| *ready).await;
    }

    /// A receiver that turns `true` once the first full list has arrived.
    pub fn ready_signal(&self) -> watch::Receiver<bool> {
        self.ready.subscribe()
    }

    fn read<T>(&self, f: impl FnOnce(&Map<V>) -> T) -> T {
        f(&self.map.read().unwrap_or_else(PoisonError::into_inner))
    }
}

/// The single writer of an [`Index`] of kind `S` (whole records by default), consumed by
/// [`reflector`].
#[derive(Debug)]
pub struct Writer<S: Spec, V = Object<S>> {
    cache: Index<V>,
    project: fn(Object<S>) -> V,
    /// Values of a list in progress (between `Init` and `InitDone`).
    buffer: Option<Map<V>>,
}

/// A new, empty (not ready) cache of whole records and its writer.
pub fn cache<S: Spec>() -> (Cache<S>, Writer<S>) {
    projected(|obj| obj)
}

/// A new, empty (not ready) index holding `project(record)` per record, and its writer.
pub fn projected<S: Spec, V>(project: fn(Object<S>) -> V) -> (Index<V>, Writer<S, V>) {
    let cache = Index {
        map: Arc::new(RwLock::new(HashMap::new())),
        ready: watch::Sender::new(false),
    };
    let writer = Writer {
        cache: cache.clone(),
        project,
        buffer: None,
    };
    (cache, writer)
}

impl<S: Spec, V: PartialEq> Writer<S, V> {
    /// Applies one watch event and returns the values that changed: the new value of each
    /// created or changed record, the last value of each removed one (no longer in the cache).
    ///
    /// `Init`…`InitDone` builds a new map on the side and swaps it in at `InitDone`, so readers
    /// never see a half-listed cache; values identical to what was cached are not reported (for
    /// a projection: a change to a part of the record it leaves out is not reported).
    pub fn apply(&mut self, event: WatchEvent<S>) -> Vec<Arc<V>> {
        let project = self.project;
        let named = |obj: Object<S>| (obj.metadata.name.clone(), Arc::new(project(obj)));
        match event {
            WatchEvent::Init => {
                self.buffer = Some(HashMap::new());
                Vec::new()
            }
            WatchEvent::InitApply(obj) => {
                let buffer = self.buffer.get_or_insert_with(HashMap::new);
                let (name, value) = named(obj);
                buffer.insert(name, value);
                Vec::new()
            }
            WatchEvent::InitDone => {
                let new = self.buffer.take().unwrap_or_default();
                let mut map = self.write();
                let mut changed: Vec<Arc<V>> = new
                    .iter()
                    .filter(|(name, value)| map.get(*name).is_none_or(|old| old != *value))
                    .map(|(_, value)| value.clone())
                    .collect();
                changed.extend(
                    map.iter()
                        .filter(|(name, _)| !new.contains_key(*name))
                        .map(|(_, value)| value.clone()),
                );
                *map = new;
                drop(map);
                self.cache.ready.send_replace(true);
                changed
            }
            WatchEvent::Apply(obj) => {
                let (name, value) = named(obj);
                let old = self.write().insert(name, value.clone());
                if old.is_some_and(|old| old == value) {
                    Vec::new()
                } else {
                    vec![value]
                }
            }
            WatchEvent::Delete(obj) => {
                let (name, value) = named(obj);
                self.write().remove(&name);
                vec![value]
            }
        }
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Map<V>> {
        self.cache
            .map
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// Feeds `events` (from [`crate::store::Store::watch`]) into `writer`'s cache and yields every
/// value that changed (see [`Writer::apply`]); errors pass through untouched. The cache is
/// updated before the change is yielded, so a consumer reading the cache sees it.
pub fn reflector<S, V, E>(
    mut writer: Writer<S, V>,
    events: E,
) -> impl Stream<Item = Result<Arc<V>, StoreError>> + Send + 'static
where
    S: Spec,
    V: PartialEq + Send + Sync + 'static,
    E: Stream<Item = Result<WatchEvent<S>, StoreError>> + Send + 'static,
{
    events.flat_map(move |event| {
        let items: Vec<Result<Arc<V>, StoreError>> = match event {
            Ok(event) => writer.apply(event).into_iter().map(Ok).collect(),
            Err(e) => vec![Err(e)],
        };
        stream::iter(items)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{Recipe, RecipeSpec};

    fn recipe(name: &str, git: &str) -> Recipe {
        Object::new(
            name,
            RecipeSpec {
                git: git.to_string(),
                forge_repo: None,
                default_branch: "main".into(),
                suite_path: None,
                env: Default::default(),
                stages: vec![],
                timeouts: Default::default(),
                allow: vec![],
                suspended: false,
            },
        )
    }

    fn names(v: Vec<Arc<Recipe>>) -> Vec<String> {
        let mut n: Vec<String> = v.iter().map(|o| o.name().to_string()).collect();
        n.sort();
        n
    }

    #[test]
    fn a_relist_replaces_the_map_at_init_done_and_reports_only_differences() {
        let (cache, mut w) = cache::<RecipeSpec>();
        assert!(!cache.is_ready());
        w.apply(WatchEvent::Init);
        w.apply(WatchEvent::InitApply(recipe("a", "1")));
        w.apply(WatchEvent::InitApply(recipe("b", "1")));
        assert!(cache.is_empty(), "a half list must not be visible");
        assert_eq!(names(w.apply(WatchEvent::InitDone)), ["a", "b"]);
        assert!(cache.is_ready());

        w.apply(WatchEvent::Init);
        w.apply(WatchEvent::InitApply(recipe("a", "1")));
        w.apply(WatchEvent::InitApply(recipe("c", "1")));
        assert_eq!(cache.len(), 2);
        assert_eq!(names(w.apply(WatchEvent::InitDone)), ["b", "c"]);
        assert!(cache.get("b").is_none());
        assert_eq!(names(cache.list()), ["a", "c"]);
    }

    #[test]
    fn apply_and_delete_update_the_cache_and_identical_applies_are_quiet() {
        let (cache, mut w) = cache::<RecipeSpec>();
        assert_eq!(names(w.apply(WatchEvent::Apply(recipe("a", "1")))), ["a"]);
        assert!(w.apply(WatchEvent::Apply(recipe("a", "1"))).is_empty());
        assert_eq!(names(w.apply(WatchEvent::Apply(recipe("a", "2")))), ["a"]);
        assert_eq!(cache.get("a").unwrap().spec.git, "2");
        assert_eq!(names(w.apply(WatchEvent::Delete(recipe("a", "2")))), ["a"]);
        assert!(cache.get("a").is_none());
    }

    #[tokio::test]
    async fn reflector_yields_changes_after_updating_the_cache() {
        let (cache, w) = cache::<RecipeSpec>();
        let events = stream::iter(vec![
            Ok(WatchEvent::Init),
            Ok(WatchEvent::InitApply(recipe("a", "1"))),
            Ok(WatchEvent::InitDone),
            Err(StoreError::Expired(1)),
            Ok(WatchEvent::Apply(recipe("b", "1"))),
        ]);
        let mut s = Box::pin(reflector(w, events));
        assert_eq!(s.next().await.unwrap().unwrap().name(), "a");
        assert!(cache.is_ready());
        assert!(s.next().await.unwrap().is_err());
        assert_eq!(s.next().await.unwrap().unwrap().name(), "b");
        assert_eq!(cache.len(), 2);
        cache.wait_ready().await;
    }

    #[test]
    fn a_projection_keeps_only_its_value_and_reports_only_changes_to_it() {
        let (index, mut w) = projected::<RecipeSpec, String>(|r| r.spec.git);
        w.apply(WatchEvent::Init);
        w.apply(WatchEvent::InitApply(recipe("a", "1")));
        assert_eq!(w.apply(WatchEvent::InitDone), [Arc::new("1".to_string())]);
        assert_eq!(index.get("a").as_deref().map(String::as_str), Some("1"));
        let mut other = recipe("a", "1");
        other.spec.default_branch = "trunk".into();
        assert!(
            w.apply(WatchEvent::Apply(other)).is_empty(),
            "a change outside the projection is not a change"
        );
        assert_eq!(w.apply(WatchEvent::Apply(recipe("a", "2"))).len(), 1);
        assert_eq!(index.list_where(|git| git == "2").len(), 1);
        assert_eq!(w.apply(WatchEvent::Delete(recipe("a", "2"))).len(), 1);
        assert!(index.is_empty());
    }
}
