//! A recipe app's lifecycle on the real local swarm: deploy the previous version, write data,
//! upgrade in place to the head (new secret generated, old ones kept), check the data, back
//! up, lose the data, restore, check it again, tear everything down.

mod janitor;

use std::collections::BTreeMap;
use std::time::Duration;

use cc_ci::recipe::app::{self, AppParams, run_domain};
use cc_ci::recipe::backup::{self, BackupPlan, ServiceBackup, services_from_compose};
use cc_ci::recipe::deploy::{self, StackOptions};
use cc_ci::recipe::redact::Redactor;
use cc_ci::recipe::secrets::SecretFile;
use cc_ci::recipe::snapshot;
use cc_ci::recipe::source::{self, FetchOptions};
use cc_ci::recipe::version::previous_version;
use cc_ci::swarm::compose;
use cc_ci::swarm::converge::{self, ConvergeOptions};
use cc_ci::swarm::docker;

use crate::fixture_repo::FixtureRepo;

mod crash;
pub(crate) mod harness;
mod testrun;

use harness::docker_cli;

/// Runs a small Python snippet inside the stack's `app` container.
fn in_app(stack: &str, code: &str) -> String {
    let filter = format!("label=com.docker.swarm.service.name={stack}_app");
    let id = docker_cli(&["ps", "-q", "--filter", &filter]);
    let id = id.lines().next().expect("an app container is running");
    docker_cli(&["exec", id, "python3", "-c", code])
}

const POST: &str = "import urllib.request as u\n\
r = u.urlopen(u.Request('http://127.0.0.1:8000/notes', data=b'written-before-upgrade', method='POST'))\n\
print(r.status)";
const GET: &str = "import urllib.request as u\n\
r = u.urlopen('http://127.0.0.1:8000/notes')\n\
print(r.read().decode(), r.headers.get('X-Signature'))";

const DELETE: &str = "import urllib.request as u\n\
r = u.urlopen(u.Request('http://127.0.0.1:8000/notes', method='DELETE'))\n\
print(r.status)";

/// Image of the (never started) helper containers that copy volume files.
const HELPER_IMAGE: &str = "ccci/base:bookworm";

/// The controller instance the lifecycle tests label their objects with.
const TEST_INSTANCE: &str = "lifecycle-test";

fn backup_plan(app: &app::App) -> Vec<ServiceBackup> {
    let loaded = compose::load(&app.dir, &app.compose_files, &app.env.to_map()).unwrap();
    match backup::plan(&services_from_compose(&loaded.compose)).unwrap() {
        BackupPlan::Services(s) => s,
        BackupPlan::NotApplicable => panic!("{} has backup labels", app.dir.display()),
    }
}

fn leftovers(run: &str) -> Vec<String> {
    harness::labelled(&format!("cc-ci.run={run}"))
}

#[tokio::test]
async fn webapp_upgrade_and_backup_restore_keep_data_and_teardown_leaves_nothing() {
    let run = "lifecycle-test-webapp-upgrade";
    let engine = docker::connect().await.unwrap();
    deploy::teardown(&engine, run, Duration::from_secs(60))
        .await
        .unwrap();

    let tmp = tempfile::tempdir().unwrap();
    let repo = FixtureRepo::build("webapp-pg", &tmp.path().join("origin"));
    let opts = FetchOptions::default();
    let head = source::fetch(&repo.url(), "main", &tmp.path().join("head"), &opts)
        .await
        .unwrap();
    let previous = previous_version(&head.tags, &head.head, None)
        .unwrap()
        .unwrap();
    let old_dir = head
        .worktree(
            previous.tag(),
            &tmp.path().join("previous"),
            Duration::from_secs(30),
        )
        .await
        .unwrap();
    let domain = run_domain("webapp-pg", Some(1), &head.head, 0, "ci.test");
    let mut params = AppParams {
        recipe: "webapp-pg".into(),
        version: previous.tag().into(),
        domain,
        stack: None,
        overrides: BTreeMap::new(),
    };
    let old = app::load(&old_dir.dir, &params).unwrap();
    let redactor = Redactor::new();
    let mut secrets = SecretFile::open(&tmp.path().join("secrets.json")).unwrap();
    let converge_opts = ConvergeOptions {
        timeout: Some(Duration::from_secs(180)),
        ..ConvergeOptions::default()
    };

    // The previous version, with data written into it.
    let generated = secrets.ensure(&old.stack, &old.secrets, &redactor).unwrap();
    let stack_opts = StackOptions {
        instance: TEST_INSTANCE,
        run,
        recipe: "webapp-pg",
        version: previous.tag(),
        force_dnsrr: true,
    };
    let spec = deploy::stack_spec(&old, &generated, &stack_opts).unwrap();
    deploy::deploy(&engine, &spec).await.unwrap();
    converge::wait(&engine, &old.stack, &converge_opts, |_| {})
        .await
        .unwrap();
    assert_eq!(in_app(&old.stack, POST), "201");
    let before = in_app(&old.stack, GET);
    assert!(
        before.ends_with(" None"),
        "no app key before the upgrade: {before}"
    );

    // Upgrade in place to the head: same stack, the new secret generated.
    params.version = "1.1.0+0.2".into();
    params.stack = Some(old.stack.clone());
    let new = app::load(&head.dir, &params).unwrap();
    let generated = secrets.ensure(&new.stack, &new.secrets, &redactor).unwrap();
    assert_eq!(generated.len(), 2);
    let stack_opts = StackOptions {
        version: "1.1.0+0.2",
        ..stack_opts
    };
    let spec = deploy::stack_spec(&new, &generated, &stack_opts).unwrap();
    let report = deploy::deploy(&engine, &spec).await.unwrap();
    assert_eq!(report.updated.len(), 2, "{report:?}");
    converge::wait(&engine, &new.stack, &converge_opts, |_| {})
        .await
        .unwrap();
    let after = in_app(&new.stack, GET);
    assert!(after.starts_with("[\"written-before-upgrade\"]"), "{after}");
    assert!(
        !after.ends_with(" None"),
        "the new app key is in use: {after}"
    );
    assert!(!leftovers(run).is_empty());

    // Backup (pg_dump pre-hook), lose the data, restore (post-hook loads the dump).
    let plan = backup_plan(&new);
    let mut log = Vec::new();
    let archives = snapshot::backup(
        &engine,
        &new.stack,
        &plan,
        &tmp.path().join("backup"),
        HELPER_IMAGE,
        &deploy::run_labels(TEST_INSTANCE, run),
        &mut |l: &str| log.push(l.to_string()),
    )
    .await
    .unwrap();
    assert_eq!(archives.len(), 1, "{archives:?}");
    assert!(archives[0].content_bytes > 0);
    assert_eq!(in_app(&new.stack, DELETE), "204");
    assert!(in_app(&new.stack, GET).starts_with("[]"));
    snapshot::restore(
        &engine,
        &new.stack,
        &plan,
        &archives,
        HELPER_IMAGE,
        &deploy::run_labels(TEST_INSTANCE, run),
        &mut |l: &str| log.push(l.to_string()),
    )
    .await
    .unwrap();
    let restored = in_app(&new.stack, GET);
    assert!(
        restored.starts_with("[\"written-before-upgrade\"]"),
        "{restored}\n{log:#?}"
    );
    assert!(
        log.iter().any(|l| l.contains("restore post-hook")),
        "{log:#?}"
    );

    let removed = deploy::teardown(&engine, run, Duration::from_secs(120))
        .await
        .unwrap();
    assert_eq!(removed.services.len(), 2, "{removed:?}");
    assert_eq!(removed.secrets.len(), 2, "{removed:?}");
    assert_eq!(leftovers(run), Vec::<String>::new());
}

/// Runs `curl` inside the stack's `app` container (the static-web image carries it).
fn curl_in_app(stack: &str, args: &[&str]) -> String {
    let filter = format!("label=com.docker.swarm.service.name={stack}_app");
    let id = docker_cli(&["ps", "-q", "--filter", &filter]);
    let id = id.lines().next().expect("an app container is running");
    let mut cmd = vec![
        "exec",
        id,
        "curl",
        "-s",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
    ];
    cmd.extend(args);
    docker_cli(&cmd)
}

#[tokio::test]
async fn static_site_volume_is_backed_up_whole_and_restored() {
    let run = "lifecycle-test-static-backup";
    let engine = docker::connect().await.unwrap();
    deploy::teardown(&engine, run, Duration::from_secs(60))
        .await
        .unwrap();

    let tmp = tempfile::tempdir().unwrap();
    let repo = FixtureRepo::build("static-site", &tmp.path().join("origin"));
    let head = source::fetch(
        &repo.url(),
        "main",
        &tmp.path().join("head"),
        &FetchOptions::default(),
    )
    .await
    .unwrap();
    let params = AppParams {
        recipe: "static-site".into(),
        version: "1.1.0+1.1".into(),
        domain: run_domain("static-site", Some(5), &head.head, 0, "ci.test"),
        stack: None,
        overrides: BTreeMap::new(),
    };
    let site = app::load(&head.dir, &params).unwrap();
    let opts = StackOptions {
        instance: TEST_INSTANCE,
        run,
        recipe: "static-site",
        version: "1.1.0+1.1",
        force_dnsrr: true,
    };
    let spec = deploy::stack_spec(&site, &[], &opts).unwrap();
    deploy::deploy(&engine, &spec).await.unwrap();
    let converge_opts = ConvergeOptions {
        timeout: Some(Duration::from_secs(90)),
        ..ConvergeOptions::default()
    };
    converge::wait(&engine, &site.stack, &converge_opts, |_| {})
        .await
        .unwrap();
    let marker = "http://127.0.0.1/markers/m1.txt";
    assert_eq!(
        curl_in_app(&site.stack, &["-X", "PUT", "--data", "seeded", marker]),
        "201"
    );

    let plan = backup_plan(&site);
    let labels = deploy::run_labels(TEST_INSTANCE, run);
    let archives = snapshot::backup(
        &engine,
        &site.stack,
        &plan,
        &tmp.path().join("backup"),
        HELPER_IMAGE,
        &labels,
        &mut |_: &str| {},
    )
    .await
    .unwrap();
    assert_eq!(archives[0].path, ".");
    assert_eq!(curl_in_app(&site.stack, &["-X", "DELETE", marker]), "204");
    assert_eq!(curl_in_app(&site.stack, &[marker]), "404");
    snapshot::restore(
        &engine,
        &site.stack,
        &plan,
        &archives,
        HELPER_IMAGE,
        &labels,
        &mut |_: &str| {},
    )
    .await
    .unwrap();
    assert_eq!(curl_in_app(&site.stack, &[marker]), "200");
    assert_eq!(
        curl_in_app(&site.stack, &["http://127.0.0.1/footer.html"]),
        "200"
    );

    deploy::teardown(&engine, run, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(leftovers(run), Vec::<String>::new());
}
