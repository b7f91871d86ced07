//! The forge (Gitea): the API [`client`], the `!testme` [`trigger`] rules, the [`intake`] that
//! turns comments into TestRuns (used by the [`poller`] and the webhook in
//! `crate::http::hook`), [`branch`] runs of each recipe's default branch, and the [`reporter`]
//! that keeps one pull-request comment per run ([`report`] renders it).
//!
//! Data flows one way: the poller and webhook only write TestRuns; the reporter only reads
//! them (plus the comment id it keeps in `status.reportCommentId`).

pub mod branch;
pub mod client;
pub mod cursor;
pub mod intake;
pub mod model;
pub mod poller;
pub mod report;
pub mod reporter;
pub mod settings;
pub mod trigger;

pub use settings::ForgeSettings;

use std::path::Path;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use self::client::{Gitea, Retry};
use self::intake::{Intake, Trust};
use self::poller::PollSettings;
use crate::metrics::Metrics;
use crate::runtime::RuntimeSettings;
use crate::store::Store;

/// Why the forge connection could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// A required setting is missing.
    #[error("[forge] {0}")]
    Missing(&'static str),
    /// A secret file could not be read.
    #[error("[forge] cannot read {path}: {source}")]
    Secret {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The client could not be built.
    #[error(transparent)]
    Client(#[from] client::ForgeError),
}

/// Reads a secret file, trimmed; an empty file is an error.
pub fn read_secret(path: &Path) -> Result<String, SetupError> {
    let text = std::fs::read_to_string(path).map_err(|source| SetupError::Secret {
        path: path.display().to_string(),
        source,
    })?;
    let text = text.trim().to_string();
    if text.is_empty() {
        return Err(SetupError::Secret {
            path: path.display().to_string(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, "the file is empty"),
        });
    }
    Ok(text)
}

/// The intake for `settings`, keeping its poll state under `<state_dir>/forge`.
pub fn intake<St: Store>(
    store: St,
    settings: &ForgeSettings,
    state_dir: &Path,
) -> Result<Arc<Intake<St>>, SetupError> {
    if settings.url.trim().is_empty() {
        return Err(SetupError::Missing("url is not set"));
    }
    let token_file = settings
        .token_file
        .as_deref()
        .ok_or(SetupError::Missing("token_file is not set"))?;
    let token = read_secret(token_file)?;
    let gitea = Gitea::new(
        &settings.url,
        &token,
        Retry {
            attempts: settings.attempts.max(1),
            timeout: settings.request_timeout(),
            ..Retry::default()
        },
    )?;
    let trust = Trust {
        org: settings.org.clone().filter(|o| !o.is_empty()),
        allowlist: settings.allowlist.clone(),
    };
    Ok(Arc::new(Intake::new(
        store,
        gitea,
        trust,
        state_dir.join("forge"),
    )))
}

/// Runs the poller and the reporter until `shutdown`.
pub async fn run<St: Store>(
    intake: Arc<Intake<St>>,
    settings: ForgeSettings,
    runtime: RuntimeSettings,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) {
    let mut tasks = reporter::start(
        intake.clone(),
        settings.public_url.clone(),
        settings.commit_status,
        runtime,
        metrics,
        shutdown.clone(),
    );
    let poll = PollSettings {
        interval: settings.poll_interval(),
        default_branch_runs: settings.default_branch_runs,
        schedule: settings.schedule(),
    };
    tasks.push(tokio::spawn(poller::run(intake, poll, shutdown)));
    for t in tasks {
        if let Err(e) = t.await {
            tracing::error!(error = %e, "a forge task failed");
        }
    }
}
