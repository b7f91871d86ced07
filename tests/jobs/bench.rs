//! Benchmark (ignored; `scripts/bench-jobs`): a test step's overhead as a Swarm job — job
//! creation → first test started, last test finished → results parsed — against the same
//! pytest suite (`recipes/_template/`) run directly on the host (`.venv/bin/ccci-run`, process
//! start → first test, last test → process exit and results read), in the same run, against the
//! same app (a static-web service on the `proxy` network, published on a host port).

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cc_ci::api::StageKind;
use cc_ci::api::TestPhase;
use cc_ci::executor::TestRequest;
use cc_ci::executor::job::JobExecutor;
use cc_ci::executor::settings::TestSettings;

use super::repo_root;
use crate::lifecycle::harness::{docker_cli, labelled, sweep};

const INSTANCE: &str = "t-jobs-bench";
const PORT: u16 = 18_089;
const ROUNDS: usize = 5;

fn epoch(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH).unwrap().as_secs_f64()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn host_round(dir: &std::path::Path) -> (f64, f64) {
    let results = dir.join("host-results");
    let _ = std::fs::remove_dir_all(&results);
    let started = SystemTime::now();
    let out = Command::new(repo_root().join(".venv/bin/ccci-run"))
        .arg(repo_root().join("recipes/_template"))
        .args(["--url", &format!("http://127.0.0.1:{PORT}")])
        .args(["--stage", "install", "--phase", "check", "--results"])
        .arg(&results)
        .output()
        .expect("scripts/python-env has made .venv");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(results.join("results.json")).unwrap())
            .unwrap();
    let junit = std::fs::read_to_string(results.join("junit.xml")).unwrap();
    let cases = cc_ci::executor::junit::parse(&junit).unwrap();
    assert_eq!(cc_ci::executor::junit::report(&cases).counts.passed, 2);
    let parsed = epoch(SystemTime::now());
    (
        v["first_test_started"].as_f64().unwrap() - epoch(started),
        parsed - v["last_test_finished"].as_f64().unwrap(),
    )
}

#[tokio::test]
#[ignore = "benchmark: scripts/bench-jobs"]
async fn bench_test_step_overhead_job_vs_host() {
    sweep(INSTANCE).await;
    let stack = "jobbench";
    docker_cli(&[
        "service",
        "create",
        "-q",
        "--detach",
        "--name",
        "jobbench_app",
        "--label",
        &format!("cc-ci.instance={INSTANCE}"),
        "--label",
        &format!("com.docker.stack.namespace={stack}"),
        "--label",
        "traefik.http.services.jobbench.loadbalancer.server.port=80",
        "--network",
        "proxy",
        "--endpoint-mode",
        "dnsrr",
        "--publish",
        &format!("mode=host,target=80,published={PORT}"),
        "ccci-fixture/static-web:latest",
    ]);
    // Wait for the app on the host port.
    let client = reqwest::Client::new();
    for _ in 0..120 {
        if client
            .get(format!("http://127.0.0.1:{PORT}/healthz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let tmp = tempfile::tempdir().unwrap();
    let docker = cc_ci::swarm::docker::connect().await.unwrap();
    let executor = JobExecutor::new(TestSettings {
        suites_root: repo_root(),
        ..TestSettings::default()
    });
    let request = TestRequest {
        run: "jobbench".into(),
        labels: BTreeMap::from([
            ("cc-ci.managed".into(), "true".into()),
            ("cc-ci.instance".into(), INSTANCE.into()),
            ("cc-ci.run".into(), "jobbench".into()),
        ]),
        recipe: "template".into(),
        stage: StageKind::Install,
        phase: TestPhase::Check,
        stack: stack.into(),
        domain: "jobbench.ci.test".into(),
        version: "bench".into(),
        previous_version: None,
        helper_image: "ccci/base:bookworm".into(),
        run_dir: Some(tmp.path().join("run")),
        checkout: None,
        suite_path: Some("recipes/_template".into()),
        redactor: Default::default(),
        proxy: None,
    };
    let (mut job_start, mut job_end, mut host_start, mut host_end, mut whole) =
        (vec![], vec![], vec![], vec![], vec![]);
    for round in 0..ROUNDS {
        let mut lines = Vec::new();
        let t = std::time::Instant::now();
        let report = executor
            .execute(&docker, &request, &mut |l: &str| lines.push(l.to_string()))
            .await
            .unwrap();
        whole.push(t.elapsed().as_secs_f64());
        assert_eq!(report.origins["suite"].passed, 2, "{lines:#?}");
        let line = lines
            .iter()
            .find(|l| l.contains("tests: overhead:"))
            .unwrap_or_else(|| panic!("{lines:#?}"));
        let nums: Vec<f64> = line
            .split_whitespace()
            .filter_map(|w| w.parse::<f64>().ok())
            .collect();
        job_start.push(nums[0]);
        job_end.push(nums[1]);
        let (s, e) = host_round(tmp.path());
        host_start.push(s);
        host_end.push(e);
        println!(
            "round {round}: job {:.2} s + {:.2} s, host {s:.2} s + {e:.2} s, whole job step {:.2} s",
            nums[0], nums[1], whole[round]
        );
    }
    let (js, je, hs, he) = (
        median(job_start),
        median(job_end),
        median(host_start),
        median(host_end),
    );
    println!(
        "BENCH median of {ROUNDS}: job creation → first test {js:.2} s, last test → parsed {je:.2} s \
         (total {:.2} s); host process start → first test {hs:.2} s, last test → parsed {he:.2} s \
         (total {:.2} s); job overhead beyond the host run {:.2} s; whole step incl. built-in check {:.2} s",
        js + je,
        hs + he,
        (js + je) - (hs + he),
        median(whole)
    );
    sweep(INSTANCE).await;
    assert_eq!(
        labelled(&format!("cc-ci.instance={INSTANCE}")),
        Vec::<String>::new()
    );
    assert!(js + je <= 3.0 + (hs + he), "goal: ≤ 3 s overhead per step");
}
