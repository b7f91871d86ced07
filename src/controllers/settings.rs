//! [`RunSettings`]: how test runs are executed and cleaned up (the `[runs]` table of the config
//! file), shared by the TestRun reconciler and the janitor.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The `[runs]` settings. Every key is optional in the config file.
///
/// ```toml
/// [runs]
/// enabled = true                  # false: keep and serve records, execute no run
/// instance = "cc-ci"              # value of the cc-ci.instance label on everything runs create
/// max_concurrent_runs = 1         # runs admitted at once; the rest wait FIFO
/// base_domain = "ci.localhost"    # apps get <recipe>-pr<N>-<sha7>.<base_domain>
/// force_dnsrr = false             # endpoint_mode dnsrr where a service sets none (no IPVS)
/// helper_image = "ccci/base:bookworm"
/// converge_timeout_seconds = 300  # when the recipe's app has no coop-cloud.<stack>.timeout label
/// stage_timeout_seconds = 1800
/// run_timeout_seconds = 3600
/// janitor_period_seconds = 300
/// ttl_seconds = 86400             # objects older than this are reaped whatever their run says
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RunSettings {
    /// Whether this controller executes TestRuns (`false`: records are kept and served, but no
    /// run is admitted and nothing touches Docker — e.g. for benchmarks of the control plane).
    pub enabled: bool,
    /// The value of the `cc-ci.instance` label on every swarm object runs create. The janitor
    /// only ever touches objects of its own instance, so two controllers (or a test suite) can
    /// share one swarm.
    pub instance: String,
    /// How many runs are admitted at once; the rest wait in FIFO order. At least 1: a file
    /// saying 0 is refused at load.
    #[serde(deserialize_with = "at_least_one")]
    pub max_concurrent_runs: usize,
    /// Base domain of run apps (`<recipe>-pr<N>-<sha7>.<base_domain>`).
    pub base_domain: String,
    /// Use `endpoint_mode: dnsrr` for services that set none (kernels without IPVS).
    pub force_dnsrr: bool,
    /// Image of the short-lived helper containers (built-in HTTP checks, volume copies). It
    /// needs `bash` and `tar`; it is never started with the app's secrets.
    pub helper_image: String,
    /// Converge timeout when the recipe's `app` service has no `coop-cloud.<stack>.timeout`
    /// label and the Recipe sets none.
    pub converge_timeout_seconds: u64,
    /// Time limit of one stage, unless the Recipe sets one.
    pub stage_timeout_seconds: u64,
    /// Time limit of a whole run (admission to teardown), unless the Recipe sets one.
    pub run_timeout_seconds: u64,
    /// How often the janitor sweeps (it also sweeps once at start-up). 0 = only at start-up.
    pub janitor_period_seconds: u64,
    /// Objects of this instance older than this are removed whatever their run's state.
    pub ttl_seconds: u64,
}

impl Default for RunSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            instance: "cc-ci".into(),
            max_concurrent_runs: 1,
            base_domain: "ci.localhost".into(),
            force_dnsrr: false,
            helper_image: "ccci/base:bookworm".into(),
            converge_timeout_seconds: 300,
            stage_timeout_seconds: 1800,
            run_timeout_seconds: 3600,
            janitor_period_seconds: 300,
            ttl_seconds: 86_400,
        }
    }
}

fn at_least_one<'de, D: serde::Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    let n = usize::deserialize(d)?;
    if n == 0 {
        return Err(serde::de::Error::custom(
            "max_concurrent_runs must be at least 1 (0 would admit no run at all; \
             set enabled = false to execute no run)",
        ));
    }
    Ok(n)
}

impl RunSettings {
    /// [`RunSettings::converge_timeout_seconds`] as a duration.
    pub fn converge_timeout(&self) -> Duration {
        Duration::from_secs(self.converge_timeout_seconds)
    }

    /// [`RunSettings::janitor_period_seconds`] as a period, `None` when periodic sweeps are off.
    pub fn janitor_period(&self) -> Option<Duration> {
        (self.janitor_period_seconds > 0).then(|| Duration::from_secs(self.janitor_period_seconds))
    }

    /// [`RunSettings::ttl_seconds`] as a duration.
    pub fn ttl(&self) -> Duration {
        Duration::from_secs(self.ttl_seconds)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partial_table_keeps_the_other_defaults() {
        let s: RunSettings = toml::from_str("instance = \"staging\"").unwrap();
        assert_eq!(s.instance, "staging");
        assert_eq!(s.max_concurrent_runs, 1);
        assert_eq!(s.janitor_period(), Some(Duration::from_secs(300)));
        let off: RunSettings = toml::from_str("janitor_period_seconds = 0").unwrap();
        assert_eq!(off.janitor_period(), None);
        assert!(toml::from_str::<RunSettings>("instanse = \"x\"").is_err());
    }

    #[test]
    fn zero_concurrent_runs_is_refused_at_load_with_a_reason() {
        let e = toml::from_str::<RunSettings>("max_concurrent_runs = 0").unwrap_err();
        assert!(e.to_string().contains("at least 1"), "{e}");
        let two: RunSettings = toml::from_str("max_concurrent_runs = 2").unwrap();
        assert_eq!(two.max_concurrent_runs, 2);
    }
}
