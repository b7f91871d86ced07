//! What a run leaves alone and what it leaves behind, on the real swarm: two controller
//! instances sharing one swarm run same-named runs without touching each other's objects; a
//! run whose Recipe disappears mid-run still removes its workspace and secrets file; a secret
//! the app prints before crashing reaches no log, status or store export.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cc_ci::api::{RecipeSpec, RunPhase, StageKind};
use cc_ci::recipe::secrets::SecretFile;
use cc_ci::store::Store;

use super::harness::{
    Controller, DataChecks, RunSpec, describe, docker_cli, edit, leftovers, settings, sweep,
};
use crate::fixture_repo::FixtureRepo;

/// A volume labelled as an object of run `run` of controller `instance` (what a deploy would
/// label it), standing for that instance's app.
fn marker(instance: &str, run: &str) -> String {
    let name = format!("{instance}-{run}-marker");
    docker_cli(&[
        "volume",
        "create",
        "--label",
        "cc-ci.managed=true",
        "--label",
        &format!("cc-ci.instance={instance}"),
        "--label",
        &format!("cc-ci.run={run}"),
        &name,
    ]);
    name
}

fn volume_exists(name: &str) -> bool {
    !docker_cli(&["volume", "ls", "-q", "--filter", &format!("name=^{name}$")]).is_empty()
}

fn install_only(name: &str) -> RunSpec<'_> {
    RunSpec {
        name,
        recipe: "static-site",
        git_ref: "main",
        pr: None,
        stages: Some(&[StageKind::Install]),
        upgrade_from: None,
    }
}

#[tokio::test]
async fn two_instances_run_same_named_runs_and_neither_touches_the_others_objects() {
    let (a, b) = ("t-iso-a", "t-iso-b");
    sweep(a).await;
    sweep(b).await;
    let tmp = tempfile::tempdir().unwrap();
    let repo = FixtureRepo::build("static-site", &tmp.path().join("origin"));
    for (me, other) in [(a, b), (b, a)] {
        // The other instance's app of a run with the same name.
        let theirs = marker(other, "shared");
        let mut s = settings(me);
        s.base_domain = format!("{me}.test");
        let ctl = Controller::start(s, Arc::new(DataChecks)).await;
        ctl.recipe("static-site", &repo.url(), &[]).await;
        ctl.run(install_only("shared")).await;
        let run = ctl.wait_done("shared", Duration::from_secs(300)).await;
        assert_eq!(run.status.phase, RunPhase::Succeeded, "{}", describe(&run));
        assert_eq!(leftovers(me), Vec::<String>::new(), "{me} removed its own");
        assert!(
            volume_exists(&theirs),
            "{me}'s run `shared` (remove step and teardown) removed {other}'s object"
        );
        ctl.stop().await;
        sweep(other).await;
        assert!(!volume_exists(&theirs));
    }
}

/// Waits until the run's secrets file holds a generated value, and returns the values.
async fn generated_secrets(ctl: &Controller, run: &str) -> Vec<String> {
    let path = ctl.run_dir(run).join("secrets.json");
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        if let Ok(file) = SecretFile::open(&path)
            && !file.values().is_empty()
        {
            return file.values().values().cloned().collect();
        }
        assert!(
            Instant::now() < deadline,
            "no secret generated: {}",
            describe(&ctl.get(run).unwrap())
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_run_whose_recipe_is_deleted_mid_run_leaves_no_workspace_or_secrets_file() {
    let instance = "t-iso-gone";
    sweep(instance).await;
    let tmp = tempfile::tempdir().unwrap();
    let repo = FixtureRepo::build("webapp-pg", &tmp.path().join("origin"));
    let ctl = Controller::start(settings(instance), Arc::new(DataChecks)).await;
    ctl.recipe("webapp-pg", &repo.url(), &[]).await;
    ctl.run(RunSpec {
        recipe: "webapp-pg",
        ..install_only("orphan")
    })
    .await;
    generated_secrets(&ctl, "orphan").await;
    assert!(ctl.run_dir("orphan").join("workspace").exists());
    ctl.store.delete::<RecipeSpec>("webapp-pg").await.unwrap();
    let run = ctl.wait_done("orphan", Duration::from_secs(300)).await;
    assert_eq!(run.status.phase, RunPhase::Error, "{}", describe(&run));
    assert!(
        run.status.message.contains("does not exist"),
        "{}",
        run.status.message
    );
    assert_eq!(leftovers(instance), Vec::<String>::new());
    let dir = ctl.run_dir("orphan");
    assert!(
        !dir.join("secrets.json").exists(),
        "the secrets file is gone"
    );
    assert!(!dir.join("workspace").exists(), "the checkouts are gone");
    ctl.stop().await;
}

#[tokio::test]
async fn a_secret_the_app_prints_before_crashing_reaches_no_log_status_or_export() {
    let instance = "t-iso-leak";
    sweep(instance).await;
    let tmp = tempfile::tempdir().unwrap();
    let repo = FixtureRepo::build("webapp-pg", &tmp.path().join("origin"));
    repo.open_pull_request(7, |dir| {
        edit(dir, "compose.yml", |t| {
            let crashing = t
                .replacen(
                    "    image: ccci-fixture/webapp:0.2\n",
                    "    image: ccci-fixture/webapp:0.2\n    command: [\"sh\", \"-c\", \
                     \"echo the password is $$(cat /run/secrets/db_password); exit 3\"]\n",
                    1,
                )
                .replacen("condition: on-failure", "condition: none", 1);
            assert_ne!(crashing, t, "the fixture's app service changed");
            crashing
        })
    });
    let ctl = Controller::start(settings(instance), Arc::new(DataChecks)).await;
    ctl.recipe("webapp-pg", &repo.url(), &[]).await;
    ctl.run(RunSpec {
        recipe: "webapp-pg",
        git_ref: "refs/pull/7/head",
        pr: Some(7),
        ..install_only("leaky")
    })
    .await;
    let secrets = generated_secrets(&ctl, "leaky").await;
    let run = ctl.wait_done("leaky", Duration::from_secs(300)).await;
    assert_eq!(run.status.phase, RunPhase::Failed, "{}", describe(&run));
    let logs = ctl.logs("leaky");
    let status = serde_json::to_string(&run.status).unwrap();
    let mut export = Vec::new();
    cc_ci::store::export(&ctl.store, &mut export).unwrap();
    let export = String::from_utf8(export).unwrap();
    // The crash was seen, and its output kept (masked): the test would prove nothing otherwise.
    assert!(logs.contains("the password is"), "{logs}");
    assert!(status.contains("the password is"), "{status}");
    for secret in &secrets {
        assert!(
            !logs.contains(secret.as_str()),
            "run log leaks the secret:\n{logs}"
        );
        assert!(
            !status.contains(secret.as_str()),
            "status leaks it: {status}"
        );
        assert!(!export.contains(secret.as_str()), "store export leaks it");
    }
    assert_eq!(leftovers(instance), Vec::<String>::new());
    ctl.stop().await;
}
