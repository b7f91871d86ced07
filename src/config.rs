//! The controller's configuration file (TOML): every setting has a default, unknown keys are
//! errors that name the key, and command-line flags override the file.
//!
//! ```toml
//! listen = "0.0.0.0:8080"
//! state_dir = "/var/lib/cc-ci"
//! token_file = "/run/secrets/cc-ci-token"
//! manifests = "/etc/cc-ci/manifests"
//! log_format = "json"
//!
//! [runtime]
//! resync_seconds = 300
//! ```

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::controllers::RunSettings;
use crate::forge::ForgeSettings;
use crate::runtime::RuntimeSettings;

/// How log lines are written to stderr.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Readable lines for a terminal.
    #[default]
    Human,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Settings of `cc-ci serve`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address the HTTP API listens on. Default `127.0.0.1:8080`; port 0 picks a free port.
    pub listen: String,
    /// Directory of the store (`<state_dir>/store`), token, logs and artifacts. Default `./.cc-ci`.
    pub state_dir: PathBuf,
    /// File holding the API token for writes. Default `<state_dir>/api-token`, generated when
    /// missing.
    pub token_file: Option<PathBuf>,
    /// Directory of manifests (`*.yaml`, `*.yml`, `*.json`) applied at start.
    pub manifests: Option<PathBuf>,
    /// Log format. Default `human`.
    pub log_format: LogFormat,
    /// Allow writes without a token. Only for local experiments.
    pub insecure_no_auth: bool,
    /// Largest accepted request body in bytes. Default 1 MiB.
    pub max_body_bytes: usize,
    /// Controller runtime tunables (`[runtime]` table).
    pub runtime: RuntimeSettings,
    /// How test runs execute and are cleaned up (`[runs]`).
    pub runs: RunSettings,
    /// Which git URLs records may name (`[sources]`: `schemes`, `allow_local_paths`).
    pub sources: crate::api::SourceSettings,
    /// Connection limits of the HTTP server (`[http]`).
    pub http: crate::http::HttpSettings,
    /// How test steps run suites: runner image, suites root, job limits (`[tests]`).
    pub tests: crate::executor::settings::TestSettings,
    /// The Gitea connection (`[forge]`); absent: no polling, webhook or reports.
    pub forge: Option<ForgeSettings>,
    /// How many finished runs are kept (`[retention]`).
    pub retention: crate::controllers::retention::RetentionSettings,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            state_dir: PathBuf::from("./.cc-ci"),
            token_file: None,
            manifests: None,
            log_format: LogFormat::Human,
            insecure_no_auth: false,
            max_body_bytes: crate::http::DEFAULT_BODY_LIMIT,
            runtime: RuntimeSettings::default(),
            runs: RunSettings::default(),
            sources: crate::api::SourceSettings::default(),
            http: crate::http::HttpSettings::default(),
            tests: Default::default(),
            forge: None,
            retention: Default::default(),
        }
    }
}

/// Why a configuration file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read the configuration file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid TOML or has an unknown key or a wrong type (the message names it).
    #[error("invalid configuration file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message, naming the key and its line.
        message: String,
    },
}

impl Config {
    /// Reads and parses a TOML configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parses TOML text; `path` is only used in the error.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string().trim_end().to_string(),
        })
    }

    /// The store's directory: `<state_dir>/store`.
    pub fn store_dir(&self) -> PathBuf {
        self.state_dir.join("store")
    }

    /// The token file: the configured one, else `<state_dir>/api-token`.
    pub fn token_file(&self) -> PathBuf {
        self.token_file
            .clone()
            .unwrap_or_else(|| self.state_dir.join("api-token"))
    }

    /// The file the bound address is written to once listening: `<state_dir>/listen-addr`.
    pub fn listen_addr_file(&self) -> PathBuf {
        self.state_dir.join("listen-addr")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_file_gives_every_default() {
        let c = Config::parse("", Path::new("c.toml")).unwrap();
        assert_eq!(c, Config::default());
        assert_eq!(c.token_file(), PathBuf::from("./.cc-ci/api-token"));
        assert_eq!(c.store_dir(), PathBuf::from("./.cc-ci/store"));
    }

    #[test]
    fn set_keys_override_defaults() {
        let c = Config::parse(
            "listen = \"0.0.0.0:9000\"\nlog_format = \"json\"\nstate_dir = \"/srv\"\n[runtime]\nconcurrency = 9",
            Path::new("c.toml"),
        )
        .unwrap();
        assert_eq!(c.listen, "0.0.0.0:9000");
        assert_eq!(c.log_format, LogFormat::Json);
        assert_eq!(c.token_file(), PathBuf::from("/srv/api-token"));
        assert_eq!(c.max_body_bytes, crate::http::DEFAULT_BODY_LIMIT);
        assert_eq!(c.runtime.concurrency, 9);
    }

    #[test]
    fn an_unknown_key_is_an_error_naming_it_and_the_file() {
        let e = Config::parse(
            "listen = \"x\"\nlisten_adress = 1",
            Path::new("/etc/cc.toml"),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("listen_adress"), "{e}");
        assert!(e.contains("/etc/cc.toml"), "{e}");
        let e = Config::parse("log_format = \"xml\"", Path::new("c.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("log_format") || e.contains("xml"), "{e}");
    }
}
