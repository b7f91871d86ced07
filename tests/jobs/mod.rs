//! Test steps as Swarm jobs of the runner image, driven by the real TestRun controller on the
//! real local swarm: the fixture suites through Chromium at every stage, a failing browser
//! test with its screenshot and trace served by the API and `ccctl`, recipe-local tests, what
//! untrusted test code can see inside the job, a broken suite, and a hanging one.

mod bench;
mod outcomes;
mod suites;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use cc_ci::api::{StageKind, StepStatus, TestRun};
use cc_ci::controllers::RunSettings;
use cc_ci::executor::job::JobExecutor;
use cc_ci::executor::settings::TestSettings;

use crate::lifecycle::harness::{Controller, settings};

/// The repository root: `recipes/<recipe>/` below it are the real suites.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The base domain of the jobs tests' runs (their own, see [`controller_with`]).
pub const BASE_DOMAIN: &str = "jobs.test";

/// A controller whose test steps run jobs with suites under `suites_root`.
pub async fn controller(instance: &str, suites_root: &Path, step_timeout: u64) -> Controller {
    controller_with(settings(instance), suites_root, step_timeout).await
}

/// [`controller`] with these `[runs]` settings.
pub async fn controller_with(
    mut runs: RunSettings,
    suites_root: &Path,
    step_timeout: u64,
) -> Controller {
    let tests = TestSettings {
        suites_root: suites_root.to_path_buf(),
        step_timeout_seconds: step_timeout,
        ..TestSettings::default()
    };
    runs.max_concurrent_runs = 2;
    // Stacks are named after recipe, commit and base domain: the lifecycle tests deploy the same
    // fixture commits under `ci.test`, at the same time as these.
    runs.base_domain = BASE_DOMAIN.into();
    Controller::start(runs, Arc::new(JobExecutor::new(tests))).await
}

/// The test step `name` (e.g. `test:pre`) of `stage`.
pub fn step<'a>(run: &'a TestRun, stage: StageKind, name: &str) -> &'a StepStatus {
    run.status
        .stages
        .iter()
        .find(|s| s.stage == stage)
        .and_then(|s| s.steps.iter().find(|st| st.name.as_str() == name))
        .unwrap_or_else(|| panic!("no step {name} in {stage:?}: {:#?}", run.status))
}

/// Passed tests of `origin` in a step.
pub fn passed(step: &StepStatus, origin: &str) -> u32 {
    step.origins.get(origin).map_or(0, |c| c.passed)
}
