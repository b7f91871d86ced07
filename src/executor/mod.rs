//! Test execution: the interface a run's test steps go through ([`TestExecutor`]), what a
//! step is told ([`TestRequest`]) and what it reports ([`TestReport`]). Implementations:
//! [`builtin::BuiltinChecks`] (the app answers HTTP through its proxy-facing service) and
//! [`job::JobExecutor`] (those checks, then the recipe's pytest + Playwright suite in a Swarm
//! job of the runner image, DESIGN.md §7).

pub mod artifacts;
pub mod builtin;
pub mod job;
mod job_lookup;
mod job_spec;
mod job_verdict;
pub mod junit;
pub mod proxied;
pub mod settings;

use futures::future::BoxFuture;

use crate::api::{StageKind, TestCounts};

pub use crate::api::TestPhase;

/// Everything a test step knows about the app under test (the harness' `CCCI_*` contract).
#[derive(Clone, Debug)]
pub struct TestRequest {
    /// The run's name (its objects carry `cc-ci.run=<run>`).
    pub run: String,
    /// Labels every helper container or job of the step must carry.
    pub labels: std::collections::BTreeMap<String, String>,
    /// The recipe's name.
    pub recipe: String,
    /// Which stage.
    pub stage: StageKind,
    /// Which test step of the stage.
    pub phase: TestPhase,
    /// The app's swarm stack.
    pub stack: String,
    /// The app's domain.
    pub domain: String,
    /// Version deployed now.
    pub version: String,
    /// Version the upgrade started from, if any.
    pub previous_version: Option<String>,
    /// Image of helper containers (needs `bash`).
    pub helper_image: String,
    /// The run's directory (results and artifacts go below it); `None`: no test job runs.
    pub run_dir: Option<std::path::PathBuf>,
    /// The recipe's checkout at the commit under test (its `tests/` are recipe-local tests).
    pub checkout: Option<std::path::PathBuf>,
    /// The Recipe's suite path below the suites root (default `recipes/<recipe>`).
    pub suite_path: Option<String>,
    /// The run's redactor: every secret it knows is scrubbed from what the step keeps.
    pub redactor: crate::runlog::redact::Redactor,
    /// Set in proxy mode: tests reach the app by its domain through this proxy, over TLS.
    pub proxy: Option<crate::controllers::deployment::route::ProxyRoute>,
}

/// Why a step's tests could not produce a verdict on the app (the run ends in `Error` or
/// `TimedOut`, not `Failed`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Broken {
    /// The suite could not even be collected (syntax error, import error, bad marker, …).
    Collection(String),
    /// The test job ran over its time limit and was killed.
    TimedOut(String),
}

/// What a test step found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TestReport {
    /// Passed, failed and skipped tests.
    pub counts: TestCounts,
    /// Names of the failing tests, each with a short reason.
    pub failing: Vec<String>,
    /// Routing mode used, when the step reached the app (`Direct` without a proxy).
    pub routing: Option<crate::api::RoutingMode>,
    /// Counts per origin: `builtin`, `suite` (cc-ci's `recipes/<recipe>/`), `recipe` (the
    /// recipe repository's own `tests/`).
    pub origins: std::collections::BTreeMap<String, TestCounts>,
    /// Set when the tests could not give a verdict (collection error, time limit).
    pub broken: Option<Broken>,
    /// Artifact files of the step, relative to the run's artifact directory.
    pub artifacts: Vec<String>,
}

impl TestReport {
    /// Whether no test failed and the tests could give a verdict.
    pub fn passed(&self) -> bool {
        self.counts.failed == 0 && self.broken.is_none()
    }

    /// Adds one test's result.
    pub fn record(&mut self, name: &str, outcome: Result<(), String>) {
        match outcome {
            Ok(()) => self.counts.passed += 1,
            Err(why) => {
                self.counts.failed += 1;
                self.failing.push(format!("{name}: {why}"));
            }
        }
    }

    /// Adds another report's results.
    pub fn merge(&mut self, other: TestReport) {
        self.counts.passed += other.counts.passed;
        self.counts.failed += other.counts.failed;
        self.counts.skipped += other.counts.skipped;
        self.failing.extend(other.failing);
        self.routing = self.routing.or(other.routing);
        for (origin, c) in other.origins {
            let mine = self.origins.entry(origin).or_default();
            mine.passed += c.passed;
            mine.failed += c.failed;
            mine.skipped += c.skipped;
        }
        self.broken = self.broken.take().or(other.broken);
        self.artifacts.extend(other.artifacts);
    }
}

/// Why a test step could not run at all (an infrastructure problem, not a failing test).
#[derive(Debug, thiserror::Error)]
#[error("{action}: {message}")]
pub struct ExecError {
    /// What was being done.
    pub action: String,
    /// What went wrong.
    pub message: String,
}

/// A sink for the lines a test step logs (written, redacted, to the stage's log).
pub type StepLog<'a> = &'a mut (dyn FnMut(&str) + Send);

/// Runs the tests of one step against a deployed, converged app. Implementations must be
/// safe to call again for the same step (a controller restart repeats an unfinished step).
pub trait TestExecutor: Send + Sync + 'static {
    /// Runs the step's tests.
    fn run<'a>(
        &'a self,
        docker: &'a bollard::Docker,
        request: &'a TestRequest,
        log: StepLog<'a>,
    ) -> BoxFuture<'a, Result<TestReport, ExecError>>;
}
