//! The native swarm engine against the real local Swarm: apply, converge, update, remove.
//!
//! Needs `scripts/test-env` (swarm, `proxy` network, fixture images). Every object carries
//! `cc-ci.managed=true` and `cc-ci.test=<test>`; each test first sweeps leftovers of its label.

mod bad_input;
mod broken;
mod hand_built;
mod update;

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use bollard::Docker;
use cc_ci::swarm::StackSpec;
use cc_ci::swarm::apply::{ApplyOptions, apply};
use cc_ci::swarm::converge::{ConvergeOptions, wait};
use cc_ci::swarm::docker::connect;
use cc_ci::swarm::remove::{RemoveOptions, remove, remove_by_label};

/// The label value identifying one test's objects.
pub fn test_label(test: &str) -> (String, String) {
    ("cc-ci.test".to_owned(), format!("swarm-{test}"))
}

/// The extra labels of one test's stacks.
pub fn extra_labels(test: &str) -> BTreeMap<String, String> {
    let (k, v) = test_label(test);
    BTreeMap::from([("cc-ci.managed".to_owned(), "true".to_owned()), (k, v)])
}

/// Connects and sweeps what an earlier (killed) run of `test` left behind.
pub async fn fresh(test: &str) -> Docker {
    let docker = connect()
        .await
        .expect("Docker reachable (run scripts/test-env)");
    let (k, v) = test_label(test);
    remove_by_label(&docker, &format!("{k}={v}"), &sweep_options())
        .await
        .expect("sweeping leftovers");
    docker
}

fn sweep_options() -> RemoveOptions {
    RemoveOptions {
        volumes: true,
        timeout: Duration::from_secs(60),
    }
}

/// Every object (service, container, network, secret, config, volume) labelled for `test`, as
/// `kind name`.
pub async fn objects_left(docker: &Docker, test: &str) -> Vec<String> {
    use bollard::query_parameters::*;
    let (k, v) = test_label(test);
    let filters = || {
        Some(HashMap::from([(
            "label".to_owned(),
            vec![format!("{k}={v}")],
        )]))
    };
    let mut left = Vec::new();
    let services = docker
        .list_services(Some(ListServicesOptions {
            filters: filters(),
            status: None,
        }))
        .await
        .unwrap();
    left.extend(
        services
            .into_iter()
            .map(|s| format!("service {:?}", s.spec.and_then(|s| s.name))),
    );
    let containers = docker
        .list_containers(Some(ListContainersOptions {
            all: true,
            filters: filters(),
            ..Default::default()
        }))
        .await
        .unwrap();
    left.extend(
        containers
            .into_iter()
            .map(|c| format!("container {:?}", c.names)),
    );
    let networks = docker
        .list_networks(Some(ListNetworksOptions { filters: filters() }))
        .await
        .unwrap();
    left.extend(
        networks
            .into_iter()
            .map(|n| format!("network {:?}", n.name)),
    );
    let secrets = docker
        .list_secrets(Some(ListSecretsOptions { filters: filters() }))
        .await
        .unwrap();
    left.extend(
        secrets
            .into_iter()
            .map(|s| format!("secret {:?}", s.spec.and_then(|s| s.name))),
    );
    let configs = docker
        .list_configs(Some(ListConfigsOptions { filters: filters() }))
        .await
        .unwrap();
    left.extend(
        configs
            .into_iter()
            .map(|c| format!("config {:?}", c.spec.and_then(|s| s.name))),
    );
    let volumes = docker
        .list_volumes(Some(ListVolumesOptions { filters: filters() }))
        .await
        .unwrap();
    left.extend(
        volumes
            .volumes
            .unwrap_or_default()
            .into_iter()
            .map(|v| format!("volume {}", v.name)),
    );
    left
}

/// Writes `files` (`(relative path, contents)`) into `dir`, creating directories.
pub fn write_files(dir: &std::path::Path, files: &[(&str, &str)]) {
    for (name, text) in files {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
}

/// Renders the stack of `dir/.env` (its `COMPOSE_FILE`) as `cc-ci stack render` would, with the
/// test's labels and the dnsrr override on (this kernel has no IPVS).
pub fn render_dir(dir: &std::path::Path, stack: &str, test: &str) -> StackSpec {
    let source = cc_ci::cli::stack::SourceArgs {
        env_file: Some(dir.join(".env")),
        dnsrr: true,
        labels: extra_labels(test).into_iter().collect(),
        stack: stack.to_owned(),
        ..Default::default()
    };
    cc_ci::cli::stack::render(&source).expect("the stack renders")
}

fn quick(timeout_secs: u64) -> ConvergeOptions {
    ConvergeOptions {
        timeout: Some(Duration::from_secs(timeout_secs)),
        ..Default::default()
    }
}

async fn deploy(docker: &Docker, stack: &StackSpec) -> cc_ci::swarm::apply::ApplyReport {
    let report = apply(docker, stack, &ApplyOptions::default())
        .await
        .expect("apply");
    wait(docker, &stack.name, &quick(60), |line| eprintln!("{line}"))
        .await
        .expect("converge");
    report
}

#[tokio::test]
async fn hand_built_stack_deploys_reapplies_unchanged_and_leaves_nothing_behind() {
    let test = "hand-built";
    let docker = fresh(test).await;
    let stack = hand_built::web_stack("ccci_swarm_hb", extra_labels(test), "latest");

    let t0 = std::time::Instant::now();
    let first = deploy(&docker, &stack).await;
    eprintln!("{:?} deployed and converged", t0.elapsed());
    assert_eq!(first.created, vec!["ccci_swarm_hb_web".to_owned()]);

    let started = std::time::Instant::now();
    let again = apply(&docker, &stack, &ApplyOptions::default())
        .await
        .unwrap();
    eprintln!("unchanged re-apply took {:?}", started.elapsed());
    assert_eq!(
        again.unchanged,
        vec!["ccci_swarm_hb_web".to_owned()],
        "{again:?}"
    );
    assert!(
        again.created.is_empty() && again.updated.is_empty(),
        "{again:?}"
    );

    let bumped = hand_built::web_stack("ccci_swarm_hb", extra_labels(test), "1.25");
    let update = deploy(&docker, &bumped).await;
    assert_eq!(
        update.updated,
        vec!["ccci_swarm_hb_web".to_owned()],
        "{update:?}"
    );

    eprintln!("{:?} updated and converged", t0.elapsed());
    let removed = remove(&docker, &stack.name, &sweep_options())
        .await
        .unwrap();
    eprintln!("{:?} removed: {removed:?}", t0.elapsed());
    assert_eq!(removed.services, vec!["ccci_swarm_hb_web".to_owned()]);
    assert_eq!(objects_left(&docker, test).await, Vec::<String>::new());
    let again = remove(&docker, &stack.name, &sweep_options())
        .await
        .unwrap();
    assert!(again.is_empty(), "removing twice is a no-op: {again:?}");
}
