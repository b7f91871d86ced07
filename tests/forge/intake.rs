//! `!testme` through polling: which comments make runs, trust, pinning, supersession.

use std::time::{Duration, Instant};

use chrono::Utc;

use super::{Env, INTERVAL, REPO, eventually, names, sha};
use crate::support::gitea::BOT;

/// Relies on: `GET /repos/{o}/{r}/issues/comments?since=` lists PR comments with their
/// `pull_request_url`; `GET /repos/{o}/{r}/pulls/{n}` gives `head.sha`; org membership answers
/// 204 for a member when the bot is a member.
#[tokio::test]
async fn a_members_testme_makes_one_run_pinned_to_the_head_within_an_interval() {
    let env = Env::start("").await;
    // Let the poller start (first pass) before commenting.
    tokio::time::sleep(INTERVAL * 2).await;
    let id = env.gitea.comment(REPO, 1, "alice", "!testme");
    let asked = Instant::now();
    let name = format!("site-pr1-c{id}");
    let run = env.wait_run(&name, Duration::from_secs(5)).await;
    let took = asked.elapsed();
    // One interval plus the pass itself (a few local requests).
    assert!(
        took < INTERVAL * 2 + Duration::from_millis(500),
        "took {took:?}"
    );
    assert_eq!(run["spec"]["ref"], sha('a'));
    assert_eq!(run["spec"]["pr"], 1);
    assert_eq!(run["spec"]["recipe"], "site");
    assert_eq!(run["spec"]["source"]["commentId"], id);
    assert_eq!(run["spec"]["source"]["requester"], "alice");
    assert_eq!(run["metadata"]["labels"]["cc-ci.trigger"], "pr");
    // The head moves afterwards: the run keeps testing what was asked for.
    env.gitea.set_head(REPO, 1, &sha('b'));
    tokio::time::sleep(INTERVAL * 4).await;
    let runs = env.runs().await;
    assert_eq!(names(&runs), vec![name.clone()]);
    assert_eq!(runs[0]["spec"]["ref"], sha('a'));
}

/// Relies on: `since` filters on `updated_at` so an edited old comment comes back; results in
/// creation order (the last comment is processed last, so its run proves the others were seen).
#[tokio::test]
async fn near_misses_quotes_code_edits_issues_and_the_bots_own_comments_make_no_run() {
    let env = Env::start("").await;
    tokio::time::sleep(INTERVAL * 2).await;
    env.gitea.open_issue(REPO, 2);
    let old = env.gitea.comment_at(
        REPO,
        1,
        "alice",
        "looks good",
        Utc::now() - chrono::Duration::minutes(10),
    );
    for body in [
        "!testmexyz",
        "!testme please",
        "> !testme",
        "```\n!testme\n```",
        "    !testme",
        "`!testme`",
    ] {
        env.gitea.comment(REPO, 1, "alice", body);
    }
    env.gitea.comment(REPO, 1, BOT, "!testme");
    env.gitea.comment(REPO, 2, "alice", "!testme");
    env.gitea.edit(old, "!testme");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    // The barrier: a real trigger, created after all of the above.
    let last = env.gitea.comment(REPO, 1, "alice", "  !testme\n");
    env.wait_run(&format!("site-pr1-c{last}"), Duration::from_secs(5))
        .await;
    tokio::time::sleep(INTERVAL * 3).await;
    assert_eq!(names(&env.runs().await), vec![format!("site-pr1-c{last}")]);
}

/// Relies on: membership 404 for a non-member when the bot is a member.
#[tokio::test]
async fn a_non_member_gets_one_explaining_reply_and_no_run() {
    let env = Env::start("").await;
    tokio::time::sleep(INTERVAL * 2).await;
    env.gitea.comment(REPO, 1, "mallory", "!testme");
    let replies = eventually(Duration::from_secs(5), || async {
        let c = env.bot_comments(1);
        (!c.is_empty()).then_some(c)
    })
    .await
    .expect("a reply to the untrusted commenter");
    assert!(replies[0].body.contains("@mallory"), "{}", replies[0].body);
    assert!(replies[0].body.contains("`coop`"), "{}", replies[0].body);
    tokio::time::sleep(INTERVAL * 5).await;
    assert_eq!(env.bot_comments(1).len(), 1, "one reply only");
    assert!(env.runs().await.is_empty());
}

/// Relies on: when the bot is not an org member Gitea redirects (303) the membership check to
/// the public-members URL, which answers 204 for anyone: following it would trust everyone.
#[tokio::test]
async fn a_redirected_membership_check_fails_closed_and_the_allowlist_still_works() {
    let env = Env::start("org = \"other\"").await;
    env.gitea.add_member("other", "alice");
    tokio::time::sleep(INTERVAL * 2).await;
    env.gitea.comment(REPO, 1, "alice", "!testme");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let friend = env.gitea.comment(REPO, 1, "friend", "!testme");
    env.wait_run(&format!("site-pr1-c{friend}"), Duration::from_secs(5))
        .await;
    tokio::time::sleep(INTERVAL * 2).await;
    assert_eq!(
        names(&env.runs().await),
        vec![format!("site-pr1-c{friend}")]
    );
    assert!(
        env.bot_comments(1)
            .iter()
            .all(|c| !c.body.contains("@alice")),
        "no reply when trust is unknown: {:#?}",
        env.bot_comments(1)
    );
    assert!(
        env.gitea
            .requests()
            .iter()
            .any(|r| r.starts_with("GET /api/v1/orgs/other/members/alice")),
        "the membership was asked"
    );
    assert!(
        !env.gitea
            .requests()
            .iter()
            .any(|r| r.contains("public_members")),
        "the redirect was not followed"
    );
}

/// Relies on: 5xx and slow answers from the membership endpoint (forge trouble).
#[tokio::test]
async fn a_failing_or_slow_membership_check_makes_no_run_until_it_answers() {
    let env = Env::start("").await;
    tokio::time::sleep(INTERVAL * 2).await;
    env.gitea.fail("/orgs/coop/members/alice", 502, None);
    let id = env.gitea.comment(REPO, 1, "alice", "!testme");
    let name = format!("site-pr1-c{id}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        env.runs().await.is_empty(),
        "no run while membership is unknown (5xx)"
    );
    env.gitea.heal();
    env.gitea.slow(
        "/orgs/coop/members/alice",
        Duration::from_millis(2500),
        None,
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        env.runs().await.is_empty(),
        "no run while membership is unknown (timeout)"
    );
    assert!(env.bot_comments(1).is_empty());
    env.gitea.heal();
    env.wait_run(&name, Duration::from_secs(5)).await;
}

/// Relies on: `pulls/{n}` answers the current head; a later comment has a later id.
#[tokio::test]
async fn a_second_testme_makes_a_newer_run_of_the_new_head() {
    let env = Env::start("").await;
    tokio::time::sleep(INTERVAL * 2).await;
    let first = env.gitea.comment(REPO, 1, "alice", "!testme");
    env.wait_run(&format!("site-pr1-c{first}"), Duration::from_secs(5))
        .await;
    env.gitea.set_head(REPO, 1, &sha('c'));
    let second = env.gitea.comment(REPO, 1, "alice", "!testme");
    let run = env
        .wait_run(&format!("site-pr1-c{second}"), Duration::from_secs(5))
        .await;
    assert_eq!(run["spec"]["ref"], sha('c'));
    // The TestRun controller cancels the older run of the same PR (admission::superseded_by):
    // both runs carry the PR, and the newer one was created later.
    let runs = env.runs().await;
    assert_eq!(runs.len(), 2);
    let created = |n: u64| {
        runs.iter()
            .find(|r| r["spec"]["source"]["commentId"] == n)
            .map(|r| {
                r["metadata"]["creationTimestamp"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .unwrap()
    };
    assert!(created(first) < created(second));
    // A closed pull request is not run.
    env.gitea.close_pr(REPO, 1, true);
    let third = env.gitea.comment(REPO, 1, "alice", "!testme");
    tokio::time::sleep(INTERVAL * 5).await;
    assert!(!names(&env.runs().await).contains(&format!("site-pr1-c{third}")));
}
