//! Test execution: the interface a run's test steps go through ([`TestExecutor`]), what a
//! step is told ([`TestRequest`]) and what it reports ([`TestReport`]). Today the only
//! implementation is [`builtin::BuiltinChecks`] (the app answers HTTP through its
//! proxy-facing service); the Python + Playwright runner (DESIGN.md §7) plugs in here.

pub mod builtin;
pub mod proxied;

use futures::future::BoxFuture;

use crate::api::{StageKind, TestCounts};
use crate::controllers::testrun::plan::TestPhase;

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
}

impl TestReport {
    /// Whether no test failed.
    pub fn passed(&self) -> bool {
        self.counts.failed == 0
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
