//! The fake Gitea's request handler: routing, auth, paging and each endpoint's answers.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, SubsecRound, Utc};
use serde_json::{Value, json};

use super::{BOT, FakeComment, GITEA_TOKEN, State, add_comment, now};

fn comment_json(base: &str, s: &State, c: &FakeComment) -> Value {
    let is_pull = s.pulls.contains_key(&(c.repo.clone(), c.issue));
    let html = format!("{base}/{}", c.repo);
    json!({
        "id": c.id,
        "html_url": format!("{html}/issues/{}#issuecomment-{}", c.issue, c.id),
        "pull_request_url": if is_pull { format!("{html}/pulls/{}", c.issue) } else { String::new() },
        "issue_url": if is_pull { String::new() } else { format!("{html}/issues/{}", c.issue) },
        "user": {"id": 1, "login": c.user, "full_name": ""},
        "original_author": "",
        "body": c.body,
        "assets": [],
        "created_at": c.created.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "updated_at": c.updated.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    })
}

fn query_map(uri: &Uri) -> HashMap<String, String> {
    uri.query().map(url_pairs).unwrap_or_default()
}

fn url_pairs(q: &str) -> HashMap<String, String> {
    q.split('&')
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (k.to_string(), percent_decode(v)))
        .collect()
}

fn percent_decode(v: &str) -> String {
    let bytes = v.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&v[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(if bytes[i] == b'+' { b' ' } else { bytes[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Gitea's paging: no `page` → everything; else `limit` (default 30) clamped to 50.
fn page<T: Clone>(items: &[T], q: &HashMap<String, String>) -> Vec<T> {
    let Some(page) = q.get("page").and_then(|p| p.parse::<usize>().ok()) else {
        return items.to_vec();
    };
    let limit = q
        .get("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .unwrap_or(30)
        .clamp(1, 50);
    let start = (page.max(1) - 1) * limit;
    items.iter().skip(start).take(limit).cloned().collect()
}

fn status(code: u16, body: Value) -> Response {
    (StatusCode::from_u16(code).unwrap(), axum::Json(body)).into_response()
}

pub(super) async fn handle(
    state: Arc<Mutex<State>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_string();
    let line = format!("{method} {path}");
    let (latency, fault) = {
        let mut s = state.lock().unwrap();
        s.requests.push(match uri.query() {
            Some(q) => format!("{line}?{q}"),
            None => line.clone(),
        });
        let mut fault = None;
        for f in s.faults.iter_mut() {
            if line.contains(&f.pattern) && f.remaining != Some(0) {
                if let Some(r) = f.remaining.as_mut() {
                    *r -= 1;
                }
                fault = Some(f.clone());
                break;
            }
        }
        (s.latency, fault)
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    if let Some(f) = fault {
        tokio::time::sleep(f.delay).await;
        if let Some(code) = f.status {
            return status(code, json!({"message": "injected fault"}));
        }
    }
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if auth != format!("token {GITEA_TOKEN}") {
        return status(401, json!({"message": "token is required"}));
    }
    let Some(rest) = path.strip_prefix("/api/v1/") else {
        return status(404, json!({"message": "not found"}));
    };
    let seg: Vec<&str> = rest.split('/').collect();
    let q = query_map(&uri);
    let base = format!(
        "http://{}",
        headers
            .get("host")
            .and_then(|h| h.to_str().ok())
            .unwrap_or("gitea")
    );
    let mut s = state.lock().unwrap();
    let body_text = || -> String {
        serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|v| v["body"].as_str().map(String::from))
            .unwrap_or_default()
    };
    match (method.as_str(), seg.as_slice()) {
        ("GET", ["user"]) => status(200, json!({"id": 1, "login": BOT})),
        ("GET", ["orgs", org, "members", user]) => {
            let members = s.members.get(*org).cloned().unwrap_or_default();
            if !members.contains(BOT) {
                return (
                    StatusCode::SEE_OTHER,
                    [(
                        "location",
                        format!("/api/v1/orgs/{org}/public_members/{user}"),
                    )],
                )
                    .into_response();
            }
            if members.contains(*user) {
                StatusCode::NO_CONTENT.into_response()
            } else {
                status(404, json!({"message": "not a member"}))
            }
        }
        ("GET", ["orgs", _, "public_members", _]) => StatusCode::NO_CONTENT.into_response(),
        ("GET", ["repos", o, r, "issues", "comments"]) => {
            let repo = format!("{o}/{r}");
            let since = q.get("since").map(|v| {
                DateTime::parse_from_rfc3339(v)
                    .expect("since is RFC 3339")
                    .with_timezone(&Utc)
            });
            let mut list: Vec<FakeComment> = s
                .comments
                .iter()
                .filter(|c| c.repo == repo && since.is_none_or(|t| c.updated >= t.trunc_subsecs(0)))
                .cloned()
                .collect();
            list.sort_by_key(|c| (c.created, c.id));
            let out: Vec<Value> = page(&list, &q)
                .iter()
                .map(|c| comment_json(&base, &s, c))
                .collect();
            status(200, Value::Array(out))
        }
        ("PATCH", ["repos", o, r, "issues", "comments", id]) => {
            let repo = format!("{o}/{r}");
            if s.archived.contains(&repo) {
                return status(423, json!({"message": "repo is archived"}));
            }
            let id: u64 = id.parse().unwrap_or(0);
            let text = body_text();
            let Some(c) = s.comments.iter_mut().find(|c| c.id == id && c.repo == repo) else {
                return status(404, json!({"message": "comment not found"}));
            };
            c.body = text;
            c.updated = now().max(c.created);
            let c = c.clone();
            status(200, comment_json(&base, &s, &c))
        }
        ("GET", ["repos", o, r, "issues", n, "comments"]) => {
            let repo = format!("{o}/{r}");
            let n: u64 = n.parse().unwrap_or(0);
            let out: Vec<Value> = s
                .comments
                .iter()
                .filter(|c| c.repo == repo && c.issue == n)
                .map(|c| comment_json(&base, &s, c))
                .collect();
            status(200, Value::Array(out))
        }
        ("POST", ["repos", o, r, "issues", n, "comments"]) => {
            let repo = format!("{o}/{r}");
            if s.archived.contains(&repo) {
                return status(423, json!({"message": "repo is archived"}));
            }
            let n: u64 = n.parse().unwrap_or(0);
            if !s.pulls.contains_key(&(repo.clone(), n)) && !s.issues.contains(&(repo.clone(), n)) {
                return status(404, json!({"message": "issue does not exist"}));
            }
            let id = add_comment(&mut s, &repo, n, BOT, &body_text(), now());
            let c = s.comments.iter().find(|c| c.id == id).unwrap().clone();
            status(201, comment_json(&base, &s, &c))
        }
        ("GET", ["repos", o, r, "pulls", n]) => {
            let repo = format!("{o}/{r}");
            let n: u64 = n.parse().unwrap_or(0);
            match s.pulls.get(&(repo, n)) {
                Some((open, merged, sha)) => status(
                    200,
                    json!({
                        "number": n, "state": if *open { "open" } else { "closed" }, "merged": merged,
                        "head": {"ref": "feature", "sha": sha}, "base": {"ref": "main", "sha": "0"},
                    }),
                ),
                None => status(404, json!({"message": "pull request does not exist"})),
            }
        }
        ("POST", ["repos", o, r, "statuses", sha]) => {
            if !s.status_write {
                return status(403, json!({"message": "user should have write access"}));
            }
            let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            s.statuses.push((
                format!("{o}/{r}"),
                sha.to_string(),
                v["state"].as_str().unwrap_or("").to_string(),
            ));
            status(201, json!({"id": s.statuses.len(), "state": v["state"]}))
        }
        ("GET", ["repos", o, r, "branches", b]) => {
            match s.branches.get(&(format!("{o}/{r}"), b.to_string())) {
                Some(sha) => status(200, json!({"name": b, "commit": {"id": sha}})),
                None => status(404, json!({"message": "branch does not exist"})),
            }
        }
        ("GET", ["repos", o, r, "tags"]) => {
            let tags = s.tags.get(&format!("{o}/{r}")).cloned().unwrap_or_default();
            let out: Vec<Value> = page(&tags, &q)
                .iter()
                .map(|(n, sha)| json!({"name": n, "id": sha, "commit": {"sha": sha}}))
                .collect();
            status(200, Value::Array(out))
        }
        _ => status(404, json!({"message": "not found"})),
    }
}
