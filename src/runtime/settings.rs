//! [`RuntimeSettings`]: the tunables of every controller, embeddable in the config file.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Tunables shared by every controller. Every field has a default, so a config file may set
/// only some (`#[serde(default)]`), e.g. in TOML:
///
/// ```toml
/// [runtime]
/// resync_seconds = 300
/// concurrency = 4
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RuntimeSettings {
    /// Every this many seconds each controller schedules every key it caches (a full resync,
    /// covering anything a watch missed). `0` disables it. Default 300.
    pub resync_seconds: u64,
    /// Reconciles one controller runs at once (different keys). Default 4.
    pub concurrency: usize,
    /// On shutdown, how long in-flight reconciles may take to finish before they are aborted.
    /// Default 30.
    pub shutdown_grace_seconds: u64,
    /// Delay before the first retry of a failed reconcile; it doubles per consecutive failure of
    /// the same key. Default 1.
    pub backoff_initial_seconds: u64,
    /// Upper bound of the retry delay. Default 300.
    pub backoff_max_seconds: u64,
    /// Spread retry delays randomly over `[delay/2, delay]`. Default true.
    pub backoff_jitter: bool,
}

impl Default for RuntimeSettings {
    fn default() -> Self {
        Self {
            resync_seconds: 300,
            concurrency: 4,
            shutdown_grace_seconds: 30,
            backoff_initial_seconds: 1,
            backoff_max_seconds: 300,
            backoff_jitter: true,
        }
    }
}

impl RuntimeSettings {
    /// The resync period, `None` when disabled.
    pub fn resync_period(&self) -> Option<Duration> {
        (self.resync_seconds > 0).then(|| Duration::from_secs(self.resync_seconds))
    }

    /// The shutdown grace period.
    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_secs(self.shutdown_grace_seconds)
    }

    /// The first retry delay.
    pub fn backoff_initial(&self) -> Duration {
        Duration::from_secs(self.backoff_initial_seconds)
    }

    /// The largest retry delay.
    pub fn backoff_max(&self) -> Duration {
        Duration::from_secs(self.backoff_max_seconds)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partial_config_keeps_the_other_defaults() {
        let s: RuntimeSettings = toml::from_str("concurrency = 9").unwrap();
        assert_eq!(s.concurrency, 9);
        assert_eq!(s.resync_seconds, RuntimeSettings::default().resync_seconds);
        let off: RuntimeSettings = toml::from_str("resync_seconds = 0").unwrap();
        assert_eq!(off.resync_period(), None);
    }
}
