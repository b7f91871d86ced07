//! Hostile pull requests of a fixture recipe run as real TestRuns by the real controller on the
//! real swarm: each run ends `Failed` at its first deploy, naming the key and rule, with nothing
//! deployed, and the canary in none of the run's logs or status.

use std::sync::Arc;
use std::time::Duration;

use cc_ci::api::{RunPhase, StageKind, StagePhase};

use crate::fixture_repo::FixtureRepo;
use crate::lifecycle::harness::{
    Controller, DataChecks, RunSpec, describe, edit, labelled, leftovers, settings, sweep,
};

const CANARY: &str = "CANARY-testrun-5e2a";

#[tokio::test]
async fn hostile_pull_requests_fail_before_deploying_and_leak_nothing() {
    let instance = "t-confine-hostile";
    sweep(instance).await;
    let tmp = tempfile::tempdir().unwrap();
    let canary = tmp.path().join("outside").join("canary");
    std::fs::create_dir_all(canary.parent().unwrap()).unwrap();
    std::fs::write(&canary, format!("{CANARY}: not yaml {{")).unwrap();
    let repo = FixtureRepo::build("static-site", &tmp.path().join("origin"));
    // PR 1: the templated config's file becomes a committed symlink to the canary.
    let target = canary.clone();
    repo.open_pull_request(1, move |dir| {
        std::fs::remove_file(dir.join("footer.html.tmpl")).unwrap();
        std::os::unix::fs::symlink(&target, dir.join("footer.html.tmpl")).unwrap();
    });
    // PR 2: the Docker socket and a privileged container.
    repo.open_pull_request(2, |dir| {
        edit(dir, "compose.yml", |t| {
            t.replace(
                "      - content:/srv/www\n",
                "      - content:/srv/www\n      - /var/run/docker.sock:/var/run/docker.sock\n",
            )
            .replace("  app:\n", "  app:\n    privileged: true\n")
        })
    });
    let ctl = Controller::start(settings(instance), Arc::new(DataChecks)).await;
    ctl.recipe("static-site", &repo.url(), &[("TIMEOUT", "25")])
        .await;
    let cases = [
        (
            "hostile-config",
            1,
            vec!["configs.site_footer.file", "outside the recipe directory"],
        ),
        (
            "hostile-socket",
            2,
            vec![
                "host bind mount \"/var/run/docker.sock\"",
                "services.app.privileged",
                "bind:/var/run/docker.sock",
            ],
        ),
    ];
    for (name, pr, expected) in cases {
        let git_ref = format!("refs/pull/{pr}/head");
        ctl.run(RunSpec {
            name,
            recipe: "static-site",
            git_ref: &git_ref,
            pr: Some(pr),
            stages: None,
            upgrade_from: None,
        })
        .await;
        let run = ctl.wait_done(name, Duration::from_secs(180)).await;
        assert_eq!(run.status.phase, RunPhase::Failed, "{}", describe(&run));
        let install = run
            .status
            .stages
            .iter()
            .find(|s| s.stage == StageKind::Install)
            .unwrap();
        assert_eq!(install.phase, StagePhase::Failed, "{}", describe(&run));
        let deploy = install
            .steps
            .iter()
            .find(|s| s.name.as_str() == "deploy")
            .unwrap_or_else(|| panic!("no deploy step: {}", describe(&run)));
        assert_eq!(deploy.ok, Some(false), "{}", describe(&run));
        for e in &expected {
            assert!(
                install.message.contains(e),
                "{name}: {e:?} not in {}",
                install.message
            );
        }
        assert!(
            install
                .steps
                .iter()
                .filter(|s| s.name.as_str() != "deploy")
                .all(|s| s.started.is_none()),
            "{name}: nothing was deployed to converge: {}",
            describe(&run)
        );
        let status = serde_json::to_string(&run).unwrap();
        let logs = ctl.logs(name);
        assert!(!logs.is_empty(), "{name}: the run logged");
        assert!(
            !status.contains(CANARY),
            "{name}: canary in the status: {status}"
        );
        assert!(!logs.contains(CANARY), "{name}: canary in the logs: {logs}");
        assert_eq!(labelled(&format!("cc-ci.run={name}")), Vec::<String>::new());
    }
    assert_eq!(leftovers(instance), Vec::<String>::new());
    ctl.stop().await;
}
