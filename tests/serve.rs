//! `cc-ci serve` as a process: watch streams over SSE, resuming a watch across a restart,
//! durability of acknowledged writes through SIGKILL, manifests, token file, config, shutdown.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::api::{Client, recipe};
use crate::support::{Serve, Server, TOKEN};

/// One server-sent event.
#[derive(Debug)]
struct SseEvent {
    event: String,
    data: String,
    id: Option<String>,
}

/// A reader of an SSE response.
struct EventStream {
    resp: reqwest::Response,
    buf: String,
}

impl EventStream {
    async fn open(url: &str, path: &str) -> EventStream {
        let resp = reqwest::get(format!("{url}{path}")).await.unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        let ctype = resp.headers()["content-type"].to_str().unwrap().to_string();
        assert!(ctype.starts_with("text/event-stream"), "{ctype}");
        EventStream {
            resp,
            buf: String::new(),
        }
    }

    /// The next event, or `None` when the stream ends or nothing comes within 10 s.
    async fn next(&mut self) -> Option<SseEvent> {
        loop {
            while let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let (mut event, mut data, mut id) = (String::new(), Vec::new(), None);
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        event = v.trim().to_string();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push(v.strip_prefix(' ').unwrap_or(v).to_string());
                    } else if let Some(v) = line.strip_prefix("id:") {
                        id = Some(v.trim().to_string());
                    }
                }
                if !event.is_empty() {
                    return Some(SseEvent {
                        event,
                        data: data.join("\n"),
                        id,
                    });
                }
            }
            let chunk = tokio::time::timeout(Duration::from_secs(10), self.resp.chunk())
                .await
                .ok()?
                .ok()??;
            self.buf.push_str(&String::from_utf8_lossy(&chunk));
        }
    }

    /// Skips events until one of type `kind` about record `name`; returns its data.
    async fn until(&mut self, kind: &str, name: &str) -> Value {
        loop {
            let e = self
                .next()
                .await
                .unwrap_or_else(|| panic!("no {kind} event for {name}"));
            if e.event == kind {
                let v: Value = serde_json::from_str(&e.data).unwrap();
                if name_of(&v) == name {
                    return v;
                }
            }
        }
    }

    /// The next event, which must be of type `kind`; returns its data as JSON.
    async fn expect(&mut self, kind: &str) -> (Value, Option<String>) {
        let e = self
            .next()
            .await
            .unwrap_or_else(|| panic!("no {kind} event"));
        assert_eq!(e.event, kind, "{e:?}");
        (serde_json::from_str(&e.data).unwrap(), e.id)
    }
}

fn name_of(v: &Value) -> &str {
    v["metadata"]["name"].as_str().unwrap()
}

#[tokio::test]
async fn watch_delivers_init_apply_and_delete() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_in(dir.path(), &[]);
    let api = Client::of(&server);
    api.post("/api/v1/recipes", &recipe("first")).await;
    let mut watch = EventStream::open(&api.url, "/api/v1/recipes?watch=true").await;
    watch.expect("init").await;
    let (first, id) = watch.expect("apply").await;
    assert_eq!(name_of(&first), "first");
    assert_eq!(id.as_deref(), first["metadata"]["resourceVersion"].as_str());
    watch.expect("init-done").await;

    let (_, second) = api.post("/api/v1/recipes", &recipe("second")).await;
    let applied = watch.until("apply", "second").await;
    assert_eq!(applied["metadata"]["uid"], second["metadata"]["uid"]);
    api.delete("/api/v1/recipes/first").await;
    let deleted = watch.until("delete", "first").await;
    assert_eq!(deleted["metadata"]["uid"], first["metadata"]["uid"]);
}

#[tokio::test]
async fn watch_with_a_selector_sees_only_matching_records() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_in(dir.path(), &[]);
    let api = Client::of(&server);
    let mut watch = EventStream::open(
        &api.url,
        "/api/v1/recipes?watch=true&labelSelector=tier%3Dweb",
    )
    .await;
    watch.expect("init").await;
    watch.expect("init-done").await;
    let mut other = recipe("db");
    other["metadata"]["labels"]["tier"] = json!("db");
    api.post("/api/v1/recipes", &other).await;
    let mut web = recipe("web");
    web["metadata"]["labels"]["tier"] = json!("web");
    api.post("/api/v1/recipes", &web).await;
    // Only the web record is sent; the db one (created first) never is.
    let e = watch.next().await.expect("an apply of the web record");
    let applied: Value = serde_json::from_str(&e.data).unwrap();
    assert_eq!((e.event.as_str(), name_of(&applied)), ("apply", "web"));
    // Relabelled out of the selection: a delete for this watcher.
    crate::api::update(&api, "/api/v1/recipes/web", |o| {
        o["metadata"]["labels"]["tier"] = json!("db");
    })
    .await;
    let gone = watch.until("delete", "web").await;
    assert_eq!(gone["metadata"]["labels"]["tier"], "db");
}

#[tokio::test]
async fn watch_resumes_after_a_restart_from_the_last_seen_version() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_in(dir.path(), &[]);
    let api = Client::of(&server);
    api.post("/api/v1/recipes", &recipe("before")).await;
    let mut watch = EventStream::open(&api.url, "/api/v1/recipes?watch=true").await;
    watch.expect("init").await;
    let (_, last_seen) = watch.expect("apply").await;
    let last_seen = last_seen.unwrap();
    watch.expect("init-done").await;
    drop(watch);
    let state_dir = server.kill();

    // A change made while the server is down, straight into its store.
    {
        use cc_ci::store::Store;
        let store = cc_ci::store::SledStore::open(&state_dir.join("store")).unwrap();
        let spec = serde_json::from_value(
            json!({"git": "https://git.coopcloud.tech/coop-cloud/offline.git"}),
        )
        .unwrap();
        store
            .create(cc_ci::api::Object::<cc_ci::api::RecipeSpec>::new(
                "while-down",
                spec,
            ))
            .await
            .unwrap();
    }
    let server = Server::start_in(&state_dir, &[]);
    let api = Client::of(&server);
    api.post("/api/v1/recipes", &recipe("after")).await;
    let mut resumed = EventStream::open(
        &api.url,
        &format!("/api/v1/recipes?watch=true&resourceVersion={last_seen}"),
    )
    .await;
    // Controllers may add status writes in between; what matters is that the change made while
    // the server was down and the one made after it arrive, in order.
    let mut seen: Vec<String> = Vec::new();
    let mut relisted = false;
    while !(seen.iter().any(|n| n == "while-down") && seen.iter().any(|n| n == "after")) {
        let e = resumed
            .next()
            .await
            .unwrap_or_else(|| panic!("events after the resume point; got {seen:?}"));
        match e.event.as_str() {
            "init" => relisted = true,
            "apply" => {
                let v: Value = serde_json::from_str(&e.data).unwrap();
                seen.push(name_of(&v).to_string());
            }
            _ => {}
        }
    }
    if !relisted {
        let first = |name: &str| seen.iter().position(|n| n == name).unwrap();
        assert!(first("while-down") < first("after"), "{seen:?}");
    }
}

#[tokio::test]
async fn acknowledged_writes_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_in(dir.path(), &[]);
    let url = server.url.clone();
    let pid = server.child.id();
    let http = reqwest::Client::new();
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..16 {
        let (http, url) = (http.clone(), url.clone());
        tasks.spawn(async move {
            let mut acked = Vec::new();
            for i in 0.. {
                let name = format!("w{w}-{i}");
                let sent = http
                    .post(format!("{url}/api/v1/testruns"))
                    .bearer_auth(TOKEN)
                    .json(&json!({"metadata":{"name":name},"spec":{"recipe":"custom-html","ref":"main"}}))
                    .send()
                    .await;
                match sent {
                    Ok(r) if r.status().as_u16() == 201 => acked.push(name),
                    Ok(r) => panic!("unexpected answer {}", r.status()),
                    Err(_) => break,
                }
            }
            acked
        });
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    let status = Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let mut acked = Vec::new();
    while let Some(r) = tasks.join_next().await {
        acked.extend(r.unwrap());
    }
    let state_dir = server.kill();
    assert!(
        acked.len() > 16,
        "the burst got only {} writes in",
        acked.len()
    );

    let server = Server::start_in(&state_dir, &[]);
    let api = Client::of(&server);
    let (_, list) = api.get("/api/v1/testruns").await;
    let stored: std::collections::HashSet<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(name_of)
        .collect();
    let lost: Vec<&String> = acked
        .iter()
        .filter(|n| !stored.contains(n.as_str()))
        .collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged writes lost: {lost:?}",
        lost.len(),
        acked.len()
    );
}

/// A server on `state_dir` expected to fail at start: its stderr goes to a file next to it.
fn failing_serve(state_dir: &Path, extra: &[&str]) -> (bool, String) {
    let log = state_dir.with_extension("stderr.log");
    Serve::new(state_dir)
        .args(extra)
        .stderr_to(&log)
        .spawn()
        .wait_exit()
}

#[tokio::test]
async fn manifests_are_applied_at_start_and_reapplied_on_restart() {
    let dir = tempfile::tempdir().unwrap();
    let manifests = dir.path().join("manifests");
    std::fs::create_dir_all(&manifests).unwrap();
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let both = format!(
        "{}\n---\n{}",
        std::fs::read_to_string(examples.join("recipe.yaml")).unwrap(),
        std::fs::read_to_string(examples.join("testrun.yaml")).unwrap()
    );
    std::fs::write(manifests.join("ci.yaml"), both).unwrap();
    std::fs::write(
        manifests.join("proxy.json"),
        json!({"kind":"ProxyDeployment","metadata":{"name":"traefik"},
               "spec":{"git":"https://git.coopcloud.tech/coop-cloud/traefik.git","version":"3.0.1+v3.3.3","domain":"traefik.ci.example.org"}})
        .to_string(),
    )
    .unwrap();
    std::fs::write(manifests.join("notes.txt"), "not a manifest").unwrap();
    let state = dir.path().join("state");
    let m = manifests.to_str().unwrap();
    let server = Server::start_in(&state, &["--manifests", m]);
    let api = Client::of(&server);
    let (status, r) = api.get("/api/v1/recipes/static-site").await;
    assert_eq!(status, 200);
    assert_eq!(api.get("/api/v1/testruns/static-site-example").await.0, 200);
    let (_, proxy) = api.get("/api/v1/proxydeployments/traefik").await;
    assert_eq!(proxy["spec"]["domain"], "traefik.ci.example.org");
    let state_dir = server.kill();

    std::fs::write(
        manifests.join("proxy.json"),
        json!({"kind":"ProxyDeployment","metadata":{"name":"traefik"},
               "spec":{"git":"https://git.coopcloud.tech/coop-cloud/traefik.git","version":"3.0.2+v3.3.4","domain":"traefik.ci.example.org"}})
        .to_string(),
    )
    .unwrap();
    let server = Server::start_in(&state_dir, &["--manifests", m]);
    let api = Client::of(&server);
    let (_, proxy2) = api.get("/api/v1/proxydeployments/traefik").await;
    assert_eq!(proxy2["spec"]["version"], "3.0.2+v3.3.4");
    assert_eq!(proxy2["metadata"]["generation"], 2);
    let (_, r2) = api.get("/api/v1/recipes/static-site").await;
    assert_eq!(
        r2["metadata"]["resourceVersion"], r["metadata"]["resourceVersion"],
        "unchanged manifests are not rewritten"
    );
}

#[test]
fn a_bad_manifest_stops_the_start_with_its_file_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let manifests = dir.path().join("manifests");
    std::fs::create_dir_all(&manifests).unwrap();
    std::fs::write(
        manifests.join("broken.yaml"),
        "kind: Recipe\nmetadata:\n  name: ok\nspec:\n  git: x\n---\nkind: Recipe\nmetadata:\n  name: bad\nspec:\n  git: x\n  stages: [install, sideways]\n",
    )
    .unwrap();
    let (ok, stderr) = failing_serve(
        &dir.path().join("state"),
        &["--manifests", manifests.to_str().unwrap()],
    );
    assert!(!ok);
    assert!(stderr.contains("broken.yaml"), "{stderr}");
    assert!(stderr.contains("document 2"), "{stderr}");
    assert!(stderr.contains("spec.stages[1]"), "{stderr}");
}

#[test]
fn an_unknown_config_key_stops_the_start_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("cc-ci.toml");
    std::fs::write(&config, "listen = \"127.0.0.1:0\"\nstate_dri = \"/tmp\"\n").unwrap();
    let (ok, stderr) = failing_serve(
        &dir.path().join("state"),
        &["--config", config.to_str().unwrap()],
    );
    assert!(!ok);
    assert!(stderr.contains("state_dri"), "{stderr}");
    assert!(stderr.contains("cc-ci.toml"), "{stderr}");
}

#[tokio::test]
async fn config_file_settings_apply_and_flags_override_them() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("cc-ci.toml");
    // The file's listen address is overridden by the harness's --listen 127.0.0.1:0.
    std::fs::write(&config, "listen = \"256.0.0.1:1\"\nmax_body_bytes = 2000\n").unwrap();
    let server = Server::start_in(
        &dir.path().join("state"),
        &["--config", config.to_str().unwrap()],
    );
    let api = Client::of(&server);
    let mut doc = recipe("a");
    doc["metadata"]["annotations"] = json!({"note": "x".repeat(3000)});
    let (status, err) = api.post("/api/v1/recipes", &doc).await;
    assert_eq!(
        (status, err["reason"].as_str()),
        (413, Some("PayloadTooLarge"))
    );
    assert_eq!(api.post("/api/v1/recipes", &recipe("a")).await.0, 201);
}

#[tokio::test]
async fn a_missing_token_file_is_generated_private_and_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let server = Serve::new(dir.path()).own_token().start();
    let url = server.url.clone();
    let token_file = dir.path().join("api-token");
    let token = std::fs::read_to_string(&token_file).unwrap();
    assert!(token.trim().len() >= 32);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&token_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let resp = reqwest::Client::new()
        .post(format!("{url}/api/v1/recipes"))
        .bearer_auth(token.trim())
        .json(&recipe("a"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201);
}

#[tokio::test]
async fn sigterm_stops_the_server_gracefully_even_with_open_watches() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start_in(dir.path(), &[]);
    let mut watch = EventStream::open(&server.url, "/api/v1/testruns?watch=true").await;
    watch.expect("init").await;
    let pid = server.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = server.child.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "the server did not stop within 10 s of SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "{status:?}");
    watch.expect("init-done").await;
    assert!(
        watch.next().await.is_none(),
        "the watch ends with the server"
    );
}

/// Runs `cc-ci store export` on `state_dir` (output discarded); answers success and stderr.
fn store_export(state_dir: &Path) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_cc-ci"))
        .args(["store", "export", "--state-dir"])
        .arg(state_dir)
        .stdout(Stdio::null())
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_locked_store_stops_a_second_serve_and_export_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let first = Server::start_in(dir.path(), &[]);
    let (ok, stderr) = failing_serve(dir.path(), &[]);
    assert!(!ok, "a second serve on a locked store must fail");
    assert!(stderr.contains("locked"), "{stderr}");
    assert!(stderr.contains("store"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let (ok, stderr) = store_export(dir.path());
    assert!(!ok, "export of a locked store must fail");
    assert!(stderr.contains("stop `cc-ci serve`"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    drop(first);
}

#[test]
fn a_corrupt_store_stops_serve_and_export_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_in(dir.path(), &[]);
    let state_dir = server.kill();
    let db = state_dir.join("store").join("db");
    assert!(db.exists(), "the store has a data file at {}", db.display());
    let junk: Vec<u8> = (0..8192u32).map(|i| (i * 31 + 7) as u8).collect();
    std::fs::write(&db, junk).unwrap();
    for (ok, stderr) in [failing_serve(&state_dir, &[]), store_export(&state_dir)] {
        assert!(!ok, "a corrupt store must fail the command");
        assert!(stderr.contains("cannot be opened"), "{stderr}");
        assert!(stderr.contains("store"), "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

#[tokio::test]
async fn serve_starts_without_docker_and_the_janitor_counts_its_failed_sweep() {
    let dir = tempfile::tempdir().unwrap();
    let nowhere = dir.path().join("no-docker.sock");
    let state = dir.path().join("state");
    let mut server = Serve::new(&state)
        .args(&["--insecure-no-auth"])
        .own_token()
        .with_runs()
        .env("DOCKER_HOST", &format!("unix://{}", nowhere.display()))
        .stderr_to(&dir.path().join("serve.log"))
        .spawn();
    server.wait_listening();
    let url = server.url.clone();
    let deadline = Instant::now() + Duration::from_secs(30);
    let http = reqwest::Client::new();
    loop {
        let ready = http.get(format!("{url}/readyz")).send().await;
        let metrics = http.get(format!("{url}/metrics")).send().await;
        if let (Ok(ready), Ok(metrics)) = (ready, metrics) {
            let text = metrics.text().await.unwrap();
            if ready.status() == 200
                && text.contains(r#"ccci_janitor_sweeps_total{result="error"} 1"#)
            {
                assert!(
                    text.contains(r#"ccci_janitor_sweeps_total{result="ok"} 0"#),
                    "{text}"
                );
                break;
            }
        }
        assert!(
            Instant::now() < deadline,
            "not ready, or no failed janitor sweep counted"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    server.terminate();
    let (ok, stderr) = server.wait_exit();
    assert!(ok, "{stderr}");
    assert!(stderr.contains("Docker is not reachable now"), "{stderr}");
    assert!(stderr.contains("janitor sweep failed"), "{stderr}");
}

mod limits;
