//! TestRuns driven by the real TestRun controller on the real local swarm: full runs of the
//! fixture recipes, failures at the right stage, stages that do not apply, cancellation by
//! deletion, and the concurrency cap.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cc_ci::api::{RunPhase, StageKind, StagePhase, StepName, TestRun};

use super::harness::{Controller, DataChecks, RunSpec, describe, edit, leftovers, settings, sweep};
use crate::fixture_repo::FixtureRepo;

fn stage(run: &TestRun, kind: StageKind) -> &cc_ci::api::StageStatus {
    run.status
        .stages
        .iter()
        .find(|s| s.stage == kind)
        .unwrap_or_else(|| panic!("no stage {kind:?}: {}", describe(run)))
}

fn assert_all_passed(run: &TestRun, logs: &str) {
    assert_eq!(
        run.status.phase,
        RunPhase::Succeeded,
        "{}\n{logs}",
        describe(run)
    );
    for s in &run.status.stages {
        assert_eq!(
            s.phase,
            StagePhase::Passed,
            "{:?}: {}\n{logs}",
            s.stage,
            describe(run)
        );
        assert!(
            s.steps
                .iter()
                .all(|st| st.ok == Some(true) && st.started.is_some() && st.finished.is_some()),
            "{}",
            describe(run)
        );
        assert_eq!(s.tests.failed, 0, "{}", describe(run));
    }
}

async fn full_run(recipe: &str, instance: &str, pr_edit: bool) {
    sweep(instance).await;
    let tmp = tempfile::tempdir().unwrap();
    let repo = FixtureRepo::build(recipe, &tmp.path().join("origin"));
    let (git_ref, pr) = if pr_edit {
        repo.open_pull_request(7, |dir| {
            edit(dir, "README.md", |t| t + "\nA change under review.\n")
        });
        ("refs/pull/7/head", Some(7))
    } else {
        ("main", None)
    };
    let ctl = Controller::start(settings(instance), Arc::new(DataChecks)).await;
    ctl.recipe(recipe, &repo.url(), &[]).await;
    let name = format!("{recipe}-full");
    ctl.run(RunSpec {
        name: &name,
        recipe,
        git_ref,
        pr,
        stages: None,
        upgrade_from: None,
    })
    .await;
    let run = ctl.wait_done(&name, Duration::from_secs(600)).await;
    let logs = ctl.logs(&name);
    assert_all_passed(&run, &logs);
    let upgrade = stage(&run, StageKind::Upgrade);
    assert!(
        upgrade.tests.passed >= 3,
        "builtin checks plus the data seeded and kept: {}",
        describe(&run)
    );
    let br = stage(&run, StageKind::BackupRestore);
    let expected = [
        "data::seed_before_backup",
        "data::wiped_after_backup",
        "data::restored_marker",
        "data::restored_marker_from_before_upgrade",
    ];
    for e in expected {
        assert!(
            logs.contains(&format!("data: {e}: Ok(())")),
            "{e} passed\n{logs}"
        );
    }
    assert!(br.tests.passed >= 4 + 2, "{}", describe(&run));
    let app = run.status.app.as_ref().unwrap();
    assert!(app.previous_version.is_some(), "{}", describe(&run));
    assert_eq!(app.routing, Some(cc_ci::api::RoutingMode::Direct));
    assert!(
        run.status
            .steps
            .iter()
            .any(|s| s.name == StepName::Teardown && s.ok == Some(true))
    );
    assert_eq!(
        leftovers(instance),
        Vec::<String>::new(),
        "nothing labelled with the run is left"
    );
    assert!(
        !ctl.run_dir(&name).join("secrets.json").exists(),
        "the secrets file is gone"
    );
    assert!(
        !ctl.run_dir(&name).join("workspace").exists(),
        "the checkouts are gone"
    );
    ctl.stop().await;
}

#[tokio::test]
async fn static_site_pull_request_passes_every_stage_and_leaves_nothing() {
    full_run("static-site", "t-run-static", true).await;
}

#[tokio::test]
async fn webapp_pg_release_passes_every_stage_keeping_data_across_upgrade_and_restore() {
    full_run("webapp-pg", "t-run-webapp", false).await;
}

#[tokio::test]
async fn failing_healthcheck_fails_install_naming_the_service_and_skips_the_rest() {
    let instance = "t-run-unhealthy";
    sweep(instance).await;
    let tmp = tempfile::tempdir().unwrap();
    let repo = FixtureRepo::build("static-site", &tmp.path().join("origin"));
    repo.open_pull_request(3, |dir| {
        edit(dir, "compose.yml", |t| {
            t.replace(
                r#"test: ["CMD", "/usr/local/bin/healthcheck"]"#,
                r#"test: ["CMD", "sh", "-c", "echo broken-health >&2; exit 1"]"#,
            )
        })
    });
    let ctl = Controller::start(settings(instance), Arc::new(DataChecks)).await;
    ctl.recipe("static-site", &repo.url(), &[("TIMEOUT", "25")])
        .await;
    let started = Instant::now();
    ctl.run(RunSpec {
        name: "unhealthy",
        recipe: "static-site",
        git_ref: "refs/pull/3/head",
        pr: Some(3),
        stages: None,
        upgrade_from: None,
    })
    .await;
    let run = ctl.wait_done("unhealthy", Duration::from_secs(300)).await;
    assert_eq!(run.status.phase, RunPhase::Failed, "{}", describe(&run));
    let install = stage(&run, StageKind::Install);
    assert_eq!(install.phase, StagePhase::Failed, "{}", describe(&run));
    assert!(
        install.message.starts_with("converge:"),
        "{}",
        install.message
    );
    assert!(
        install.message.contains("_app"),
        "names the service: {}",
        install.message
    );
    assert!(
        started.elapsed() < Duration::from_secs(150),
        "within the label's 25 s timeout plus set-up: {:?}",
        started.elapsed()
    );
    for k in [StageKind::Upgrade, StageKind::BackupRestore] {
        assert_eq!(
            stage(&run, k).phase,
            StagePhase::Skipped,
            "{}",
            describe(&run)
        );
    }
    assert!(
        run.status.message.contains("install"),
        "{}",
        run.status.message
    );
    // The stage's own log says why the step failed, and that the wait went on meanwhile.
    let install_log =
        std::fs::read_to_string(ctl.run_dir("unhealthy").join("logs/install.log")).unwrap();
    assert!(
        install_log.contains("step converge failed: ") && install_log.contains("_app"),
        "{install_log}"
    );
    assert!(
        install_log.contains("step converge still running (10 s)"),
        "a heartbeat while converge waits: {install_log}"
    );
    assert_eq!(leftovers(instance), Vec::<String>::new());
    ctl.stop().await;
}

#[tokio::test]
async fn a_previous_version_that_cannot_deploy_is_reported_as_such() {
    let instance = "t-run-prevfail";
    sweep(instance).await;
    let tmp = tempfile::tempdir().unwrap();
    let repo = FixtureRepo::build("static-site", &tmp.path().join("origin"));
    // An old release whose image was never built (no registry can provide it).
    let broken = repo.open_pull_request(90, |dir| {
        edit(dir, "compose.yml", |t| {
            t.replace(
                "ccci-fixture/static-web:1.1",
                "ccci-fixture/static-web:0.0-never-built",
            )
        })
    });
    crate::fixture_repo::git(&repo.dir, &["tag", "0.9.0+0.9", &broken]);
    let ctl = Controller::start(settings(instance), Arc::new(DataChecks)).await;
    ctl.recipe("static-site", &repo.url(), &[("TIMEOUT", "20")])
        .await;
    ctl.run(RunSpec {
        name: "prevfail",
        recipe: "static-site",
        git_ref: "main",
        pr: None,
        stages: Some(&[StageKind::Upgrade]),
        upgrade_from: Some("0.9.0+0.9"),
    })
    .await;
    let run = ctl.wait_done("prevfail", Duration::from_secs(300)).await;
    let upgrade = stage(&run, StageKind::Upgrade);
    assert_eq!(
        upgrade.phase,
        StagePhase::PreviousVersionFailed,
        "{}",
        describe(&run)
    );
    assert!(
        upgrade.message.contains("converge-previous")
            || upgrade.message.contains("deploy-previous"),
        "{}",
        upgrade.message
    );
    assert_eq!(run.status.phase, RunPhase::Failed);
    assert_eq!(
        run.status.app.as_ref().unwrap().previous_version.as_deref(),
        Some("0.9.0+0.9")
    );
    assert_eq!(leftovers(instance), Vec::<String>::new());
    ctl.stop().await;
}

#[tokio::test]
async fn a_recipe_without_backup_labels_is_not_applicable_for_backup_restore_and_a_run_of_it_alone_is_no_pass()
 {
    let instance = "t-run-nobackup";
    sweep(instance).await;
    let tmp = tempfile::tempdir().unwrap();
    let repo = FixtureRepo::build("static-site", &tmp.path().join("origin"));
    repo.open_pull_request(4, |dir| {
        edit(dir, "compose.yml", |t| {
            t.lines()
                .filter(|l| !l.contains("backupbot"))
                .collect::<Vec<_>>()
                .join("\n")
                + "\n"
        })
    });
    let ctl = Controller::start(settings(instance), Arc::new(DataChecks)).await;
    ctl.recipe("static-site", &repo.url(), &[]).await;
    ctl.run(RunSpec {
        name: "nobackup",
        recipe: "static-site",
        git_ref: "refs/pull/4/head",
        pr: Some(4),
        stages: Some(&[StageKind::BackupRestore]),
        upgrade_from: None,
    })
    .await;
    let run = ctl.wait_done("nobackup", Duration::from_secs(120)).await;
    let br = stage(&run, StageKind::BackupRestore);
    assert_eq!(br.phase, StagePhase::NotApplicable, "{}", describe(&run));
    assert!(br.message.contains("backupbot"), "{}", br.message);
    // Its only stage did not apply: the run tested nothing, which is not a pass.
    assert_eq!(run.status.phase, RunPhase::Failed, "{}", describe(&run));
    assert!(
        run.status.message.contains("nothing was tested"),
        "{}",
        run.status.message
    );
    assert_eq!(leftovers(instance), Vec::<String>::new());
    ctl.stop().await;
}

#[tokio::test]
async fn deleting_a_running_run_tears_it_down() {
    let instance = "t-run-delete";
    sweep(instance).await;
    let tmp = tempfile::tempdir().unwrap();
    let repo = FixtureRepo::build("static-site", &tmp.path().join("origin"));
    let ctl = Controller::start(settings(instance), Arc::new(DataChecks)).await;
    ctl.recipe("static-site", &repo.url(), &[]).await;
    ctl.run(RunSpec {
        name: "doomed",
        recipe: "static-site",
        git_ref: "main",
        pr: None,
        stages: None,
        upgrade_from: None,
    })
    .await;
    // Wait until the app exists in Swarm.
    let deadline = Instant::now() + Duration::from_secs(120);
    while leftovers(instance)
        .iter()
        .all(|o| !o.starts_with("service"))
    {
        assert!(
            Instant::now() < deadline,
            "the run never deployed: {}",
            describe(&ctl.get("doomed").unwrap())
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let run = ctl.get("doomed").unwrap();
    assert_eq!(run.status.phase, RunPhase::Running);
    assert!(
        run.metadata
            .finalizers
            .iter()
            .any(|f| f == cc_ci::controllers::testrun::FINALIZER)
    );
    use cc_ci::store::Store;
    ctl.store
        .delete::<cc_ci::api::TestRunSpec>("doomed")
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(180);
    while ctl.get("doomed").is_some() {
        assert!(Instant::now() < deadline, "the deleted run is still there");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(
        leftovers(instance),
        Vec::<String>::new(),
        "deleting tore the run down"
    );
    assert!(
        !ctl.run_dir("doomed").exists(),
        "the run's directory is removed with it"
    );
    ctl.stop().await;
}

#[tokio::test]
async fn queued_runs_respect_the_concurrency_cap_in_fifo_order() {
    let instance = "t-run-queue";
    sweep(instance).await;
    let tmp = tempfile::tempdir().unwrap();
    let repo = FixtureRepo::build("static-site", &tmp.path().join("origin"));
    let ctl = Controller::start(settings(instance), Arc::new(DataChecks)).await;
    ctl.recipe("static-site", &repo.url(), &[]).await;
    let install = [StageKind::Install];
    for n in ["first", "second"] {
        ctl.run(RunSpec {
            name: n,
            recipe: "static-site",
            git_ref: "main",
            pr: None,
            stages: Some(&install),
            upgrade_from: None,
        })
        .await;
    }
    let mut saw_queued = false;
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let a = ctl.get("first").unwrap();
        let b = ctl.get("second").unwrap();
        assert!(
            !(a.status.phase == RunPhase::Running && b.status.phase == RunPhase::Running),
            "two runs running with max_concurrent_runs = 1"
        );
        assert!(
            !(b.status.phase == RunPhase::Running && a.status.phase == RunPhase::Pending),
            "FIFO order"
        );
        if b.status.phase == RunPhase::Pending
            && a.status.phase == RunPhase::Running
            && b.status.queue_position == Some(1)
        {
            saw_queued = true;
        }
        if a.status.phase.is_terminal() && b.status.phase.is_terminal() && b.status.torn_down {
            assert_eq!(a.status.phase, RunPhase::Succeeded, "{}", describe(&a));
            assert_eq!(b.status.phase, RunPhase::Succeeded, "{}", describe(&b));
            assert!(
                b.status.started >= a.status.finished,
                "second started after first finished"
            );
            break;
        }
        assert!(Instant::now() < deadline, "runs not done");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        saw_queued,
        "the second run showed queue position 1 while the first ran"
    );
    assert_eq!(leftovers(instance), Vec::<String>::new());
    ctl.stop().await;
}

/// The benchmark of full runs (`scripts/bench-runs`, not part of the suite): each fixture
/// recipe's whole run with a per-step breakdown, and cc-ci's own share of the wall time (the
/// time between steps: status writes, planning, scheduling — everything but the steps, which
/// wait on git, Docker, containers and hooks).
#[tokio::test]
#[ignore = "benchmark: run by scripts/bench-runs"]
async fn bench_full_runs() {
    for (recipe, pr_edit) in [("static-site", true), ("webapp-pg", false)] {
        let instance = format!("t-bench-{recipe}");
        sweep(&instance).await;
        let tmp = tempfile::tempdir().unwrap();
        let repo = FixtureRepo::build(recipe, &tmp.path().join("origin"));
        let (git_ref, pr) = if pr_edit {
            repo.open_pull_request(7, |dir| edit(dir, "README.md", |t| t + "\nbench\n"));
            ("refs/pull/7/head", Some(7))
        } else {
            ("main", None)
        };
        let ctl = Controller::start(settings(&instance), Arc::new(DataChecks)).await;
        ctl.recipe(recipe, &repo.url(), &[]).await;
        let name = format!("{recipe}-bench");
        let t0 = Instant::now();
        ctl.run(RunSpec {
            name: &name,
            recipe,
            git_ref,
            pr,
            stages: None,
            upgrade_from: None,
        })
        .await;
        let run = ctl.wait_done(&name, Duration::from_secs(600)).await;
        let wall = t0.elapsed().as_secs_f64();
        assert_all_passed(&run, &ctl.logs(&name));
        let secs = |s: &cc_ci::api::StepStatus| {
            (s.finished.unwrap() - s.started.unwrap()).num_milliseconds() as f64 / 1000.0
        };
        let mut in_steps = 0.0;
        println!("BENCH {recipe}: whole run {wall:.1} s (creation to torn down)");
        for s in run
            .status
            .steps
            .iter()
            .filter(|s| s.name == StepName::Fetch)
        {
            in_steps += secs(s);
            println!("BENCH   run/{}: {:.2} s", s.name, secs(s));
        }
        for st in &run.status.stages {
            for s in &st.steps {
                in_steps += secs(s);
                println!("BENCH   {}/{}: {:.2} s", st.stage.as_str(), s.name, secs(s));
            }
        }
        for s in run
            .status
            .steps
            .iter()
            .filter(|s| s.name == StepName::Teardown)
        {
            in_steps += secs(s);
            println!("BENCH   run/{}: {:.2} s", s.name, secs(s));
        }
        let overhead = wall - in_steps;
        println!(
            "BENCH {recipe}: steps {in_steps:.1} s, cc-ci overhead {overhead:.2} s = {:.1} % (goal <= 5 %)",
            100.0 * overhead / wall
        );
        ctl.stop().await;
    }
}
