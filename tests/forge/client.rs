//! The Gitea client against the fake, call by call: paging, `since`, the membership check's
//! redirect, retries, timeouts and errors naming the call.

use std::time::Duration;

use cc_ci::forge::client::{ErrorKind, Gitea as Client, Retry};
use chrono::Utc;

use super::{ORG, REPO, sha};
use crate::support::gitea::{BOT, GITEA_TOKEN, Gitea};

fn client(gitea: &Gitea, timeout: Duration) -> Client {
    Client::new(
        &gitea.url,
        GITEA_TOKEN,
        Retry {
            attempts: 3,
            first_delay: Duration::from_millis(10),
            timeout,
        },
    )
    .unwrap()
}

/// Relies on: no `page` → no limit, `limit` clamped to 50, `since` on `updated_at` with
/// results in creation order, edited comments returned again.
#[tokio::test]
async fn every_page_is_read_in_creation_order_and_edits_come_back() {
    let gitea = Gitea::start();
    gitea.open_pr(REPO, 1, &sha('a'));
    let old = gitea.comment_at(
        REPO,
        1,
        "alice",
        "old",
        Utc::now() - chrono::Duration::hours(1),
    );
    let ids: Vec<u64> = (0..120)
        .map(|i| gitea.comment(REPO, 1, "alice", &format!("c{i}")))
        .collect();
    let c = client(&gitea, Duration::from_secs(5));
    let since = Utc::now() - chrono::Duration::minutes(5);
    let got = c.repo_comments_since(REPO, since).await.unwrap();
    assert_eq!(got.iter().map(|c| c.id).collect::<Vec<_>>(), ids);
    assert_eq!(got[0].pull_number(), Some(1));
    let reqs = gitea.requests();
    let pages: Vec<&String> = reqs
        .iter()
        .filter(|r| r.contains("/issues/comments?"))
        .collect();
    assert_eq!(pages.len(), 3, "{pages:?}");
    assert!(pages.iter().all(|r| r.contains("limit=50")), "{pages:?}");
    assert!(pages[2].contains("page=3"), "{pages:?}");
    assert!(
        reqs.iter()
            .all(|r| r.contains("page=") || !r.contains("/issues/comments?"))
    );
    gitea.edit(old, "edited");
    let again = c.repo_comments_since(REPO, since).await.unwrap();
    assert_eq!(again.len(), 121);
    assert_eq!(again[0].id, old, "creation order, though updated last");
    assert_eq!(again[0].body, "edited");
}

/// Relies on: 204/404 only when the bot is a member; a 303 to the public-members URL otherwise.
#[tokio::test]
async fn membership_is_204_or_404_and_a_redirect_is_an_error_not_a_yes() {
    let gitea = Gitea::start();
    gitea.add_member(ORG, "alice");
    let c = client(&gitea, Duration::from_secs(5));
    let e = c.is_member(ORG, "alice").await.unwrap_err();
    assert_eq!(e.status(), Some(303), "{e}");
    assert!(
        e.to_string().contains("GET /orgs/coop/members/alice"),
        "{e}"
    );
    gitea.add_member(ORG, BOT);
    assert!(c.is_member(ORG, "alice").await.unwrap());
    assert!(!c.is_member(ORG, "mallory").await.unwrap());
}

/// Relies on: 5xx and slow answers during forge trouble; `token` auth (401 otherwise).
#[tokio::test]
async fn server_errors_and_timeouts_are_retried_then_reported_with_the_call() {
    let gitea = Gitea::start();
    gitea.open_pr(REPO, 1, &sha('a'));
    let c = client(&gitea, Duration::from_millis(300));
    gitea.fail("/pulls/1", 502, Some(2));
    assert_eq!(c.pull(REPO, 1).await.unwrap().head.sha, sha('a'));
    assert_eq!(
        gitea
            .requests()
            .iter()
            .filter(|r| r.contains("/pulls/1"))
            .count(),
        3
    );
    gitea.fail("/pulls/1", 503, None);
    let e = c.pull(REPO, 1).await.unwrap_err();
    assert!(e.is_transient());
    assert!(
        e.to_string().contains("GET /repos/coop/site/pulls/1") && e.to_string().contains("503"),
        "{e}"
    );
    gitea.heal();
    gitea.slow("/pulls/1", Duration::from_secs(2), None);
    let e = c.pull(REPO, 1).await.unwrap_err();
    assert!(matches!(e.kind, ErrorKind::Timeout), "{e}");
    gitea.heal();
    let wrong = Client::new(&gitea.url, "not-the-token", Retry::default()).unwrap();
    let e = wrong.pull(REPO, 1).await.unwrap_err();
    assert_eq!(e.status(), Some(401));
    assert!(!e.is_transient());
    // A pull request that does not exist is a plain 404 (not retried).
    gitea.clear_requests();
    assert_eq!(c.pull(REPO, 9).await.unwrap_err().status(), Some(404));
    assert_eq!(gitea.requests().len(), 1);
}
