//! API-level benchmarks the bench binary calls, each against a real `cc-ci serve` process:
//! acknowledged writes per second from concurrent clients, list latency, start-up time with many
//! records, and idle memory.
//!
//! The targets (from the issue): ≥ 1,000 acknowledged writes/s from 16 clients; listing 10,000
//! TestRuns ≤ 100 ms median; start-up with 10,000 records ≤ 1 s; idle RSS ≤ 40 MB.

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
        let addr_file = state_dir.join("listen-addr");
        let _ = std::fs::remove_file(&addr_file);
        let started = Instant::now();
        let child = Command::new(bin)
            .arg("serve")
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

/// Runs every API benchmark with `bin` (the `cc-ci` binary) in `dir` and prints one line each.
/// Returns the lines.
pub async fn run_all(bin: &Path, dir: &Path) -> Result<Vec<String>, BenchError> {
    let state: PathBuf = dir.join("state");
    let mut lines = Vec::new();
    let (server, _) = ServeProcess::start(bin, &state).await?;
    // Warm-up, then the measured burst.
    write_throughput(&server, 16, 320, "warm").await?;
    let n = 4000;
    let took = write_throughput(&server, 16, n, "bench").await?;
    lines.push(format!(
        "api: {n} acknowledged writes from 16 clients in {took:.2?} = {:.0} writes/s (target ≥ 1000)",
        n as f64 / took.as_secs_f64()
    ));
    let fill = 10_000usize.saturating_sub(n + 320);
    write_throughput(&server, 16, fill, "fill").await?;
    let (times, count) = list_latency(&server, 21).await?;
    lines.push(format!(
        "api: list of {count} TestRuns: median {:.1?} (target ≤ 100 ms)",
        median(&times)
    ));
    drop(server);
    let (server, startup) = ServeProcess::start(bin, &state).await?;
    lines.push(format!(
        "serve: start-up to ready with {count} records: {startup:.0?} (target ≤ 1 s)"
    ));
    tokio::time::sleep(Duration::from_secs(3)).await;
    if let Some(kib) = server.rss_kib() {
        lines.push(format!(
            "serve: idle RSS with {count} records: {:.1} MiB (target ≤ 40 MB)",
            kib as f64 / 1024.0
        ));
    }
    for l in &lines {
        println!("{l}");
    }
    Ok(lines)
}
