//! [`TestSettings`]: how test steps run their suites (the `[tests]` table of the config file).

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The `[tests]` settings. Every key is optional in the config file.
///
/// ```toml
/// [tests]
/// runner_image = "ccci/runner:latest"   # harness/Dockerfile, built by scripts/test-env
/// suites_root = "/usr/share/cc-ci"      # holds recipes/<recipe>/ (cc-ci's own repository)
/// step_timeout_seconds = 600            # one test job; over it the job is killed: TimedOut
/// cpus = 1.0                            # CPU limit of a test job
/// memory_mb = 1536                      # memory limit of a test job
/// network = "proxy"                     # the network that reaches the apps
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TestSettings {
    /// Whether test steps run suites in a job (`false`: the built-in HTTP check alone).
    pub jobs: bool,
    /// Image of the test jobs: Python, pytest, Playwright, Chromium and the harness.
    pub runner_image: String,
    /// Directory holding the suites (`recipes/<recipe>/` below it, or a Recipe's `suitePath`).
    pub suites_root: PathBuf,
    /// Time limit of one test job.
    pub step_timeout_seconds: u64,
    /// CPU limit of a test job (cores).
    pub cpus: f64,
    /// Memory limit of a test job (MiB).
    pub memory_mb: u64,
    /// The network the jobs join (the one the apps' proxy-facing services are on).
    pub network: String,
}

impl Default for TestSettings {
    fn default() -> Self {
        Self {
            jobs: true,
            runner_image: "ccci/runner:latest".into(),
            suites_root: PathBuf::from("."),
            step_timeout_seconds: 600,
            cpus: 1.0,
            memory_mb: 1536,
            network: "proxy".into(),
        }
    }
}

impl TestSettings {
    /// [`TestSettings::step_timeout_seconds`] as a duration.
    pub fn step_timeout(&self) -> Duration {
        Duration::from_secs(self.step_timeout_seconds)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partial_table_keeps_the_other_defaults_and_typos_are_errors() {
        let s: TestSettings = toml::from_str("runner_image = \"r:1\"").unwrap();
        assert_eq!(s.runner_image, "r:1");
        assert_eq!(s.step_timeout(), Duration::from_secs(600));
        assert!(toml::from_str::<TestSettings>("runner_imge = \"x\"").is_err());
    }
}
