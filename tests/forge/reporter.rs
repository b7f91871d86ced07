//! The reporter: one comment per run, edited in place as the run's status moves; commit
//! statuses when allowed; reporting stops on archived repositories.

use std::time::Duration;

use serde_json::{Value, json};

use super::{Env, INTERVAL, REPO, eventually, sha};
use crate::api::update;
use crate::support::gitea::BOT;

/// Writes `status` onto run `name` through the API (what the TestRun controller would do).
pub async fn set_status(env: &Env, name: &str, status: Value) {
    let path = format!("/api/v1/testruns/{name}/status");
    let (code, body) = update(&env.api, &format!("/api/v1/testruns/{name}"), |_| {}).await;
    assert_eq!(code, 200, "{body}");
    for _ in 0..20 {
        let (_, mut run) = env.api.get(&format!("/api/v1/testruns/{name}")).await;
        let keep = run["status"]["reportCommentId"].clone();
        run["status"] = status.clone();
        if !keep.is_null() {
            run["status"]["reportCommentId"] = keep;
        }
        let (code, body) = env.api.put(&path, &run).await;
        if code == 200 {
            return;
        }
        assert_eq!(code, 409, "{body}");
    }
    panic!("status write kept conflicting");
}

/// Waits until the one bot comment on PR 1 contains `text`; answers its id.
async fn wait_comment(env: &Env, text: &str) -> u64 {
    eventually(Duration::from_secs(5), || async {
        let c = env.bot_comments(1);
        assert!(c.len() <= 1, "more than one comment: {c:#?}");
        c.first().filter(|c| c.body.contains(text)).map(|c| c.id)
    })
    .await
    .unwrap_or_else(|| panic!("no comment containing {text:?}: {:#?}", env.bot_comments(1)))
}

/// Relies on: `POST …/issues/{n}/comments` answers 201 with the comment; `PATCH
/// …/issues/comments/{id}` edits it; statuses need write access (201 with it).
#[tokio::test]
async fn the_pr_comment_goes_from_queued_to_running_to_the_final_table_in_place() {
    let env = Env::start("").await;
    env.gitea.allow_status_writes();
    tokio::time::sleep(INTERVAL * 2).await;
    let id = env.gitea.comment(REPO, 1, "alice", "!testme");
    let name = format!("site-pr1-c{id}");
    env.wait_run(&name, Duration::from_secs(5)).await;
    let first = wait_comment(&env, "**Queued**").await;
    let body = &env.bot_comments(1)[0].body;
    assert!(
        body.starts_with(&format!("<!-- cc-ci run={name} -->")),
        "{body}"
    );
    assert!(
        body.contains(&format!("http://ci.example/runs/{name}")),
        "{body}"
    );

    set_status(&env, &name, json!({"phase": "Pending", "queuePosition": 2})).await;
    assert_eq!(wait_comment(&env, "position 2").await, first);

    let t0 = "2026-01-01T10:00:00Z";
    set_status(
        &env,
        &name,
        json!({
            "phase": "Running", "started": t0, "commit": sha('a'),
            "stages": [
                {"stage": "install", "phase": "Running", "started": t0},
                {"stage": "upgrade", "phase": "Pending"},
            ],
        }),
    )
    .await;
    assert_eq!(wait_comment(&env, "stage `install`").await, first);
    assert!(
        env.bot_comments(1)[0]
            .body
            .contains("| install | ▶️ running |")
    );

    set_status(&env, &name, json!({
        "phase": "Failed", "started": t0, "finished": "2026-01-01T10:03:05Z", "commit": sha('a'),
        "tornDown": true, "message": "stage upgrade failed",
        "stages": [
            {"stage": "install", "phase": "Passed", "started": t0, "finished": "2026-01-01T10:01:02Z",
             "tests": {"passed": 4, "failed": 0, "skipped": 1}},
            {"stage": "upgrade", "phase": "Failed", "started": "2026-01-01T10:01:02Z",
             "finished": "2026-01-01T10:03:00Z", "tests": {"passed": 1, "failed": 1, "skipped": 0},
             "failingTests": ["test_post.py::test_data_survives"]},
        ],
    }))
    .await;
    assert_eq!(wait_comment(&env, "**Failed**").await, first);
    let body = env.bot_comments(1)[0].body.clone();
    assert!(
        body.contains("| install | ✅ passed | 1m 02s | 4 passed, 0 failed, 1 skipped |"),
        "{body}"
    );
    assert!(body.contains("| upgrade | ❌ failed | 1m 58s |"), "{body}");
    assert!(
        body.contains("`test_post.py::test_data_survives`"),
        "{body}"
    );
    assert!(body.contains("Total time: 3m 05s."), "{body}");
    // The run keeps its comment id; statuses went pending → failure on the pinned SHA.
    let (_, run) = env.api.get(&format!("/api/v1/testruns/{name}")).await;
    assert_eq!(run["status"]["reportCommentId"], first);
    let states = eventually(Duration::from_secs(5), || async {
        let s: Vec<String> = env
            .gitea
            .statuses()
            .into_iter()
            .map(|(_, _, st)| st)
            .collect();
        s.contains(&"failure".to_string()).then_some(s)
    })
    .await
    .expect("a final commit status");
    assert_eq!(states.first().map(String::as_str), Some("pending"));
    assert!(
        env.gitea
            .statuses()
            .iter()
            .all(|(r, s, _)| r == REPO && *s == sha('a'))
    );
    assert_eq!(env.bot_comments(1).len(), 1);
}

/// Relies on: statuses answer 403 without write access (a read-level bot); comments still work.
#[tokio::test]
async fn without_write_access_reports_are_comments_only() {
    let env = Env::start("").await;
    tokio::time::sleep(INTERVAL * 2).await;
    let id = env.gitea.comment(REPO, 1, "alice", "!testme");
    let name = format!("site-pr1-c{id}");
    env.wait_run(&name, Duration::from_secs(5)).await;
    wait_comment(&env, "**Queued**").await;
    set_status(&env, &name, json!({"phase": "Succeeded", "tornDown": true})).await;
    wait_comment(&env, "**Succeeded**").await;
    assert!(env.gitea.statuses().is_empty());
    assert!(
        env.gitea
            .requests()
            .iter()
            .any(|r| r.starts_with("POST /api/v1/repos/coop/site/statuses/"))
    );
}

/// Relies on: comment writes on an archived repository answer 423.
#[tokio::test]
async fn an_archived_repository_stops_reporting_with_the_reason_kept() {
    let env = Env::start("").await;
    tokio::time::sleep(INTERVAL * 2).await;
    env.gitea.archive(REPO);
    let id = env.gitea.comment(REPO, 1, "alice", "!testme");
    let name = format!("site-pr1-c{id}");
    env.wait_run(&name, Duration::from_secs(5)).await;
    let reason = eventually(Duration::from_secs(5), || async {
        let (_, run) = env.api.get(&format!("/api/v1/testruns/{name}")).await;
        run["metadata"]["annotations"]["cc-ci.forge/report-stopped"]
            .as_str()
            .map(String::from)
    })
    .await
    .expect("reporting stopped");
    assert!(reason.contains("423"), "{reason}");
    let posts = || {
        env.gitea
            .requests()
            .iter()
            .filter(|r| r.starts_with("POST /api/v1/repos/coop/site/issues/1/comments"))
            .count()
    };
    let before = posts();
    set_status(&env, &name, json!({"phase": "Running"})).await;
    tokio::time::sleep(INTERVAL * 3).await;
    assert_eq!(posts(), before, "no more attempts after a 423");
    assert!(env.bot_comments(1).is_empty());
}

/// Relies on: `GET …/issues/{n}/comments` listing every comment of the PR (not paged), with
/// each comment's author and body — how the reporter finds its own comment after a crash.
#[tokio::test]
async fn a_report_posted_before_a_crash_is_adopted_not_posted_again() {
    let env = Env::start("poll_interval_seconds = 3600").await;
    // What a reporter killed between posting and storing the comment id leaves behind: the
    // posting intent on the run, and its comment (with the marker) on the PR.
    let name = "site-pr1-c4242";
    let posted = env.gitea.comment(
        REPO,
        1,
        BOT,
        &format!("<!-- cc-ci run={name} -->\n**cc-ci** test of `site`: ⏳ **Queued**"),
    );
    let run = json!({
        "apiVersion": "cc-ci/v1alpha1", "kind": "TestRun",
        "metadata": {"name": name, "annotations": {"cc-ci.forge/report-posting": "true"}},
        "spec": {"recipe": "site", "ref": sha('a'), "pr": 1},
    });
    let (code, body) = env.api.post("/api/v1/testruns", &run).await;
    assert_eq!(code, 201, "{body}");
    let id = eventually(Duration::from_secs(5), || async {
        let (_, run) = env.api.get(&format!("/api/v1/testruns/{name}")).await;
        run["status"]["reportCommentId"].as_u64()
    })
    .await
    .expect("the comment id is stored");
    assert_eq!(id, posted);
    set_status(&env, name, json!({"phase": "Succeeded", "tornDown": true})).await;
    wait_comment(&env, "**Succeeded**").await;
    assert_eq!(env.bot_comments(1).len(), 1);
    assert_eq!(env.bot_comments(1)[0].id, posted);
}
