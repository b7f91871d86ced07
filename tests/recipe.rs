//! Recipe sources, versions, app configuration, secrets and redaction against real git
//! repositories built from the fixture recipes.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use cc_ci::recipe::app::{self, AppParams, run_domain};
use cc_ci::recipe::backup::{self, BackupPlan, services_from_compose};
use cc_ci::recipe::secrets::SecretFile;
use cc_ci::recipe::source::{self, FetchOptions, SourceError};
use cc_ci::recipe::version::{head_version, previous_version};
use cc_ci::runlog::redact::Redactor;

use crate::fixture_repo::{FixtureRepo, git};

fn opts() -> FetchOptions {
    FetchOptions {
        depth: Some(1),
        timeout: Duration::from_secs(60),
    }
}

#[tokio::test]
async fn fetch_at_a_sha_checks_out_that_commit_with_every_tag() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = FixtureRepo::build("static-site", &tmp.path().join("origin"));
    let old = repo.commit_of("1.0.0+1.0").to_string();

    let checkout = source::fetch(&repo.url(), &old, &tmp.path().join("ws"), &opts())
        .await
        .unwrap();

    assert_eq!(checkout.head, old);
    assert_eq!(git(&checkout.dir, &["rev-parse", "HEAD"]), old);
    let compose = std::fs::read_to_string(checkout.dir.join("compose.yml")).unwrap();
    assert!(
        compose.contains("static-web:1.0"),
        "old compose checked out"
    );
    let mut tags: Vec<_> = checkout
        .tags
        .iter()
        .map(|t| (t.name.clone(), t.commit.clone()))
        .collect();
    tags.sort();
    let mut expected = repo.versions.clone();
    expected.sort();
    assert_eq!(tags, expected, "annotated tags are peeled to their commit");
    assert_eq!(
        head_version(&checkout.tags, &checkout.head).unwrap().tag(),
        "1.0.0+1.0"
    );
    assert_eq!(
        previous_version(&checkout.tags, &checkout.head, None).unwrap(),
        None
    );
}

#[tokio::test]
async fn fetch_of_a_pull_request_ref_gets_the_pr_head_and_picks_the_latest_release_to_upgrade_from()
{
    let tmp = tempfile::tempdir().unwrap();
    let repo = FixtureRepo::build("webapp-pg", &tmp.path().join("origin"));
    let pr_sha = repo.open_pull_request(7, |dir| {
        std::fs::write(dir.join("CHANGED"), "a change under review\n").unwrap();
    });

    let checkout = source::fetch(
        &repo.url(),
        "refs/pull/7/head",
        &tmp.path().join("ws"),
        &opts(),
    )
    .await
    .unwrap();

    assert_eq!(checkout.head, pr_sha);
    assert!(checkout.dir.join("CHANGED").exists());
    assert!(head_version(&checkout.tags, &checkout.head).is_none());
    let previous = previous_version(&checkout.tags, &checkout.head, None)
        .unwrap()
        .unwrap();
    assert_eq!(previous.tag(), "1.1.0+0.2");
    let named = previous_version(&checkout.tags, &checkout.head, Some("1.0.0+0.1")).unwrap();
    assert_eq!(named.unwrap().tag(), "1.0.0+0.1");

    // The previous version is checked out beside the head, sharing objects.
    let old = checkout
        .worktree(
            previous.tag(),
            &tmp.path().join("previous"),
            Duration::from_secs(30),
        )
        .await
        .unwrap();
    assert_eq!(old.head, repo.commit_of("1.1.0+0.2"));
    assert!(!old.dir.join("CHANGED").exists());
    assert!(old.dir.join("compose.yml").exists());
}

#[tokio::test]
async fn fetch_of_a_sha_only_reachable_from_a_pull_request_works() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = FixtureRepo::build("static-site", &tmp.path().join("origin"));
    let pr_sha = repo.open_pull_request(3, |dir| {
        std::fs::write(dir.join("CHANGED"), "x\n").unwrap();
    });
    for (i, wanted) in [pr_sha.clone(), pr_sha[..10].to_string()]
        .iter()
        .enumerate()
    {
        let ws = tmp.path().join(format!("ws{i}"));
        let checkout = source::fetch(&repo.url(), wanted, &ws, &opts())
            .await
            .unwrap();
        assert_eq!(checkout.head, pr_sha, "fetching {wanted}");
    }
}

#[tokio::test]
async fn fetch_by_branch_and_tag_name() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = FixtureRepo::build("static-site", &tmp.path().join("origin"));
    let main = source::fetch(&repo.url(), "main", &tmp.path().join("a"), &opts())
        .await
        .unwrap();
    assert_eq!(main.head, repo.commit_of("1.1.0+1.1"));
    let tag = source::fetch(&repo.url(), "1.0.0+1.0", &tmp.path().join("b"), &opts())
        .await
        .unwrap();
    assert_eq!(tag.head, repo.commit_of("1.0.0+1.0"));
}

#[tokio::test]
async fn fetch_failures_are_typed_and_never_show_credentials() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = FixtureRepo::build("static-site", &tmp.path().join("origin"));

    let missing = source::fetch(
        &repo.url(),
        "refs/pull/99/head",
        &tmp.path().join("a"),
        &opts(),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(missing, SourceError::RefNotFound { .. }),
        "{missing}"
    );

    let sha = "0123456789abcdef0123456789abcdef01234567";
    let unknown = source::fetch(&repo.url(), sha, &tmp.path().join("b"), &opts())
        .await
        .unwrap_err();
    assert!(
        matches!(unknown, SourceError::RefNotFound { .. }),
        "{unknown}"
    );

    // Nothing listens on port 9: the error carries git's stderr, without the password.
    let url = "http://ci-bot:hunter2-very-secret@127.0.0.1:9/recipe.git";
    let err = source::fetch(url, "main", &tmp.path().join("c"), &opts())
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, SourceError::Git { .. }), "{text}");
    assert!(!text.contains("hunter2"), "{text}");
    assert!(
        text.contains("127.0.0.1"),
        "git's own message is kept: {text}"
    );

    // Workspaces are never shared: fetching into a used one is refused.
    let used = tmp.path().join("a-used-one");
    std::fs::create_dir_all(&used).unwrap();
    std::fs::write(used.join("file"), "x").unwrap();
    let err = source::fetch(&repo.url(), "main", &used, &opts())
        .await
        .unwrap_err();
    assert!(matches!(err, SourceError::WorkspaceNotEmpty(_)), "{err}");
}

fn params(recipe: &str, version: &str, domain: &str) -> AppParams {
    AppParams {
        recipe: recipe.into(),
        version: version.into(),
        domain: domain.into(),
        stack: None,
        overrides: BTreeMap::new(),
    }
}

#[tokio::test]
async fn the_webapp_fixture_is_configured_like_abra_app_new() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = FixtureRepo::build("webapp-pg", &tmp.path().join("origin"));
    let head = source::fetch(&repo.url(), "main", &tmp.path().join("ws"), &opts())
        .await
        .unwrap();
    let version = head_version(&head.tags, &head.head).unwrap();
    let domain = run_domain("webapp-pg", Some(4), &head.head, 0, "ci.example.org");
    let mut p = params("webapp-pg", version.tag(), &domain);
    p.overrides.insert("TIMEOUT".into(), "300".into());

    let app = app::load(&head.dir, &p).unwrap();

    assert_eq!(app.stack, domain.replace('.', "_"));
    assert_eq!(app.env.get("DOMAIN"), Some(domain.as_str()));
    assert_eq!(app.env.get("STACK_NAME"), Some(app.stack.as_str()));
    assert_eq!(app.env.get("TYPE"), Some("webapp-pg:1.1.0+0.2"));
    assert_eq!(app.env.get("LETS_ENCRYPT_ENV"), Some(""));
    assert_eq!(
        app.env.get("PG_BACKUP_VERSION"),
        Some("v2"),
        "abra.sh export merged"
    );
    assert_eq!(
        app.env.get("TIMEOUT"),
        Some("300"),
        "Recipe override applied"
    );
    assert_eq!(app.compose_files, ["compose.yml"]);
    let names: Vec<String> = app
        .secrets
        .iter()
        .map(|s| s.swarm_name(&app.stack))
        .collect();
    assert_eq!(
        names,
        [
            format!("{}_app_key_v1", app.stack),
            format!("{}_db_password_v1", app.stack)
        ]
    );
    assert_eq!(app.secrets[0].length, Some(48));
    assert_eq!(app.secrets[1].length, None, "db_password is a passphrase");
}

#[tokio::test]
async fn upgrading_keeps_old_secrets_and_generates_only_the_new_one() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = FixtureRepo::build("webapp-pg", &tmp.path().join("origin"));
    let head = source::fetch(&repo.url(), "main", &tmp.path().join("ws"), &opts())
        .await
        .unwrap();
    let previous = previous_version(&head.tags, &head.head, None)
        .unwrap()
        .unwrap();
    assert_eq!(previous.tag(), "1.0.0+0.1");
    let old_dir = head
        .worktree(
            previous.tag(),
            &tmp.path().join("prev"),
            Duration::from_secs(30),
        )
        .await
        .unwrap();
    let domain = run_domain("webapp-pg", Some(9), &head.head, 0, "ci.example.org");

    let old = app::load(&old_dir.dir, &params("webapp-pg", previous.tag(), &domain)).unwrap();
    assert_eq!(old.env.get("PG_BACKUP_VERSION"), Some("v1"));
    let mut p = params("webapp-pg", "1.1.0+0.2", &domain);
    p.stack = Some(old.stack.clone());
    let new = app::load(&head.dir, &p).unwrap();
    assert_eq!(new.stack, old.stack, "the stack stays across stages");

    let redactor = Redactor::new();
    let file_path = tmp.path().join("state/runs/r1/secrets.json");
    let mut file = SecretFile::open(&file_path).unwrap();
    let before = file.ensure(&old.stack, &old.secrets, &redactor).unwrap();
    assert_eq!(before.len(), 1);
    drop(file);
    let mut file = SecretFile::open(&file_path).unwrap();
    let after = file.ensure(&new.stack, &new.secrets, &redactor).unwrap();
    assert_eq!(after.len(), 2);
    let db = after.iter().find(|s| s.name == "db_password").unwrap();
    assert_eq!(db.value, before[0].value, "kept across the upgrade");
    let mode = std::fs::metadata(&file_path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let log = format!("connecting with {} and key {}", db.value, after[0].value);
    assert_eq!(redactor.redact(&log), "connecting with *** and key ***");
}

#[tokio::test]
async fn the_static_site_fixture_has_no_secrets_and_a_templated_config_version() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = FixtureRepo::build("static-site", &tmp.path().join("origin"));
    let head = source::fetch(&repo.url(), "main", &tmp.path().join("ws"), &opts())
        .await
        .unwrap();
    let domain = run_domain("static-site", None, &head.head, 1, "ci.example.org");
    let app = app::load(&head.dir, &params("static-site", "1.1.0+1.1", &domain)).unwrap();
    assert!(app.secrets.is_empty());
    assert_eq!(app.env.get("SITE_FOOTER_VERSION"), Some("v1"));
    assert_eq!(app.env.get("SITE_TITLE"), Some("A static site"));
    assert_eq!(
        app.compose_files,
        ["compose.yml"],
        "the listing overlay is commented out"
    );
    let labels = app::app_labels(&app.stack, "static-site", "1.1.0+1.1");
    assert_eq!(
        labels[&format!("coop-cloud.{}.version", app.stack)],
        "1.1.0+1.1"
    );
}

fn load_compose(app: &app::App) -> cc_ci::swarm::compose::ComposeFile {
    cc_ci::swarm::compose::load(&app.dir, &app.compose_files, &app.env.to_map())
        .unwrap()
        .compose
}

#[tokio::test]
async fn backup_plans_come_from_the_fixture_compose_labels() {
    let tmp = tempfile::tempdir().unwrap();
    let web = FixtureRepo::build("webapp-pg", &tmp.path().join("web"));
    let web_ws = source::fetch(&web.url(), "main", &tmp.path().join("w"), &opts())
        .await
        .unwrap();
    let domain = run_domain("webapp-pg", Some(1), &web_ws.head, 0, "ci.example.org");
    let web_app = app::load(&web_ws.dir, &params("webapp-pg", "1.1.0+0.2", &domain)).unwrap();
    let BackupPlan::Services(plan) =
        backup::plan(&services_from_compose(&load_compose(&web_app))).unwrap()
    else {
        panic!("webapp-pg has backup labels");
    };
    assert_eq!(plan.len(), 1);
    assert_eq!(plan[0].service, "db");
    assert_eq!(
        plan[0].backup_pre_hook.as_deref(),
        Some("/pg_backup.sh backup")
    );
    assert_eq!(
        plan[0].restore_post_hook.as_deref(),
        Some("/pg_backup.sh restore")
    );
    assert_eq!(plan[0].volumes[0].volume, "postgres");
    assert_eq!(plan[0].volumes[0].paths, ["backup.sql"]);

    // ENABLE_BACKUPS=false (an override) switches the labels off: nothing to test.
    let mut p = params("webapp-pg", "1.1.0+0.2", &domain);
    p.overrides.insert("ENABLE_BACKUPS".into(), "false".into());
    let off = app::load(&web_ws.dir, &p).unwrap();
    let plan = backup::plan(&services_from_compose(&load_compose(&off))).unwrap();
    assert_eq!(plan, BackupPlan::NotApplicable);

    let site = FixtureRepo::build("static-site", &tmp.path().join("site"));
    let site_ws = source::fetch(&site.url(), "main", &tmp.path().join("s"), &opts())
        .await
        .unwrap();
    let domain = run_domain("static-site", Some(1), &site_ws.head, 0, "ci.example.org");
    let site_app = app::load(&site_ws.dir, &params("static-site", "1.1.0+1.1", &domain)).unwrap();
    let BackupPlan::Services(plan) =
        backup::plan(&services_from_compose(&load_compose(&site_app))).unwrap()
    else {
        panic!("static-site has backup labels");
    };
    assert_eq!(plan[0].service, "app");
    assert_eq!(plan[0].volumes[0].volume, "content");
    assert_eq!(plan[0].volumes[0].target, "/srv/www");
    assert!(plan[0].volumes[0].paths.is_empty(), "the whole volume");
}

#[tokio::test]
async fn the_app_service_gets_the_app_env_and_abra_labels() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = FixtureRepo::build("static-site", &tmp.path().join("origin"));
    let ws = source::fetch(&repo.url(), "main", &tmp.path().join("ws"), &opts())
        .await
        .unwrap();
    let domain = run_domain("static-site", Some(2), &ws.head, 0, "ci.example.org");
    let a = app::load(&ws.dir, &params("static-site", "1.1.0+1.1", &domain)).unwrap();
    let mut compose = load_compose(&a);
    app::prepare_compose(&mut compose, &a.env, "static-site", "1.1.0+1.1");
    let svc = &compose.services["app"];
    assert_eq!(
        svc.environment["SITE_FOOTER_VERSION"].as_deref(),
        Some("v1")
    );
    assert_eq!(
        svc.environment["STACK_NAME"].as_deref(),
        Some(a.stack.as_str())
    );
    assert_eq!(svc.environment["DOMAIN"].as_deref(), Some(domain.as_str()));
    let labels = &svc.deploy.labels;
    assert_eq!(
        labels[&format!("coop-cloud.{}.recipe", a.stack)],
        "static-site"
    );
    assert_eq!(
        labels[&format!("coop-cloud.{}.version", a.stack)],
        "1.1.0+1.1"
    );
    assert_eq!(
        labels[&format!("traefik.http.routers.{}.tls.certresolver", a.stack)],
        ""
    );
    assert_eq!(labels[&format!("coop-cloud.{}.timeout", a.stack)], "60");
}
