//! The in-memory cache of one record kind, kept current from a watch stream.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

use futures::{Stream, StreamExt, stream};
use tokio::sync::watch;

use crate::api::{Object, Spec};
use crate::store::{StoreError, WatchEvent};

type Map<S> = HashMap<String, Arc<Object<S>>>;

/// A read handle on the cached records of one kind. Cheap to clone; every clone sees the same map.
///
/// Reconcilers read it instead of the store: lookups are lock-and-clone-an-`Arc` cheap.
#[derive(Debug)]
pub struct Cache<S: Spec> {
    map: Arc<RwLock<Map<S>>>,
    ready: watch::Sender<bool>,
}

impl<S: Spec> Clone for Cache<S> {
    fn clone(&self) -> Self {
        Self {
            map: self.map.clone(),
            ready: self.ready.clone(),
        }
    }
}

impl<S: Spec> Cache<S> {
    /// The cached record called `name`.
    pub fn get(&self, name: &str) -> Option<Arc<Object<S>>> {
        self.read(|m| m.get(name).cloned())
    }

    /// Every cached record, in no particular order.
    pub fn list(&self) -> Vec<Arc<Object<S>>> {
        self.read(|m| m.values().cloned().collect())
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

    fn read<T>(&self, f: impl FnOnce(&Map<S>) -> T) -> T {
        f(&self.map.read().unwrap_or_else(PoisonError::into_inner))
    }
}

/// The single writer of a [`Cache`], consumed by [`reflector`].
#[derive(Debug)]
pub struct Writer<S: Spec> {
    cache: Cache<S>,
    /// Records of a list in progress (between `Init` and `InitDone`).
    buffer: Option<Map<S>>,
}

/// A new, empty (not ready) cache and its writer.
pub fn cache<S: Spec>() -> (Cache<S>, Writer<S>) {
    let cache = Cache {
        map: Arc::new(RwLock::new(HashMap::new())),
        ready: watch::Sender::new(false),
    };
    let writer = Writer {
        cache: cache.clone(),
        buffer: None,
    };
    (cache, writer)
}

impl<S: Spec> Writer<S> {
    /// Applies one watch event and returns the records that changed: the new state of each
    /// created or changed record, the last state of each removed one (no longer in the cache).
    ///
    /// `Init`…`InitDone` builds a new map on the side and swaps it in at `InitDone`, so readers
    /// never see a half-listed cache; records identical to what was cached are not reported.
    pub fn apply(&mut self, event: WatchEvent<S>) -> Vec<Arc<Object<S>>> {
        match event {
            WatchEvent::Init => {
                self.buffer = Some(HashMap::new());
                Vec::new()
            }
            WatchEvent::InitApply(obj) => {
                let buffer = self.buffer.get_or_insert_with(HashMap::new);
                buffer.insert(obj.metadata.name.clone(), Arc::new(obj));
                Vec::new()
            }
            WatchEvent::InitDone => {
                let new = self.buffer.take().unwrap_or_default();
                let mut map = self.write();
                let mut changed: Vec<Arc<Object<S>>> = new
                    .iter()
                    .filter(|(name, obj)| map.get(*name).is_none_or(|old| old != *obj))
                    .map(|(_, obj)| obj.clone())
                    .collect();
                changed.extend(
                    map.iter()
                        .filter(|(name, _)| !new.contains_key(*name))
                        .map(|(_, obj)| obj.clone()),
                );
                *map = new;
                drop(map);
                self.cache.ready.send_replace(true);
                changed
            }
            WatchEvent::Apply(obj) => {
                let obj = Arc::new(obj);
                let old = self.write().insert(obj.metadata.name.clone(), obj.clone());
                if old.is_some_and(|old| old == obj) {
                    Vec::new()
                } else {
                    vec![obj]
                }
            }
            WatchEvent::Delete(obj) => {
                self.write().remove(&obj.metadata.name);
                vec![Arc::new(obj)]
            }
        }
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Map<S>> {
        self.cache
            .map
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// Feeds `events` (from [`crate::store::Store::watch`]) into `writer`'s cache and yields every
/// record that changed (see [`Writer::apply`]); errors pass through untouched. The cache is
/// updated before the change is yielded, so a consumer reading the cache sees it.
pub fn reflector<S, E>(
    mut writer: Writer<S>,
    events: E,
) -> impl Stream<Item = Result<Arc<Object<S>>, StoreError>> + Send + 'static
where
    S: Spec,
    E: Stream<Item = Result<WatchEvent<S>, StoreError>> + Send + 'static,
{
    events.flat_map(move |event| {
        let items: Vec<Result<Arc<Object<S>>, StoreError>> = match event {
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
            Err(StoreError::Backend("boom".into())),
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
}
