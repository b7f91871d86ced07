//! The `[forge]` settings of `cc-ci serve`: where the Gitea is, how the bot authenticates, who
//! may trigger runs, and how often to poll. Secrets are only ever read from files.
//!
//! ```toml
//! [forge]
//! url = "https://git.coopcloud.tech"
//! token_file = "/run/secrets/cc-ci-gitea-token"
//! org = "coop-cloud"
//! allowlist = ["trusted-friend"]
//! webhook_secret_file = "/run/secrets/cc-ci-webhook-secret"
//! public_url = "https://ci.coopcloud.tech"
//! poll_interval_seconds = 15
//! ```

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// `[forge]`: the Gitea connection. Absent: no polling, no webhook, no reports.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ForgeSettings {
    /// Base URL of the Gitea instance, e.g. `https://git.coopcloud.tech`.
    pub url: String,
    /// File holding the bot's API token (read-level is enough; write access adds commit
    /// statuses).
    pub token_file: Option<PathBuf>,
    /// Members of this organisation may trigger runs (the bot must be a member too, or
    /// Gitea hides memberships from it and nobody is trusted).
    pub org: Option<String>,
    /// Logins that may trigger runs whatever their membership.
    pub allowlist: Vec<String>,
    /// File holding the webhook secret; absent: `POST /hook` is not served.
    pub webhook_secret_file: Option<PathBuf>,
    /// Base URL of this server as people reach it, for the run links on pull requests.
    pub public_url: String,
    /// Seconds between two polls of one recipe. Default 15.
    pub poll_interval_seconds: f64,
    /// Test each recipe's default branch when it moves or gets a release tag. Default true.
    pub default_branch_runs: bool,
    /// Also test the default branch every this many hours (0: only on changes). Default 168.
    pub schedule_hours: f64,
    /// Set commit statuses on the tested SHA (needs write access; a 403 turns them off).
    /// Default true.
    pub commit_status: bool,
    /// Seconds before a forge request times out. Default 10.
    pub request_timeout_seconds: f64,
    /// Attempts per forge request (5xx and timeouts are retried with backoff). Default 3.
    pub attempts: u32,
}

impl Default for ForgeSettings {
    fn default() -> Self {
        ForgeSettings {
            url: String::new(),
            token_file: None,
            org: None,
            allowlist: Vec::new(),
            webhook_secret_file: None,
            public_url: "http://127.0.0.1:8080".into(),
            poll_interval_seconds: 15.0,
            default_branch_runs: true,
            schedule_hours: 168.0,
            commit_status: true,
            request_timeout_seconds: 10.0,
            attempts: 3,
        }
    }
}

fn seconds(s: f64) -> Duration {
    Duration::from_secs_f64(if s.is_finite() { s.max(0.0) } else { 0.0 })
}

impl ForgeSettings {
    /// The poll interval (at least 100 ms).
    pub fn poll_interval(&self) -> Duration {
        seconds(self.poll_interval_seconds).max(Duration::from_millis(100))
    }

    /// The scheduled-run period, if any.
    pub fn schedule(&self) -> Option<Duration> {
        let d = seconds(self.schedule_hours * 3600.0);
        (!d.is_zero()).then_some(d)
    }

    /// The request timeout (at least 100 ms).
    pub fn request_timeout(&self) -> Duration {
        seconds(self.request_timeout_seconds).max(Duration::from_millis(100))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_forge_table_parses_and_an_unknown_key_names_itself() {
        let c = crate::config::Config::parse(
            "[forge]\nurl = \"https://git.example\"\ntoken_file = \"/run/t\"\norg = \"coop\"\n\
             allowlist = [\"a\"]\npoll_interval_seconds = 2.5\n",
            std::path::Path::new("c.toml"),
        )
        .unwrap();
        let f = c.forge.expect("[forge] set");
        assert_eq!(f.url, "https://git.example");
        assert_eq!(f.org.as_deref(), Some("coop"));
        assert_eq!(f.allowlist, vec!["a".to_string()]);
        assert_eq!(f.poll_interval(), Duration::from_millis(2500));
        assert!(f.commit_status && f.default_branch_runs);
        let e =
            crate::config::Config::parse("[forge]\ntoken = \"x\"", std::path::Path::new("c.toml"))
                .unwrap_err()
                .to_string();
        assert!(e.contains("token"), "{e}");
        assert_eq!(
            crate::config::Config::parse("", std::path::Path::new("c.toml"))
                .unwrap()
                .forge,
            None
        );
    }

    #[test]
    fn serve_flags_set_and_override_the_forge_table() {
        let args = crate::cli::serve::Args {
            forge_url: Some("https://git.example".into()),
            forge_allow: vec!["x".into(), "y".into()],
            forge_poll_interval: Some(3.0),
            public_url: Some("https://ci.example".into()),
            ..Default::default()
        };
        let f = args.resolve().unwrap().forge.expect("flags enable [forge]");
        assert_eq!(f.url, "https://git.example");
        assert_eq!(f.allowlist, vec!["x".to_string(), "y".to_string()]);
        assert_eq!(f.poll_interval(), Duration::from_secs(3));
        assert_eq!(f.public_url, "https://ci.example");
        assert_eq!(
            crate::cli::serve::Args::default().resolve().unwrap().forge,
            None
        );
    }

    #[test]
    fn defaults_and_bounds() {
        let s = ForgeSettings::default();
        assert_eq!(s.poll_interval(), Duration::from_secs(15));
        assert_eq!(s.schedule(), Some(Duration::from_secs(168 * 3600)));
        let s = ForgeSettings {
            poll_interval_seconds: 0.0,
            schedule_hours: 0.0,
            ..ForgeSettings::default()
        };
        assert_eq!(s.poll_interval(), Duration::from_millis(100));
        assert_eq!(s.schedule(), None);
    }
}
