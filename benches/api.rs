//! API-level benchmarks, each against a real `cc-ci serve` process:
//! acknowledged writes per second from concurrent clients, list latency, `ccctl get runs` as a
//! whole process, start-up time with many records, and idle memory.
//!
//! The targets (from the issue): ≥ 1,000 acknowledged writes/s from 16 clients; listing 10,000
//! TestRuns ≤ 100 ms median; `ccctl get runs` over 10,000 runs ≤ 300 ms; start-up with 10,000
//! records ≤ 1 s; idle RSS ≤ 40 MB.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Why a benchmark could not run.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// Starting or talking to the server failed.
    #[error("{0}")]
    Server(String),
    /// An HTTP request failed or was refused.
    #[error("request failed: {0}")]
    Request(String),
}

/// A `cc-ci serve` child process on a free port; killed on drop.
#[derive(Debug)]
pub struct ServeProcess {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// The write token.
    pub token: String,
}

impl ServeProcess {
    /// Starts `bin serve` on `state_dir` (token file `<state_dir>/api-token`, generated when
    /// missing) and waits until `/readyz` answers 200. Returns the process and the time from
    /// spawn to ready.
    pub async fn start(
        bin: &Path,
        state_dir: &Path,
    ) -> Result<(ServeProcess, Duration), BenchError> {
        Self::start_with(bin, state_dir, None).await
    }

    /// Like [`ServeProcess::start`]; with `config`, runs are enabled and that configuration file
    /// is used (otherwise `--no-runs`).
    pub async fn start_with(
        bin: &Path,
        state_dir: &Path,
        config: Option<&Path>,
    ) -> Result<(ServeProcess, Duration), BenchError> {
        let addr_file = state_dir.join("listen-addr");
        let _ = std::fs::remove_file(&addr_file);
        let started = Instant::now();
        let mut cmd = Command::new(bin);
        cmd.arg("serve");
        match config {
            Some(config) => cmd.arg("--config").arg(config),
            None => cmd.arg("--no-runs"),
        };
        let child = cmd
            .args(["--listen", "127.0.0.1:0", "--state-dir"])
            .arg(state_dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .env("RUST_LOG", "warn")
            .spawn()
            .map_err(|e| BenchError::Server(format!("cannot start {}: {e}", bin.display())))?;
        let mut process = ServeProcess {
            child,
            url: String::new(),
            token: String::new(),
        };
        let http = reqwest::Client::new();
        let deadline = started + Duration::from_secs(60);
        loop {
            if process.url.is_empty() {
                if let Ok(addr) = std::fs::read_to_string(&addr_file) {
                    process.url = format!("http://{}", addr.trim());
                }
            } else if let Ok(r) = http.get(format!("{}/readyz", process.url)).send().await {
                if r.status().is_success() {
                    break;
                }
            }
            if Instant::now() > deadline {
                return Err(BenchError::Server("the server never became ready".into()));
            }
            if let Ok(Some(status)) = process.child.try_wait() {
                return Err(BenchError::Server(format!("the server exited: {status}")));
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let elapsed = started.elapsed();
        process.token = std::fs::read_to_string(state_dir.join("api-token"))
            .map_err(|e| BenchError::Server(format!("no token file: {e}")))?
            .trim()
            .to_string();
        Ok((process, elapsed))
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Resident memory of the process in KiB (`VmRSS` from `/proc`), if it can be read.
    pub fn rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn testrun(name: &str) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "cc-ci/v1alpha1",
        "kind": "TestRun",
        "metadata": {"name": name, "labels": {"cc-ci.coopcloud.tech/recipe": "custom-html"}},
        "spec": {
            "recipe": "custom-html",
            "ref": "4c1e8f0b2a9d7e6c5b4a39281706f5e4d3c2b1a0",
            "pr": 42,
            "source": {"commentId": 10234, "requester": "bench"},
        },
    })
}

/// The status of a run that passed all three stages, shaped like the controller writes it
/// (steps with times and messages): what a long run history is made of.
fn finished_status() -> serde_json::Value {
    let at = "2026-12-01T10:00:00Z";
    let steps = |names: &[&str]| -> Vec<serde_json::Value> {
        names
            .iter()
            .map(|n| {
                serde_json::json!({"name": n, "started": at, "finished": at, "ok": true,
                                        "message": format!("{n}: ok in 2.1 s")})
            })
            .collect()
    };
    let stage = |name: &str, names: &[&str], passed: u32| {
        serde_json::json!({"stage": name, "phase": "Passed", "steps": steps(names),
                           "tests": {"passed": passed, "failed": 0, "skipped": 0},
                           "started": at, "finished": at})
    };
    serde_json::json!({
        "phase": "Succeeded",
        "commit": "4c1e8f0b2a9d7e6c5b4a39281706f5e4d3c2b1a0",
        "app": {"stack": "custom-html_pr42", "domain": "custom-html-pr42.ci.example.org",
                "version": "1.2.0+1.25", "previousVersion": "1.1.0+1.24"},
        "steps": steps(&["fetch", "teardown"]),
        "stages": [
            stage("install", &["deploy", "converge", "test:check", "remove"], 3),
            stage("upgrade", &["deploy-previous", "converge-previous", "test:pre", "deploy",
                               "converge", "test:post"], 5),
            stage("backup-restore", &["test:pre", "settle", "backup", "test:mutate", "restore",
                                      "converge-restored", "test:post"], 4),
        ],
        "tornDown": true,
        "started": at,
        "finished": at,
        "message": "all stages passed",
    })
}

/// Gives every TestRun on `server` a finished three-stage status (`PUT …/status`) from
/// `clients` concurrent clients.
pub async fn finish_all(server: &ServeProcess, clients: usize) -> Result<usize, BenchError> {
    let http = reqwest::Client::new();
    let list: serde_json::Value = http
        .get(format!("{}/api/v1/testruns", server.url))
        .send()
        .await
        .map_err(|e| BenchError::Request(e.to_string()))?
        .json()
        .await
        .map_err(|e| BenchError::Request(e.to_string()))?;
    let names: Vec<String> = list["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|i| i["metadata"]["name"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let names = std::sync::Arc::new(names);
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..clients.max(1) {
        let (http, names, url, token) = (
            http.clone(),
            names.clone(),
            server.url.clone(),
            server.token.clone(),
        );
        tasks.spawn(async move {
            for name in names.iter().skip(c).step_by(clients.max(1)) {
                let mut body = testrun(name);
                body["status"] = finished_status();
                let resp = http
                    .put(format!("{url}/api/v1/testruns/{name}/status"))
                    .bearer_auth(&token)
                    .json(&body)
                    .send()
                    .await
                    .map_err(|e| BenchError::Request(e.to_string()))?;
                if !resp.status().is_success() {
                    return Err(BenchError::Request(format!(
                        "status write: {}",
                        resp.status()
                    )));
                }
            }
            Ok(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.map_err(|e| BenchError::Server(e.to_string()))??;
    }
    Ok(names.len())
}

/// Creates `total` TestRuns through the API from `clients` concurrent clients, each waiting for
/// its `201` before the next write. Returns the wall time (writes/s = `total / elapsed`).
pub async fn write_throughput(
    server: &ServeProcess,
    clients: usize,
    total: usize,
    prefix: &str,
) -> Result<Duration, BenchError> {
    let http = reqwest::Client::new();
    let clients = clients.max(1);
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..clients {
        let (http, url, token) = (http.clone(), server.url.clone(), server.token.clone());
        let count = total / clients + usize::from(c < total % clients);
        let prefix = prefix.to_string();
        tasks.spawn(async move {
            for i in 0..count {
                let resp = http
                    .post(format!("{url}/api/v1/testruns"))
                    .bearer_auth(&token)
                    .json(&testrun(&format!("{prefix}-{c}-{i}")))
                    .send()
                    .await
                    .map_err(|e| BenchError::Request(e.to_string()))?;
                if resp.status().as_u16() != 201 {
                    return Err(BenchError::Request(format!("answer {}", resp.status())));
                }
            }
            Ok(())
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.map_err(|e| BenchError::Request(e.to_string()))??;
    }
    Ok(start.elapsed())
}

/// Lists all TestRuns `samples` times; returns each request's time (until the whole body is
/// read) and the item count of the last list.
pub async fn list_latency(
    server: &ServeProcess,
    samples: usize,
) -> Result<(Vec<Duration>, usize), BenchError> {
    let http = reqwest::Client::new();
    let mut times = Vec::with_capacity(samples);
    let mut count = 0;
    for _ in 0..samples {
        let start = Instant::now();
        let body = http
            .get(format!("{}/api/v1/testruns", server.url))
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| BenchError::Request(e.to_string()))?
            .bytes()
            .await
            .map_err(|e| BenchError::Request(e.to_string()))?;
        times.push(start.elapsed());
        count = count_items(&body);
    }
    Ok((times, count))
}

fn count_items(body: &[u8]) -> usize {
    #[derive(serde::Deserialize)]
    struct List {
        items: Vec<serde::de::IgnoredAny>,
    }
    serde_json::from_slice::<List>(body)
        .map(|l| l.items.len())
        .unwrap_or(0)
}

/// The median of `times` (zero when empty).
pub fn median(times: &[Duration]) -> Duration {
    let mut sorted = times.to_vec();
    sorted.sort();
    sorted.get(sorted.len() / 2).copied().unwrap_or_default()
}

/// Times `ccctl get runs` (the whole process, output discarded) `samples` times against
/// `server`, after one untimed run whose row count is returned (header excluded).
pub fn ccctl_get_runs(
    ccctl: &Path,
    server: &ServeProcess,
    samples: usize,
) -> Result<(Vec<Duration>, usize), BenchError> {
    let run = |capture: bool| {
        let mut cmd = Command::new(ccctl);
        cmd.args(["get", "runs"])
            .env("CCCTL_SERVER", &server.url)
            .stderr(Stdio::null())
            .stdout(if capture {
                Stdio::piped()
            } else {
                Stdio::null()
            });
        let out = cmd
            .output()
            .map_err(|e| BenchError::Server(format!("cannot run {}: {e}", ccctl.display())))?;
        if !out.status.success() {
            return Err(BenchError::Request(format!(
                "ccctl get runs: {}",
                out.status
            )));
        }
        Ok(out.stdout)
    };
    let rows = run(true)?
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .count();
    let mut times = Vec::with_capacity(samples);
    for _ in 0..samples {
        let start = Instant::now();
        run(false)?;
        times.push(start.elapsed());
    }
    Ok((times, rows.saturating_sub(1)))
}

/// [`stop`] off the async runtime's threads.
async fn stop_graceful(server: ServeProcess) -> Result<(), BenchError> {
    tokio::task::spawn_blocking(move || stop(server))
        .await
        .map_err(|e| BenchError::Server(e.to_string()))?
}

/// Stops the server with SIGTERM (a graceful shutdown, as an operator's restart would) and waits
/// up to 30 s for it to exit.
pub fn stop(mut server: ServeProcess) -> Result<(), BenchError> {
    let status = Command::new("kill")
        .args(["-TERM", &server.pid().to_string()])
        .status()
        .map_err(|e| BenchError::Server(format!("cannot run kill: {e}")))?;
    if !status.success() {
        return Err(BenchError::Server(format!("kill -TERM failed: {status}")));
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = server.child.try_wait() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Err(BenchError::Server(
        "the server did not stop within 30 s of SIGTERM".into(),
    ))
}

/// The figures [`run_all`] measures.
#[derive(Clone, Debug)]
pub struct ApiFigures {
    /// Acknowledged `201` writes per second from 16 concurrent clients.
    pub writes_per_sec: f64,
    /// How many writes the throughput burst made.
    pub writes: usize,
    /// Median time of a full `GET /api/v1/testruns` (body read).
    pub list_median: Duration,
    /// Items in that list.
    pub list_count: usize,
    /// Median wall time of a whole `ccctl get runs` process over the same records.
    pub ccctl_median: Duration,
    /// Rows `ccctl get runs` printed.
    pub ccctl_rows: usize,
    /// Spawn to `/readyz` = 200, on an empty state directory.
    pub startup_empty: Duration,
    /// Spawn to `/readyz` = 200 after a graceful restart with `list_count` records.
    pub startup_full: Duration,
    /// Resident memory 3 s after start-up on an empty store, KiB.
    pub idle_rss_empty_kib: Option<u64>,
    /// Resident memory 3 s after start-up with `list_count` records, KiB.
    pub idle_rss_full_kib: Option<u64>,
    /// Resident memory 3 s after start-up with runs enabled, once every record is a finished
    /// three-stage run (a long run history), KiB.
    pub idle_rss_history_kib: Option<u64>,
}

/// Runs every API benchmark in `dir` with `bin` (the `cc-ci` binary) and `ccctl`: idle memory
/// and start-up on an empty store, write throughput, list latency and `ccctl get runs` over
/// `records` TestRuns, then a graceful restart for start-up time and idle memory with them.
pub async fn run_all(
    bin: &Path,
    ccctl: &Path,
    dir: &Path,
    records: usize,
) -> Result<ApiFigures, BenchError> {
    let state: PathBuf = dir.join("state");
    let (server, startup_empty) = ServeProcess::start(bin, &state).await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let idle_rss_empty_kib = server.rss_kib();
    // Warm-up, then the measured burst.
    let warm = 320.min(records);
    write_throughput(&server, 16, warm, "warm").await?;
    let writes = 4000.min(records - warm);
    let took = write_throughput(&server, 16, writes, "bench").await?;
    let writes_per_sec = writes as f64 / took.as_secs_f64();
    write_throughput(&server, 16, records - warm - writes, "fill").await?;
    let (times, list_count) = list_latency(&server, 21).await?;
    let list_median = median(&times);
    let ccctl_path = ccctl.to_path_buf();
    let (server, ccctl_times, ccctl_rows) = tokio::task::spawn_blocking(move || {
        let (times, rows) = ccctl_get_runs(&ccctl_path, &server, 11)?;
        Ok::<_, BenchError>((server, times, rows))
    })
    .await
    .map_err(|e| BenchError::Server(e.to_string()))??;
    stop_graceful(server).await?;
    let (server, startup_full) = ServeProcess::start(bin, &state).await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let idle_rss_full_kib = server.rss_kib();
    // A long history: every run finished, the default controller set (runs enabled), under an
    // instance of its own so its janitor leaves every other instance's Swarm objects alone.
    finish_all(&server, 16).await?;
    stop_graceful(server).await?;
    let config = dir.join("history.toml");
    std::fs::write(&config, "[runs]\ninstance = \"ccci-bench-history\"\n")
        .map_err(|e| BenchError::Server(format!("cannot write {}: {e}", config.display())))?;
    // The first start with runs enabled gives every run the TestRun controller's finalizer (a
    // write each, as runs created while it runs get at once); the restart after it is the
    // steady state an operator sees.
    let (server, _) = ServeProcess::start_with(bin, &state, Some(&config)).await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop_graceful(server).await?;
    let (server, _) = ServeProcess::start_with(bin, &state, Some(&config)).await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let idle_rss_history_kib = server.rss_kib();
    drop(server);
    Ok(ApiFigures {
        writes_per_sec,
        writes,
        list_median,
        list_count,
        ccctl_median: median(&ccctl_times),
        ccctl_rows,
        startup_empty,
        startup_full,
        idle_rss_empty_kib,
        idle_rss_full_kib,
        idle_rss_history_kib,
    })
}

/// Runs the API benchmarks over `records` TestRuns in a temporary directory.
pub async fn run(records: usize) -> Result<ApiFigures, BenchError> {
    let dir = tempfile::tempdir().map_err(|e| BenchError::Server(e.to_string()))?;
    run_all(
        Path::new(env!("CARGO_BIN_EXE_cc-ci")),
        Path::new(env!("CARGO_BIN_EXE_ccctl")),
        dir.path(),
        records,
    )
    .await
}
