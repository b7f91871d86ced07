//! Default-branch runs: a push or a new release tag of an enrolled recipe starts a run without a
//! pull request, and pull-request runs leave the recipe's default-branch result alone.

use std::time::Duration;

use serde_json::{Value, json};

use super::reporter::set_status;
use super::{Env, REPO, eventually, sha};

async fn recipe_status(env: &Env) -> Value {
    env.api.get("/api/v1/recipes/site").await.1["status"].clone()
}

/// Relies on: `GET /repos/{o}/{r}/branches/{b}` answers `commit.id`; `GET /repos/{o}/{r}/tags`
/// lists the newest tags first with `commit.sha`.
#[tokio::test]
async fn a_push_or_a_tag_starts_a_default_branch_run_and_pr_runs_leave_the_badge_alone() {
    let gitea_env = Env::start("default_branch_runs = true").await;
    let env = &gitea_env;
    env.gitea.set_branch(REPO, "main", &sha('1'));
    env.gitea.add_tag(REPO, "1.0.0+1.0", &sha('0'));
    // First look: the head is tested once; the existing tag is history.
    let first = format!("site-main-{}", &sha('1')[..12]);
    let run = env.wait_run(&first, Duration::from_secs(5)).await;
    assert_eq!(run["spec"]["ref"], sha('1'));
    assert!(run["spec"]["pr"].is_null());
    assert_eq!(run["metadata"]["labels"]["cc-ci.trigger"], "branch");
    // A push to the default branch.
    env.gitea.set_branch(REPO, "main", &sha('2'));
    let pushed = format!("site-main-{}", &sha('2')[..12]);
    env.wait_run(&pushed, Duration::from_secs(5)).await;
    // A new release tag.
    env.gitea.add_tag(REPO, "1.1.0+1.1", &sha('2'));
    let tagged = env
        .wait_run("site-tag-1-1-0-1-1", Duration::from_secs(5))
        .await;
    assert_eq!(tagged["metadata"]["labels"]["cc-ci.trigger"], "tag");
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(env.runs().await.len(), 3, "nothing else was started");

    // The default branch passes.
    set_status(
        env,
        &pushed,
        json!({"phase": "Succeeded", "tornDown": true, "commit": sha('2'),
               "stages": [{"stage": "install", "phase": "Passed"}]}),
    )
    .await;
    eventually(Duration::from_secs(5), || async {
        (recipe_status(env).await["badge"] == "passing").then_some(())
    })
    .await
    .expect("the recipe passes");
    // A PR run fails, later: the recipe's badge, level and tested ref do not move.
    let id = env.gitea.comment(REPO, 1, "alice", "!testme");
    let pr_run = format!("site-pr1-c{id}");
    env.wait_run(&pr_run, Duration::from_secs(5)).await;
    set_status(
        env,
        &pr_run,
        json!({"phase": "Failed", "tornDown": true, "commit": sha('a'),
               "stages": [{"stage": "install", "phase": "Failed"}]}),
    )
    .await;
    eventually(Duration::from_secs(5), || async {
        let s = recipe_status(env).await;
        (s["lastRun"] == pr_run.as_str()).then_some(())
    })
    .await
    .expect("the roll-up saw the PR run");
    let s = recipe_status(env).await;
    assert_eq!(s["badge"], "passing", "{s}");
    assert_eq!(s["level"], 2, "install passed (docs/levels.md): {s}");
    assert_eq!(s["lastTestedRef"], sha('2'), "{s}");
    assert_eq!(s["stages"]["install"]["phase"], "Passed", "{s}");
    assert_eq!(s["runCounts"]["Failed"], 1, "{s}");
}
