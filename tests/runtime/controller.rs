//! `Controller` fed through channels on paused time: backoff, requeue, await-change, resync,
//! triggers, deletion, concurrency and shutdown.

use std::collections::{BTreeMap, HashSet};
use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cc_ci::api::{Object, Recipe, RecipeSpec, RunSource, TestRun, TestRunSpec};
use cc_ci::metrics::Metrics;
use cc_ci::runtime::{Action, Controller, RuntimeSettings, reflector};
use cc_ci::store::{StoreError, WatchEvent};
use tokio::sync::mpsc::{UnboundedSender, unbounded_channel};
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep};
use tokio_stream::wrappers::UnboundedReceiverStream;
use tokio_util::sync::CancellationToken;

type Events<S> = UnboundedSender<Result<WatchEvent<S>, StoreError>>;
type Calls = Arc<Mutex<Vec<(String, Instant)>>>;

pub fn recipe(name: &str, git: &str) -> Recipe {
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

pub fn testrun(name: &str, recipe: &str) -> TestRun {
    Object::new(
        name,
        TestRunSpec {
            recipe: recipe.to_string(),
            git: None,
            git_ref: "0123456789abcdef0123456789abcdef01234567".into(),
            pr: None,
            source: RunSource::default(),
            stages: None,
            upgrade_from: None,
            cancel: false,
            keep_on_failure: None,
        },
    )
}

fn settings() -> RuntimeSettings {
    RuntimeSettings {
        resync_seconds: 0,
        concurrency: 4,
        shutdown_grace_seconds: 30,
        backoff_initial_seconds: 1,
        backoff_max_seconds: 300,
        backoff_jitter: false,
    }
}

/// Sends a full list of recipes called `names`.
fn list<S: cc_ci::api::Spec>(tx: &Events<S>, objs: Vec<Object<S>>) {
    tx.send(Ok(WatchEvent::Init)).unwrap();
    for o in objs {
        tx.send(Ok(WatchEvent::InitApply(o))).unwrap();
    }
    tx.send(Ok(WatchEvent::InitDone)).unwrap();
}

/// A recipe controller on a channel, with its sender.
fn controller(settings: RuntimeSettings) -> (Controller<RecipeSpec>, Events<RecipeSpec>) {
    let (tx, rx) = unbounded_channel();
    let c = Controller::new("test", UnboundedReceiverStream::new(rx)).settings(settings);
    (c, tx)
}

/// Runs `c` with a reconcile that records each call and answers `answer(key, n-th call of key)`.
fn run_recording(
    c: Controller<RecipeSpec>,
    answer: impl Fn(&str, usize) -> Result<Action, String> + Send + Sync + 'static,
) -> (Calls, CancellationToken, JoinHandle<()>) {
    let calls: Calls = Arc::default();
    let shutdown = CancellationToken::new();
    let ctx = Arc::new((calls.clone(), answer));
    let handle = tokio::spawn(c.run(
        |obj: Arc<Recipe>, ctx: Arc<(Calls, _)>| {
            let mut calls = ctx.0.lock().unwrap();
            calls.push((obj.name().to_string(), Instant::now()));
            let n = calls.iter().filter(|(k, _)| k == obj.name()).count();
            let answer = (ctx.1)(obj.name(), n);
            async move { answer }
        },
        ctx,
        shutdown.clone(),
    ));
    (calls, shutdown, handle)
}

fn gaps(calls: &Calls, key: &str) -> Vec<u64> {
    let times: Vec<Instant> = calls
        .lock()
        .unwrap()
        .iter()
        .filter(|(k, _)| k == key)
        .map(|(_, t)| *t)
        .collect();
    times.windows(2).map(|w| (w[1] - w[0]).as_secs()).collect()
}

fn count(calls: &Calls, key: &str) -> usize {
    calls
        .lock()
        .unwrap()
        .iter()
        .filter(|(k, _)| k == key)
        .count()
}

#[tokio::test(start_paused = true)]
async fn failed_reconciles_back_off_exponentially_and_reset_after_success() {
    let metrics = Arc::new(Metrics::new());
    let (c, tx) = controller(settings());
    let c = c.metrics(metrics.clone());
    let (calls, shutdown, handle) = run_recording(c, |_, n| match n {
        1..=3 | 5 => Err(format!("failure {n}")),
        4 => Ok(Action::requeue(Duration::from_secs(100))),
        _ => Ok(Action::await_change()),
    });
    list(&tx, vec![recipe("a", "1")]);
    sleep(Duration::from_secs(1000)).await;
    assert_eq!(gaps(&calls, "a"), [1, 2, 4, 100, 1]);
    shutdown.cancel();
    handle.await.unwrap();
    let text = metrics.encode();
    assert!(
        text.contains(r#"ccci_reconcile_total{controller="test",result="error"} 4"#),
        "{text}"
    );
    assert!(
        text.contains(r#"ccci_reconcile_total{controller="test",result="requeue"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"ccci_reconcile_errors_total{controller="test"} 4"#),
        "{text}"
    );
    assert!(
        text.contains(r#"ccci_workqueue_retries_total{name="test"} 4"#),
        "{text}"
    );
}

#[tokio::test(start_paused = true)]
async fn requeue_is_honoured() {
    let (c, tx) = controller(settings());
    let (calls, shutdown, handle) =
        run_recording(c, |_, _| Ok(Action::requeue(Duration::from_secs(30))));
    list(&tx, vec![recipe("a", "1")]);
    sleep(Duration::from_secs(95)).await;
    assert_eq!(gaps(&calls, "a"), [30, 30, 30]);
    shutdown.cancel();
    handle.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn await_change_waits_for_a_change_of_the_record() {
    let (c, tx) = controller(settings());
    let (calls, shutdown, handle) = run_recording(c, |_, _| Ok(Action::await_change()));
    list(&tx, vec![recipe("a", "1"), recipe("b", "1")]);
    sleep(Duration::from_secs(3600)).await;
    assert_eq!((count(&calls, "a"), count(&calls, "b")), (1, 1));
    // An identical event is no change.
    tx.send(Ok(WatchEvent::Apply(recipe("a", "1")))).unwrap();
    sleep(Duration::from_secs(1)).await;
    assert_eq!(count(&calls, "a"), 1);
    tx.send(Ok(WatchEvent::Apply(recipe("a", "2")))).unwrap();
    sleep(Duration::from_millis(10)).await;
    assert_eq!((count(&calls, "a"), count(&calls, "b")), (2, 1));
    shutdown.cancel();
    handle.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn resync_reconciles_every_key_periodically() {
    let (c, tx) = controller(RuntimeSettings {
        resync_seconds: 60,
        ..settings()
    });
    let (calls, shutdown, handle) = run_recording(c, |_, _| Ok(Action::await_change()));
    list(&tx, vec![recipe("a", "1"), recipe("b", "1")]);
    sleep(Duration::from_secs(130)).await;
    assert_eq!(gaps(&calls, "a"), [60, 60]);
    assert_eq!(gaps(&calls, "b"), [60, 60]);
    shutdown.cancel();
    handle.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn deleted_records_are_not_reconciled_any_more() {
    let (c, tx) = controller(settings());
    let (calls, shutdown, handle) =
        run_recording(c, |_, _| Ok(Action::requeue(Duration::from_secs(10))));
    list(&tx, vec![recipe("a", "1"), recipe("b", "1")]);
    sleep(Duration::from_secs(15)).await;
    tx.send(Ok(WatchEvent::Delete(recipe("a", "1")))).unwrap();
    sleep(Duration::from_secs(100)).await;
    assert_eq!(count(&calls, "a"), 2);
    assert!(count(&calls, "b") >= 11);
    shutdown.cancel();
    handle.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn watched_records_of_another_kind_trigger_their_mapped_key() {
    let (c, tx) = controller(settings());
    let (runs_tx, runs_rx) = unbounded_channel();
    let (runs, runs_writer) = reflector::cache::<TestRunSpec>();
    let c = c.requires(&runs).watches(
        reflector::reflector(runs_writer, UnboundedReceiverStream::new(runs_rx)),
        |run: &TestRun| Some(run.spec.recipe.clone()),
    );
    let (calls, shutdown, handle) = run_recording(c, |_, _| Ok(Action::await_change()));
    list(&tx, vec![recipe("a", "1"), recipe("b", "1")]);
    sleep(Duration::from_secs(10)).await;
    assert!(
        calls.lock().unwrap().is_empty(),
        "reconciled before the required TestRun cache was listed"
    );
    list(&runs_tx, vec![]);
    sleep(Duration::from_secs(1)).await;
    assert_eq!((count(&calls, "a"), count(&calls, "b")), (1, 1));
    runs_tx
        .send(Ok(WatchEvent::Apply(testrun("a-pr1-c1", "a"))))
        .unwrap();
    sleep(Duration::from_secs(1)).await;
    assert_eq!((count(&calls, "a"), count(&calls, "b")), (2, 1));
    assert_eq!(runs.len(), 1);
    runs_tx
        .send(Ok(WatchEvent::Delete(testrun("a-pr1-c1", "a"))))
        .unwrap();
    sleep(Duration::from_secs(1)).await;
    assert_eq!(count(&calls, "a"), 3);
    shutdown.cancel();
    handle.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn never_runs_a_key_twice_at_once_and_respects_the_concurrency_bound() {
    let (tx, rx) = unbounded_channel();
    let (trig_tx, trig_rx) = unbounded_channel::<String>();
    let c = Controller::new("test", UnboundedReceiverStream::new(rx))
        .settings(RuntimeSettings {
            concurrency: 3,
            ..settings()
        })
        .triggers(UnboundedReceiverStream::new(trig_rx));
    #[derive(Default)]
    struct Seen {
        running: Mutex<HashSet<String>>,
        overlaps: AtomicUsize,
        now: AtomicUsize,
        peak: AtomicUsize,
        runs: Mutex<BTreeMap<String, usize>>,
    }
    let seen = Arc::new(Seen::default());
    let shutdown = CancellationToken::new();
    let handle = tokio::spawn(c.run(
        |obj: Arc<Recipe>, seen: Arc<Seen>| async move {
            let key = obj.name().to_string();
            if !seen.running.lock().unwrap().insert(key.clone()) {
                seen.overlaps.fetch_add(1, Ordering::SeqCst);
            }
            let n = seen.now.fetch_add(1, Ordering::SeqCst) + 1;
            seen.peak.fetch_max(n, Ordering::SeqCst);
            sleep(Duration::from_millis(700)).await;
            seen.now.fetch_sub(1, Ordering::SeqCst);
            seen.running.lock().unwrap().remove(&key);
            *seen.runs.lock().unwrap().entry(key).or_default() += 1;
            Ok::<_, Infallible>(Action::requeue(Duration::from_millis(100)))
        },
        seen.clone(),
        shutdown.clone(),
    ));
    let names: Vec<String> = (0..10).map(|i| format!("r{i}")).collect();
    list(&tx, names.iter().map(|n| recipe(n, "1")).collect());
    for _ in 0..100 {
        for n in &names[..3] {
            trig_tx.send(n.clone()).unwrap();
        }
        sleep(Duration::from_millis(90)).await;
    }
    shutdown.cancel();
    handle.await.unwrap();
    assert_eq!(seen.overlaps.load(Ordering::SeqCst), 0);
    assert_eq!(seen.peak.load(Ordering::SeqCst), 3);
    let runs = seen.runs.lock().unwrap();
    assert!(
        names.iter().all(|n| runs.get(n).copied().unwrap_or(0) >= 2),
        "some key starved: {runs:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn shutdown_lets_in_flight_reconciles_finish() {
    let (c, tx) = controller(settings());
    let finished = Arc::new(AtomicUsize::new(0));
    let started = Arc::new(AtomicUsize::new(0));
    let shutdown = CancellationToken::new();
    let handle = tokio::spawn(c.run(
        |_obj: Arc<Recipe>, ctx: Arc<(Arc<AtomicUsize>, Arc<AtomicUsize>)>| async move {
            ctx.0.fetch_add(1, Ordering::SeqCst);
            sleep(Duration::from_secs(5)).await;
            ctx.1.fetch_add(1, Ordering::SeqCst);
            Ok::<_, Infallible>(Action::requeue(Duration::ZERO))
        },
        Arc::new((started.clone(), finished.clone())),
        shutdown.clone(),
    ));
    list(&tx, vec![recipe("a", "1"), recipe("b", "1")]);
    let t0 = Instant::now();
    sleep(Duration::from_secs(1)).await;
    shutdown.cancel();
    handle.await.unwrap();
    assert_eq!(t0.elapsed(), Duration::from_secs(5));
    assert_eq!(
        started.load(Ordering::SeqCst),
        2,
        "a reconcile started after shutdown"
    );
    assert_eq!(finished.load(Ordering::SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn shutdown_aborts_reconciles_that_outlast_the_grace_period() {
    let (c, tx) = controller(RuntimeSettings {
        shutdown_grace_seconds: 10,
        ..settings()
    });
    let finished = Arc::new(AtomicUsize::new(0));
    let shutdown = CancellationToken::new();
    let handle = tokio::spawn(c.run(
        |_obj: Arc<Recipe>, finished: Arc<AtomicUsize>| async move {
            sleep(Duration::from_secs(1000)).await;
            finished.fetch_add(1, Ordering::SeqCst);
            Ok::<_, Infallible>(Action::await_change())
        },
        finished.clone(),
        shutdown.clone(),
    ));
    list(&tx, vec![recipe("a", "1")]);
    sleep(Duration::from_secs(1)).await;
    let t0 = Instant::now();
    shutdown.cancel();
    handle.await.unwrap();
    assert_eq!(t0.elapsed(), Duration::from_secs(10));
    assert_eq!(finished.load(Ordering::SeqCst), 0);
}
