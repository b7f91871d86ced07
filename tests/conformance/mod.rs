//! Fidelity of the native swarm engine: each setup of `tests/fixtures/stacks/` is deployed once
//! by `docker stack deploy --resolve-image never` and once by cc-ci (convert + apply); the
//! services, networks, secrets and configs the engine then holds must be the same, after
//! normalising what must differ (stack names, IDs, versions, timestamps, allocated subnets).
//!
//! Needs `scripts/test-env` (swarm, `proxy` network, fixture images) and the `docker` CLI.

mod cross;
mod engine_state;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use bollard::Docker;
use bollard::models::SecretSpec;
use cc_ci::cli::stack::{SourceArgs, render};
use cc_ci::swarm::apply::{ApplyOptions, apply};
use cc_ci::swarm::compose::compose_files_from_env;
use cc_ci::swarm::docker::{NAMESPACE_LABEL, connect};
use cc_ci::swarm::env::EnvFile;
use cc_ci::swarm::remove::{RemoveOptions, remove, remove_by_label};
use cc_ci::swarm::service_diff::json_diff;

/// Differences between what `docker stack deploy` and cc-ci create that are accepted, each with
/// its reason. Entries are JSON paths (as printed by the diff) that are dropped before comparing.
const ACCEPTED: &[(&str, &str)] = &[(
    "labels cc-ci.managed / cc-ci.test",
    "cc-ci puts its own labels (StackSpec.extra_labels) on every object so runs and tests can be \
         swept; docker stack deploy has no such option. Removed from every Labels map.",
)];

/// Labels cc-ci adds that the CLI cannot (see [`ACCEPTED`]).
pub const CC_CI_LABELS: &[&str] = &["cc-ci.managed", "cc-ci.test"];

fn setups_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/stacks")
}

fn label(setup: &str) -> String {
    format!("cc-ci.test=conformance-{setup}")
}

/// The two stack names of a setup: deployed by the CLI, and by cc-ci.
fn stack_names(setup: &str) -> (String, String) {
    let short = setup.replace('-', "_");
    (format!("cfd_{short}"), format!("cfc_{short}"))
}

/// The setup's environment: the process environment, its `.env`, and `STACK_NAME`.
fn setup_env(dir: &Path, stack: &str) -> BTreeMap<String, String> {
    let mut env: BTreeMap<String, String> = std::env::vars().collect();
    env.insert("STACK_NAME".to_owned(), stack.to_owned());
    let text = std::fs::read_to_string(dir.join(".env")).unwrap_or_default();
    let file = EnvFile::parse_with_base(&text, &env).expect("the setup's .env parses");
    env.extend(file.to_map());
    env
}

/// Secrets a setup declares as external (one `<name>` per line in `external-secrets`), created as
/// `<stack>_<name>` the way `abra app secret generate` would.
async fn create_external_secrets(docker: &Docker, dir: &Path, stack: &str, setup: &str) {
    let list = std::fs::read_to_string(dir.join("external-secrets")).unwrap_or_default();
    let (key, value) = label(setup)
        .split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .unwrap();
    for name in list.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let spec = SecretSpec {
            name: Some(format!("{stack}_{name}")),
            data: Some(base64_encode(format!("generated-{name}").as_bytes())),
            labels: Some(HashMap::from([
                (NAMESPACE_LABEL.to_owned(), stack.to_owned()),
                (key.clone(), value.clone()),
            ])),
            ..Default::default()
        };
        docker
            .create_secret(spec)
            .await
            .expect("creating an external secret");
    }
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

async fn sweep(docker: &Docker, setup: &str, stacks: [&str; 2]) {
    let opts = RemoveOptions {
        volumes: true,
        timeout: Duration::from_secs(60),
    };
    for stack in stacks {
        remove(docker, stack, &opts)
            .await
            .expect("removing a stack");
    }
    remove_by_label(docker, &label(setup), &opts)
        .await
        .expect("sweeping the setup's label");
}

fn docker_stack_deploy(dir: &Path, stack: &str) {
    let env = setup_env(dir, stack);
    let mut cmd = Command::new("docker");
    cmd.current_dir(dir).envs(&env).args([
        "stack",
        "deploy",
        "--detach=true",
        "--resolve-image",
        "never",
    ]);
    for file in compose_files_from_env(&env) {
        cmd.args(["-c", &file]);
    }
    let out = cmd
        .arg(stack)
        .output()
        .expect("running docker stack deploy");
    assert!(
        out.status.success(),
        "docker stack deploy failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn cc_ci_deploy(docker: &Docker, dir: &Path, stack: &str, setup: &str) {
    let (key, value) = label(setup)
        .split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .unwrap();
    let source = SourceArgs {
        env_file: Some(dir.join(".env")),
        labels: vec![
            ("cc-ci.managed".to_owned(), "true".to_owned()),
            (key, value),
        ],
        stack: stack.to_owned(),
        allow: allowances(dir),
        ..Default::default()
    };
    let spec = render(&source).expect("cc-ci renders the setup");
    apply(docker, &spec, &ApplyOptions::default())
        .await
        .expect("cc-ci applies the setup");
    // Applying the same files again must find every service already in place.
    let again = apply(docker, &spec, &ApplyOptions::default())
        .await
        .expect("cc-ci re-applies the setup");
    assert!(
        again.created.is_empty() && again.updated.is_empty(),
        "setup {setup}: re-applying unchanged files changed services: {again:?}"
    );
}

/// The compose policy exceptions a setup needs (its `allow` file, one per line), as an
/// operator would pass them with `cc-ci stack deploy --allow`.
pub(crate) fn allowances(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("allow"))
        .map(|t| t.lines().map(str::to_owned).collect())
        .unwrap_or_default()
}

/// Local tags a setup needs (`images`: one `<source> <name>` per line, `#` comments), created with
/// `docker tag`: nothing can be pulled here.
fn tag_images(dir: &Path) {
    let list = std::fs::read_to_string(dir.join("images")).unwrap_or_default();
    for line in list.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (source, name) = line.split_once(' ').expect("`<source> <name>` lines");
        let status = Command::new("docker")
            .args(["tag", source, name.trim()])
            .status()
            .expect("running docker tag");
        assert!(status.success(), "docker tag {source} {name}");
    }
}

/// Deploys `setup` both ways and asserts the engine holds the same objects; then that cc-ci
/// applying onto the CLI's stack, and the CLI deploying onto cc-ci's, change no service.
///
/// A setup with a `sequential` file publishes ingress ports (unique across the swarm): the CLI's
/// stack is removed before cc-ci deploys its own.
async fn conforms(setup: &str) {
    let dir = setups_dir().join(setup);
    let docker = connect()
        .await
        .expect("Docker reachable (run scripts/test-env)");
    let (by_cli, by_cc_ci) = stack_names(setup);
    sweep(&docker, setup, [&by_cli, &by_cc_ci]).await;
    tag_images(&dir);
    let sequential = dir.join("sequential").exists();

    create_external_secrets(&docker, &dir, &by_cli, setup).await;
    docker_stack_deploy(&dir, &by_cli);
    let expected = engine_state::read(&docker, &by_cli).await;
    let mut problems = cross::cc_ci_onto_docker(&docker, &dir, &by_cli).await;
    if sequential {
        let opts = RemoveOptions {
            volumes: true,
            timeout: Duration::from_secs(60),
        };
        remove(&docker, &by_cli, &opts)
            .await
            .expect("removing the CLI's stack");
    }
    create_external_secrets(&docker, &dir, &by_cc_ci, setup).await;
    cc_ci_deploy(&docker, &dir, &by_cc_ci, setup).await;
    let actual = engine_state::read(&docker, &by_cc_ci).await;
    problems.extend(cross::docker_onto_cc_ci(&docker, &dir, &by_cc_ci).await);
    sweep(&docker, setup, [&by_cli, &by_cc_ci]).await;

    assert!(
        expected
            .get("services")
            .is_some_and(|s| s.as_object().is_some_and(|o| !o.is_empty())),
        "the CLI created no services for {setup}"
    );
    let diff = json_diff(&expected, &actual);
    assert!(
        diff.is_empty(),
        "setup {setup}: cc-ci differs from docker stack deploy (left: CLI, right: cc-ci; accepted \
         differences already removed: {:?}):\n{}",
        ACCEPTED.iter().map(|(what, _)| *what).collect::<Vec<_>>(),
        diff.join("\n")
    );
    assert!(
        problems.is_empty(),
        "setup {setup}: switching between the CLI and cc-ci changed services:\n{}",
        problems.join("\n")
    );
}

macro_rules! setups {
    ($($test:ident => $dir:literal),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $test() {
                conforms($dir).await;
            }
        )*

        #[test]
        fn every_setup_directory_has_a_conformance_test() {
            let mut dirs: Vec<String> = std::fs::read_dir(setups_dir())
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            dirs.sort();
            let mut tested = vec![$($dir.to_owned()),*];
            tested.sort();
            assert_eq!(dirs, tested);
        }
    };
}

setups! {
    basic_web_matches_docker_stack_deploy => "basic-web",
    image_names_match_docker_stack_deploy => "image-names",
    overlay_fields_match_docker_stack_deploy => "overlay-fields",
    overlay_mentioning_services_matches_docker_stack_deploy => "overlay-mention",
    overlay_host_ports_match_docker_stack_deploy => "overlay-ports-host",
    overlay_ingress_ports_match_docker_stack_deploy => "overlay-ports-ingress",
    container_options_match_docker_stack_deploy => "container-options",
    coop_full_recipe_matches_docker_stack_deploy => "coop-full",
    global_mode_matches_docker_stack_deploy => "global-mode",
    host_ports_match_docker_stack_deploy => "host-ports",
    jobs_match_docker_stack_deploy => "jobs",
    multi_network_matches_docker_stack_deploy => "multi-network",
    overlays_match_docker_stack_deploy => "overlays",
    secrets_and_configs_match_docker_stack_deploy => "secrets-configs",
    update_policy_matches_docker_stack_deploy => "update-policy",
    volumes_and_resources_match_docker_stack_deploy => "volumes-db",
}
