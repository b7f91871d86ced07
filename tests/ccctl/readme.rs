//! The README's "Try it" steps, run exactly as written on the real local Swarm: every shell
//! block of the section, line by line, in a fresh directory that looks like a clone (the
//! repository's `examples/`, `scripts/`, `tests/`, `harness/` and `recipes/` linked in), must succeed and end with the
//! example TestRun `Succeeded`.
//!
//! The one stand-in is `cargo`: a shim runs `cargo run [--release] --bin NAME -- ARGS` as the
//! binary this test suite already built, so the steps do not compile cc-ci a second time.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::get_ok;

/// The run `examples/testrun.yaml` creates.
const RUN: &str = "static-site-example";
/// The address the README's server listens on (its default).
const ADDR: &str = "127.0.0.1:8080";

const CARGO_SHIM: &str = r#"#!/usr/bin/env bash
# Stands in for `cargo run [--release] --bin NAME -- ARGS...`: runs the binary already built.
set -euo pipefail
[ "${1:-}" = run ] || { echo "cargo shim: only 'cargo run' is supported, got: $*" >&2; exit 2; }
shift
bin=
while [ $# -gt 0 ]; do
  case "$1" in
    --release) shift ;;
    --bin) bin=$2; shift 2 ;;
    --) shift; break ;;
    *) echo "cargo shim: unexpected argument $1" >&2; exit 2 ;;
  esac
done
exec "$CCCI_TEST_BIN_DIR/$bin" "$@"
"#;

/// The ```sh blocks of the README's `## Try it` section, in order.
fn try_it_blocks(readme: &str) -> Vec<Vec<String>> {
    let section = readme
        .split("\n## ")
        .find(|s| s.starts_with("Try it"))
        .expect("the README has a `## Try it` section");
    let mut blocks = Vec::new();
    let mut current: Option<Vec<String>> = None;
    for line in section.lines() {
        match (&mut current, line.trim_end()) {
            (None, "```sh") => current = Some(Vec::new()),
            (Some(_), "```") => blocks.extend(current.take()),
            (Some(block), l) if !l.trim().is_empty() => block.push(l.to_string()),
            _ => {}
        }
    }
    blocks
}

/// A directory that looks like a clone, with the `cargo` shim first on `PATH`.
fn sandbox() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    for entry in ["examples", "scripts", "tests", "harness", "recipes"] {
        std::os::unix::fs::symlink(repo.join(entry), dir.path().join(entry)).unwrap();
    }
    let bin = dir.path().join(".shim");
    std::fs::create_dir_all(&bin).unwrap();
    let cargo = bin.join("cargo");
    std::fs::write(&cargo, CARGO_SHIM).unwrap();
    let mut perms = std::fs::metadata(&cargo).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&cargo, perms).unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    (dir, path)
}

fn shell(dir: &Path, path: &str, line: &str) -> Command {
    let built = PathBuf::from(env!("CARGO_BIN_EXE_ccctl"));
    let mut cmd = Command::new("bash");
    cmd.args(["-o", "pipefail", "-c", line])
        .current_dir(dir)
        .env("PATH", path)
        .env("CCCI_TEST_BIN_DIR", built.parent().unwrap())
        .env_remove("CCCTL_SERVER")
        .env_remove("CCCTL_TOKEN")
        .env_remove("CCCTL_TOKEN_FILE")
        .env_remove("CCCI_CONFIG");
    cmd
}

/// Runs one line of a block; panics with its output unless it succeeds within `limit`.
fn run_line(dir: &Path, path: &str, line: &str, limit: Duration) -> String {
    let mut child = shell(dir, path, line)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = wait_output(&mut child, limit, line);
    assert!(
        out.0,
        "README step `{line}` failed:\n--- stdout\n{}\n--- stderr\n{}",
        out.1, out.2
    );
    out.1
}

fn wait_output(child: &mut Child, limit: Duration, line: &str) -> (bool, String, String) {
    use std::io::Read;
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("README step `{line}` did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    (status.success(), out.join().unwrap(), err.join().unwrap())
}

/// The README's server, stopped (SIGTERM) when dropped.
struct Background(Child, PathBuf);

impl Drop for Background {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_readme_try_it_steps_reach_a_succeeded_run() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let blocks = try_it_blocks(&readme);
    assert!(
        blocks.len() >= 3,
        "prepare, serve, client blocks: {blocks:?}"
    );
    assert!(
        std::net::TcpStream::connect(ADDR).is_err(),
        "something already listens on {ADDR}; the README's server needs that port"
    );
    let (dir, path) = sandbox();
    let mut server: Option<Background> = None;
    let mut outputs = Vec::new();
    for block in &blocks {
        let serves = block.iter().any(|l| l.contains(" serve"));
        if serves {
            assert_eq!(block.len(), 1, "the server block is one command: {block:?}");
            let log = dir.path().join("serve.log");
            let child = shell(dir.path(), &path, &format!("exec {}", block[0]))
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&log).unwrap())
                .spawn()
                .unwrap();
            server = Some(Background(child, log.clone()));
            let deadline = Instant::now() + Duration::from_secs(60);
            while !matches!(get_ok(&format!("http://{ADDR}/readyz")), Ok(true)) {
                assert!(
                    Instant::now() < deadline,
                    "the README's server did not become ready:\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
                std::thread::sleep(Duration::from_millis(200));
            }
            continue;
        }
        for line in block {
            let limit = Duration::from_secs(if line.contains("-f") { 900 } else { 300 });
            outputs.push((line.clone(), run_line(dir.path(), &path, line, limit)));
        }
    }
    let server = server.expect("a block starts the server");

    let ccctl = |args: &str| {
        run_line(
            dir.path(),
            &path,
            &format!("cargo run --bin ccctl -- {args}"),
            Duration::from_secs(60),
        )
    };
    let run: Value = serde_json::from_str(&ccctl(&format!("get run {RUN} -o json"))).unwrap();
    let log = std::fs::read_to_string(&server.1).unwrap_or_default();
    assert_eq!(
        run["status"]["phase"],
        "Succeeded",
        "the example run did not succeed:\n{}\n--- steps\n{outputs:#?}\n--- server log\n{log}",
        serde_json::to_string_pretty(&run["status"]).unwrap()
    );
    let stages: Vec<(&str, &str)> = run["status"]["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["stage"].as_str().unwrap(), s["phase"].as_str().unwrap()))
        .collect();
    assert_eq!(
        stages,
        [
            ("install", "Passed"),
            ("upgrade", "Passed"),
            ("backup-restore", "Passed")
        ]
    );
    let described = outputs
        .iter()
        .find(|(l, _)| l.contains("describe run"))
        .map(|(_, o)| o.as_str())
        .expect("the README describes the run");
    assert!(described.contains("phase: Succeeded"), "{described}");
    let metrics = outputs
        .iter()
        .find(|(l, _)| l.contains("/metrics"))
        .map(|(_, o)| o.as_str())
        .expect("the README shows the metrics");
    // The phase gauges refresh every few seconds, so right after the run they may still count
    // it as Running: the step must show the series, the run's phase is checked above.
    assert!(
        metrics.contains(r#"ccci_testruns{phase="Succeeded"} "#),
        "{metrics}"
    );
    // The state directory the README names, relative to where the steps ran.
    assert!(dir.path().join(".cc-ci/api-token").exists());
    drop(server);
}
