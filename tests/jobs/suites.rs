//! The real suites of `recipes/`: webapp-pg logs in and seeds notes through Chromium before
//! the upgrade and the backup and sees them after, in proxy mode (through the stand-in proxy,
//! by domain, over TLS); static-site runs its recipe-local tests, in direct mode.

use std::path::Path;
use std::time::{Duration, Instant};

use cc_ci::api::{Object, ProxyDeploymentSpec, RoutingMode, RunPhase, StageKind, TestRun};
use cc_ci::store::Store;

use super::{BASE_DOMAIN, controller_with, passed, repo_root, step};
use crate::deployment::harness::{standin_proxy, test_ca, wildcard_cert};
use crate::fixture_repo::FixtureRepo;
use crate::lifecycle::harness::{Controller, RunSpec, describe, leftovers, settings, sweep};

/// The stand-in proxy (`tests/fixtures/recipes/proxy-standin`, the traefik recipe's shape)
/// declared in wildcard mode with a test CA's `*.jobs.test` certificate, so a run's tests reach
/// its app by domain through the proxy over TLS. Its host ports are this test's own.
async fn declare_proxy(ctl: &Controller, dir: &Path) {
    let repo = FixtureRepo::build("proxy-standin", &dir.join("proxy"));
    test_ca(dir);
    let (cert, key) = wildcard_cert(dir, BASE_DOMAIN, "wildcard");
    let proxy = standin_proxy(&repo, BASE_DOMAIN, 18449, 18090, &cert, &key);
    ctl.store.create(Object::new(PROXY, proxy)).await.unwrap();
}

/// Deletes the proxy record and waits until its finalizer removed it from Swarm.
async fn remove_proxy(ctl: &Controller) {
    ctl.store
        .delete::<ProxyDeploymentSpec>(PROXY)
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(90);
    while ctl
        .store
        .get::<ProxyDeploymentSpec>(PROXY)
        .unwrap()
        .is_some()
    {
        assert!(
            Instant::now() < deadline,
            "the proxy record was never removed"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The proxy record's name in the proxy-mode test.
const PROXY: &str = "standin-jobs";

/// A whole run of the fixture `recipe` (its repository at `main`) under `instance`, asserted
/// `Succeeded`: the controller (to stop), the run and its logs. With `proxy`, the stand-in
/// proxy is declared first, so the run waits for it and its tests go through it.
async fn full_run(
    instance: &str,
    recipe: &str,
    name: &str,
    proxy: bool,
) -> (Controller, TestRun, String) {
    sweep(instance).await;
    let tmp = tempfile::tempdir().unwrap();
    let repo = FixtureRepo::build(recipe, &tmp.path().join("origin"));
    let mut runs = settings(instance);
    if proxy {
        // The built-in checks' helper: bash for the direct check, curl and getent for the proxied.
        runs.helper_image = "ccci-fixture/proxy:latest".into();
    }
    let ctl = controller_with(runs, &repo_root(), 300).await;
    if proxy {
        declare_proxy(&ctl, tmp.path()).await;
    }
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
    if proxy {
        remove_proxy(&ctl).await;
    }
    (ctl, run, logs)
}

/// In proxy mode (DESIGN.md §7): every test, the browser's included, reaches the app by its
/// domain through the proxy, TLS verified against the proxy's certificate.
#[tokio::test]
async fn webapp_pg_suite_drives_the_browser_through_every_stage_via_the_proxy() {
    let instance = "t-jobs-webapp";
    let (ctl, run, logs) = full_run(instance, "webapp-pg", "webapp-pg-jobs", true).await;
    assert_eq!(
        run.status.app.as_ref().unwrap().routing,
        Some(RoutingMode::Proxy),
        "{}",
        describe(&run)
    );
    let domain = &run.status.app.as_ref().unwrap().domain;
    assert!(
        logs.contains(&format!(
            "tests: proxy mode: https://{domain} through ProxyDeployment {PROXY}"
        )),
        "{logs}"
    );
    assert!(logs.contains("answered 200 through the proxy"), "{logs}");
    assert!(
        logs.contains(&format!(
            "tests: the job's /etc/hosts maps {domain} to the proxy's task"
        )),
        "{logs}"
    );
    assert!(
        logs.contains("test_any_client_reaches_the_app_at_its_url PASSED"),
        "{logs}"
    );

    let check = step(&run, StageKind::Install, "test:check");
    assert_eq!(passed(check, "suite"), 5, "{check:?}");
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
    let (ctl, run, logs) = full_run(instance, "static-site", "static-site-jobs", false).await;
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
