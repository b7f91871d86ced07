//! Crash safety: a real `cc-ci serve` executing 20 runs is killed with SIGKILL at random
//! moments and restarted each time; every run still reaches a terminal phase, torn down, and
//! after the janitor's start-up sweep nothing of the instance is left in Swarm.
//!
//! The kill times come from a seeded generator: the seed is printed, and
//! `CCCI_CRASH_SEED=<seed>` replays the same kill times.

use std::path::Path;
use std::time::{Duration, Instant};

use cc_ci::api::{Object, RecipeSpec, RunPhase, RunSource, StageKind, TestRunSpec};
use cc_ci::store::{LabelSelector, SledStore, Store};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::harness::{leftovers, sweep};
use crate::fixture_repo::FixtureRepo;
use crate::support::{Serve, Server};

const INSTANCE: &str = "t-crash";
const RUNS: usize = 20;

fn start(state: &Path, config: &Path) -> Server {
    Serve::new(state)
        .args(&["--config", config.to_str().unwrap()])
        .with_runs()
        .env("RUST_LOG", "warn")
        .stderr_to(Path::new("/dev/null"))
        .spawn()
}

fn kill(server: Server) {
    server.kill(); // SIGKILL
}

/// Opens the store (the server is dead), retrying while sled releases its lock.
fn with_store<T>(state: &Path, f: impl FnOnce(&SledStore) -> T) -> T {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match SledStore::open(&state.join("store")) {
            Ok(store) => return f(&store),
            Err(e) => {
                assert!(Instant::now() < deadline, "store does not reopen: {e}");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn runs_killed_at_random_moments_all_finish_and_leave_nothing_behind() {
    sweep(INSTANCE).await;
    let tmp = tempfile::tempdir().unwrap();
    let repo = FixtureRepo::build("static-site", &tmp.path().join("origin"));
    let state = tmp.path().join("state");
    let config = tmp.path().join("cc-ci.toml");
    // Crash safety of the lifecycle is what this test is about: test steps run the built-in
    // check alone (`[tests] jobs = false`); test jobs have their own tests in `tests/jobs/`.
    std::fs::write(
        &config,
        format!(
            "[runs]\ninstance = \"{INSTANCE}\"\nforce_dnsrr = true\nbase_domain = \"ci.test\"\n\
             max_concurrent_runs = 3\nconverge_timeout_seconds = 90\njanitor_period_seconds = 5\n\
             [runtime]\nbackoff_initial_seconds = 1\nbackoff_max_seconds = 2\nbackoff_jitter = false\n\
             [tests]\njobs = false\n"
        ),
    )
    .unwrap();
    {
        let store = SledStore::open(&state.join("store")).unwrap();
        let recipe: RecipeSpec =
            serde_json::from_value(serde_json::json!({"git": repo.url()})).unwrap();
        store
            .create(Object::new("static-site", recipe))
            .await
            .unwrap();
        for i in 0..RUNS {
            // Half the runs do the install stage only, half also back up and restore.
            let stages = if i % 2 == 0 {
                vec![StageKind::Install]
            } else {
                vec![StageKind::Install, StageKind::BackupRestore]
            };
            let spec = TestRunSpec {
                recipe: "static-site".into(),
                git: None,
                git_ref: "main".into(),
                pr: None,
                source: RunSource::default(),
                stages: Some(stages),
                upgrade_from: None,
                cancel: false,
                keep_on_failure: None,
            };
            store
                .create(Object::new(format!("crash-{i:02}"), spec))
                .await
                .unwrap();
        }
    }

    let seed: u64 = match std::env::var("CCCI_CRASH_SEED") {
        Ok(v) => v
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("CCCI_CRASH_SEED={v:?} is not a number")),
        Err(_) => rand::rng().random(),
    };
    // Printed (and in every failure message) so a failure can be replayed.
    println!("crash test seed: {seed} (replay with CCCI_CRASH_SEED={seed})");
    let mut rng = StdRng::seed_from_u64(seed);
    let deadline = Instant::now() + Duration::from_secs(900);
    let mut kills = 0;
    loop {
        let child = start(&state, &config);
        let alive = Duration::from_millis(rng.random_range(1500..6000));
        tokio::time::sleep(alive).await;
        kill(child);
        kills += 1;
        let runs = with_store(&state, |s| {
            s.list::<TestRunSpec>(&LabelSelector::everything()).unwrap()
        });
        let done = runs
            .iter()
            .filter(|r| r.status.phase.is_terminal() && r.status.torn_down)
            .count();
        if done == RUNS {
            for r in &runs {
                assert_eq!(
                    r.status.phase,
                    RunPhase::Succeeded,
                    "{} after {kills} kills (CCCI_CRASH_SEED={seed}): {}",
                    r.name(),
                    serde_json::to_string_pretty(&r.status).unwrap()
                );
            }
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{done}/{RUNS} runs done after {kills} kills (CCCI_CRASH_SEED={seed})"
        );
    }
    assert!(
        kills >= 5,
        "the controller was killed mid-work repeatedly ({kills} kills)"
    );

    // A last start: its janitor sweeps at start-up whatever a kill left (e.g. a check container).
    let child = start(&state, &config);
    let deadline = Instant::now() + Duration::from_secs(60);
    while !leftovers(INSTANCE).is_empty() {
        assert!(
            Instant::now() < deadline,
            "left in Swarm (CCCI_CRASH_SEED={seed}): {:?}",
            leftovers(INSTANCE)
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    kill(child);
    assert_eq!(leftovers(INSTANCE), Vec::<String>::new());
}
