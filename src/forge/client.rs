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
use serde::de::DeserializeOwned;

use super::model::{Branch, RawTag};
pub use super::model::{
    Comment, ErrorKind, ForgeError, PullBranch, PullRequest, StatusState, Tag, User,
};

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

    /// The comments of one issue or pull request. Gitea does not page this endpoint (it
    /// ignores `page`/`limit` and answers every comment), so one request is the whole list:
    /// paging it would read the same comments again.
    pub async fn issue_comments(&self, repo: &str, issue: u64) -> Result<Vec<Comment>, ForgeError> {
        self.json(
            Method::GET,
            &format!("/repos/{repo}/issues/{issue}/comments"),
            &[],
            None,
            StatusCode::OK,
        )
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

pub(super) fn snippet(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut s: String = text.chars().take(200).collect();
    if text.chars().count() > 200 {
        s.push('…');
    }
    s
}
