//! What a step works with ([`RunEnv`]) and how it ends: finished ([`StepResult`], passed or
//! failed because of the recipe) or interrupted by an infrastructure problem ([`StepError`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use bollard::Docker;

use super::workspace::{Workspace, WorkspaceError};
use crate::api::{AppInfo, StepName, TestRun};
use crate::controllers::RunSettings;
use crate::executor::{ExecError, TestExecutor, TestReport};
use crate::recipe::secrets::SecretError;
use crate::recipe::snapshot::SnapshotError;
use crate::runlog::redact::Redactor;
use crate::swarm::docker::EngineError;

/// An infrastructure problem: the step did not finish and is retried. Each variant keeps its
/// cause.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// The run's directory or a checkout.
    #[error(transparent)]
    Workspace(#[from] WorkspaceError),
    /// The Docker engine.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The test executor could not run the tests.
    #[error(transparent)]
    Executor(#[from] ExecError),
    /// The run's secrets file.
    #[error("the run's secrets file: {0}")]
    Secrets(#[source] SecretError),
    /// A backup or restore helper met Docker or file trouble.
    #[error(transparent)]
    Snapshot(SnapshotError),
    /// A stage step ran before the fetch decided the app (a bug, or a damaged record).
    #[error("the run has not been fetched")]
    NotFetched,
    /// A run-level step was asked to run as a stage step (a bug, or a damaged record).
    #[error("{0} is not a step of a stage")]
    NotAStageStep(StepName),
    /// The proxy the run's tests go through is not Ready (it went away mid-run).
    #[error("{0}")]
    ProxyNotReady(String),
}

/// How a step ended.
#[derive(Clone, Debug, Default)]
pub struct StepResult {
    /// Whether it passed.
    pub ok: bool,
    /// A one-line summary (for a failure: what failed, e.g. the service and task error).
    pub message: String,
    /// The tests' results, for a test step.
    pub report: Option<TestReport>,
    /// What the fetch step decided.
    pub fetched: Option<Prepared>,
}

impl StepResult {
    /// A passed step.
    pub fn passed(message: impl Into<String>) -> Self {
        StepResult {
            ok: true,
            message: message.into(),
            ..StepResult::default()
        }
    }

    /// A step failed because of the recipe.
    pub fn failed(message: impl Into<String>) -> Self {
        StepResult {
            ok: false,
            message: message.into(),
            ..StepResult::default()
        }
    }
}

/// What a step needs to know about its run.
pub struct RunEnv<'a> {
    /// The engine.
    pub docker: &'a Docker,
    /// The `[runs]` settings.
    pub settings: &'a RunSettings,
    /// Runs the test steps.
    pub executor: &'a Arc<dyn TestExecutor>,
    /// The run.
    pub run: &'a TestRun,
    /// Git URL of the recipe.
    pub url: String,
    /// The Recipe's env overrides.
    pub overrides: BTreeMap<String, String>,
    /// The Recipe's converge timeout, if it sets one.
    pub converge_seconds: Option<u64>,
    /// The Recipe's compose policy exceptions (`allow`).
    pub allow: Vec<String>,
    /// The run's directory.
    pub workspace: Workspace,
    /// Scrubs the run's secrets from everything logged.
    pub redactor: Redactor,
    /// The Recipe's suite path (below the suites root), if it sets one.
    pub suite_path: Option<String>,
    /// How tests reach the app ([`crate::controllers::deployment::route`]).
    pub route: crate::controllers::deployment::route::Route,
}

/// What the fetch step learned.
#[derive(Clone, Debug)]
pub struct Prepared {
    /// The pinned commit.
    pub commit: String,
    /// The app: stack, domain, versions.
    pub app: AppInfo,
}
