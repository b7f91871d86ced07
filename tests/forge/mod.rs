//! The forge connection end to end: a real `cc-ci serve` (records only, `--no-runs`) polling
//! and reporting against the fake Gitea of `tests/support/gitea.rs`. Each test names the real
//! Gitea behaviour it relies on.

mod bench;
mod branch;
mod client;
mod intake;
mod outage;
mod reporter;
mod swarm;
mod webhook;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::api::Client;
use crate::support::Server;
use crate::support::gitea::{BOT, GITEA_TOKEN, Gitea};

/// The enrolled recipe's forge repository.
pub const REPO: &str = "coop/site";
/// The org whose members are trusted.
pub const ORG: &str = "coop";
/// Poll interval of the test servers.
pub const INTERVAL: Duration = Duration::from_millis(200);
/// The webhook secret of the test servers.
pub const SECRET: &str = "hook-secret-7";

/// A fake Gitea and a `cc-ci serve` polling it, with Recipe `site` enrolled on [`REPO`].
pub struct Env {
    pub gitea: Gitea,
    pub server: Server,
    pub api: Client,
    /// Keeps the state and config files alive.
    pub _dir: tempfile::TempDir,
    pub config: PathBuf,
}

/// Writes the config file for `gitea` into `dir`; `extra` lines go into `[forge]`.
pub fn write_config(dir: &Path, gitea: &Gitea, extra: &str) -> PathBuf {
    let token = dir.join("gitea-token");
    std::fs::write(&token, format!("{GITEA_TOKEN}\n")).unwrap();
    let secret = dir.join("hook-secret");
    std::fs::write(&secret, SECRET).unwrap();
    let config = dir.join("cc-ci.toml");
    let defaults = [
        ("url", format!("{:?}", gitea.url)),
        ("token_file", format!("{token:?}")),
        ("org", format!("{ORG:?}")),
        ("allowlist", "[\"friend\"]".to_string()),
        ("webhook_secret_file", format!("{secret:?}")),
        ("public_url", "\"http://ci.example\"".to_string()),
        ("poll_interval_seconds", INTERVAL.as_secs_f64().to_string()),
        ("request_timeout_seconds", "1".to_string()),
        ("attempts", "2".to_string()),
        ("schedule_hours", "0".to_string()),
        ("default_branch_runs", "false".to_string()),
    ];
    let mut text = String::from("[forge]\n");
    for (key, value) in defaults {
        if !extra.contains(&format!("{key} =")) {
            text.push_str(&format!("{key} = {value}\n"));
        }
    }
    text.push_str(extra);
    text.push('\n');
    std::fs::write(&config, text).unwrap();
    config
}

impl Env {
    /// Starts both with default-branch runs off; `extra` lines go into `[forge]`.
    pub async fn start(extra: &str) -> Env {
        let gitea = Gitea::start();
        gitea.add_member(ORG, BOT);
        gitea.add_member(ORG, "alice");
        gitea.open_pr(REPO, 1, &sha('a'));
        let dir = tempfile::tempdir().unwrap();
        let config = write_config(dir.path(), &gitea, extra);
        let server = Server::start_in(
            &dir.path().join("state"),
            &["--config", config.to_str().unwrap()],
        );
        let api = Client::of(&server);
        let (code, body) = api.post("/api/v1/recipes", &recipe_on(REPO)).await;
        assert_eq!(code, 201, "{body}");
        Env {
            gitea,
            server,
            api,
            _dir: dir,
            config,
        }
    }

    /// Kills the server (SIGKILL) and starts it again on the same state.
    pub fn restart(&mut self) {
        let state = self.server.state_dir.clone();
        let _ = self.server.child.kill();
        let _ = self.server.child.wait();
        let old = std::mem::replace(
            &mut self.server,
            Server::start_in(&state, &["--config", self.config.to_str().unwrap()]),
        );
        drop(old);
        self.api = Client::of(&self.server);
    }

    /// Names of the TestRuns stored now.
    pub async fn runs(&self) -> Vec<Value> {
        let (code, list) = self.api.get("/api/v1/testruns").await;
        assert_eq!(code, 200);
        list["items"].as_array().cloned().unwrap_or_default()
    }

    /// Waits (up to `limit`) until a run named `name` is stored; answers it.
    pub async fn wait_run(&self, name: &str, limit: Duration) -> Value {
        let path = format!("/api/v1/testruns/{name}");
        eventually(limit, || async {
            let (code, v) = self.api.get(&path).await;
            (code == 200).then_some(v)
        })
        .await
        .unwrap_or_else(|| panic!("no run {name} within {limit:?}; runs: {:?}", names(&[])))
    }

    /// The bot's comments on pull request `n`.
    pub fn bot_comments(&self, n: u64) -> Vec<crate::support::gitea::FakeComment> {
        self.gitea
            .comments_on(REPO, n)
            .into_iter()
            .filter(|c| c.user == BOT)
            .collect()
    }
}

/// A Recipe `site` enrolled on `repo`.
pub fn recipe_on(repo: &str) -> Value {
    json!({
        "apiVersion": "cc-ci/v1alpha1",
        "kind": "Recipe",
        "metadata": {"name": "site"},
        "spec": {"git": "https://git.example/coop/site.git", "forgeRepo": repo},
    })
}

/// A 40-character SHA made of one character.
pub fn sha(c: char) -> String {
    c.to_string().repeat(40)
}

/// Names of runs.
pub fn names(runs: &[Value]) -> Vec<String> {
    runs.iter()
        .map(|r| r["metadata"]["name"].as_str().unwrap().to_string())
        .collect()
}

/// Polls `f` every 50 ms until it answers `Some`, for at most `limit`.
pub async fn eventually<T, F, Fut>(limit: Duration, mut f: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f().await {
            return Some(v);
        }
        if Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
