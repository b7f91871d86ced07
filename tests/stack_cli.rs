//! `cc-ci stack render` as a maintainer runs it (no Docker needed): the IPVS override flag and
//! warnings for compose keys the engine does not know.

use std::process::Command;

use serde_json::Value;

const COMPOSE: &str = r#"
version: "3.8"
services:
  app:
    image: ccci-fixture/nginx:1.24
    colour: blue
    deploy:
      replicas: 1
      flavour: spicy
  edge:
    image: ccci-fixture/nginx:1.24
    ports:
      - "8080:80"
  direct:
    image: ccci-fixture/nginx:1.24
    ports:
      - target: 80
        published: 8081
        mode: host
  pinned:
    image: ccci-fixture/nginx:1.24
    deploy:
      endpoint_mode: vip
x-notes:
  anything: goes
"#;

/// The policy exceptions COMPOSE needs (its two published ports).
const ALLOW_PORTS: [&str; 4] = ["--allow", "ports:8080", "--allow", "ports:8081"];

/// Runs `cc-ci stack render` on COMPOSE with `extra` arguments: (endpoint mode by service, stderr).
fn render(extra: &[&str]) -> (Vec<(String, Option<String>)>, String) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("compose.yml"), COMPOSE).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_cc-ci"))
        .current_dir(dir.path())
        .args(["stack", "render", "-c", "compose.yml"])
        .args(ALLOW_PORTS)
        .args(extra)
        .arg("st")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    let spec: Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut modes: Vec<(String, Option<String>)> = spec["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["Name"].as_str().unwrap().to_owned(),
                s.pointer("/EndpointSpec/Mode")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
            )
        })
        .collect();
    modes.sort();
    (modes, stderr)
}

fn mode(modes: &[(String, Option<String>)], name: &str) -> Option<String> {
    modes
        .iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no service {name}: {modes:?}"))
        .1
        .clone()
}

#[test]
fn dnsrr_is_off_by_default_and_the_flag_forces_it_where_no_ingress_port_needs_a_vip() {
    let (default, _) = render(&[]);
    assert!(
        default.iter().all(|(_, m)| m.as_deref() != Some("dnsrr")),
        "docker stack deploy never picks dnsrr by itself: {default:?}"
    );
    let (forced, _) = render(&["--dnsrr"]);
    assert_eq!(mode(&forced, "st_app").as_deref(), Some("dnsrr"));
    assert_eq!(
        mode(&forced, "st_direct").as_deref(),
        Some("dnsrr"),
        "host-mode ports bypass the routing mesh"
    );
    assert_eq!(mode(&forced, "st_edge"), None, "ingress ports need a VIP");
    assert_eq!(
        mode(&forced, "st_pinned").as_deref(),
        Some("vip"),
        "an explicit endpoint_mode wins"
    );
}

#[test]
fn unknown_compose_keys_are_warned_about_with_their_path() {
    let (_, stderr) = render(&[]);
    let warnings: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("unknown key"))
        .collect();
    assert_eq!(
        warnings,
        [
            "warning: compose.yml: services.app.colour: unknown key, ignored",
            "warning: compose.yml: services.app.deploy.flavour: unknown key, ignored",
        ],
        "{stderr}"
    );
}

#[test]
fn published_ports_are_refused_without_an_allowance_naming_each() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("compose.yml"), COMPOSE).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_cc-ci"))
        .current_dir(dir.path())
        .args([
            "stack",
            "render",
            "-c",
            "compose.yml",
            "--allow",
            "ports:8080",
            "st",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(out.stdout.is_empty(), "nothing is rendered");
    assert!(
        stderr.contains("services.direct.ports: port published on the host \"8081\"")
            && stderr.contains("\"ports:8081\""),
        "{stderr}"
    );
    assert!(!stderr.contains("\"8080\""), "8080 is allowed: {stderr}");
}

#[test]
fn compose_files_are_confined_to_the_first_files_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let project = tmp.path().join("project");
    std::fs::create_dir_all(&project).unwrap();
    std::fs::write(
        project.join("compose.yml"),
        "services:\n  app:\n    image: x\n    configs: [c]\nconfigs:\n  c:\n    file: ./c.txt\n",
    )
    .unwrap();
    std::fs::write(project.join("c.txt"), "inside").unwrap();
    std::fs::write(
        tmp.path().join("outside.yml"),
        "services:\n  app:\n    environment: [CANARY_OUTSIDE=1]\n",
    )
    .unwrap();
    let run = |files: &[&std::path::Path]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_cc-ci"));
        cmd.current_dir(tmp.path()).args(["stack", "render"]);
        for f in files {
            cmd.arg("-c").arg(f);
        }
        cmd.arg("st").output().unwrap()
    };
    let ok = run(&[&project.join("compose.yml")]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let refused = run(&[
        &project.join("compose.yml"),
        &tmp.path().join("outside.yml"),
    ]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success());
    assert!(
        stderr.contains("COMPOSE_FILE") && stderr.contains("outside"),
        "{stderr}"
    );
    assert!(!String::from_utf8_lossy(&refused.stdout).contains("CANARY_OUTSIDE"));
}
