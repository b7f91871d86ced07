//! `POST /hook`: signature, event filtering, and one run for a comment seen by both paths.

use std::time::Duration;

use hmac::{KeyInit, Mac};
use serde_json::{Value, json};

use super::{Env, INTERVAL, REPO, SECRET, names};

fn sign(body: &[u8], secret: &str) -> String {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

pub fn payload(id: u64, user: &str, body: &str) -> Vec<u8> {
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    serde_json::to_vec(&json!({
        "action": "created",
        "is_pull": true,
        "issue": {"number": 1, "pull_request": {"merged": false}},
        "comment": {
            "id": id, "body": body, "user": {"login": user},
            "created_at": now, "updated_at": now,
            "pull_request_url": format!("http://gitea/{REPO}/pulls/1"), "issue_url": "",
        },
        "repository": {"full_name": REPO},
        "sender": {"login": user},
    }))
    .unwrap()
}

/// Delivers `body` with a right signature.
pub async fn deliver_signed(env: &Env, body: &[u8]) -> (u16, Value) {
    deliver(env, body, Some(&sign(body, SECRET)), "issue_comment").await
}

async fn deliver(env: &Env, body: &[u8], signature: Option<&str>, event: &str) -> (u16, Value) {
    // One client for every delivery, as Gitea keeps its connections: building a client per
    // request (TLS roots included) would dominate the figure.
    static CLIENT: std::sync::OnceLock<reqwest::Client> = std::sync::OnceLock::new();
    let mut req = CLIENT
        .get_or_init(reqwest::Client::new)
        .post(format!("{}/hook", env.server.url))
        .header("X-Gitea-Event", event)
        .header("Content-Type", "application/json")
        .body(body.to_vec());
    if let Some(s) = signature {
        req = req.header("X-Gitea-Signature", s);
    }
    let resp = req.send().await.unwrap();
    let code = resp.status().as_u16();
    (code, resp.json().await.unwrap_or(Value::Null))
}

/// Relies on: Gitea signs deliveries with `X-Gitea-Signature` = lowercase hex HMAC-SHA256 of
/// the raw body; PR comments arrive as `X-Gitea-Event: issue_comment`.
#[tokio::test]
async fn a_bad_signature_is_refused_with_401_and_nothing_is_written() {
    let env = Env::start("poll_interval_seconds = 3600").await;
    let body = payload(777, "alice", "!testme");
    for sig in [
        None,
        Some("00".repeat(32)),
        Some(sign(&body, "wrong-secret")),
        Some(sign(b"other body", SECRET)),
    ] {
        let (code, _) = deliver(&env, &body, sig.as_deref(), "issue_comment").await;
        assert_eq!(code, 401, "signature {sig:?}");
    }
    // Tampering after signing is caught too.
    let good = sign(&body, SECRET);
    let mut tampered = body.clone();
    let at = tampered.iter().position(|b| *b == b'!').unwrap();
    tampered[at] = b'?';
    assert_eq!(
        deliver(&env, &tampered, Some(&good), "issue_comment")
            .await
            .0,
        401
    );
    assert!(env.runs().await.is_empty());
    assert!(
        env.gitea.requests().iter().all(|r| !r.contains("/pulls/")),
        "nothing was asked"
    );
    // An oversized body is refused before anything.
    let big = vec![b' '; 300 * 1024];
    assert_eq!(
        deliver(&env, &big, Some(&sign(&big, SECRET)), "issue_comment")
            .await
            .0,
        413
    );
    // Other events and edits are ignored.
    assert_eq!(deliver(&env, &body, Some(&good), "push").await.0, 200);
    let edited = String::from_utf8(body.clone())
        .unwrap()
        .replace("\"created\"", "\"edited\"");
    let (code, _) = deliver(
        &env,
        edited.as_bytes(),
        Some(&sign(edited.as_bytes(), SECRET)),
        "issue_comment",
    )
    .await;
    assert_eq!(code, 200);
    assert!(env.runs().await.is_empty());
    // The same delivery, rightly signed, makes the run.
    let (code, answer) = deliver(&env, &body, Some(&good), "issue_comment").await;
    assert_eq!(code, 202, "{answer}");
    assert_eq!(answer["run"], "site-pr1-c777");
}

/// Relies on: the webhook's comment is the same comment the poll lists (same id).
#[tokio::test]
async fn the_same_comment_through_webhook_and_poll_makes_one_run() {
    let env = Env::start("").await;
    tokio::time::sleep(INTERVAL * 2).await;
    let id = env.gitea.comment(REPO, 1, "alice", "!testme");
    let body = payload(id, "alice", "!testme");
    let (code, answer) = deliver(&env, &body, Some(&sign(&body, SECRET)), "issue_comment").await;
    assert!(code == 202 || code == 200, "{code} {answer}");
    let name = format!("site-pr1-c{id}");
    env.wait_run(&name, Duration::from_secs(5)).await;
    // Deliver again (Gitea's "redeliver") and let the poller pass a few times.
    deliver(&env, &body, Some(&sign(&body, SECRET)), "issue_comment").await;
    tokio::time::sleep(INTERVAL * 5).await;
    assert_eq!(names(&env.runs().await), vec![name]);
}
