//! Run logs through a real `cc-ci serve` and the real `ccctl`: offset reads, the stream list,
//! following until the run ends, redaction, `ccctl logs` and `ccctl run`. The log files are
//! written straight into the server's state directory with [`RunLogs`], as the reconciler does.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use cc_ci::runlog::RunLogs;
use cc_ci::runlog::redact::Redactor;
use serde_json::{Value, json};

use crate::api::Client;
use crate::support::Server;

fn run_manifest(name: &str) -> Value {
    json!({
        "apiVersion": "cc-ci/v1alpha1",
        "kind": "TestRun",
        "metadata": {"name": name, "labels": {"test": "logs"}},
        "spec": {"recipe": "logs-recipe", "ref": "0123456789abcdef0123456789abcdef01234567"},
    })
}

async fn create_run(api: &Client, name: &str) {
    let (status, body) = api.post("/api/v1/testruns", &run_manifest(name)).await;
    assert_eq!(status, 201, "{body}");
}

/// Sets the run's `status.phase` through the status endpoint (retrying on conflicts).
async fn set_phase(api: &Client, name: &str, phase: &str) {
    let path = format!("/api/v1/testruns/{name}");
    for _ in 0..20 {
        let (status, mut obj) = api.get(&path).await;
        assert_eq!(status, 200, "{obj}");
        obj["status"]["phase"] = json!(phase);
        let (status, body) = api.put(&format!("{path}/status"), &obj).await;
        if status != 409 {
            assert_eq!(status, 200, "{body}");
            assert_eq!(body["status"]["phase"], phase);
            return;
        }
    }
    panic!("{path}: status still conflicting");
}

async fn append(
    state_dir: &std::path::Path,
    redactor: &Redactor,
    run: &str,
    stream: &str,
    lines: &[&str],
) {
    let logs = RunLogs::new(state_dir);
    let mut w = logs.writer(run, stream, redactor.clone()).await.unwrap();
    for l in lines {
        w.line(l).await.unwrap();
    }
    w.finish().await.unwrap();
}

fn file_of(server: &Server, run: &str, stream: &str) -> Vec<u8> {
    std::fs::read(RunLogs::new(&server.state_dir).path(run, stream).unwrap()).unwrap()
}

/// A plain read: status, headers of interest, body.
async fn read(url: &str) -> (u16, Option<u64>, Option<u64>, String, Vec<u8>) {
    let resp = reqwest::get(url).await.unwrap();
    let header = |n: &str| {
        resp.headers()
            .get(n)
            .map(|v| v.to_str().unwrap().parse::<u64>().unwrap())
    };
    let (next, size) = (header("x-next-offset"), header("x-log-size"));
    let ctype = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let status = resp.status().as_u16();
    (
        status,
        next,
        size,
        ctype,
        resp.bytes().await.unwrap().to_vec(),
    )
}

#[tokio::test]
async fn log_reads_start_at_offsets_and_streams_are_listed_in_plan_order() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_in(dir.path(), &[]);
    let api = Client::of(&server);
    create_run(&api, "logs-offsets").await;

    // An existing run without logs yet lists no streams.
    let (status, list) = api.get("/api/v1/testruns/logs-offsets/logs").await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list, json!({"run": "logs-offsets", "streams": []}));

    let r = Redactor::new();
    for stream in ["upgrade", "zz-extra", "backup-restore", "install", "run"] {
        append(
            &server.state_dir,
            &r,
            "logs-offsets",
            stream,
            &[&format!("{stream} says hi")],
        )
        .await;
    }
    append(
        &server.state_dir,
        &r,
        "logs-offsets",
        "install",
        &["second line", "third"],
    )
    .await;
    let install = file_of(&server, "logs-offsets", "install");

    let (_, list) = api.get("/api/v1/testruns/logs-offsets/logs").await;
    let names: Vec<&str> = list["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["run", "install", "upgrade", "backup-restore", "zz-extra"]
    );
    assert_eq!(list["streams"][1]["size"], install.len() as u64);

    let base = format!("{}/api/v1/testruns/logs-offsets/logs/install", server.url);
    let (status, next, size, ctype, first) = read(&format!("{base}?offset=0&limit=10")).await;
    assert_eq!(status, 200);
    assert!(ctype.starts_with("text/plain"), "{ctype}");
    assert_eq!(first, install[..10]);
    assert_eq!((next, size), (Some(10), Some(install.len() as u64)));
    let (_, next, _, _, rest) = read(&format!("{base}?offset=10")).await;
    assert_eq!([first, rest.clone()].concat(), install);
    assert_eq!(next, Some(install.len() as u64));
    // From the end: nothing, and the same next offset.
    let (status, again, _, _, empty) = read(&format!("{base}?offset={}", next.unwrap())).await;
    assert_eq!((status, again, empty.len()), (200, next, 0));
    // Without an offset the whole log.
    assert_eq!(read(&base).await.4, install);

    // Bad query values are 400s with the API's error shape.
    let (status, body) = api
        .get("/api/v1/testruns/logs-offsets/logs/install?offset=-3")
        .await;
    assert_eq!((status, body["reason"].as_str()), (400, Some("BadRequest")));
    assert!(
        body["message"].as_str().unwrap().contains("offset"),
        "{body}"
    );
}

#[tokio::test]
async fn unknown_runs_are_404_and_bad_stream_names_400() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_in(dir.path(), &[]);
    let api = Client::of(&server);
    for path in [
        "/api/v1/testruns/logs-nobody/logs",
        "/api/v1/testruns/logs-nobody/logs/install",
        "/api/v1/testruns/logs-nobody/logs/install?follow=true",
    ] {
        let (status, body) = api.get(path).await;
        assert_eq!(status, 404, "{path}: {body}");
        assert_eq!(body["reason"], "NotFound", "{path}: {body}");
        assert_eq!(body["code"], 404);
        assert!(body["message"].as_str().unwrap().contains("logs-nobody"));
    }
    create_run(&api, "logs-names").await;
    for bad in ["UPPER", ".hidden", "a%20b", "..%2Fx"] {
        let (status, body) = api
            .get(&format!("/api/v1/testruns/logs-names/logs/{bad}"))
            .await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert_eq!(body["reason"], "BadRequest", "{bad}: {body}");
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .contains("log stream name"),
            "{body}"
        );
    }
}

/// Reads a follow response's body on a thread-free task; hands chunks over a channel.
fn collect_body(resp: reqwest::Response) -> tokio::sync::mpsc::UnboundedReceiver<Option<Vec<u8>>> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut resp = resp;
        loop {
            match resp.chunk().await {
                Ok(Some(c)) => {
                    let _ = tx.send(Some(c.to_vec()));
                }
                Ok(None) => {
                    let _ = tx.send(None);
                    return;
                }
                Err(e) => panic!("follow body failed: {e}"),
            }
        }
    });
    rx
}

/// Receives until `got` contains `needle`; `false` if the stream ended first.
async fn until(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<Option<Vec<u8>>>,
    got: &mut Vec<u8>,
    needle: &str,
) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !String::from_utf8_lossy(got).contains(needle) {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, rx.recv()).await {
            Ok(Some(Some(c))) => got.extend(c),
            Ok(_) => return false,
            Err(_) => panic!("nothing containing {needle:?} within 10 s; got {got:?}"),
        }
    }
    true
}

#[tokio::test]
async fn follow_sends_appended_bytes_once_and_ends_when_the_run_is_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_in(dir.path(), &[]);
    let api = Client::of(&server);
    create_run(&api, "logs-follow").await;
    let r = Redactor::new();
    append(
        &server.state_dir,
        &r,
        "logs-follow",
        "install",
        &["before the follow"],
    )
    .await;
    let skip = 7u64;
    let resp = reqwest::get(format!(
        "{}/api/v1/testruns/logs-follow/logs/install?follow=true&offset={skip}",
        server.url
    ))
    .await
    .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(resp.headers()["x-log-offset"], "7");
    let mut rx = collect_body(resp);
    let mut got = Vec::new();
    assert!(until(&mut rx, &mut got, "before the follow\n").await);

    append(
        &server.state_dir,
        &r,
        "logs-follow",
        "install",
        &["appended while open"],
    )
    .await;
    assert!(until(&mut rx, &mut got, "appended while open\n").await);
    // Still Pending: the follow stays open past the quiet period.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        rx.try_recv().is_err(),
        "the follow ended while the run was pending"
    );

    set_phase(&api, "logs-follow", "Running").await;
    append(
        &server.state_dir,
        &r,
        "logs-follow",
        "install",
        &["running now"],
    )
    .await;
    assert!(until(&mut rx, &mut got, "running now\n").await);
    set_phase(&api, "logs-follow", "Succeeded").await;
    let ended = Instant::now();
    loop {
        match tokio::time::timeout(Duration::from_secs(10), rx.recv()).await {
            Ok(Some(Some(c))) => got.extend(c),
            Ok(Some(None)) | Ok(None) => break,
            Err(_) => panic!("the follow did not end after the run succeeded"),
        }
    }
    assert!(
        ended.elapsed() < Duration::from_secs(5),
        "{:?}",
        ended.elapsed()
    );
    // Exactly the file from the offset: nothing twice, nothing missing.
    assert_eq!(
        got,
        file_of(&server, "logs-follow", "install")[skip as usize..]
    );

    // A follow of a finished run sends what exists and ends by itself.
    let resp = reqwest::get(format!(
        "{}/api/v1/testruns/logs-follow/logs/install?follow=1",
        server.url
    ))
    .await
    .unwrap();
    let body = tokio::time::timeout(Duration::from_secs(10), resp.bytes())
        .await
        .expect("a follow of a finished run ends")
        .unwrap();
    assert_eq!(body.to_vec(), file_of(&server, "logs-follow", "install"));
}

#[tokio::test]
async fn follow_ends_when_the_run_is_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_in(dir.path(), &[]);
    let api = Client::of(&server);
    create_run(&api, "logs-deleted").await;
    let resp = reqwest::get(format!(
        "{}/api/v1/testruns/logs-deleted/logs/upgrade?follow=true",
        server.url
    ))
    .await
    .unwrap();
    let mut rx = collect_body(resp);
    let r = Redactor::new();
    append(
        &server.state_dir,
        &r,
        "logs-deleted",
        "upgrade",
        &["a stream that starts late"],
    )
    .await;
    let mut got = Vec::new();
    assert!(until(&mut rx, &mut got, "starts late\n").await);
    let (status, body) = api.delete("/api/v1/testruns/logs-deleted").await;
    assert_eq!(status, 200, "{body}");
    let end = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match rx.recv().await {
                Some(Some(c)) => got.extend(c),
                _ => return,
            }
        }
    })
    .await;
    assert!(
        end.is_ok(),
        "the follow did not end after the run was deleted"
    );
    assert_eq!(got, file_of(&server, "logs-deleted", "upgrade"));
}

#[tokio::test]
async fn secrets_registered_before_writing_never_reach_the_api() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_in(dir.path(), &[]);
    let api = Client::of(&server);
    create_run(&api, "logs-secret").await;
    let secret = "s3cr3t-db-password-Zq9";
    let r = Redactor::new();
    r.register(secret);
    let logs = RunLogs::new(&server.state_dir);
    let mut w = logs
        .writer("logs-secret", "install", r.clone())
        .await
        .unwrap();
    w.line(&format!("POSTGRES_PASSWORD={secret}"))
        .await
        .unwrap();
    // Raw output with the secret split across chunks.
    w.output(b"psql: password s3cr3t-db-").await.unwrap();
    w.output(b"password-Zq9 accepted\n").await.unwrap();
    w.finish().await.unwrap();

    let base = format!("{}/api/v1/testruns/logs-secret/logs/install", server.url);
    let whole = String::from_utf8(read(&base).await.4).unwrap();
    assert!(whole.contains("POSTGRES_PASSWORD=***"), "{whole}");
    assert!(whole.contains("psql: password *** accepted"), "{whole}");
    // Every offset window, too (a read can start inside the placeholder, never in a secret).
    for off in 0..whole.len() {
        let (_, _, _, _, part) = read(&format!("{base}?offset={off}&limit=40")).await;
        assert!(!String::from_utf8_lossy(&part).contains("s3cr3t"), "{off}");
    }
    set_phase(&api, "logs-secret", "Failed").await;
    let followed = reqwest::get(format!("{base}?follow=true"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(followed, whole);
    assert!(!followed.contains(secret));
    let (_, list) = api.get("/api/v1/testruns/logs-secret/logs").await;
    assert!(!list.to_string().contains("s3cr3t"));
}

// ---- ccctl ----

fn ccctl(server: &Server, cwd: &std::path::Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ccctl"));
    cmd.args(args)
        .current_dir(cwd)
        .env_remove("CCCTL_TOKEN")
        .env("CCCTL_TOKEN_FILE", &server.token_file)
        .env("CCCTL_SERVER", &server.url)
        .env("USER", "logs-tester");
    cmd
}

fn run_ccctl(server: &Server, cwd: &std::path::Path, args: &[&str]) -> Output {
    ccctl(server, cwd, args).output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[tokio::test]
async fn ccctl_logs_prints_every_stream_in_plan_order_and_missing_runs_exit_3() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_in(&dir.path().join("state"), &[]);
    let api = Client::of(&server);
    create_run(&api, "logs-ccctl").await;
    let r = Redactor::new();
    for stream in ["backup-restore", "install", "run", "zz-extra", "upgrade"] {
        append(
            &server.state_dir,
            &r,
            "logs-ccctl",
            stream,
            &[&format!("{stream} line")],
        )
        .await;
    }
    let cwd = dir.path();
    let out = run_ccctl(&server, cwd, &["logs", "run", "logs-ccctl"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let headers: Vec<&str> = stdout.lines().filter(|l| l.starts_with("==> ")).collect();
    assert_eq!(
        headers,
        [
            "==> run <==",
            "==> install <==",
            "==> upgrade <==",
            "==> backup-restore <==",
            "==> zz-extra <=="
        ]
    );
    // Each stream's content follows its own header.
    let sections: Vec<&str> = stdout.split("==> ").skip(1).collect();
    for s in &sections {
        let name = s.split(' ').next().unwrap();
        assert!(s.contains(&format!(" {name} line\n")), "{s}");
        assert_eq!(s.matches(" line\n").count(), 1, "{s}");
    }

    let out = run_ccctl(
        &server,
        cwd,
        &["logs", "tr", "logs-ccctl", "--stream", "upgrade"],
    );
    assert!(out.status.success());
    assert_eq!(out.stdout, file_of(&server, "logs-ccctl", "upgrade"));

    let out = run_ccctl(&server, cwd, &["logs", "run", "logs-missing"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("logs-missing"));
    let out = run_ccctl(
        &server,
        cwd,
        &["logs", "run", "logs-ccctl", "--stream", "nope"],
    );
    assert_eq!(out.status.code(), Some(3));
    assert!(
        text(&out.stderr).contains("no log stream \"nope\""),
        "{}",
        text(&out.stderr)
    );
    let out = run_ccctl(
        &server,
        cwd,
        &["logs", "run", "logs-ccctl", "--stream", "NOPE"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("Error from server (BadRequest)"),
        "{}",
        text(&out.stderr)
    );
    let out = run_ccctl(&server, cwd, &["logs", "recipe", "x"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("only test runs have logs"));
}

/// Reads a child's stdout lines on a thread.
fn lines_of(child: &mut Child) -> mpsc::Receiver<String> {
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if tx.send(line.unwrap()).is_err() {
                return;
            }
        }
    });
    rx
}

fn wait_line(rx: &mpsc::Receiver<String>, seen: &mut Vec<String>, needle: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !seen.iter().any(|l| l.contains(needle)) {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(l) => seen.push(l),
            Err(_) => panic!("no line with {needle:?}; got {seen:#?}"),
        }
    }
}

fn wait_exit(child: &mut Child, secs: u64) -> std::process::ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("ccctl did not exit within {secs} s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test]
async fn ccctl_logs_follow_prints_every_line_once_across_a_server_restart() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let server = Server::start_in(&state, &[]);
    let addr = server.url.trim_start_matches("http://").to_string();
    let api = Client::of(&server);
    create_run(&api, "logs-restart").await;
    let r = Redactor::new();
    append(&server.state_dir, &r, "logs-restart", "run", &["admitted"]).await;
    let mut child = ccctl(&server, dir.path(), &["logs", "run", "logs-restart", "-f"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let rx = lines_of(&mut child);
    let mut seen = Vec::new();
    wait_line(&rx, &mut seen, "admitted");
    // A stream that appears while following is picked up.
    append(
        &server.state_dir,
        &r,
        "logs-restart",
        "install",
        &["install started"],
    )
    .await;
    wait_line(&rx, &mut seen, "install started");

    // The server goes away; lines are written meanwhile; it comes back on the same address.
    let state_dir = server.kill();
    append(&state_dir, &r, "logs-restart", "install", &["while down"]).await;
    let server = Server::start_listening(&state_dir, &addr, &[]);
    let api = Client::of(&server);
    append(
        &server.state_dir,
        &r,
        "logs-restart",
        "run",
        &["after restart"],
    )
    .await;
    wait_line(&rx, &mut seen, "while down");
    wait_line(&rx, &mut seen, "after restart");
    set_phase(&api, "logs-restart", "Succeeded").await;
    let status = wait_exit(&mut child, 15);
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(status.success(), "{status:?}: {err}");
    seen.extend(rx.try_iter());

    // Every line of every stream exactly once, prefixed with its stream.
    let mut expected: Vec<String> = Vec::new();
    for stream in ["run", "install"] {
        for l in text(&file_of(&server, "logs-restart", stream)).lines() {
            expected.push(format!("[{stream}] {l}"));
        }
    }
    let mut got = seen.clone();
    got.sort();
    expected.sort();
    assert_eq!(got, expected, "{err}");
}

#[tokio::test]
async fn ccctl_run_creates_a_manual_run_that_get_lists() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_in(&dir.path().join("state"), &[]);
    let api = Client::of(&server);
    let cwd = dir.path();

    // No Recipe record: a clear NotFound, and nothing created.
    let out = run_ccctl(&server, cwd, &["run", "logs-recipe", "--ref", "abc1234"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains("recipe \"logs-recipe\" does not exist"),
        "{err}"
    );
    assert!(err.contains("--git"), "{err}");
    let (_, list) = api.get("/api/v1/testruns").await;
    assert_eq!(list["items"].as_array().unwrap().len(), 0);

    let (status, _) = api
        .post("/api/v1/recipes", &crate::api::recipe("logs-recipe"))
        .await;
    assert_eq!(status, 201);
    let out = run_ccctl(
        &server,
        cwd,
        &[
            "run",
            "logs-recipe",
            "--ref",
            "abc1234",
            "--pr",
            "12",
            "--stage",
            "install",
            "--stage",
            "upgrade",
            "--upgrade-from",
            "1.0.0+1.2.3",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let name = text(&out.stdout).trim().to_string();
    let suffix = name.strip_prefix("logs-recipe-manual-").expect(&name);
    assert_eq!(suffix.len(), 6);
    assert!(
        suffix
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    );

    let out = run_ccctl(&server, cwd, &["get", "runs"]);
    assert!(
        text(&out.stdout).lines().any(|l| l.starts_with(&name)),
        "{}",
        text(&out.stdout)
    );
    let (status, run) = api.get(&format!("/api/v1/testruns/{name}")).await;
    assert_eq!(status, 200);
    assert_eq!(run["spec"]["recipe"], "logs-recipe");
    assert_eq!(run["spec"]["ref"], "abc1234");
    assert_eq!(run["spec"]["pr"], 12);
    assert_eq!(run["spec"]["stages"], json!(["install", "upgrade"]));
    assert_eq!(run["spec"]["upgradeFrom"], "1.0.0+1.2.3");
    assert_eq!(run["spec"]["source"]["requester"], "ccctl:logs-tester");
    assert!(run["spec"]["source"]["triggeredAt"].is_string());

    // With --git no Recipe is needed; a long recipe name still gives a valid name.
    let long = "r".repeat(60);
    let out = run_ccctl(
        &server,
        cwd,
        &[
            "run",
            &long,
            "--ref",
            "main",
            "--git",
            "https://example.org/r.git",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let name = text(&out.stdout).trim().to_string();
    assert!(name.len() <= 63 && name.contains("-manual-"), "{name}");
    let (status, run) = api.get(&format!("/api/v1/testruns/{name}")).await;
    assert_eq!(status, 200);
    assert_eq!(run["spec"]["git"], "https://example.org/r.git");
    assert_eq!(run["spec"]["recipe"], long.as_str());

    // Bad stages are usage errors.
    let out = run_ccctl(
        &server,
        cwd,
        &["run", "logs-recipe", "--ref", "x", "--stage", "deploy"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("unknown stage"));
}

#[tokio::test]
async fn ccctl_run_follow_prints_the_name_then_the_runs_logs() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_in(&dir.path().join("state"), &[]);
    let api = Client::of(&server);
    let (status, _) = api
        .post("/api/v1/recipes", &crate::api::recipe("logs-recipe"))
        .await;
    assert_eq!(status, 201);
    let mut child = ccctl(
        &server,
        dir.path(),
        &["run", "logs-recipe", "--ref", "abc", "-f"],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    let rx = lines_of(&mut child);
    let name = rx.recv_timeout(Duration::from_secs(15)).unwrap();
    assert!(name.starts_with("logs-recipe-manual-"), "{name}");
    let r = Redactor::new();
    append(&server.state_dir, &r, &name, "run", &["admitted at once"]).await;
    let mut seen = Vec::new();
    wait_line(&rx, &mut seen, "[run] ");
    set_phase(&api, &name, "Cancelled").await;
    assert!(wait_exit(&mut child, 15).success());
    seen.extend(rx.try_iter());
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert!(seen[0].ends_with(" admitted at once"), "{seen:?}");
}
