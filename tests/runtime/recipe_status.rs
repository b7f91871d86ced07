//! The Recipe status roll-up: the pure computation, then the controller end to end against the
//! in-memory store (statuses follow TestRuns; a no-op pass writes nothing; gauges; readiness).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use cc_ci::api::{Recipe, RecipeStatus};
use cc_ci::api::{RecipeSpec, RunPhase, StageKind, StagePhase, StageStatus, TestRun, TestRunSpec};
use cc_ci::controllers::recipe_status::{FactsLookup, RunSummary, roll_up};
use cc_ci::controllers::{self};
use cc_ci::metrics::Metrics;
use cc_ci::runtime::RuntimeSettings;
use cc_ci::store::Store;
use chrono::{TimeZone, Utc};
use tokio::time::sleep;
use tokio_util::sync::CancellationToken;

use super::controller::{recipe, testrun};
use super::memory_store::MemoryStore;

fn stage(stage: StageKind, phase: StagePhase) -> StageStatus {
    serde_json::from_value(serde_json::json!({"stage": stage, "phase": phase}))
        .expect("a stage status from stage and phase")
}

fn run(name: &str, minute: u32, phase: RunPhase, stages: Vec<StageStatus>) -> TestRun {
    let mut r = testrun(name, "a");
    r.spec.git_ref = format!("ref-{name}");
    r.metadata.creation_timestamp = Some(Utc.with_ymd_and_hms(2026, 1, 1, 12, minute, 0).unwrap());
    r.status.phase = phase;
    r.status.stages = stages;
    r
}

/// The roll-up of whole TestRuns, through the summary the controller keeps of each, with no
/// recorded recipe facts.
fn rolled(recipe: &Recipe, runs: &[&TestRun]) -> RecipeStatus {
    rolled_with(recipe, runs, &|_| None)
}

fn rolled_with(recipe: &Recipe, runs: &[&TestRun], facts: FactsLookup<'_>) -> RecipeStatus {
    let summaries: Vec<RunSummary> = runs
        .iter()
        .map(|r| RunSummary::from((*r).clone()))
        .collect();
    roll_up(recipe, &summaries.iter().collect::<Vec<_>>(), facts)
}

/// A stage that ended `Passed` with `tests` tests passed.
fn tested(kind: StageKind, tests: u32) -> StageStatus {
    serde_json::from_value(serde_json::json!(
        {"stage": kind, "phase": "Passed", "tests": {"passed": tests, "failed": 0, "skipped": 0}}
    ))
    .expect("a tested stage status")
}

/// The level is docs/levels.md's 0–8, the dashboard's: it reads the test counts, the facts the
/// run's checkout recorded (healthchecks, README claims) and the run before it.
#[test]
fn the_level_is_the_dashboards_and_reads_the_facts_runs_recorded() {
    use StageKind::*;
    use cc_ci::recipe::facts::{RecipeFacts, ServiceFact};
    use cc_ci::recipe::metadata::Entry;
    let a = recipe("a", "1");
    let all = |name: &str, minute: u32| {
        let stages = vec![
            tested(Install, 2),
            tested(Upgrade, 1),
            tested(BackupRestore, 1),
        ];
        run(name, minute, RunPhase::Succeeded, stages)
    };
    let (r1, r2) = (all("r1", 1), all("r2", 2));
    let facts = |healthcheck: bool, backups: &str| RecipeFacts {
        metadata: Some(vec![Entry {
            key: "Backups".into(),
            value: backups.into(),
        }]),
        services: vec![ServiceFact {
            name: "app".into(),
            healthcheck,
        }],
        recipe_tests: false,
    };
    assert_eq!(
        rolled(&a, &[&r2]).level,
        Some(5),
        "tested everywhere, no facts"
    );
    let healthy = |_: &str| Some(facts(true, "Yes"));
    assert_eq!(rolled_with(&a, &[&r2], &healthy).level, Some(7));
    assert_eq!(rolled_with(&a, &[&r1, &r2], &healthy).level, Some(8));
    let unhealthy = |_: &str| Some(facts(false, "Yes"));
    assert_eq!(rolled_with(&a, &[&r1, &r2], &unhealthy).level, Some(5));
    // Level 8 asks the previous run to be at 7: here only the latest run recorded its facts.
    let only_latest = |run: &str| (run == "r2").then(|| facts(true, "Yes"));
    assert_eq!(rolled_with(&a, &[&r1, &r2], &only_latest).level, Some(7));
    // A backup claim with no backup stage run is contradicted: the level stops before 7 and,
    // here, at 3 already since the stage did not pass.
    let no_backup = run(
        "r3",
        3,
        RunPhase::Succeeded,
        vec![
            tested(Install, 1),
            tested(Upgrade, 1),
            stage(BackupRestore, StagePhase::NotApplicable),
        ],
    );
    assert_eq!(rolled_with(&a, &[&r2, &no_backup], &healthy).level, Some(3));
}

#[test]
fn runs_of_another_repository_do_not_count_toward_the_recipes_result() {
    use StageKind::*;
    use StagePhase::*;
    let a = recipe("a", "https://git.example.org/a.git");
    let own = run("own", 1, RunPhase::Failed, vec![stage(Install, Failed)]);
    let mut same_url = run(
        "same-url",
        2,
        RunPhase::Failed,
        vec![stage(Install, Failed)],
    );
    same_url.spec.git = Some("https://git.example.org/a.git".into());
    let mut fork = run("fork", 3, RunPhase::Succeeded, vec![stage(Install, Passed)]);
    fork.spec.git = Some("https://git.example.org/someone-else/a.git".into());
    let s = rolled(&a, &[&own, &same_url, &fork]);
    assert_eq!(s.badge.map(|b| b.as_str()), Some("failing"), "{s:?}");
    assert_eq!(s.level, Some(0));
    assert_eq!(s.stages["install"].run, "same-url");
    assert_eq!(
        s.last_run.as_deref(),
        Some("fork"),
        "it is still the latest run"
    );
    let only_fork = rolled(&a, &[&fork]);
    assert_eq!(only_fork.badge.map(|b| b.as_str()), Some("unknown"));
    assert_eq!(only_fork.level, None);
}

#[test]
fn recipe_timeouts_out_of_range_are_refused_with_the_field() {
    use cc_ci::api::Spec;
    let mut spec = recipe("a", "https://git.example.org/a.git").spec;
    spec.timeouts.run_seconds = Some(u64::MAX);
    spec.timeouts.stage_seconds = Some(0);
    let errors = spec.validate().unwrap_err();
    let fields: Vec<String> = errors.iter().map(|e| e.field.clone()).collect();
    assert_eq!(
        fields,
        ["spec.timeouts.stageSeconds", "spec.timeouts.runSeconds"],
        "{errors:?}"
    );
    spec.timeouts.run_seconds = Some(cc_ci::api::MAX_TIMEOUT_SECONDS);
    spec.timeouts.stage_seconds = Some(1);
    assert!(spec.validate().is_ok());
}

#[test]
fn roll_up_counts_phases_and_keeps_the_latest_result_of_each_stage() {
    use StageKind::*;
    use StagePhase::*;
    let r1 = run(
        "r1",
        1,
        RunPhase::Succeeded,
        vec![
            stage(Install, Passed),
            stage(Upgrade, Passed),
            stage(BackupRestore, Failed),
        ],
    );
    let mut r1 = r1;
    r1.status.commit = Some("c0ffee".into());
    let r2 = run(
        "r2",
        2,
        RunPhase::Failed,
        vec![stage(Install, Passed), stage(Upgrade, Failed)],
    );
    let r3 = run("r3", 3, RunPhase::Running, vec![stage(Install, Running)]);
    let r0 = run("r0", 0, RunPhase::Cancelled, vec![]);
    let mut a = recipe("a", "1");
    a.metadata.generation = 4;
    let s = rolled(&a, &[&r3, &r1, &r0, &r2]);
    let counts: Vec<(&str, u64)> = s.run_counts.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    assert_eq!(
        counts,
        [
            ("Cancelled", 1),
            ("Failed", 1),
            ("Running", 1),
            ("Succeeded", 1)
        ]
    );
    assert_eq!(s.last_run.as_deref(), Some("r3"));
    assert_eq!(s.last_run_phase, Some(RunPhase::Running));
    assert_eq!(
        s.badge.map(|b| b.as_str()),
        Some("failing"),
        "the last verdict (r2) shows while r3 runs"
    );
    assert_eq!(s.level, Some(2), "install passed, upgrade failed");
    assert_eq!(s.last_tested_ref.as_deref(), Some("ref-r2"));
    assert_eq!(s.observed_generation, 4);
    let stages: Vec<(&str, StagePhase, &str)> = s
        .stages
        .iter()
        .map(|(k, v)| (k.as_str(), v.phase, v.run.as_str()))
        .collect();
    assert_eq!(
        stages,
        [
            ("backup-restore", Failed, "r1"),
            ("install", Passed, "r2"),
            ("upgrade", Failed, "r2"),
        ]
    );

    let s = rolled(&a, &[&r1]);
    assert_eq!(
        (s.badge.map(|b| b.as_str()), s.level),
        (Some("passing"), Some(3)),
        "install and upgrade passed, backup-restore failed"
    );
    assert_eq!(s.last_tested_ref.as_deref(), Some("c0ffee"));
}

#[test]
fn badge_is_running_before_any_verdict_and_unknown_without_runs() {
    let a = recipe("a", "1");
    let s = rolled(&a, &[]);
    assert_eq!(
        (s.badge.map(|b| b.as_str()), s.level, s.last_run.as_deref()),
        (Some("unknown"), None, None)
    );
    let pending = run("r1", 1, RunPhase::Pending, vec![]);
    let cancelled = run("r0", 0, RunPhase::Cancelled, vec![]);
    let s = rolled(&a, &[&pending, &cancelled]);
    assert_eq!(
        (s.badge.map(|b| b.as_str()), s.level),
        (Some("running"), None)
    );
}

async fn set_phase(store: &MemoryStore, name: &str, phase: RunPhase, stages: Vec<StageStatus>) {
    let mut r = store.get::<TestRunSpec>(name).unwrap().unwrap();
    r.status.phase = phase;
    r.status.stages = stages;
    store.replace_status(r).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn statuses_follow_testruns_and_a_noop_pass_writes_nothing() {
    let store = MemoryStore::default();
    store.create(recipe("a", "1")).await.unwrap();
    store.create(recipe("b", "1")).await.unwrap();
    store
        .create(run("a-1", 1, RunPhase::Pending, vec![]))
        .await
        .unwrap();
    set_phase(
        &store,
        "a-1",
        RunPhase::Succeeded,
        vec![stage(StageKind::Install, StagePhase::Passed)],
    )
    .await;
    store
        .create(run("a-2", 2, RunPhase::Pending, vec![]))
        .await
        .unwrap();

    let metrics = Arc::new(Metrics::new());
    let settings = RuntimeSettings {
        resync_seconds: 60,
        backoff_jitter: false,
        ..Default::default()
    };
    let shutdown = CancellationToken::new();
    let (ready_tx, mut ready_rx) = tokio::sync::watch::channel(false);
    let handle = tokio::spawn(controllers::run(
        store.clone(),
        metrics.clone(),
        settings,
        shutdown.clone(),
        ready_tx,
        None,
        None,
    ));
    ready_rx.wait_for(|r| *r).await.unwrap();
    sleep(Duration::from_secs(6)).await;

    let a = store.get::<RecipeSpec>("a").unwrap().unwrap();
    assert_eq!(a.status.badge.map(|b| b.as_str()), Some("passing"));
    assert_eq!(a.status.last_run.as_deref(), Some("a-2"));
    assert_eq!(a.status.level, Some(2), "install passed");
    assert_eq!(a.status.run_counts.get("Pending"), Some(&1));
    let b = store.get::<RecipeSpec>("b").unwrap().unwrap();
    assert_eq!(b.status.badge.map(|b| b.as_str()), Some("unknown"));
    let text = metrics.encode();
    assert!(
        text.contains(r#"ccci_testruns{phase="Pending"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"ccci_testruns{phase="Succeeded"} 1"#),
        "{text}"
    );
    assert!(text.contains(r#"ccci_records{kind="TestRun"} 2"#), "{text}");

    // A resync reconciles every recipe again; nothing changed, so nothing is written.
    let writes = store.writes.load(Ordering::SeqCst);
    let reconciles = |m: &Metrics| {
        m.reconcile_total
            .with_label_values(&["recipe-status", "success"])
            .get()
    };
    let before = reconciles(&metrics);
    sleep(Duration::from_secs(61)).await;
    assert!(
        reconciles(&metrics) >= before + 2,
        "no resync pass happened"
    );
    assert_eq!(
        store.writes.load(Ordering::SeqCst),
        writes,
        "a no-op pass wrote"
    );

    // A TestRun change re-rolls its recipe.
    set_phase(
        &store,
        "a-2",
        RunPhase::Failed,
        vec![stage(StageKind::Install, StagePhase::Failed)],
    )
    .await;
    sleep(Duration::from_secs(1)).await;
    let a = store.get::<RecipeSpec>("a").unwrap().unwrap();
    assert_eq!(a.status.badge.map(|b| b.as_str()), Some("failing"));
    assert_eq!(a.status.level, Some(0));
    assert_eq!(a.status.stages["install"].run, "a-2");

    shutdown.cancel();
    handle.await.unwrap().unwrap();
}

/// Polls `f` on real time until it holds (at most 10 s).
async fn eventually(what: &str, f: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn on_sled_the_roll_up_converges_and_a_resync_pass_rewrites_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = cc_ci::store::SledStore::open(dir.path()).unwrap();
    store.create(recipe("a", "1")).await.unwrap();
    store
        .create(run("a-1", 1, RunPhase::Pending, vec![]))
        .await
        .unwrap();
    let settings = RuntimeSettings {
        resync_seconds: 1,
        ..Default::default()
    };
    let shutdown = CancellationToken::new();
    let (ready_tx, mut ready_rx) = tokio::sync::watch::channel(false);
    let metrics = Arc::new(Metrics::new());
    let handle = tokio::spawn(controllers::run(
        store.clone(),
        metrics.clone(),
        settings,
        shutdown.clone(),
        ready_tx,
        None,
        None,
    ));
    ready_rx.wait_for(|r| *r).await.unwrap();
    let badge =
        |s: &cc_ci::store::SledStore| s.get::<RecipeSpec>("a").unwrap().unwrap().status.badge;
    eventually("badge running", || {
        badge(&store).map(|b| b.as_str()) == Some("running")
    })
    .await;

    let mut r = store.get::<TestRunSpec>("a-1").unwrap().unwrap();
    r.status.phase = RunPhase::Succeeded;
    store.replace_status(r).await.unwrap();
    eventually("badge passing", || {
        badge(&store).map(|b| b.as_str()) == Some("passing")
    })
    .await;

    let rv = store
        .get::<RecipeSpec>("a")
        .unwrap()
        .unwrap()
        .metadata
        .resource_version;
    let reconciles = || {
        metrics
            .reconcile_total
            .with_label_values(&["recipe-status", "success"])
            .get()
    };
    let before = reconciles();
    sleep(Duration::from_millis(2500)).await;
    assert!(
        reconciles() >= before + 2,
        "no resync pass happened in 2.5 s ({before} reconciles before, {} after)",
        reconciles()
    );
    let after = store
        .get::<RecipeSpec>("a")
        .unwrap()
        .unwrap()
        .metadata
        .resource_version;
    assert_eq!(rv, after, "resync passes rewrote an unchanged status");
    shutdown.cancel();
    handle.await.unwrap().unwrap();
}

/// The running controller reads each run's recorded facts from its run directory: a recipe
/// tested everywhere whose checkout recorded healthchecks and an honest README reaches 7.
#[tokio::test]
async fn the_controller_reads_the_facts_from_the_run_directory() {
    use StageKind::*;
    use cc_ci::recipe::facts::{self, RecipeFacts, ServiceFact};
    use cc_ci::runlog::RunLogs;
    let state = tempfile::tempdir().unwrap();
    let logs = RunLogs::new(state.path());
    let store = MemoryStore::default();
    store.create(recipe("a", "1")).await.unwrap();
    store
        .create(run("a-1", 1, RunPhase::Pending, vec![]))
        .await
        .unwrap();
    let recorded = RecipeFacts {
        metadata: Some(vec![cc_ci::recipe::metadata::Entry {
            key: "Healthcheck".into(),
            value: "Yes".into(),
        }]),
        services: vec![ServiceFact {
            name: "app".into(),
            healthcheck: true,
        }],
        recipe_tests: false,
    };
    let dir = logs.run_dir("a-1").unwrap();
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join(facts::FILE),
        serde_json::to_vec(&recorded).unwrap(),
    )
    .unwrap();
    let shutdown = CancellationToken::new();
    let started = controllers::recipe_status::start(
        &store,
        Some(logs),
        Arc::new(Metrics::new()),
        RuntimeSettings::default(),
        shutdown.clone(),
    );
    set_phase(
        &store,
        "a-1",
        RunPhase::Succeeded,
        vec![
            tested(Install, 1),
            tested(Upgrade, 1),
            tested(BackupRestore, 1),
        ],
    )
    .await;
    eventually("the level reads the recorded facts", || {
        store.get::<RecipeSpec>("a").unwrap().unwrap().status.level == Some(7)
    })
    .await;
    shutdown.cancel();
    for task in started.tasks {
        task.await.unwrap();
    }
}
