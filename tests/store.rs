//! The sled store on disk: versions and conflicts, generation rules, finalizers, watch (also
//! resumed after a reopen), lock and corruption errors, export/import.

use std::time::Duration;

use cc_ci::api::{Kind, Object, Recipe, RecipeSpec, TestRunSpec};
use cc_ci::store::{LabelSelector, SledStore, Store, StoreError, StoreOptions, WatchEvent};
use futures::StreamExt;
use futures::stream::BoxStream;

fn spec(git: &str) -> RecipeSpec {
    serde_json::from_value(serde_json::json!({ "git": git })).unwrap()
}

fn recipe(name: &str) -> Recipe {
    Object::new(name, spec("https://git.example/r.git"))
}

fn open(dir: &tempfile::TempDir) -> SledStore {
    SledStore::open(&dir.path().join("store")).unwrap()
}

type Events = BoxStream<'static, Result<WatchEvent<RecipeSpec>, StoreError>>;

async fn next(events: &mut Events) -> WatchEvent<RecipeSpec> {
    tokio::time::timeout(Duration::from_secs(10), events.next())
        .await
        .expect("a watch event within 10s")
        .expect("the stream goes on")
        .expect("an event, not an error")
}

fn describe(ev: &WatchEvent<RecipeSpec>) -> String {
    match ev {
        WatchEvent::Init => "init".into(),
        WatchEvent::InitApply(o) => format!("init-apply {}", o.metadata.name),
        WatchEvent::InitDone => "init-done".into(),
        WatchEvent::Apply(o) => format!("apply {}", o.metadata.name),
        WatchEvent::Delete(o) => format!("delete {}", o.metadata.name),
    }
}

#[tokio::test]
async fn store_create_sets_metadata_and_refuses_a_taken_name() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let mut given = recipe("hedgedoc");
    given.status.level = Some(3);
    let created = store.create(given).await.unwrap();
    assert_eq!(created.metadata.generation, 1);
    assert!(!created.metadata.uid.is_empty());
    assert!(created.metadata.creation_timestamp.is_some());
    assert!(created.metadata.resource_version_u64() > 0);
    assert_eq!(created.status.level, None, "a given status is ignored");
    assert_eq!(store.get::<RecipeSpec>("hedgedoc").unwrap(), Some(created));
    let again = store.create(recipe("hedgedoc")).await;
    assert!(
        matches!(again, Err(StoreError::AlreadyExists { .. })),
        "{again:?}"
    );
    let bad = store.create(recipe("Not_Valid")).await;
    assert!(matches!(bad, Err(StoreError::Invalid { .. })), "{bad:?}");
    let bad_spec = store.create(Object::new("empty-git", spec(""))).await;
    assert!(
        matches!(bad_spec, Err(StoreError::Invalid { .. })),
        "{bad_spec:?}"
    );
}

#[tokio::test]
async fn store_list_filters_by_label_and_sorts_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    for (name, team) in [("zeta", "a"), ("alpha", "b"), ("mid", "a")] {
        let mut r = recipe(name);
        r.metadata.labels.insert("team".into(), team.into());
        store.create(r).await.unwrap();
    }
    let all: Vec<String> = store
        .list::<RecipeSpec>(&LabelSelector::everything())
        .unwrap()
        .into_iter()
        .map(|o| o.metadata.name)
        .collect();
    assert_eq!(all, ["alpha", "mid", "zeta"]);
    let team_a: Vec<String> = store
        .list::<RecipeSpec>(&LabelSelector::parse("team=a").unwrap())
        .unwrap()
        .into_iter()
        .map(|o| o.metadata.name)
        .collect();
    assert_eq!(team_a, ["mid", "zeta"]);
    let raw = store
        .list_raw(Kind::Recipe, &LabelSelector::parse("team=b").unwrap())
        .unwrap();
    assert_eq!(raw.len(), 1);
    assert!(
        std::str::from_utf8(raw[0].as_bytes())
            .unwrap()
            .contains("\"alpha\"")
    );
    assert_eq!(store.count(Kind::Recipe), 3);
    assert_eq!(store.count(Kind::TestRun), 0);
    store.create(recipe("extra")).await.unwrap();
    assert_eq!(store.count(Kind::Recipe), 4, "the count follows creates");
    store.delete::<RecipeSpec>("alpha").await.unwrap();
    store.replace(recipe("zeta")).await.unwrap();
    assert_eq!(
        store.count(Kind::Recipe),
        3,
        "the count follows deletes, not updates"
    );
    assert!(
        store
            .list::<TestRunSpec>(&LabelSelector::everything())
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn stale_resource_version_is_a_conflict() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let v1 = store.create(recipe("r")).await.unwrap();
    let mut a = v1.clone();
    a.spec.git = "https://git.example/a.git".into();
    let v2 = store.replace(a).await.unwrap();
    assert!(v2.metadata.resource_version_u64() > v1.metadata.resource_version_u64());
    let mut stale = v1.clone();
    stale.spec.git = "https://git.example/b.git".into();
    let err = store.replace(stale.clone()).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err:?}");
    let err = store.replace_status(v1.clone()).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err:?}");
    // An empty resourceVersion is unconditional.
    stale.metadata.resource_version.clear();
    let v3 = store.replace(stale).await.unwrap();
    assert_eq!(v3.spec.git, "https://git.example/b.git");
    let missing = store.replace(recipe("nope")).await;
    assert!(
        matches!(missing, Err(StoreError::NotFound { .. })),
        "{missing:?}"
    );
}

#[tokio::test]
async fn generation_bumps_on_spec_changes_only() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let created = store.create(recipe("r")).await.unwrap();

    let mut status = created.clone();
    status.status.level = Some(2);
    status.spec.git = "https://ignored.example/x.git".into();
    let after_status = store.replace_status(status).await.unwrap();
    assert_eq!(after_status.metadata.generation, 1);
    assert_eq!(after_status.status.level, Some(2));
    assert_eq!(
        after_status.spec, created.spec,
        "a status write never touches spec"
    );

    let mut labelled = after_status.clone();
    labelled.metadata.labels.insert("a".into(), "b".into());
    labelled.status.level = None;
    let after_meta = store.replace(labelled).await.unwrap();
    assert_eq!(after_meta.metadata.generation, 1);
    assert_eq!(after_meta.status.level, Some(2), "replace keeps status");
    assert_eq!(after_meta.metadata.uid, created.metadata.uid);

    let mut changed = after_meta.clone();
    changed.spec.suspended = true;
    let after_spec = store.replace(changed).await.unwrap();
    assert_eq!(after_spec.metadata.generation, 2);
    assert_eq!(
        after_spec.metadata.creation_timestamp,
        created.metadata.creation_timestamp
    );
}

#[tokio::test]
async fn delete_waits_for_finalizers_to_be_cleared() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let mut r = recipe("guarded");
    r.metadata.finalizers = vec!["cc-ci/teardown".into()];
    store.create(r).await.unwrap();
    let deleting = store
        .delete::<RecipeSpec>("guarded")
        .await
        .unwrap()
        .unwrap();
    assert!(deleting.metadata.deletion_timestamp.is_some());
    assert!(
        store
            .get::<RecipeSpec>("guarded")
            .unwrap()
            .unwrap()
            .is_deleting()
    );
    let again = store
        .delete::<RecipeSpec>("guarded")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        again.metadata.resource_version,
        deleting.metadata.resource_version
    );
    let mut adding = again.clone();
    adding.metadata.finalizers.push("other".into());
    assert!(matches!(
        store.replace(adding).await,
        Err(StoreError::Invalid { .. })
    ));

    let mut cleared = again;
    cleared.metadata.finalizers.clear();
    store.replace(cleared).await.unwrap();
    assert_eq!(store.get::<RecipeSpec>("guarded").unwrap(), None);

    store.create(recipe("plain")).await.unwrap();
    assert_eq!(store.delete::<RecipeSpec>("plain").await.unwrap(), None);
    assert_eq!(store.get::<RecipeSpec>("plain").unwrap(), None);
    let missing = store.delete::<RecipeSpec>("plain").await;
    assert!(
        matches!(missing, Err(StoreError::NotFound { .. })),
        "{missing:?}"
    );
}

#[tokio::test]
async fn watch_lists_then_streams_live_changes() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    store.create(recipe("b")).await.unwrap();
    store.create(recipe("a")).await.unwrap();
    store
        .create(Object::new("run-1", serde_json::from_value::<TestRunSpec>(
            serde_json::json!({"recipe": "a", "ref": "0123456789abcdef0123456789abcdef01234567"}),
        ).unwrap()))
        .await
        .unwrap();
    let mut events: Events = store.watch(None).unwrap();
    let mut seen = Vec::new();
    for _ in 0..4 {
        seen.push(describe(&next(&mut events).await));
    }
    assert_eq!(seen, ["init", "init-apply a", "init-apply b", "init-done"]);
    store.create(recipe("c")).await.unwrap();
    store.delete::<RecipeSpec>("a").await.unwrap();
    assert_eq!(describe(&next(&mut events).await), "apply c");
    assert_eq!(describe(&next(&mut events).await), "delete a");
}

#[tokio::test]
async fn watch_resumes_after_reopen_with_changes_made_while_down() {
    let dir = tempfile::tempdir().unwrap();
    let rv = {
        let store = open(&dir);
        store
            .create(recipe("before"))
            .await
            .unwrap()
            .metadata
            .resource_version_u64()
    };
    let reopened = open(&dir);
    let made_while_down = reopened.create(recipe("during")).await.unwrap();
    assert!(
        made_while_down.metadata.resource_version_u64() > rv,
        "versions increase across reopen"
    );
    drop(reopened);

    let store = open(&dir);
    let mut events: Events = store.watch(Some(rv)).unwrap();
    assert_eq!(describe(&next(&mut events).await), "apply during");
    store.create(recipe("after")).await.unwrap();
    assert_eq!(describe(&next(&mut events).await), "apply after");
}

#[tokio::test]
async fn watch_from_a_trimmed_version_is_expired() {
    let dir = tempfile::tempdir().unwrap();
    let options = StoreOptions {
        history_limit: 3,
        ..StoreOptions::default()
    };
    let store = SledStore::open_with(&dir.path().join("store"), options).unwrap();
    let first = store
        .create(recipe("r0"))
        .await
        .unwrap()
        .metadata
        .resource_version_u64();
    for i in 1..8 {
        store.create(recipe(&format!("r{i}"))).await.unwrap();
    }
    store.compact_history().unwrap();
    let err = store
        .watch::<RecipeSpec>(Some(first))
        .err()
        .expect("an error");
    assert!(
        matches!(err, StoreError::Expired(rv) if rv == first),
        "{err:?}"
    );
    let latest = store.latest_resource_version();
    assert!(store.watch::<RecipeSpec>(Some(latest)).is_ok());
}

#[tokio::test]
async fn a_lagging_watcher_relists_instead_of_losing_events() {
    let dir = tempfile::tempdir().unwrap();
    let options = StoreOptions {
        live_capacity: 16,
        ..StoreOptions::default()
    };
    let store = SledStore::open_with(&dir.path().join("store"), options).unwrap();
    let mut events: Events = store.watch(None).unwrap();
    assert_eq!(describe(&next(&mut events).await), "init");
    assert_eq!(describe(&next(&mut events).await), "init-done");
    for i in 0..40 {
        store.create(recipe(&format!("r{i:02}"))).await.unwrap();
    }
    let mut names = std::collections::BTreeSet::new();
    let mut relisted = false;
    while names.len() < 40 {
        match next(&mut events).await {
            WatchEvent::Init => relisted = true,
            WatchEvent::InitApply(o) | WatchEvent::Apply(o) => {
                names.insert(o.metadata.name);
            }
            other => assert!(matches!(other, WatchEvent::InitDone), "{other:?}"),
        }
    }
    assert!(
        relisted,
        "40 events through a 16-slot channel must force a relist"
    );
}

#[tokio::test]
async fn a_second_open_of_the_same_store_is_locked() {
    let dir = tempfile::tempdir().unwrap();
    let _store = open(&dir);
    let err = SledStore::open(&dir.path().join("store")).unwrap_err();
    assert!(matches!(err, StoreError::Locked { .. }), "{err:?}");
    assert!(err.to_string().contains("locked"), "{err}");
}

#[tokio::test]
async fn a_store_from_a_newer_schema_is_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    drop(open(&dir));
    {
        let db = sled::open(&path).unwrap();
        db.open_tree("meta")
            .unwrap()
            .insert("schema_version", "99")
            .unwrap();
        db.flush().unwrap();
    }
    let err = SledStore::open(&path).unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
    assert!(err.to_string().contains("schema version is 99"), "{err}");
}

#[tokio::test]
async fn a_store_with_garbage_files_is_corrupt_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    {
        let store = open(&dir);
        store.create(recipe("r")).await.unwrap();
    }
    let mut garbage = 0u64;
    for entry in walk(&path) {
        let len = std::fs::metadata(&entry).unwrap().len() as usize;
        let junk: Vec<u8> = (0..len.max(64)).map(|i| (i * 7 + 13) as u8).collect();
        std::fs::write(&entry, junk).unwrap();
        garbage += 1;
    }
    assert!(garbage > 0);
    let result = std::panic::catch_unwind(|| SledStore::open(&path).map(|_| ()));
    let err = result.expect("no panic escapes").unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        if p.is_dir() {
            files.extend(walk(&p));
        } else {
            files.push(p);
        }
    }
    files
}

#[tokio::test]
async fn export_then_import_round_trips_records() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let created = store.create(recipe("hedgedoc")).await.unwrap();
    let mut with_status = created.clone();
    with_status.status.level = Some(4);
    store.replace_status(with_status).await.unwrap();
    let mut backup = Vec::new();
    assert_eq!(cc_ci::store::export(&store, &mut backup).unwrap(), 1);

    let other = tempfile::tempdir().unwrap();
    let restored_store = open(&other);
    let summary = cc_ci::store::import(&restored_store, backup.as_slice(), false).unwrap();
    assert_eq!(summary.records, 1);
    let restored = restored_store
        .get::<RecipeSpec>("hedgedoc")
        .unwrap()
        .unwrap();
    assert_eq!(restored.spec, created.spec);
    assert_eq!(restored.status.level, Some(4));
    assert_eq!(restored.metadata.uid, created.metadata.uid);

    let again = cc_ci::store::import(&restored_store, backup.as_slice(), false);
    assert!(
        matches!(again, Err(cc_ci::store::TransferError::Exists(_))),
        "{again:?}"
    );
    let replaced = cc_ci::store::import(&restored_store, backup.as_slice(), true).unwrap();
    assert_eq!(replaced.replaced, 1);
    let bad = cc_ci::store::import(&restored_store, &b"{\"kind\":\"Nope\"}\n"[..], true);
    assert!(
        matches!(bad, Err(cc_ci::store::TransferError::Line { line: 1, .. })),
        "{bad:?}"
    );
}

#[tokio::test]
async fn a_store_whose_data_file_is_garbage_is_corrupt_not_empty() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    {
        let store = open(&dir);
        store.create(recipe("r")).await.unwrap();
    }
    let junk: Vec<u8> = (0..8192u32).map(|i| (i * 31 + 7) as u8).collect();
    std::fs::write(path.join("db"), junk).unwrap();
    for _ in 0..2 {
        let err = SledStore::open(&path).unwrap_err();
        assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
        assert!(err.to_string().contains("unreadable"), "{err}");
    }
}

#[tokio::test]
async fn watch_from_a_version_this_store_never_reached_is_expired() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    store.create(recipe("r")).await.unwrap();
    let future = store.latest_resource_version() + 1_000;
    let err = store
        .watch::<RecipeSpec>(Some(future))
        .err()
        .expect("an error");
    assert!(matches!(err, StoreError::Expired(_)), "{err:?}");
}

/// Set in the child process of the SIGKILL test: the store directory to write into.
const CHILD_ENV: &str = "CC_CI_STORE_KILL_CHILD_DIR";

/// The child half of `acknowledged_writes_survive_sigkill`: creates records until killed,
/// printing each name once its create returned. Ignored in a normal test run (it only means
/// something as the child that test spawns and kills); run alone it fails.
#[tokio::test]
#[ignore = "the child process of acknowledged_writes_survive_sigkill"]
async fn sigkill_child_writes_until_killed() {
    let dir = std::env::var(CHILD_ENV)
        .unwrap_or_else(|_| panic!("{CHILD_ENV} unset: this is the child of another test"));
    let store = SledStore::open(std::path::Path::new(&dir)).unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..4 {
        let store = store.clone();
        tasks.spawn(async move {
            for i in 0.. {
                let name = format!("w{w}-{i}");
                store.create(recipe(&name)).await.unwrap();
                println!("acked {name}");
            }
        });
    }
    tasks.join_next().await;
}

#[test]
fn acknowledged_writes_survive_sigkill() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let store_dir = dir.path().join("store");
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "store::sigkill_child_writes_until_killed",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, &store_dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut acked = Vec::new();
    for line in stdout.lines() {
        let line = line.unwrap();
        if let Some(name) = line.strip_prefix("acked ") {
            acked.push(name.to_string());
            if acked.len() >= 200 {
                break;
            }
        }
    }
    // SIGKILL: no destructors, no final flush.
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        acked.len() >= 200,
        "the child acknowledged only {} writes",
        acked.len()
    );
    let store = SledStore::open(&store_dir).unwrap();
    for name in &acked {
        assert!(
            store.get::<RecipeSpec>(name).unwrap().is_some(),
            "acknowledged {name} was lost"
        );
    }
}
