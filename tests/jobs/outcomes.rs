//! Outcomes of suites that do not pass: a failing browser test (Failed, named, with its
//! screenshot and trace served by the API and `ccctl`, an app secret it wrote or showed
//! scrubbed from every artifact; the app kept for a while with `keepOnFailure`), what test
//! code sees inside the job,
//! a suite that cannot be collected (Error), and one that hangs (TimedOut, nothing left).

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cc_ci::api::{Object, RecipeSpec, RunPhase, StageKind, StagePhase, TestRunSpec};
use cc_ci::http::{AppState, WriteAuth, router};
use cc_ci::metrics::Metrics;
use cc_ci::runlog::RunLogs;
use cc_ci::store::Store;
use sha2::{Digest, Sha256};

use super::{controller, passed, step};
use crate::fixture_repo::FixtureRepo;
use crate::lifecycle::harness::{RunSpec, describe, docker_cli, labelled, leftovers, sweep};

/// The suite of the failing run: what the job exposes to test code, an app secret printed
/// (and, hex-encoded past the redactor, told to this test) and written into the results, and
/// a browser test that shows the secret on the page and fails an assertion naming it.
/// `{STATE}` is the controller's state directory.
const HOSTILE_SUITE: &str = r#"
import hashlib, os, pathlib, sys
import pytest

def test_no_docker_socket_token_or_controller_settings():
    for sock in ["/var/run/docker.sock", "/run/docker.sock"]:
        assert not os.path.exists(sock), sock
    allowed = {"PATH", "HOME", "HOSTNAME", "LANG", "TERM", "PWD", "SHLVL", "_",
               "PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED", "PYTEST_CURRENT_TEST",
               "PYTEST_VERSION", "PLAYWRIGHT_BROWSERS_PATH", "LC_CTYPE"}
    extra = sorted(k for k in os.environ if not k.startswith("CCCI_") and k not in allowed)
    assert extra == [], extra
    assert not any("TOKEN" in k for k in os.environ)
    assert not os.path.exists("{STATE}"), "the controller's state dir is visible"
    assert sorted(os.listdir("/run/secrets")) == ["app_key", "db_password"]
    mounts = pathlib.Path("/proc/self/mountinfo").read_text()
    assert "{STATE}/store" not in mounts and "api-token" not in mounts
    for ro in ["/suite", "/recipe-tests"]:
        with pytest.raises(OSError):
            pathlib.Path(ro, "planted.py").write_text("x")
    assert os.getuid() != 0

def test_prints_an_app_secret(app, capsys):
    value = app.secret("db_password")
    with capsys.disabled():
        print("SECRET-DIGEST:" + hashlib.sha256(value.encode()).hexdigest(), flush=True)
        print("SECRET-VALUE:" + value, flush=True)
        print("SECRET-HEX:" + value.encode().hex(), flush=True)
    notes = pathlib.Path(os.environ["CCCI_RESULTS_DIR"], "notes")
    notes.mkdir(exist_ok=True)
    (notes / "secret.txt").write_text("db_password=" + value + "\n")
    (notes / "blob.bin").write_bytes(b"\x00\xff" + value.encode() + b"\x00")

def test_the_login_page_title(app, page):
    value = app.secret("db_password")
    page.goto("/login")
    page.evaluate("v => document.body.append(v)", value)
    assert page.title() == "Welcome", "title mismatch on the login page for " + value
"#;

const RECIPE_LOCAL: &str =
    "def test_recipe_local(http):\n    assert http.get('/notes').status_code == 200\n";

fn recipe_spec(git: &str, suite_path: &str) -> RecipeSpec {
    RecipeSpec {
        git: git.to_string(),
        forge_repo: None,
        default_branch: "main".into(),
        suite_path: Some(suite_path.into()),
        env: Default::default(),
        stages: vec![StageKind::Install],
        timeouts: Default::default(),
        allow: vec![],
        suspended: false,
    }
}

#[tokio::test]
async fn a_failing_browser_test_fails_the_run_and_its_artifacts_are_served() {
    let instance = "t-jobs-fail";
    sweep(instance).await;
    let tmp = tempfile::tempdir().unwrap();
    let repo = FixtureRepo::build("webapp-pg", &tmp.path().join("origin"));
    repo.open_pull_request(3, |dir| {
        std::fs::create_dir_all(dir.join("tests")).unwrap();
        std::fs::write(dir.join("tests/test_local.py"), RECIPE_LOCAL).unwrap();
    });
    let suites = tmp.path().join("suites");
    let ctl = controller(instance, &suites, 300).await;
    let state = ctl.state_dir.clone();
    std::fs::create_dir_all(suites.join("hostile")).unwrap();
    std::fs::write(
        suites.join("hostile/test_install.py"),
        HOSTILE_SUITE.replace("{STATE}", &state.to_string_lossy()),
    )
    .unwrap();
    ctl.store
        .create(Object::new(
            "webapp-pg",
            recipe_spec(&repo.url(), "hostile"),
        ))
        .await
        .unwrap();
    let name = "webapp-pg-fails";
    let spec = TestRunSpec {
        recipe: "webapp-pg".into(),
        git: None,
        git_ref: "refs/pull/3/head".into(),
        pr: Some(3),
        source: Default::default(),
        stages: None,
        upgrade_from: None,
        cancel: false,
        keep_on_failure: Some("20s".into()),
    };
    ctl.store.create(Object::new(name, spec)).await.unwrap();
    // The failed run keeps its app for 20 s, says so, then tears down.
    let deadline = Instant::now() + Duration::from_secs(600);
    let kept = loop {
        let run = ctl.get(name).unwrap();
        if run.status.message.contains("kept for debugging") {
            break run;
        }
        assert!(
            !run.status.torn_down,
            "torn down without keeping: {}",
            describe(&run)
        );
        assert!(Instant::now() < deadline, "{}", describe(&run));
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let kept_at = Instant::now();
    assert_eq!(kept.status.phase, RunPhase::Running, "{}", describe(&kept));
    assert!(
        labelled(&format!("cc-ci.run={name}"))
            .iter()
            .any(|o| o.starts_with("service")),
        "the app is still deployed while kept"
    );
    let run = ctl.wait_done(name, Duration::from_secs(600)).await;
    assert!(kept_at.elapsed() >= Duration::from_secs(15), "kept ~20 s");
    let logs = ctl.logs(name);
    assert_eq!(
        run.status.phase,
        RunPhase::Failed,
        "{}\n{logs}",
        describe(&run)
    );
    let install = &run.status.stages[0];
    assert_eq!(install.phase, StagePhase::Failed);
    assert_eq!(
        install.failing_tests,
        [
            "[suite] test_install::test_the_login_page_title: AssertionError: title mismatch on the login page for ***"
        ],
        "{}",
        describe(&run)
    );
    assert!(
        install.message.contains("test_the_login_page_title"),
        "{}",
        install.message
    );
    let check = step(&run, StageKind::Install, "test:check");
    assert_eq!(
        passed(check, "suite"),
        2,
        "the job's own checks passed: {logs}"
    );
    assert_eq!(passed(check, "recipe"), 1, "{check:?}");

    // The secret is scrubbed from the log: the printed value is not the secret.
    let digest = logs
        .lines()
        .find_map(|l| l.split("SECRET-DIGEST:").nth(1))
        .expect("the digest line")
        .trim()
        .to_string();
    let printed = logs
        .lines()
        .find_map(|l| l.split("SECRET-VALUE:").nth(1))
        .expect("the value line")
        .trim()
        .to_string();
    assert_eq!(printed, cc_ci::runlog::redact::MASK);
    assert_ne!(hex::encode(Sha256::digest(printed.as_bytes())), digest);
    let secret = logs
        .lines()
        .find_map(|l| l.split("SECRET-HEX:").nth(1))
        .map(|h| String::from_utf8(hex::decode(h.trim()).unwrap()).unwrap())
        .expect("the hex line");
    assert_eq!(hex::encode(Sha256::digest(secret.as_bytes())), digest);

    // Nor is it in any artifact kept (zips opened), while its mask is where it was.
    let artifacts = RunLogs::new(&state)
        .run_dir(name)
        .unwrap()
        .join("artifacts");
    let files = without_secret(&artifacts, &secret);
    assert!(files.len() >= 6, "{files:?}");
    let read = |rel: &str| std::fs::read_to_string(artifacts.join(rel)).unwrap();
    assert_eq!(read("install/check/notes/secret.txt"), "db_password=***\n");
    assert_eq!(
        std::fs::read(artifacts.join("install/check/notes/blob.bin")).unwrap(),
        b"\x00\xff***\x00"
    );
    assert!(read("install/check/junit.xml").contains("title mismatch on the login page for ***"));

    // Artifacts: listed in status, served by the API and fetched by ccctl.
    let shot = check
        .artifacts
        .iter()
        .find(|a| a.ends_with("screenshot.png"))
        .unwrap_or_else(|| panic!("a screenshot: {check:?}"))
        .clone();
    let trace = shot.replace("screenshot.png", "trace.zip");
    assert!(check.artifacts.contains(&trace), "{check:?}");
    assert!(install.artifacts.contains(&shot));

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = router(
        AppState::new(
            ctl.store.clone(),
            Arc::new(Metrics::new()),
            WriteAuth::token("unused"),
        )
        .with_run_logs(RunLogs::new(&ctl.state_dir)),
    );
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let base = format!("http://{addr}/api/v1/testruns/{name}/artifacts");
    let res = reqwest::get(format!("{base}/{shot}")).await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "image/png");
    let png = res.bytes().await.unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    assert!(
        png.len() > 2000,
        "a real page, not a blank: {} bytes",
        png.len()
    );
    let res = reqwest::get(format!("{base}/{trace}")).await.unwrap();
    assert_eq!(res.headers()["content-type"], "application/zip");
    let served = res.bytes().await.unwrap();
    let entries = zip_texts(&served);
    assert!(
        entries.iter().any(|(n, _)| n.ends_with(".trace")),
        "still a Playwright trace"
    );
    assert!(entries.iter().any(|(_, t)| contains(t, b"***")));
    assert!(!entries.iter().any(|(_, t)| contains(t, secret.as_bytes())));
    let page_html = shot.replace("screenshot.png", "page.html");
    let res = reqwest::get(format!("{base}/{page_html}")).await.unwrap();
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    assert!(html.contains("***") && !html.contains(&secret), "{html}");

    let out = tmp.path().join("downloaded");
    let ccctl = tokio::task::spawn_blocking({
        let out = out.clone();
        let shot = shot.clone();
        move || {
            Command::new(env!("CARGO_BIN_EXE_ccctl"))
                .args(["artifacts", "run", name, &shot, "-o"])
                .arg(&out)
                .env("CCCTL_SERVER", format!("http://{addr}"))
                .env_remove("CCCTL_TOKEN")
                .env_remove("CCCTL_TOKEN_FILE")
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    assert!(
        ccctl.status.success(),
        "{}",
        String::from_utf8_lossy(&ccctl.stderr)
    );
    assert_eq!(std::fs::read(out.join(&shot)).unwrap(), png.to_vec());
    if let Ok(keep) = std::env::var("CCCI_KEEP_SCREENSHOT") {
        std::fs::copy(out.join(&shot), keep).unwrap();
    }
    server.abort();

    assert_eq!(leftovers(instance), Vec::<String>::new());
    ctl.stop().await;
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Every entry of the zip `bytes` (name, content); panics if it is not a valid zip.
fn zip_texts(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    use std::io::Read;
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).expect("a valid zip");
    (0..archive.len())
        .map(|i| {
            let mut entry = archive.by_index(i).unwrap();
            let mut content = Vec::new();
            entry.read_to_end(&mut content).unwrap();
            (entry.name().to_string(), content)
        })
        .collect()
}

/// Asserts no file below `dir` (nor any entry of a zip among them) holds `secret`; returns the
/// files' paths.
fn without_secret(dir: &std::path::Path, secret: &str) -> Vec<String> {
    let mut files = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            let bytes = std::fs::read(&path).unwrap();
            let shown = path.display().to_string();
            assert!(!contains(&bytes, secret.as_bytes()), "{shown}");
            assert!(!shown.contains(secret));
            if bytes.starts_with(b"PK\x03\x04") {
                for (name, content) in zip_texts(&bytes) {
                    assert!(!contains(&content, secret.as_bytes()), "{shown}: {name}");
                }
            }
            files.push(shown);
        }
    }
    files
}

#[tokio::test]
async fn a_broken_suite_is_an_error_and_a_hanging_one_times_out_leaving_nothing() {
    let instance = "t-jobs-broken";
    sweep(instance).await;
    let tmp = tempfile::tempdir().unwrap();
    let repo = FixtureRepo::build("static-site", &tmp.path().join("origin"));
    let suites = tmp.path().join("suites");
    std::fs::create_dir_all(suites.join("broken")).unwrap();
    std::fs::write(
        suites.join("broken/test_install.py"),
        "def test_x(:\n    pass\n",
    )
    .unwrap();
    std::fs::create_dir_all(suites.join("hanging")).unwrap();
    std::fs::write(
        suites.join("hanging/test_install.py"),
        "import time\n\ndef test_hangs():\n    time.sleep(600)\n",
    )
    .unwrap();
    let ctl = controller(instance, &suites, 20).await;
    for (recipe, suite) in [("static-broken", "broken"), ("static-hanging", "hanging")] {
        ctl.store
            .create(Object::new(recipe, recipe_spec(&repo.url(), suite)))
            .await
            .unwrap();
        ctl.run(RunSpec {
            name: recipe,
            recipe,
            git_ref: "main",
            pr: None,
            stages: None,
            upgrade_from: None,
        })
        .await;
    }
    let broken = ctl
        .wait_done("static-broken", Duration::from_secs(600))
        .await;
    let logs = ctl.logs("static-broken");
    assert_eq!(
        broken.status.phase,
        RunPhase::Error,
        "{}\n{logs}",
        describe(&broken)
    );
    assert!(
        broken.status.message.contains("could not be collected")
            && broken.status.message.contains("SyntaxError"),
        "{}",
        broken.status.message
    );
    assert!(broken.status.stages[0].failing_tests.is_empty());

    let hanging = ctl
        .wait_done("static-hanging", Duration::from_secs(600))
        .await;
    let logs = ctl.logs("static-hanging");
    assert_eq!(
        hanging.status.phase,
        RunPhase::TimedOut,
        "{}\n{logs}",
        describe(&hanging)
    );
    assert!(
        hanging.status.message.contains("limit of 20 s"),
        "{}",
        hanging.status.message
    );
    assert!(logs.contains("killed the job"), "{logs}");
    let jobs = docker_cli(&[
        "service",
        "ls",
        "-q",
        "--filter",
        "label=cc-ci.test-job",
        "--filter",
        &format!("label=cc-ci.instance={instance}"),
    ]);
    assert_eq!(jobs, "");
    assert_eq!(leftovers(instance), Vec::<String>::new());
    ctl.stop().await;
}
