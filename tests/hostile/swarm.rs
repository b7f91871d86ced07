//! Representative hostile recipes through `cc-ci stack deploy` on the real swarm: refused
//! before anything is created (no service, config, secret or network of the stack exists
//! afterwards, and nothing printed holds the canary); the Docker socket case deploys once the
//! exact allowance is given. Objects carry `cc-ci.instance=confine-hostile` and are removed.

use std::process::{Command, Output};

use super::{Case, assert_no_canary, case, write};

const INSTANCE: &str = "confine-hostile";

fn docker(args: &[&str]) -> Output {
    Command::new("docker").args(args).output().expect("docker")
}

/// Names of the swarm objects of `kind` labelled for `run`.
fn objects(kind: &str, run: &str) -> Vec<String> {
    let filter = format!("label=cc-ci.run={run}");
    let out = docker(&[kind, "ls", "-q", "--filter", &filter]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

fn every_object(run: &str) -> Vec<String> {
    ["service", "config", "secret", "network", "volume"]
        .iter()
        .flat_map(|k| objects(k, run))
        .collect()
}

/// `cc-ci stack deploy` of the case's checkout (its sample as the env file), as run `run`.
fn deploy(case: &Case, run: &str, stack: &str, allow: &[&str]) -> (Output, super::Written) {
    let w = write(case);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cc-ci"));
    cmd.args([
        "stack",
        "deploy",
        "--dnsrr",
        "--timeout",
        "60",
        "--env-file",
    ])
    .arg(w.checkout.join(".env.sample"))
    .args(["--label", "cc-ci.managed=true"])
    .args(["--label", &format!("cc-ci.instance={INSTANCE}")])
    .args(["--label", &format!("cc-ci.run={run}")]);
    for a in allow {
        cmd.args(["--allow", a]);
    }
    (cmd.arg(stack).output().unwrap(), w)
}

fn rm(stack: &str) {
    let out = Command::new(env!("CARGO_BIN_EXE_cc-ci"))
        .args(["stack", "rm", "--volumes", stack])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn hostile_recipes_are_refused_before_anything_reaches_the_swarm() {
    // A real victim secret, as another app's would be: the recipe names it `external`.
    let victim = "victim_example_com_db_password_v1";
    let _ = docker(&["secret", "rm", victim]);
    let mut create = Command::new("docker")
        .args(["secret", "create", "--label", "cc-ci.managed=true"])
        .args([
            "--label",
            &format!("cc-ci.instance={INSTANCE}"),
            victim,
            "-",
        ])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    create
        .stdin
        .take()
        .unwrap()
        .write_all(b"victim-password-7d1c")
        .unwrap();
    assert!(create.wait().unwrap().success());

    for name in [
        "config-file-climbs-out",
        "compose-yml-symlink-unparsable-canary",
        "bind-through-symlinked-dir",
        "docker-socket",
        "volume-driver-opts-bind",
        "other-apps-secret",
    ] {
        let c = case(name);
        let run = format!("hostile-{name}");
        let stack = format!("hostile_{}", name.replace('-', "_"));
        let (out, _w) = deploy(c, &run, &stack, &[]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let left = every_object(&run);
        if !left.is_empty() || out.status.success() {
            rm(&stack);
        }
        assert!(!out.status.success(), "{name}: deployed:\n{stderr}");
        assert_eq!(left, Vec::<String>::new(), "{name}: objects were created");
        for expected in c.expect {
            assert!(
                stderr.contains(expected),
                "{name}: {expected:?} not in {stderr}"
            );
        }
        assert_no_canary(c, &stdout, "the output");
        assert_no_canary(c, &stderr, "the errors");
        assert!(!stderr.contains("victim-password"), "{stderr}");
    }
    let _ = docker(&["secret", "rm", victim]);
}

#[test]
fn the_docker_socket_deploys_only_with_its_exact_allowance() {
    let c = case("docker-socket");
    let run = "hostile-socket-allowed";
    let stack = "hostile_socket_allowed";
    let (refused, _w) = deploy(c, run, stack, &["bind:/var/run"]);
    assert!(!refused.status.success());
    assert!(every_object(run).is_empty());

    let (out, _w) = deploy(c, run, stack, &["bind:/var/run/docker.sock"]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let services = objects("service", run);
    let mounts = services.first().map(|id| {
        let out = docker(&[
            "service",
            "inspect",
            "--format",
            "{{json .Spec.TaskTemplate.ContainerSpec.Mounts}}",
            id,
        ]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    });
    rm(stack);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(services.len(), 1, "{stderr}");
    assert!(
        mounts.unwrap_or_default().contains("/var/run/docker.sock"),
        "the allowed mount is deployed as written"
    );
    assert!(every_object(run).is_empty(), "removed");
}
