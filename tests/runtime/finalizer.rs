//! The finalizer helper's four cases against the in-memory store.

use std::sync::{Arc, Mutex};

use cc_ci::api::{Recipe, RecipeSpec};
use cc_ci::runtime::Action;
use cc_ci::runtime::finalizer::{Event, FinalizerError, finalizer};
use cc_ci::store::{Store, StoreError};

use super::controller::recipe;
use super::memory_store::MemoryStore;

const NAME: &str = "cc-ci/test-cleanup";

/// Runs the helper once on the stored `name`, recording which event the reconcile got.
async fn pass(
    store: &MemoryStore,
    obj: Recipe,
    fail: bool,
) -> (
    Result<Action, FinalizerError<std::io::Error>>,
    Vec<&'static str>,
) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    let out = finalizer(
        store,
        NAME,
        Arc::new(obj),
        |ev: Event<RecipeSpec>| async move {
            s.lock().unwrap().push(match ev {
                Event::Apply(_) => "apply",
                Event::Cleanup(_) => "cleanup",
            });
            if fail {
                Err(std::io::Error::other("boom"))
            } else {
                Ok(Action::requeue(std::time::Duration::from_secs(7)))
            }
        },
    )
    .await;
    let seen = seen.lock().unwrap().clone();
    (out, seen)
}

fn stored(store: &MemoryStore, name: &str) -> Option<Recipe> {
    store.get::<RecipeSpec>(name).unwrap()
}

#[tokio::test]
async fn a_missing_finalizer_is_added_before_anything_is_applied() {
    let store = MemoryStore::default();
    let obj = store.create(recipe("a", "1")).await.unwrap();
    let (out, seen) = pass(&store, obj, false).await;
    assert_eq!(out.unwrap(), Action::await_change());
    assert!(seen.is_empty(), "{seen:?}");
    assert_eq!(stored(&store, "a").unwrap().metadata.finalizers, [NAME]);
}

#[tokio::test]
async fn with_the_finalizer_the_record_is_applied() {
    let store = MemoryStore::default();
    let obj = store.create(recipe("a", "1")).await.unwrap();
    pass(&store, obj, false).await.0.unwrap();
    let obj = stored(&store, "a").unwrap();
    let (out, seen) = pass(&store, obj, false).await;
    assert_eq!(
        out.unwrap(),
        Action::requeue(std::time::Duration::from_secs(7))
    );
    assert_eq!(seen, ["apply"]);
}

#[tokio::test]
async fn deleting_with_the_finalizer_cleans_up_then_lets_the_record_go() {
    let store = MemoryStore::default();
    let obj = store.create(recipe("a", "1")).await.unwrap();
    pass(&store, obj, false).await.0.unwrap();
    let deleting = store.delete::<RecipeSpec>("a").await.unwrap().unwrap();
    assert!(deleting.is_deleting());

    let (out, seen) = pass(&store, deleting.clone(), true).await;
    assert!(matches!(out, Err(FinalizerError::CleanupFailed(_))));
    assert_eq!(seen, ["cleanup"]);
    assert!(
        stored(&store, "a").is_some(),
        "a failed cleanup must keep the record"
    );

    let (out, seen) = pass(&store, deleting, false).await;
    out.unwrap();
    assert_eq!(seen, ["cleanup"]);
    assert!(stored(&store, "a").is_none());
}

#[tokio::test]
async fn deleting_without_our_finalizer_does_nothing() {
    let store = MemoryStore::default();
    let mut obj = recipe("a", "1");
    obj.metadata.finalizers = vec!["someone/else".into()];
    let created = store.create(obj).await.unwrap();
    let mut with_other = created.clone();
    with_other.metadata.finalizers = vec!["someone/else".into()];
    store.replace(with_other).await.unwrap();
    let deleting = store.delete::<RecipeSpec>("a").await.unwrap().unwrap();
    let (out, seen) = pass(&store, deleting, false).await;
    assert_eq!(out.unwrap(), Action::await_change());
    assert!(seen.is_empty());
    assert_eq!(
        stored(&store, "a").unwrap().metadata.finalizers,
        ["someone/else"]
    );
}

#[tokio::test]
async fn a_stale_record_is_a_conflict_and_is_not_written() {
    let store = MemoryStore::default();
    let stale = store.create(recipe("a", "1")).await.unwrap();
    let mut newer = stale.clone();
    newer.spec.git = "2".into();
    store.replace(newer).await.unwrap();
    let (out, _) = pass(&store, stale, false).await;
    assert!(matches!(
        out,
        Err(FinalizerError::AddFinalizer(StoreError::Conflict { .. }))
    ));
    assert!(stored(&store, "a").unwrap().metadata.finalizers.is_empty());
}
