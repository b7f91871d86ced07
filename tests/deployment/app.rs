//! An `AppDeployment` (the webapp-pg fixture: an app and its database): one secret from a file,
//! the other generated once and kept; deleting the record with `keepVolumes` keeps the data.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use cc_ci::api::{AppDeploymentSpec, DeploymentPhase, Object};
use cc_ci::store::Store;

use super::harness::{Deployments, docker_cli, labelled, sweep};
use crate::fixture_repo::FixtureRepo;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_takes_secrets_from_files_generates_the_rest_and_keeps_volumes_when_asked() {
    let name = "webapp-e";
    let id = format!("cc-ci.deployment=app-{name}");
    sweep(&id).await;
    let tmp = tempfile::tempdir().unwrap();
    let repo = FixtureRepo::build("webapp-pg", &tmp.path().join("repo"));
    let db_password = tmp.path().join("db-password");
    std::fs::write(&db_password, "from-a-file-0123456789").unwrap();
    let d = Deployments::start("test-deploy-e", Duration::from_secs(2)).await;
    let spec = AppDeploymentSpec {
        git: repo.url(),
        version: "1.1.0+0.2".into(),
        domain: "webapp.deploy-e.test".into(),
        env: BTreeMap::new(),
        secret_files: BTreeMap::from([(
            "db_password".to_string(),
            db_password.display().to_string(),
        )]),
        keep_volumes: true,
    };
    d.store.create(Object::new(name, spec)).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(180);
    let app = loop {
        let a = d.store.get::<AppDeploymentSpec>(name).unwrap().unwrap();
        if a.status.phase == DeploymentPhase::Ready {
            break a;
        }
        assert!(Instant::now() < deadline, "not Ready: {:?}", a.status);
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(
        (app.status.services_ready, app.status.services_total),
        (2, 2)
    );
    let secrets: Vec<String> = labelled(&id)
        .into_iter()
        .filter(|o| o.starts_with("secret "))
        .collect();
    assert_eq!(secrets.len(), 2, "{secrets:?}");
    assert!(
        secrets.iter().any(|s| s.contains("_db_password_v1-")),
        "{secrets:?}"
    );
    assert!(
        secrets.iter().any(|s| s.ends_with("_app_key_v1")),
        "the generated secret keeps abra's name: {secrets:?}"
    );
    // The database took the password from the file: the app (which reads it too) is healthy.
    let db = "webapp_deploy-e_test_db";
    let pw = docker_cli(&[
        "exec",
        &docker_cli(&[
            "ps",
            "-q",
            "--filter",
            &format!("label=com.docker.swarm.service.name={db}"),
        ]),
        "cat",
        "/run/secrets/db_password",
    ]);
    assert_eq!(pw, "from-a-file-0123456789");

    d.store.delete::<AppDeploymentSpec>(name).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(90);
    while d.store.get::<AppDeploymentSpec>(name).unwrap().is_some() {
        assert!(
            Instant::now() < deadline,
            "the app record was never removed"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let left = labelled(&id);
    assert!(
        left.iter().all(|o| o.starts_with("volume ")) && !left.is_empty(),
        "only the kept volumes remain: {left:?}"
    );
    d.stop().await;
    sweep(&id).await;
    assert_eq!(labelled(&id), Vec::<String>::new());
}
