//! What the Gitea API answers, as cc-ci reads it (comments, pull requests, tags), and the
//! typed error of a failed call.

use chrono::{DateTime, Utc};
use serde::Deserialize;

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
pub(super) struct BranchCommit {
    pub(super) id: String,
}

#[derive(Deserialize)]
pub(super) struct Branch {
    pub(super) commit: BranchCommit,
}

#[derive(Deserialize)]
pub(super) struct TagCommit {
    pub(super) sha: String,
}

#[derive(Deserialize)]
pub(super) struct RawTag {
    pub(super) name: String,
    pub(super) commit: TagCommit,
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
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            StatusState::Pending => "pending",
            StatusState::Success => "success",
            StatusState::Failure => "failure",
            StatusState::Error => "error",
        }
    }
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
