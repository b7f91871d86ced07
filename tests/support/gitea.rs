//! A fake Gitea (1.22–1.24 API) for the forge tests: an in-process axum server on its own
//! thread and runtime, holding repositories, pull requests, comments, org memberships,
//! branches, tags and commit statuses, and behaving like the real API where cc-ci relies on it:
//!
//! - only `Authorization: token <t>` (the word `token` in lower case) is accepted, else 401;
//! - lists without `page` are not limited at all; `limit` is clamped to 50 (default 30);
//! - `GET /repos/{o}/{r}/issues/comments?since=` filters on `updated_at` (whole seconds) and
//!   answers in creation order, so an edited comment comes back again;
//! - `GET /repos/{o}/{r}/issues/{n}/comments` is not paged (every comment, always);
//! - `GET /orgs/{org}/members/{user}` answers 204/404 only when the bot is a member of the org,
//!   and otherwise redirects (303) to the public-members URL, which answers 204 for anyone
//!   (so a client following the redirect would wrongly see a member);
//! - commit statuses need write access: 403 without it;
//! - comment writes on an archived repository answer 423, on a missing issue 404;
//! - faults on demand: a status code or a delay for requests whose `METHOD /path` contains a
//!   pattern, a number of times or always; plus a latency added to every request.

#![allow(dead_code)]

#[path = "gitea_api.rs"]
mod api;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use chrono::{DateTime, SubsecRound, Utc};

/// The token the fake accepts.
pub const GITEA_TOKEN: &str = "gitea-token-42";

/// The bot's login.
pub const BOT: &str = "ccci-bot";

/// One stored comment.
#[derive(Clone, Debug)]
pub struct FakeComment {
    /// Id.
    pub id: u64,
    /// `owner/name`.
    pub repo: String,
    /// Issue or pull request number.
    pub issue: u64,
    /// Author.
    pub user: String,
    /// Text.
    pub body: String,
    /// Created.
    pub created: DateTime<Utc>,
    /// Last edited.
    pub updated: DateTime<Utc>,
}

/// One fault rule.
#[derive(Clone, Debug)]
struct Fault {
    pattern: String,
    remaining: Option<u32>,
    status: Option<u16>,
    delay: Duration,
}

/// Everything the fake holds; tests change it through [`Gitea`]'s methods.
#[derive(Default)]
struct State {
    next_id: u64,
    comments: Vec<FakeComment>,
    /// (repo, number) → (open, merged, head sha)
    pulls: HashMap<(String, u64), (bool, bool, String)>,
    /// Issues that are not pull requests.
    issues: HashSet<(String, u64)>,
    members: HashMap<String, HashSet<String>>,
    archived: HashSet<String>,
    status_write: bool,
    statuses: Vec<(String, String, String)>,
    branches: HashMap<(String, String), String>,
    tags: HashMap<String, Vec<(String, String)>>,
    faults: Vec<Fault>,
    latency: Duration,
    requests: Vec<String>,
}

/// A running fake Gitea; stops when dropped.
pub struct Gitea {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    state: Arc<Mutex<State>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(0)
}

impl Gitea {
    /// Starts a fake on a free port.
    pub fn start() -> Gitea {
        let state = Arc::new(Mutex::new(State {
            next_id: 1000,
            ..State::default()
        }));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let shared = state.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                addr_tx.send(listener.local_addr().unwrap()).unwrap();
                // Go's net/http (Gitea) sets TCP_NODELAY on every connection; without it a
                // response written in two parts waits for the client's delayed ACK (~40 ms).
                let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
                    let _ = tcp.set_nodelay(true);
                });
                let app = Router::new()
                    .fallback(move |m, u, h, b| api::handle(shared.clone(), m, u, h, b));
                axum::serve(listener, app)
                    .with_graceful_shutdown(async move {
                        let _ = rx.await;
                    })
                    .await
                    .unwrap();
            });
        });
        let addr = addr_rx.recv().unwrap();
        Gitea {
            url: format!("http://{addr}"),
            state,
            stop: Some(tx),
            thread: Some(thread),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.state.lock().unwrap())
    }

    /// Opens pull request `n` of `repo` with head `sha`.
    pub fn open_pr(&self, repo: &str, n: u64, sha: &str) {
        self.with(|s| s.pulls.insert((repo.into(), n), (true, false, sha.into())));
    }

    /// Moves the head of a pull request.
    pub fn set_head(&self, repo: &str, n: u64, sha: &str) {
        self.with(|s| s.pulls.get_mut(&(repo.to_string(), n)).unwrap().2 = sha.into());
    }

    /// Closes (and optionally merges) a pull request.
    pub fn close_pr(&self, repo: &str, n: u64, merged: bool) {
        self.with(|s| {
            let p = s.pulls.get_mut(&(repo.to_string(), n)).unwrap();
            p.0 = false;
            p.1 = merged;
        });
    }

    /// Opens a plain issue.
    pub fn open_issue(&self, repo: &str, n: u64) {
        self.with(|s| s.issues.insert((repo.into(), n)));
    }

    /// Adds `user` to `org` (add [`BOT`] too, or memberships are hidden from the bot).
    pub fn add_member(&self, org: &str, user: &str) {
        self.with(|s| s.members.entry(org.into()).or_default().insert(user.into()));
    }

    /// Archives a repository: comment writes answer 423.
    pub fn archive(&self, repo: &str) {
        self.with(|s| s.archived.insert(repo.into()));
    }

    /// Gives the bot write access (commit statuses allowed).
    pub fn allow_status_writes(&self) {
        self.with(|s| s.status_write = true);
    }

    /// Sets a branch's commit.
    pub fn set_branch(&self, repo: &str, branch: &str, sha: &str) {
        self.with(|s| s.branches.insert((repo.into(), branch.into()), sha.into()));
    }

    /// Adds a tag (the newest).
    pub fn add_tag(&self, repo: &str, tag: &str, sha: &str) {
        self.with(|s| {
            s.tags
                .entry(repo.into())
                .or_default()
                .insert(0, (tag.into(), sha.into()))
        });
    }

    /// Posts a comment as `user`, created now; returns its id.
    pub fn comment(&self, repo: &str, issue: u64, user: &str, body: &str) -> u64 {
        self.comment_at(repo, issue, user, body, now())
    }

    /// Posts a comment created at `created`.
    pub fn comment_at(
        &self,
        repo: &str,
        issue: u64,
        user: &str,
        body: &str,
        created: DateTime<Utc>,
    ) -> u64 {
        self.with(|s| add_comment(s, repo, issue, user, body, created))
    }

    /// Edits a comment as its author would (its `updated_at` becomes now).
    pub fn edit(&self, id: u64, body: &str) {
        self.with(|s| {
            let c = s.comments.iter_mut().find(|c| c.id == id).unwrap();
            c.body = body.into();
            c.updated = now().max(c.created + chrono::Duration::seconds(1));
        });
    }

    /// The comments of an issue, in creation order.
    pub fn comments_on(&self, repo: &str, issue: u64) -> Vec<FakeComment> {
        self.with(|s| {
            s.comments
                .iter()
                .filter(|c| c.repo == repo && c.issue == issue)
                .cloned()
                .collect()
        })
    }

    /// Commit statuses set so far: (repo, sha, state).
    pub fn statuses(&self) -> Vec<(String, String, String)> {
        self.with(|s| s.statuses.clone())
    }

    /// Answers `status` to the next `times` requests (`None`: all) whose `METHOD /path`
    /// contains `pattern`.
    pub fn fail(&self, pattern: &str, status: u16, times: Option<u32>) {
        self.with(|s| {
            s.faults.push(Fault {
                pattern: pattern.into(),
                remaining: times,
                status: Some(status),
                delay: Duration::ZERO,
            })
        });
    }

    /// Delays the next `times` matching requests (`None`: all) by `delay`.
    pub fn slow(&self, pattern: &str, delay: Duration, times: Option<u32>) {
        self.with(|s| {
            s.faults.push(Fault {
                pattern: pattern.into(),
                remaining: times,
                status: None,
                delay,
            })
        });
    }

    /// Removes every fault rule.
    pub fn heal(&self) {
        self.with(|s| s.faults.clear());
    }

    /// Adds `latency` to every request.
    pub fn set_latency(&self, latency: Duration) {
        self.with(|s| s.latency = latency);
    }

    /// Every request so far, as `METHOD /path?query`.
    pub fn requests(&self) -> Vec<String> {
        self.with(|s| s.requests.clone())
    }

    /// Forgets the request log.
    pub fn clear_requests(&self) {
        self.with(|s| s.requests.clear());
    }
}

impl Drop for Gitea {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn add_comment(
    s: &mut State,
    repo: &str,
    issue: u64,
    user: &str,
    body: &str,
    created: DateTime<Utc>,
) -> u64 {
    s.next_id += 1;
    let id = s.next_id;
    s.comments.push(FakeComment {
        id,
        repo: repo.into(),
        issue,
        user: user.into(),
        body: body.into(),
        created: created.trunc_subsecs(0),
        updated: created.trunc_subsecs(0),
    });
    id
}
