//! Deploy → converge → update (image tag, environment, config version) → remove of a compose
//! stack on the real Swarm: each update touches exactly the service that changed, and removal
//! leaves nothing behind.

use std::path::Path;

use bollard::Docker;
use bollard::models::{EndpointSpecModeEnum, ServiceSpec};
use cc_ci::swarm::apply::{ApplyOptions, ApplyReport, apply};
use cc_ci::swarm::converge::wait;
use cc_ci::swarm::docker::EngineError;
use cc_ci::swarm::remove::remove;

use super::{fresh, objects_left, quick, render_dir, sweep_options, write_files};

const STACK: &str = "ccci_swarm_upd";
const TEST: &str = "update";

const COMPOSE: &str = r#"
version: "3.8"
services:
  app:
    image: ccci-fixture/nginx:${APP_TAG}
    networks: [backend]
    deploy:
      labels:
        - "coop-cloud.${STACK_NAME}.timeout=90"
  worker:
    image: ccci-fixture/nginx:1.24
    environment:
      - GREETING=${GREETING}
    networks: [backend]
  web:
    image: ccci-fixture/nginx:1.24
    configs:
      - source: site
        target: /var/www/html/index.html
    networks: [backend]
  steady:
    image: ccci-fixture/nginx:1.24
    networks: [backend]
configs:
  site:
    name: ${STACK_NAME}_site_${SITE_VERSION}
    file: site.html
networks:
  backend:
"#;

fn env(app_tag: &str, greeting: &str, site_version: &str) -> String {
    format!("APP_TAG={app_tag}\nGREETING={greeting}\nSITE_VERSION={site_version}\n")
}

fn names(short: &[&str]) -> Vec<String> {
    short.iter().map(|s| format!("{STACK}_{s}")).collect()
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

async fn stored(docker: &Docker, service: &str) -> ServiceSpec {
    docker
        .inspect_service(&format!("{STACK}_{service}"), None)
        .await
        .unwrap()
        .spec
        .unwrap()
}

/// Applies the files in `dir`, waits for convergence, and returns what apply did.
async fn deploy(docker: &Docker, dir: &Path) -> ApplyReport {
    let stack = render_dir(dir, STACK, TEST);
    let report = apply(docker, &stack, &ApplyOptions::default())
        .await
        .expect("apply");
    wait(docker, STACK, &quick(90), |line| eprintln!("  {line}"))
        .await
        .expect("converge");
    report
}

/// Asserts that only `changed` services were updated (none created), the rest left alone.
fn only_updated(report: &ApplyReport, changed: &[&str]) {
    assert_eq!(sorted(report.updated.clone()), names(changed), "{report:?}");
    assert!(report.created.is_empty(), "{report:?}");
    let all = ["app", "steady", "web", "worker"];
    let rest: Vec<&str> = all.into_iter().filter(|s| !changed.contains(s)).collect();
    assert_eq!(sorted(report.unchanged.clone()), names(&rest), "{report:?}");
}

fn env_of(spec: &ServiceSpec) -> Vec<String> {
    spec.task_template
        .as_ref()
        .and_then(|t| t.container_spec.as_ref())
        .and_then(|c| c.env.clone())
        .unwrap_or_default()
}

fn config_names(spec: &ServiceSpec) -> Vec<String> {
    spec.task_template
        .as_ref()
        .and_then(|t| t.container_spec.as_ref())
        .and_then(|c| c.configs.clone())
        .unwrap_or_default()
        .into_iter()
        .filter_map(|c| c.config_name)
        .collect()
}

#[tokio::test]
async fn compose_stack_updates_exactly_the_changed_services_and_is_removed_completely() {
    let docker = fresh(TEST).await;
    let dir = tempfile::tempdir().unwrap();
    let files = |env_text: &str, site: &str| {
        write_files(
            dir.path(),
            &[
                ("compose.yml", COMPOSE),
                (".env", env_text),
                ("site.html", site),
            ],
        )
    };

    files(&env("1.24", "hello", "v1"), "<h1>one</h1>");
    let first = deploy(&docker, dir.path()).await;
    assert_eq!(
        sorted(first.created.clone()),
        names(&["app", "steady", "web", "worker"])
    );
    let app = stored(&docker, "app").await;
    assert_eq!(
        app.endpoint_spec.and_then(|e| e.mode),
        Some(EndpointSpecModeEnum::DNSRR),
        "the dnsrr override reaches the engine"
    );

    let again = deploy(&docker, dir.path()).await;
    only_updated(&again, &[]);

    // A new image tag: only `app` changes.
    files(&env("1.25", "hello", "v1"), "<h1>one</h1>");
    only_updated(&deploy(&docker, dir.path()).await, &["app"]);
    let image = stored(&docker, "app")
        .await
        .task_template
        .and_then(|t| t.container_spec)
        .and_then(|c| c.image);
    assert_eq!(image.as_deref(), Some("ccci-fixture/nginx:1.25"));

    // A changed environment value: only `worker` changes.
    files(&env("1.25", "goodbye", "v1"), "<h1>one</h1>");
    only_updated(&deploy(&docker, dir.path()).await, &["worker"]);
    assert!(
        env_of(&stored(&docker, "worker").await).contains(&"GREETING=goodbye".to_owned()),
        "the worker runs with the new environment"
    );

    // New config content under the same version: refused (configs are immutable), nothing updated.
    files(&env("1.25", "goodbye", "v1"), "<h1>two</h1>");
    let stack = render_dir(dir.path(), STACK, TEST);
    let err = apply(&docker, &stack, &ApplyOptions::default())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, EngineError::ConfigChanged { name } if name == &format!("{STACK}_site_v1")),
        "{err}"
    );
    assert_eq!(
        config_names(&stored(&docker, "web").await),
        [format!("{STACK}_site_v1")]
    );

    // The config's version bumped with it: only `web` changes, to the new config.
    files(&env("1.25", "goodbye", "v2"), "<h1>two</h1>");
    only_updated(&deploy(&docker, dir.path()).await, &["web"]);
    assert_eq!(
        config_names(&stored(&docker, "web").await),
        [format!("{STACK}_site_v2")]
    );

    let removed = remove(&docker, STACK, &sweep_options()).await.unwrap();
    assert_eq!(
        sorted(removed.services),
        names(&["app", "steady", "web", "worker"])
    );
    assert_eq!(
        sorted(removed.configs),
        names(&["site_v1", "site_v2"]),
        "the superseded config goes too"
    );
    assert_eq!(removed.networks, names(&["backend"]));
    assert_eq!(objects_left(&docker, TEST).await, Vec::<String>::new());
}
