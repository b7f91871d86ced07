//! Forge benchmarks (`scripts/bench-forge`; ignored in the normal suite): a poll cycle over 200
//! enrolled recipes against the fake with 20 ms per request, webhook delivery → TestRun stored
//! (p99 over 1,000), and `!testme` → TestRun stored by polling against the interval.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cc_ci::api::{Object, RecipeSpec};
use cc_ci::forge::client::{Gitea as Client, Retry};
use cc_ci::forge::intake::{Intake, Trust};
use cc_ci::forge::poller::{PollSettings, poll_once};
use cc_ci::store::{SledStore, Store};

use super::webhook::{deliver_signed, payload};
use super::{Env, REPO, sha};
use crate::support::gitea::{BOT, GITEA_TOKEN, Gitea};

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

/// Relies on: one comments request, one branch request and one tags request per recipe and
/// pass (an idle forge: no new comments), each paying the fake's 20 ms.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: scripts/bench-forge"]
async fn bench_poll_cycle_over_200_recipes() {
    let gitea = Gitea::start();
    gitea.add_member("coop", BOT);
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open(&dir.path().join("store")).unwrap();
    let mut recipes = Vec::new();
    for i in 0..200 {
        let repo = format!("coop/r{i}");
        gitea.set_branch(&repo, "main", &sha('1'));
        let mut spec: RecipeSpec = serde_json::from_value(serde_json::json!({
            "git": format!("https://git.example/{repo}.git"), "forgeRepo": repo,
        }))
        .unwrap();
        spec.suspended = false;
        recipes.push(
            store
                .create(Object::new(format!("r{i}"), spec))
                .await
                .unwrap(),
        );
    }
    let client = Client::new(&gitea.url, GITEA_TOKEN, Retry::default()).unwrap();
    let intake = Arc::new(Intake::new(
        store,
        client,
        Trust {
            org: Some("coop".into()),
            allowlist: vec![],
        },
        dir.path().join("forge"),
    ));
    intake.bot().await.unwrap();
    let settings = PollSettings {
        interval: Duration::from_secs(15),
        default_branch_runs: true,
        schedule: None,
    };
    gitea.set_latency(Duration::from_millis(20));
    // The first cycle also stores each recipe's first default-branch run.
    for round in ["first", "steady"] {
        gitea.clear_requests();
        let start = Instant::now();
        let tasks: Vec<_> = recipes
            .iter()
            .cloned()
            .map(|r| {
                let intake = intake.clone();
                let settings = settings.clone();
                tokio::spawn(async move { poll_once(&intake, &r, &settings).await.unwrap() })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        let wall = start.elapsed();
        let requests = gitea.requests().len();
        println!(
            "BENCH poll-cycle {round}: 200 recipes, 20 ms/request: {requests} requests, wall {:.0} ms (one loop per recipe, concurrent)",
            wall.as_secs_f64() * 1000.0
        );
        assert_eq!(requests, 600, "3 requests per recipe and pass");
    }
    // For comparison: the same steady cycle one recipe after another.
    gitea.clear_requests();
    let start = Instant::now();
    for r in &recipes {
        poll_once(&intake, r, &settings).await.unwrap();
    }
    println!(
        "BENCH poll-cycle sequential: {} requests, wall {:.0} ms",
        gitea.requests().len(),
        start.elapsed().as_secs_f64() * 1000.0
    );
}

/// Relies on: signed `issue_comment` deliveries; membership 204 and `pulls/{n}` answered by
/// the fake without added latency (the figure is cc-ci's own path).
#[tokio::test]
#[ignore = "benchmark: scripts/bench-forge"]
async fn bench_webhook_to_stored_run_p99() {
    let env = Env::start("poll_interval_seconds = 3600").await;
    let mut took = Vec::new();
    let user = std::env::var("CCCI_BENCH_USER").unwrap_or_else(|_| "alice".into());
    for i in 0..1000u64 {
        let body = payload(100_000 + i, &user, "!testme");
        let start = Instant::now();
        let (code, answer) = deliver_signed(&env, &body).await;
        took.push(start.elapsed());
        assert_eq!(code, 202, "{answer}");
    }
    took.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    // The peer in the same run: a plain `POST /api/v1/testruns` of the same record (one store
    // write and flush, no forge calls).
    let mut plain = Vec::new();
    for i in 0..1000u64 {
        let run = serde_json::json!({
            "apiVersion": "cc-ci/v1alpha1", "kind": "TestRun",
            "metadata": {"name": format!("plain-{i}")},
            "spec": {"recipe": "site", "ref": sha('a'), "pr": 1},
        });
        let start = Instant::now();
        let (code, answer) = env.api.post("/api/v1/testruns", &run).await;
        plain.push(start.elapsed());
        assert_eq!(code, 201, "{answer}");
    }
    plain.sort();
    println!(
        "BENCH POST /api/v1/testruns (peer): 1000 creates, p50 {:.1} ms, p99 {:.1} ms",
        ms(percentile(&plain, 0.5)),
        ms(percentile(&plain, 0.99)),
    );
    println!(
        "BENCH webhook→TestRun stored: 1000 deliveries, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms (goal p99 < 100 ms)",
        ms(percentile(&took, 0.5)),
        ms(percentile(&took, 0.99)),
        ms(took[took.len() - 1])
    );
    assert_eq!(env.runs().await.len(), 2000);
}

/// Relies on: `since` returning a new comment on the next poll.
#[tokio::test]
#[ignore = "benchmark: scripts/bench-forge"]
async fn bench_testme_to_stored_run_by_polling() {
    let interval = Duration::from_secs(1);
    let env = Env::start("poll_interval_seconds = 1").await;
    tokio::time::sleep(interval * 2).await;
    let mut took = Vec::new();
    for i in 0..20u64 {
        // Comment at different phases of the poll loop.
        tokio::time::sleep(Duration::from_millis(137 * (i % 7))).await;
        let id = env.gitea.comment(REPO, 1, "alice", "!testme");
        let start = Instant::now();
        env.wait_run(&format!("site-pr1-c{id}"), Duration::from_secs(10))
            .await;
        took.push(start.elapsed());
    }
    took.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "BENCH !testme→TestRun stored by polling (interval {} ms): 20 comments, p50 {:.0} ms, max {:.0} ms (goal ≤ one interval)",
        interval.as_millis(),
        ms(percentile(&took, 0.5)),
        ms(took[took.len() - 1])
    );
}
