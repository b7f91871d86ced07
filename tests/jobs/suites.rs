//! The real suites of `recipes/`: webapp-pg logs in and seeds notes through Chromium before
//! the upgrade and the backup and sees them after; static-site runs its recipe-local tests.

use std::time::Duration;

use cc_ci::api::{RunPhase, StageKind, TestRun};

use super::{controller, passed, repo_root, step};
use crate::fixture_repo::FixtureRepo;
use crate::lifecycle::harness::{Controller, RunSpec, describe, leftovers, sweep};

/// A whole run of the fixture `recipe` (its repository at `main`) under `instance`, asserted
/// `Succeeded`: the controller (to stop), the run and its logs.
async fn full_run(instance: &str, recipe: &str, name: &str) -> (Controller, TestRun, String) {
    sweep(instance).await;
    let tmp = tempfile::tempdir().unwrap();
    let repo = FixtureRepo::build(recipe, &tmp.path().join("origin"));
    let ctl = controller(instance, &repo_root(), 300).await;
    ctl.recipe(recipe, &repo.url(), &[]).await;
    ctl.run(RunSpec {
        name,
        recipe,
        git_ref: "main",
        pr: None,
        stages: None,
        upgrade_from: None,
    })
    .await;
    let run = ctl.wait_done(name, Duration::from_secs(900)).await;
    let logs = ctl.logs(name);
    assert_eq!(
        run.status.phase,
        RunPhase::Succeeded,
        "{}\n{logs}",
        describe(&run)
    );
    (ctl, run, logs)
}

#[tokio::test]
async fn webapp_pg_suite_drives_the_browser_through_every_stage() {
    let instance = "t-jobs-webapp";
    let (ctl, run, logs) = full_run(instance, "webapp-pg", "webapp-pg-jobs").await;

    let check = step(&run, StageKind::Install, "test:check");
    assert_eq!(passed(check, "suite"), 4, "{check:?}");
    assert_eq!(passed(check, "builtin"), 1, "{check:?}");
    assert_eq!(check.tests.as_ref().unwrap().failed, 0);
    let pre = step(&run, StageKind::Upgrade, "test:pre");
    assert_eq!(passed(pre, "suite"), 1, "{pre:?}");
    let post = step(&run, StageKind::Upgrade, "test:post");
    assert_eq!(passed(post, "suite"), 1, "{post:?}");
    let mutate = step(&run, StageKind::BackupRestore, "test:mutate");
    assert_eq!(passed(mutate, "suite"), 1, "{mutate:?}");
    let restored = step(&run, StageKind::BackupRestore, "test:post");
    assert_eq!(passed(restored, "suite"), 1, "{restored:?}");
    for t in [
        "test_the_admin_creates_a_note_through_the_form PASSED",
        "test_seed_a_note_on_the_previous_version PASSED",
        "test_the_note_survives_the_upgrade PASSED",
        "test_seed_a_note_before_the_backup PASSED",
        "test_delete_every_note_through_the_ui PASSED",
        "test_the_restore_brings_the_note_back PASSED",
    ] {
        assert!(logs.contains(t), "{t}\n{logs}");
    }
    // The stage's counts include the browser tests, and the JUnit file of each step is kept.
    let install = &run.status.stages[0];
    assert!(install.tests.passed >= 5, "{}", describe(&run));
    assert!(
        check
            .artifacts
            .contains(&"install/check/junit.xml".to_string()),
        "{check:?}"
    );
    assert!(logs.contains("tests: overhead: first test"), "{logs}");
    assert_eq!(leftovers(instance), Vec::<String>::new());
    ctl.stop().await;
}

#[tokio::test]
async fn static_site_runs_its_recipe_local_tests_next_to_the_suite() {
    let instance = "t-jobs-static";
    let (ctl, run, logs) = full_run(instance, "static-site", "static-site-jobs").await;
    let check = step(&run, StageKind::Install, "test:check");
    assert_eq!(passed(check, "recipe"), 1, "{check:?}");
    assert_eq!(passed(check, "suite"), 2, "{check:?}");
    let restored = step(&run, StageKind::BackupRestore, "test:post");
    assert_eq!(passed(restored, "suite"), 1, "{restored:?}");
    assert!(
        logs.contains("test_the_footer_carries_the_site_title PASSED"),
        "{logs}"
    );
    assert_eq!(leftovers(instance), Vec::<String>::new());
    ctl.stop().await;
}
