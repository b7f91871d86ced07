//! The Gitea API client: every call cc-ci makes to the forge, following the real API's rules
//! (DESIGN.md §8).
//!
//! - Every request sends `Authorization: token …`.
//! - Every list sends `page` and `limit=50`: without `page` Gitea applies no limit at all, and
//!   it clamps `limit` to 50 (its default `MAX_RESPONSE_ITEMS`), so a page shorter than 50 is
//!   the last one.
//! - The membership check runs on a client that never follows redirects: Gitea answers
//!   `GET /orgs/{org}/members/{user}` with 204/404 only when the bot itself is a member, and
//!   with a redirect to the public-members list otherwise — which must not read as "member".
//! - Every request has a timeout; 5xx answers, timeouts and connection failures are retried
//!   with exponential backoff, anything else is returned at once.
//! - Errors are [`ForgeError`]s naming the call that failed.

use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde::de::DeserializeOwned;

/// Items per page: Gitea's default maximum, which it clamps larger limits to.
pub const PAGE_LIMIT: usize = 50;

/// Stop paging after this many pages (a misbehaving server must not loop us forever).
const MAX_PAGES: u32 = 200;

/// How calls time out and are retried.
#[derive(Clone, Debug)]
pub struct Retry {
    /// Attempts per call (at least 1).
    pub attempts: u32,
    /// Delay before the second attempt; doubles after each further failure.
    pub first_delay: Duration,
    /// Limit for one request, answer included.
    pub timeout: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Retry {
            attempts: 3,
            first_delay: Duration::from_millis(500),
            timeout: Duration::from_secs(10),
        }
    }
}

/// What went wrong in a call.
#[derive(Debug, thiserror::Error)]
pub enum ErrorKind {
    /// Gitea answered with an unexpected status.
    #[error("HTTP {code}: {body}")]
    Status {
        /// The status code.
        code: u16,
        /// The start of the answer's body.
        body: String,
    },
    /// No answer within the timeout (after every retry).
    #[error("timed out")]
    Timeout,
    /// The connection failed (after every retry).
    #[error("connection failed: {0}")]
    Transport(String),
    /// The answer was not the JSON expected.
    #[error("unexpected answer: {0}")]
    Decode(String),
}

/// A failed forge call: which call, and why.
#[derive(Debug, thiserror::Error)]
#[error("Gitea call {call} failed: {kind}")]
pub struct ForgeError {
    /// The call, e.g. `GET /repos/o/r/pulls/3`.
    pub call: String,
    /// Why.
    pub kind: ErrorKind,
}

impl ForgeError {
    /// The HTTP status, when Gitea answered with one.
    pub fn status(&self) -> Option<u16> {
        match self.kind {
            ErrorKind::Status { code, .. } => Some(code),
            _ => None,
        }
    }

    /// Whether trying again later may succeed (5xx, timeouts, connection failures).
    pub fn is_transient(&self) -> bool {
        match self.kind {
            ErrorKind::Status { code, .. } => code >= 500 || code == 429,
            ErrorKind::Timeout | ErrorKind::Transport(_) => true,
            ErrorKind::Decode(_) => false,
        }
    }
}

/// A Gitea user as it appears in comments and pull requests.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct User {
    /// The login name.
    pub login: String,
}

/// An issue or pull request comment.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct Comment {
    /// Comment id (unique per Gitea instance).
    pub id: u64,
    /// Markdown text.
    #[serde(default)]
    pub body: String,
    /// Author.
    pub user: User,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last edit (equal to `created_at` until edited).
    pub updated_at: DateTime<Utc>,
    /// `…/pulls/N` when the comment is on a pull request, empty otherwise.
    #[serde(default)]
    pub pull_request_url: String,
    /// `…/issues/N` when the comment is on an issue, empty otherwise.
    #[serde(default)]
    pub issue_url: String,
}

impl Comment {
    /// The pull request number, when the comment is on one.
    pub fn pull_number(&self) -> Option<u64> {
        let (rest, n) = self
            .pull_request_url
            .trim_end_matches('/')
            .rsplit_once('/')?;
        rest.ends_with("/pulls").then(|| n.parse().ok()).flatten()
    }
}

/// One side of a pull request.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct PullBranch {
    /// The commit.
    pub sha: String,
}

/// A pull request.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct PullRequest {
    /// Its number.
    pub number: u64,
    /// `open` or `closed`.
    pub state: String,
    /// Whether it was merged.
    #[serde(default)]
    pub merged: bool,
    /// The head (the commit to test).
    pub head: PullBranch,
}

impl PullRequest {
    /// Open and not merged: the only kind `!testme` applies to.
    pub fn is_open(&self) -> bool {
        self.state == "open" && !self.merged
    }
}

#[derive(Deserialize)]
struct BranchCommit {
    id: String,
}

#[derive(Deserialize)]
struct Branch {
    commit: BranchCommit,
}

#[derive(Deserialize)]
struct TagCommit {
    sha: String,
}

#[derive(Deserialize)]
struct RawTag {
    name: String,
    commit: TagCommit,
}

/// A tag and the commit it points at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tag {
    /// Tag name, e.g. `1.2.0+1.29.0`.
    pub name: String,
    /// Commit SHA.
    pub sha: String,
}

/// A commit status state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusState {
    /// Queued or running.
    Pending,
    /// Passed.
    Success,
    /// A test or deploy failed.
    Failure,
    /// cc-ci could not finish the run.
    Error,
}

impl StatusState {
    fn as_str(self) -> &'static str {
        match self {
            StatusState::Pending => "pending",
            StatusState::Success => "success",
            StatusState::Failure => "failure",
            StatusState::Error => "error",
        }
    }
}

/// A Gitea API client (base URL without `/api/v1`, token, retry policy).
#[derive(Clone, Debug)]
pub struct Gitea {
    http: reqwest::Client,
    no_redirects: reqwest::Client,
    api: String,
    token: String,
    retry: Retry,
}

impl Gitea {
    /// A client for the Gitea at `url` (e.g. `https://git.coopcloud.tech`) using `token`.
    pub fn new(url: &str, token: &str, retry: Retry) -> Result<Gitea, ForgeError> {
        let build = |redirects: reqwest::redirect::Policy| {
            reqwest::Client::builder()
                .timeout(retry.timeout)
                .connect_timeout(retry.timeout)
                .redirect(redirects)
                .user_agent(concat!("cc-ci/", env!("CARGO_PKG_VERSION")))
                .build()
                .map_err(|e| ForgeError {
                    call: "client set-up".into(),
                    kind: ErrorKind::Transport(e.to_string()),
                })
        };
        Ok(Gitea {
            http: build(reqwest::redirect::Policy::limited(5))?,
            no_redirects: build(reqwest::redirect::Policy::none())?,
            api: format!("{}/api/v1", url.trim_end_matches('/')),
            token: token.trim().to_string(),
            retry,
        })
    }

    /// Sends one request, retrying transient failures; answers any non-5xx status.
    async fn send(
        &self,
        no_redirects: bool,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&serde_json::Value>,
    ) -> Result<(StatusCode, bytes::Bytes), ForgeError> {
        let call = format!("{method} {path}");
        let client = if no_redirects {
            &self.no_redirects
        } else {
            &self.http
        };
        let mut delay = self.retry.first_delay;
        let mut attempt = 1;
        loop {
            let mut req = client
                .request(method.clone(), format!("{}{path}", self.api))
                .header("Authorization", format!("token {}", self.token))
                .header("Accept", "application/json")
                .query(query);
            if let Some(b) = body {
                req = req.json(b);
            }
            let result = async {
                let resp = req.send().await?;
                let status = resp.status();
                let bytes = resp.bytes().await?;
                Ok::<_, reqwest::Error>((status, bytes))
            }
            .await;
            let err = match result {
                Ok((status, bytes)) if !status.is_server_error() => return Ok((status, bytes)),
                Ok((status, bytes)) => ErrorKind::Status {
                    code: status.as_u16(),
                    body: snippet(&bytes),
                },
                Err(e) if e.is_timeout() => ErrorKind::Timeout,
                Err(e) => ErrorKind::Transport(e.to_string()),
            };
            if attempt >= self.retry.attempts.max(1) {
                return Err(ForgeError { call, kind: err });
            }
            tracing::debug!(call, attempt, error = %err, "forge call failed; retrying");
            tokio::time::sleep(delay).await;
            delay *= 2;
            attempt += 1;
        }
    }

    /// Sends a request and decodes a JSON answer of status `expect`.
    async fn json<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&serde_json::Value>,
        expect: StatusCode,
    ) -> Result<T, ForgeError> {
        let (status, bytes) = self.send(false, method.clone(), path, query, body).await?;
        let call = || format!("{method} {path}");
        if status != expect {
            return Err(ForgeError {
                call: call(),
                kind: ErrorKind::Status {
                    code: status.as_u16(),
                    body: snippet(&bytes),
                },
            });
        }
        serde_json::from_slice(&bytes).map_err(|e| ForgeError {
            call: call(),
            kind: ErrorKind::Decode(e.to_string()),
        })
    }

    /// Every item of a list endpoint, page by page (`page=1,2,…&limit=50`).
    async fn paged<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<Vec<T>, ForgeError> {
        let mut all = Vec::new();
        for page in 1..=MAX_PAGES {
            let mut q = query.to_vec();
            q.push(("page", page.to_string()));
            q.push(("limit", PAGE_LIMIT.to_string()));
            let items: Vec<T> = self
                .json(Method::GET, path, &q, None, StatusCode::OK)
                .await?;
            let last = items.len() < PAGE_LIMIT;
            all.extend(items);
            if last {
                break;
            }
        }
        Ok(all)
    }

    /// The bot's own login (`GET /user`).
    pub async fn me(&self) -> Result<String, ForgeError> {
        let u: User = self
            .json(Method::GET, "/user", &[], None, StatusCode::OK)
            .await?;
        Ok(u.login)
    }

    /// Comments of the repository (issues and pull requests) updated at or after `since`, in
    /// creation order.
    pub async fn repo_comments_since(
        &self,
        repo: &str,
        since: DateTime<Utc>,
    ) -> Result<Vec<Comment>, ForgeError> {
        let since = since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        self.paged(
            &format!("/repos/{repo}/issues/comments"),
            &[("since", since)],
        )
        .await
    }

    /// The comments of one issue or pull request.
    pub async fn issue_comments(&self, repo: &str, issue: u64) -> Result<Vec<Comment>, ForgeError> {
        self.paged(&format!("/repos/{repo}/issues/{issue}/comments"), &[])
            .await
    }

    /// One pull request.
    pub async fn pull(&self, repo: &str, number: u64) -> Result<PullRequest, ForgeError> {
        self.json(
            Method::GET,
            &format!("/repos/{repo}/pulls/{number}"),
            &[],
            None,
            StatusCode::OK,
        )
        .await
    }

    /// Whether `user` is a member of `org`: `Ok(true)` on 204, `Ok(false)` on 404, an error on
    /// anything else (a redirect means the bot cannot see the membership) — callers fail closed.
    pub async fn is_member(&self, org: &str, user: &str) -> Result<bool, ForgeError> {
        let path = format!("/orgs/{org}/members/{user}");
        let (status, bytes) = self.send(true, Method::GET, &path, &[], None).await?;
        match status {
            StatusCode::NO_CONTENT => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            other => Err(ForgeError {
                call: format!("GET {path}"),
                kind: ErrorKind::Status {
                    code: other.as_u16(),
                    body: snippet(&bytes),
                },
            }),
        }
    }

    /// Posts a comment on an issue or pull request.
    pub async fn create_comment(
        &self,
        repo: &str,
        issue: u64,
        body: &str,
    ) -> Result<Comment, ForgeError> {
        self.json(
            Method::POST,
            &format!("/repos/{repo}/issues/{issue}/comments"),
            &[],
            Some(&serde_json::json!({ "body": body })),
            StatusCode::CREATED,
        )
        .await
    }

    /// Replaces a comment's text.
    pub async fn edit_comment(&self, repo: &str, id: u64, body: &str) -> Result<(), ForgeError> {
        let _: Comment = self
            .json(
                Method::PATCH,
                &format!("/repos/{repo}/issues/comments/{id}"),
                &[],
                Some(&serde_json::json!({ "body": body })),
                StatusCode::OK,
            )
            .await?;
        Ok(())
    }

    /// Sets a commit status (needs write access: 403 otherwise).
    pub async fn set_status(
        &self,
        repo: &str,
        sha: &str,
        state: StatusState,
        description: &str,
        target_url: &str,
    ) -> Result<(), ForgeError> {
        let body = serde_json::json!({
            "state": state.as_str(),
            "context": "cc-ci",
            "description": description,
            "target_url": target_url,
        });
        let _: serde_json::Value = self
            .json(
                Method::POST,
                &format!("/repos/{repo}/statuses/{sha}"),
                &[],
                Some(&body),
                StatusCode::CREATED,
            )
            .await?;
        Ok(())
    }

    /// The commit a branch points at.
    pub async fn branch_head(&self, repo: &str, branch: &str) -> Result<String, ForgeError> {
        let b: Branch = self
            .json(
                Method::GET,
                &format!("/repos/{repo}/branches/{branch}"),
                &[],
                None,
                StatusCode::OK,
            )
            .await?;
        Ok(b.commit.id)
    }

    /// The newest tags (first page: Gitea lists newest first).
    pub async fn recent_tags(&self, repo: &str) -> Result<Vec<Tag>, ForgeError> {
        let q = [("page", "1".to_string()), ("limit", PAGE_LIMIT.to_string())];
        let tags: Vec<RawTag> = self
            .json(
                Method::GET,
                &format!("/repos/{repo}/tags"),
                &q,
                None,
                StatusCode::OK,
            )
            .await?;
        Ok(tags
            .into_iter()
            .map(|t| Tag {
                name: t.name,
                sha: t.commit.sha,
            })
            .collect())
    }
}

fn snippet(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut s: String = text.chars().take(200).collect();
    if text.chars().count() > 200 {
        s.push('…');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn comment(pr_url: &str) -> Comment {
        Comment {
            id: 1,
            body: String::new(),
            user: User { login: "a".into() },
            created_at: Utc::now(),
            updated_at: Utc::now(),
            pull_request_url: pr_url.into(),
            issue_url: String::new(),
        }
    }

    #[test]
    fn the_pull_number_comes_from_the_pull_request_url_only() {
        assert_eq!(
            comment("https://git.example/o/r/pulls/12").pull_number(),
            Some(12)
        );
        assert_eq!(comment("").pull_number(), None);
        assert_eq!(
            comment("https://git.example/o/r/issues/12").pull_number(),
            None
        );
        assert_eq!(
            comment("https://git.example/o/r/pulls/x").pull_number(),
            None
        );
    }

    #[test]
    fn transient_errors_are_5xx_429_timeouts_and_connection_failures() {
        let e = |kind| ForgeError {
            call: "GET /x".into(),
            kind,
        };
        let status = |code| ErrorKind::Status {
            code,
            body: String::new(),
        };
        assert!(e(status(502)).is_transient());
        assert!(e(status(429)).is_transient());
        assert!(!e(status(404)).is_transient());
        assert!(!e(status(303)).is_transient());
        assert!(e(ErrorKind::Timeout).is_transient());
        assert!(!e(ErrorKind::Decode("x".into())).is_transient());
        assert!(e(status(404)).to_string().contains("GET /x"));
    }
}
