//! `POST /hook`: Gitea's optional webhook, a low-latency path next to polling. A delivery must
//! carry `X-Gitea-Signature`, the lowercase hex HMAC-SHA256 of the raw body with the
//! configured secret (checked in constant time, before anything is parsed); only
//! `issue_comment` events whose action is `created` are used, and they go through the same
//! [`Intake`] as the poller — same trigger rules, same trust check, same deterministic run
//! name, so a comment seen by both makes one run.
//!
//! Answers: 401 on a missing or wrong signature (nothing is read or written), 413 over the
//! size limit, 400 on a malformed payload, 202 with the run's name, 200 when the event is not
//! a trigger, 503 when the forge could not be asked (the poller picks the comment up later).

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use hmac::{KeyInit, Mac};
use serde::Deserialize;

use crate::api::RecipeSpec;
use crate::forge::client::Comment;
use crate::forge::intake::{Intake, Outcome};
use crate::store::{LabelSelector, Store};

/// Largest accepted delivery.
pub const HOOK_BODY_LIMIT: usize = 256 * 1024;

/// Whether `signature` (hex) is the HMAC-SHA256 of `body` under `secret`, compared in
/// constant time.
pub fn signature_ok(secret: &[u8], body: &[u8], signature: &str) -> bool {
    let Ok(given) = hex::decode(signature.trim()) else {
        return false;
    };
    let Ok(mut mac) = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&given).is_ok()
}

#[derive(Deserialize)]
struct Payload {
    action: String,
    #[serde(default)]
    is_pull: bool,
    issue: PayloadIssue,
    comment: Comment,
    repository: PayloadRepository,
}

#[derive(Deserialize)]
struct PayloadIssue {
    number: u64,
    #[serde(default)]
    pull_request: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct PayloadRepository {
    full_name: String,
}

struct Hook<St> {
    intake: Arc<Intake<St>>,
    secret: Vec<u8>,
}

/// The `/hook` route for `intake`, checking deliveries against `secret`.
pub fn router<St: Store>(intake: Arc<Intake<St>>, secret: Vec<u8>) -> Router {
    Router::new()
        .route("/hook", post(receive::<St>))
        .layer(DefaultBodyLimit::max(HOOK_BODY_LIMIT))
        .with_state(Arc::new(Hook { intake, secret }))
}

fn answer(status: StatusCode, body: serde_json::Value) -> Response {
    (status, axum::Json(body)).into_response()
}

async fn receive<St: Store>(
    State(hook): State<Arc<Hook<St>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let signature = headers
        .get("x-gitea-signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !signature_ok(&hook.secret, &body, signature) {
        tracing::warn!("webhook delivery with a missing or wrong signature refused");
        return answer(
            StatusCode::UNAUTHORIZED,
            serde_json::json!({"reason": "Unauthorized", "message": "bad or missing X-Gitea-Signature"}),
        );
    }
    let event = headers
        .get("x-gitea-event")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if event != "issue_comment" {
        return answer(
            StatusCode::OK,
            serde_json::json!({"ignored": format!("event {event:?}")}),
        );
    }
    let payload: Payload = match serde_json::from_slice(&body) {
        Ok(p) => p,
        Err(e) => {
            return answer(
                StatusCode::BAD_REQUEST,
                serde_json::json!({"reason": "BadRequest", "message": format!("payload: {e}")}),
            );
        }
    };
    if payload.action != "created" {
        return answer(
            StatusCode::OK,
            serde_json::json!({"ignored": "not a new comment"}),
        );
    }
    let mut comment = payload.comment;
    if comment.pull_request_url.is_empty()
        && (payload.is_pull || payload.issue.pull_request.is_some())
    {
        comment.pull_request_url = format!(
            "/{}/pulls/{}",
            payload.repository.full_name, payload.issue.number
        );
    }
    let repo = payload.repository.full_name;
    match deliver(&hook.intake, &repo, &comment).await {
        Ok(Some(Outcome::Run(name))) => {
            answer(StatusCode::ACCEPTED, serde_json::json!({"run": name}))
        }
        Ok(Some(other)) => answer(
            StatusCode::OK,
            serde_json::json!({"ignored": format!("{other:?}")}),
        ),
        Ok(None) => answer(
            StatusCode::OK,
            serde_json::json!({"ignored": "no enrolled recipe for this repository"}),
        ),
        Err(message) => {
            tracing::warn!(repo, comment = comment.id, error = %message, "webhook delivery could not be processed; the poller will retry");
            answer(
                StatusCode::SERVICE_UNAVAILABLE,
                serde_json::json!({"reason": "Unavailable", "message": message}),
            )
        }
    }
}

async fn deliver<St: Store>(
    intake: &Intake<St>,
    repo: &str,
    comment: &Comment,
) -> Result<Option<Outcome>, String> {
    let recipes = intake
        .store
        .list::<RecipeSpec>(&LabelSelector::default())
        .map_err(|e| e.to_string())?;
    let Some(recipe) = recipes.into_iter().find(|r| {
        !r.spec.suspended
            && r.spec
                .forge_repo
                .as_deref()
                .is_some_and(|f| f.eq_ignore_ascii_case(repo))
    }) else {
        return Ok(None);
    };
    let forge_repo = recipe.spec.forge_repo.clone().unwrap_or_default();
    let mut state = intake
        .lock(recipe.name())
        .await
        .map_err(|e| e.to_string())?;
    // A delivery is a new comment: it counts from its own creation time.
    intake
        .process(
            &mut state,
            &recipe,
            &forge_repo,
            comment,
            comment.created_at,
        )
        .await
        .map(Some)
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_lowercase_hex_hmac_sha256_of_the_raw_body() {
        // Reference value from `printf %s '{"a":1}' | openssl dgst -sha256 -hmac secret`.
        let good = "aa9e2e3575f5d7098b6caccd790888c36d5fdb63342a73bada2d6a51747a8494";
        assert!(signature_ok(b"secret", br#"{"a":1}"#, good));
        assert!(!signature_ok(
            b"secret",
            br#"{"a":1}"#,
            &good.to_uppercase()[..0]
        ));
        assert!(!signature_ok(b"secret", br#"{"a":2}"#, good));
        assert!(!signature_ok(b"other", br#"{"a":1}"#, good));
        assert!(!signature_ok(b"secret", br#"{"a":1}"#, ""));
        assert!(!signature_ok(b"secret", br#"{"a":1}"#, "zz"));
        assert!(!signature_ok(b"secret", br#"{"a":1}"#, &good[..20]));
    }
}
