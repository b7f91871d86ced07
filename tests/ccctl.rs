//! The real `ccctl` binary against a real `cc-ci serve`: apply, get, describe, delete, watch,
//! exit codes and token handling.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

use crate::support::Server;

/// Manifests of all four kinds, written to a fresh directory (used when `examples/` has none).
const MANIFESTS: &str = r#"
apiVersion: cc-ci/v1alpha1
kind: Recipe
metadata:
  name: ccctl-hedgedoc
  labels:
    suite: ccctl
spec:
  git: https://git.coopcloud.tech/coop-cloud/hedgedoc.git
  forgeRepo: coop-cloud/hedgedoc
---
apiVersion: cc-ci/v1alpha1
kind: TestRun
metadata:
  name: ccctl-hedgedoc-pr7-c1
spec:
  recipe: ccctl-hedgedoc
  ref: 0123456789abcdef0123456789abcdef01234567
  pr: 7
  cancel: true
"#;

const DEPLOYMENTS: &str = r#"{
  "apiVersion": "cc-ci/v1alpha1",
  "kind": "ProxyDeployment",
  "metadata": {"name": "ccctl-traefik"},
  "spec": {"git": "https://git.coopcloud.tech/coop-cloud/traefik.git", "version": "3.0.0+v3.1.0", "domain": "ci.example.org"}
}"#;

struct Env {
    server: Server,
    /// A working directory without `.cc-ci/`, so no token is found by default.
    cwd: tempfile::TempDir,
    _state: tempfile::TempDir,
}

fn start() -> Env {
    let state = tempfile::tempdir().unwrap();
    let server = Server::start_in(&state.path().join("state"), &[]);
    Env {
        server,
        cwd: tempfile::tempdir().unwrap(),
        _state: state,
    }
}

impl Env {
    fn command(&self, with_token: bool, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ccctl"));
        cmd.args(args)
            .current_dir(self.cwd.path())
            .env_remove("CCCTL_TOKEN")
            .env_remove("CCCTL_TOKEN_FILE")
            .env("CCCTL_SERVER", &self.server.url);
        if with_token {
            cmd.env("CCCTL_TOKEN_FILE", &self.server.token_file);
        }
        cmd
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(true, args).output().expect("run ccctl")
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "ccctl {args:?} failed ({:?}): {}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// A directory with this test's manifests: a recipe, a run and a proxy.
    fn manifests(&self) -> PathBuf {
        let dir = self.cwd.path().join("manifests");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("a-recipe-and-run.yaml"), MANIFESTS).unwrap();
        std::fs::write(dir.join("b-proxy.json"), DEPLOYMENTS).unwrap();
        std::fs::write(dir.join("notes.txt"), "not a manifest").unwrap();
        dir
    }
}

fn code(out: &Output) -> Option<i32> {
    out.status.code()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `examples/`, which must hold manifests of every kind.
fn examples_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let files = cc_ci::api::manifest::dir_manifests(&dir).expect("examples/ is readable");
    assert!(!files.is_empty(), "examples/ holds no manifests");
    dir
}

#[test]
fn the_examples_directory_applies_cleanly() {
    let dir = examples_dir();
    let production = dir.join("production");
    let env = start();
    let out = env.ok(&[
        "apply",
        "-f",
        dir.to_str().unwrap(),
        "-f",
        production.to_str().unwrap(),
    ]);
    assert!(
        !out.is_empty() && out.lines().all(|l| l.ends_with(" created")),
        "{out}"
    );
    let mut kinds: Vec<&str> = out.lines().filter_map(|l| l.split('/').next()).collect();
    kinds.sort_unstable();
    kinds.dedup();
    assert_eq!(
        kinds,
        ["appdeployment", "proxydeployment", "recipe", "testrun"],
        "one example of every kind: {out}"
    );
    let again = env.ok(&[
        "apply",
        "-f",
        dir.to_str().unwrap(),
        "-f",
        production.to_str().unwrap(),
    ]);
    assert!(again.lines().all(|l| l.ends_with(" unchanged")), "{again}");
    // Every applied record is listed by `get <kind> -o name` and has a row in the table.
    for line in out.lines() {
        let object = line.strip_suffix(" created").unwrap();
        let (kind, name) = object.split_once('/').unwrap();
        let names = env.ok(&["get", kind, "-o", "name"]);
        assert!(
            names.lines().any(|l| l == object),
            "{object} not in\n{names}"
        );
        let table = env.ok(&["get", kind]);
        assert!(table.starts_with("NAME "), "{table}");
        assert!(
            table.lines().any(|l| l.starts_with(&format!("{name} "))),
            "{name} not in\n{table}"
        );
    }
    let runs = env.ok(&["get", "runs"]);
    assert!(runs.lines().count() >= 2, "{runs}");
}

#[test]
fn applying_twice_is_unchanged_and_a_changed_spec_is_configured() {
    let env = start();
    let dir = env.manifests();
    let file = dir.join("a-recipe-and-run.yaml");
    env.ok(&["apply", "-f", file.to_str().unwrap()]);
    let before: Value =
        serde_json::from_str(&env.ok(&["get", "rc", "ccctl-hedgedoc", "-o", "json"])).unwrap();

    let again = env.ok(&["apply", "-f", file.to_str().unwrap()]);
    assert_eq!(
        again,
        "recipe/ccctl-hedgedoc unchanged\ntestrun/ccctl-hedgedoc-pr7-c1 unchanged\n"
    );

    let changed = MANIFESTS.replace("coop-cloud/hedgedoc\n", "coop-cloud/hedgedoc2\n");
    let out = env
        .command(true, &["apply", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(changed.as_bytes())?;
            child.wait_with_output()
        })
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "recipe/ccctl-hedgedoc configured\ntestrun/ccctl-hedgedoc-pr7-c1 unchanged\n"
    );
    let after: Value =
        serde_json::from_str(&env.ok(&["get", "rc", "ccctl-hedgedoc", "-o", "json"])).unwrap();
    assert_eq!(after["spec"]["forgeRepo"], "coop-cloud/hedgedoc2");
    assert_eq!(after["metadata"]["uid"], before["metadata"]["uid"]);
    assert_ne!(
        after["metadata"]["resourceVersion"],
        before["metadata"]["resourceVersion"]
    );
}

#[test]
fn an_invalid_manifest_fails_with_exit_1_naming_the_file_and_field() {
    let env = start();
    let file = env.cwd.path().join("bad.yaml");
    std::fs::write(
        &file,
        "kind: Recipe\nmetadata: {name: ok-one}\nspec: {git: g}\n---\nkind: Recipe\nmetadata: {name: broken}\nspec:\n  git: ''\n",
    )
    .unwrap();
    let out = env.run(&["apply", "-f", file.to_str().unwrap()]);
    assert_eq!(code(&out), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("bad.yaml (document 2)"), "{err}");
    assert!(err.contains("Invalid"), "{err}");
    assert!(err.contains("spec.git"), "{err}");
    // The valid document was still applied.
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "recipe/ok-one created\n"
    );

    std::fs::write(&file, "kind: Widget\nmetadata: {name: w}\n").unwrap();
    let out = env.run(&["apply", "-f", file.to_str().unwrap()]);
    assert_eq!(code(&out), Some(1));
    assert!(
        stderr(&out).contains("unknown kind \"Widget\""),
        "{}",
        stderr(&out)
    );
}

#[test]
fn delete_reports_each_record_and_missing_names_exit_3() {
    let env = start();
    env.ok(&["apply", "-f", env.manifests().to_str().unwrap()]);
    let out = env.ok(&["delete", "recipe", "ccctl-hedgedoc"]);
    assert!(
        out == "recipe \"ccctl-hedgedoc\" deleted\n"
            || out.starts_with(
                "recipe \"ccctl-hedgedoc\" deletion requested (waiting on finalizers: "
            ),
        "{out}"
    );

    let missing = env.run(&["get", "recipe", "no-such-recipe"]);
    assert_eq!(code(&missing), Some(3), "{}", stderr(&missing));
    assert!(
        stderr(&missing).contains("NotFound"),
        "{}",
        stderr(&missing)
    );
    let ignored = env.run(&["get", "recipe", "no-such-recipe", "--ignore-not-found"]);
    assert_eq!(code(&ignored), Some(0));

    let out = env.run(&["delete", "proxy", "ccctl-traefik", "no-such-proxy"]);
    assert_eq!(code(&out), Some(3), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("proxydeployment \"ccctl-traefik\""));
    assert!(stderr(&out).contains("no-such-proxy"), "{}", stderr(&out));
    let out = env.run(&["describe", "app", "nothing-here"]);
    assert_eq!(code(&out), Some(3));
}

#[test]
fn writes_without_a_token_fail_with_a_clear_message() {
    let env = start();
    let dir = env.manifests();
    let out = env
        .command(false, &["apply", "-f", dir.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(code(&out), Some(1));
    let err = stderr(&out);
    assert!(err.contains("Unauthorized"), "{err}");
    assert!(err.contains("--token-file"), "{err}");
    assert!(!err.contains(crate::support::TOKEN), "token leaked: {err}");
    // Reads need no token.
    let out = env.command(false, &["get", "recipes"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));

    // The server's default token file in the working directory is picked up.
    let dot = env.cwd.path().join(".cc-ci");
    std::fs::create_dir_all(&dot).unwrap();
    std::fs::copy(&env.server.token_file, dot.join("api-token")).unwrap();
    let out = env
        .command(false, &["apply", "-f", dir.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn describe_shows_metadata_spec_and_status() {
    let env = start();
    env.ok(&["apply", "-f", env.manifests().to_str().unwrap()]);
    let text = env.ok(&["describe", "tr", "ccctl-hedgedoc-pr7-c1"]);
    assert!(
        text.starts_with("Name:               ccctl-hedgedoc-pr7-c1\n"),
        "{text}"
    );
    assert!(text.contains("Kind:               TestRun\n"), "{text}");
    assert!(text.contains("Spec:\n"), "{text}");
    assert!(text.contains("  recipe: ccctl-hedgedoc\n"), "{text}");
    assert!(text.contains("Stages:\n"), "{text}");
    assert!(text.contains("Conditions:\n"), "{text}");
}

#[test]
fn get_watch_prints_records_as_they_change() {
    let env = start();
    env.ok(&["apply", "-f", env.manifests().to_str().unwrap()]);
    let mut child = env
        .command(true, &["get", "recipes", "-w"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let wait_for = |prefix: &str| -> String {
        loop {
            match rx.recv_timeout(Duration::from_secs(10)) {
                Ok(line) if line.starts_with(prefix) => return line,
                Ok(_) => continue,
                Err(e) => panic!("no line starting with {prefix:?}: {e}"),
            }
        }
    };
    assert!(wait_for("NAME").contains("GIT"));
    wait_for("ccctl-hedgedoc ");
    let file = env.cwd.path().join("late.yaml");
    std::fs::write(
        &file,
        "kind: Recipe\nmetadata: {name: late-arrival}\nspec: {git: https://example.org/late.git}\n",
    )
    .unwrap();
    env.ok(&["apply", "-f", file.to_str().unwrap()]);
    let row = wait_for("late-arrival ");
    assert!(row.contains("https://example.org/late.git"), "{row}");
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn usage_errors_and_unknown_kinds_have_distinct_codes() {
    let env = start();
    let out = env.run(&["frobnicate"]);
    assert_eq!(code(&out), Some(2));
    let out = env.run(&["get", "pods"]);
    assert_eq!(code(&out), Some(1));
    assert!(
        stderr(&out).contains("unknown kind \"pods\""),
        "{}",
        stderr(&out)
    );
    let version = env.ok(&["version"]);
    assert!(version.contains(&format!("Client Version: {}", env!("CARGO_PKG_VERSION"))));
    assert!(version.contains("Server Version: "), "{version}");
}

#[test]
fn an_unreachable_server_is_named_in_the_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_ccctl"))
        .args(["get", "recipes", "--server", "127.0.0.1:9"])
        .output()
        .unwrap();
    assert_eq!(code(&out), Some(1));
    assert!(
        stderr(&out).contains("cannot connect to the cc-ci API at http://127.0.0.1:9"),
        "{}",
        stderr(&out)
    );
}

/// Writes the status of testrun `name` with `phase` and a hidden field that differs each time.
async fn write_run_status(api: &crate::api::Client, name: &str, phase: &str, n: u64) {
    let (_, mut run) = api.get(&format!("/api/v1/testruns/{name}")).await;
    run["status"]["phase"] = phase.into();
    run["status"]["observedGeneration"] = n.into();
    let (status, body) = api
        .put(&format!("/api/v1/testruns/{name}/status"), &run)
        .await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn get_watch_prints_a_row_only_when_something_visible_changed() {
    let env = start();
    env.ok(&["apply", "-f", env.manifests().to_str().unwrap()]);
    let api = crate::api::Client::of(&env.server);
    let mut child = env
        .command(true, &["get", "runs", "-w"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let header = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(header.starts_with("NAME "), "{header}");
    let run = "ccctl-hedgedoc-pr7-c1";
    rx.recv_timeout(Duration::from_secs(10)).unwrap();
    for n in 1..=5 {
        write_run_status(&api, run, "Pending", n).await;
    }
    write_run_status(&api, run, "Running", 6).await;
    let row = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(
        row.contains("Running"),
        "five writes that change nothing shown printed rows: {row}"
    );
    // The row stays under the header: PHASE starts in the same column.
    assert_eq!(row.find("Running"), header.find("PHASE"), "{header}\n{row}");
    let _ = child.kill();
    let _ = child.wait();
}

#[tokio::test]
async fn get_watch_into_a_closed_pipe_exits_0() {
    let env = start();
    env.ok(&["apply", "-f", env.manifests().to_str().unwrap()]);
    let api = crate::api::Client::of(&env.server);
    let mut child = env
        .command(true, &["get", "runs", "-w", "-o", "json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    {
        // Like `| head -1`: read a line, then close the pipe.
        let mut reader = BufReader::new(child.stdout.take().unwrap());
        reader.read_line(&mut first).unwrap();
    }
    assert_eq!(first.trim(), "{");
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let mut n = 0;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "ccctl kept running after its output was closed"
        );
        n += 1;
        let phase = if n % 2 == 0 { "Pending" } else { "Running" };
        write_run_status(&api, "ccctl-hedgedoc-pr7-c1", phase, n).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert_eq!(status.code(), Some(0), "{err}");
    assert!(err.is_empty(), "nothing to say about a closed pipe: {err}");
}

mod readme;
