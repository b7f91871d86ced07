//! `!testme` to verdict with the TestRun controller running for real on the local swarm: the
//! poller and the reporter in process against the fake Gitea, the fixture recipe fetched at the
//! pinned PR head, and a second `!testme` cancelling the first run.

use std::sync::Arc;
use std::time::Duration;

use cc_ci::api::{RecipeSpec, RunPhase, StageKind, TestRunSpec};
use cc_ci::forge::{self, ForgeSettings};
use cc_ci::metrics::Metrics;
use cc_ci::runtime::RuntimeSettings;
use cc_ci::store::Store;
use tokio_util::sync::CancellationToken;

use super::{ORG, REPO, eventually};
use crate::fixture_repo::FixtureRepo;
use crate::lifecycle::harness::{Controller, DataChecks, edit, leftovers, settings, sweep};
use crate::support::gitea::{BOT, GITEA_TOKEN, Gitea};

/// Relies on: `pulls/{n}` answering the head SHA at the time of the comment; `refs/pull/N/head`
/// fetchable from the base repository (the fixture keeps PR commits only there); comments
/// created and edited through `POST`/`PATCH` keeping their id.
#[tokio::test]
async fn a_second_testme_cancels_the_first_run_and_the_pr_comment_follows_the_real_run() {
    let instance = "t-forge-swarm";
    sweep(instance).await;
    let tmp = tempfile::tempdir().unwrap();
    let repo = FixtureRepo::build("static-site", &tmp.path().join("origin"));
    let first_head =
        repo.open_pull_request(1, |dir| edit(dir, "README.md", |t| format!("{t}\nfirst\n")));
    let gitea = Gitea::start();
    gitea.add_member(ORG, BOT);
    gitea.add_member(ORG, "alice");
    gitea.open_pr(REPO, 1, &first_head);

    let ctl = Controller::start(settings(instance), Arc::new(DataChecks)).await;
    let mut spec: RecipeSpec = serde_json::from_value(serde_json::json!({
        "git": repo.url(), "forgeRepo": REPO, "stages": ["install"],
        "env": {"TIMEOUT": "25"},
    }))
    .unwrap();
    spec.stages = vec![StageKind::Install];
    ctl.store
        .create(cc_ci::api::Object::new("static-site", spec))
        .await
        .unwrap();
    let token = tmp.path().join("token");
    std::fs::write(&token, GITEA_TOKEN).unwrap();
    let fs = ForgeSettings {
        url: gitea.url.clone(),
        token_file: Some(token),
        org: Some(ORG.into()),
        public_url: "http://ci.example".into(),
        poll_interval_seconds: 0.2,
        default_branch_runs: false,
        commit_status: false,
        ..ForgeSettings::default()
    };
    let intake = forge::intake(ctl.store.clone(), &fs, tmp.path()).unwrap();
    let stop = CancellationToken::new();
    let forge_task = tokio::spawn(forge::run(
        intake,
        fs,
        RuntimeSettings::default(),
        Arc::new(Metrics::new()),
        stop.clone(),
    ));
    tokio::time::sleep(Duration::from_millis(500)).await;

    let c1 = gitea.comment(REPO, 1, "alice", "!testme");
    let run1 = format!("static-site-pr1-c{c1}");
    let get = |n: &str| ctl.store.get::<TestRunSpec>(n).unwrap();
    eventually(Duration::from_secs(60), || async {
        get(&run1)
            .filter(|r| r.status.phase == RunPhase::Running)
            .map(|_| ())
    })
    .await
    .expect("the first run is admitted");
    // The head moves, and the maintainer asks again.
    let second_head = repo.open_pull_request(1, |dir| {
        edit(dir, "README.md", |t| format!("{t}\nsecond\n"))
    });
    gitea.set_head(REPO, 1, &second_head);
    let c2 = gitea.comment(REPO, 1, "alice", "!testme");
    let run2 = format!("static-site-pr1-c{c2}");
    let first = ctl.wait_done(&run1, Duration::from_secs(180)).await;
    assert_eq!(
        first.status.phase,
        RunPhase::Cancelled,
        "{:?}",
        first.status.message
    );
    assert_eq!(first.spec.git_ref, first_head);
    let second = ctl.wait_done(&run2, Duration::from_secs(300)).await;
    assert_eq!(second.spec.git_ref, second_head);
    assert_eq!(second.status.commit.as_deref(), Some(second_head.as_str()));
    assert_eq!(
        second.status.phase,
        RunPhase::Succeeded,
        "{}",
        second.status.message
    );

    // One comment per run, edited in place to the final table.
    let comment_of = |run: &str, id: Option<u64>| {
        let mine: Vec<_> = gitea
            .comments_on(REPO, 1)
            .into_iter()
            .filter(|c| c.user == BOT && c.body.contains(&format!("run={run} ")))
            .collect();
        assert_eq!(mine.len(), 1, "one comment for {run}: {mine:#?}");
        assert_eq!(Some(mine[0].id), id);
        mine[0].body.clone()
    };
    let final_body = eventually(Duration::from_secs(30), || async {
        let r = get(&run2).unwrap();
        let body = comment_of(&run2, r.status.report_comment_id);
        body.contains("**Succeeded**").then_some(body)
    })
    .await
    .expect("the second run's comment reached its verdict");
    assert!(
        final_body.contains("| install | ✅ passed |"),
        "{final_body}"
    );
    assert!(final_body.contains(&format!("http://ci.example/runs/{run2}")));
    eventually(Duration::from_secs(30), || async {
        let r = get(&run1).unwrap();
        comment_of(&run1, r.status.report_comment_id)
            .contains("**Cancelled**")
            .then_some(())
    })
    .await
    .expect("the first run's comment says it was cancelled");
    let edits = gitea
        .requests()
        .iter()
        .filter(|r| r.starts_with("PATCH /api/v1/repos/coop/site/issues/comments/"))
        .count();
    assert!(
        edits >= 3,
        "queued → running → stages → verdict are edits: {edits}"
    );

    stop.cancel();
    forge_task.await.unwrap();
    ctl.stop().await;
    assert!(leftovers(instance).is_empty(), "{:?}", leftovers(instance));
}
