//! Forge outages and controller crashes: nothing lost, nothing duplicated.

use std::time::Duration;

use serde_json::json;

use super::reporter::set_status;
use super::{Env, INTERVAL, REPO, eventually, names};

/// Relies on: Gitea answering 5xx or slowly on any endpoint during an outage; `since`
/// returning every comment updated after the cursor once it is back.
#[tokio::test]
async fn an_outage_during_polling_and_reporting_delays_but_loses_and_duplicates_nothing() {
    let env = Env::start("").await;
    tokio::time::sleep(INTERVAL * 2).await;
    // Polling down: the comment is not seen.
    env.gitea
        .fail("GET /api/v1/repos/coop/site/issues/comments", 503, None);
    let a = env.gitea.comment(REPO, 1, "alice", "!testme");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(env.runs().await.is_empty());
    // Polling back, comment posting down (and pulls slow): the run is stored, the report waits.
    env.gitea.heal();
    env.gitea
        .fail("POST /api/v1/repos/coop/site/issues/1/comments", 500, None);
    env.gitea
        .slow("/pulls/1", Duration::from_millis(1500), Some(1));
    let name = format!("site-pr1-c{a}");
    env.wait_run(&name, Duration::from_secs(8)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(env.bot_comments(1).is_empty());
    // Status moves meanwhile; editing also fails for a while.
    set_status(&env, &name, json!({"phase": "Succeeded", "tornDown": true})).await;
    env.gitea.heal();
    env.gitea.fail(
        "PATCH /api/v1/repos/coop/site/issues/comments",
        502,
        Some(3),
    );
    // The report catches up (the runtime's backoff may take a few seconds).
    let c = eventually(Duration::from_secs(40), || async {
        let c = env.bot_comments(1);
        c.first()
            .filter(|c| c.body.contains("**Succeeded**"))
            .cloned()
    })
    .await
    .expect("the report caught up");
    assert!(c.body.contains(&name));
    tokio::time::sleep(INTERVAL * 3).await;
    assert_eq!(env.bot_comments(1).len(), 1);
    assert_eq!(names(&env.runs().await), vec![name]);
}

/// Relies on: a comment keeps its id and `updated_at`, so the poll after a restart lists it
/// again (overlap) and the deterministic name finds the stored run.
#[tokio::test]
async fn a_controller_killed_mid_poll_and_restarted_loses_and_duplicates_nothing() {
    let mut env = Env::start("").await;
    tokio::time::sleep(INTERVAL * 2).await;
    // Stall the pass in the middle of handling the first comment, then SIGKILL.
    env.gitea.slow("/pulls/1", Duration::from_secs(30), None);
    let a = env.gitea.comment(REPO, 1, "alice", "!testme");
    eventually(Duration::from_secs(5), || async {
        env.gitea
            .requests()
            .iter()
            .any(|r| r.contains("/pulls/1"))
            .then_some(())
    })
    .await
    .expect("the poll reached the pull request");
    env.gitea.heal();
    env.restart();
    // A comment made while it was down is seen too.
    env.gitea.open_pr(REPO, 2, &super::sha('d'));
    let b = env.gitea.comment(REPO, 2, "alice", "!testme");
    env.wait_run(&format!("site-pr1-c{a}"), Duration::from_secs(8))
        .await;
    env.wait_run(&format!("site-pr2-c{b}"), Duration::from_secs(8))
        .await;
    eventually(Duration::from_secs(8), || async {
        (env.bot_comments(1).len() == 1).then_some(())
    })
    .await
    .expect("one report on PR 1");
    // And once more, killed right after the runs and reports exist.
    env.restart();
    tokio::time::sleep(INTERVAL * 6).await;
    let mut got = names(&env.runs().await);
    got.sort();
    let mut want = vec![format!("site-pr1-c{a}"), format!("site-pr2-c{b}")];
    want.sort();
    assert_eq!(got, want);
    assert_eq!(env.bot_comments(1).len(), 1);
    assert_eq!(env.bot_comments(2).len(), 1);
}
