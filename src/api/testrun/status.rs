//! A `TestRun`'s observed state: phases of the run, its stages and steps, test counts, the
//! app under test.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::api::{Condition, StageKind};

/// Phase of a whole run.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    JsonSchema,
)]
pub enum RunPhase {
    /// Waiting for admission.
    #[default]
    Pending,
    /// Admitted and working.
    Running,
    /// Every stage passed (or did not apply).
    Succeeded,
    /// A test or a deploy of the recipe failed.
    Failed,
    /// An infrastructure problem stopped the run.
    Error,
    /// The run or a stage ran out of time.
    TimedOut,
    /// Cancelled by a user or superseded by a newer run.
    Cancelled,
}

impl RunPhase {
    /// Every phase, in order.
    pub const ALL: [RunPhase; 7] = [
        RunPhase::Pending,
        RunPhase::Running,
        RunPhase::Succeeded,
        RunPhase::Failed,
        RunPhase::Error,
        RunPhase::TimedOut,
        RunPhase::Cancelled,
    ];

    /// Whether the run is over.
    pub fn is_terminal(self) -> bool {
        !matches!(self, RunPhase::Pending | RunPhase::Running)
    }

    /// Whether the run ended with something to say about its recipe: `Succeeded`, `Failed`,
    /// `Error` or `TimedOut` (a `Cancelled` run says nothing).
    pub fn has_verdict(self) -> bool {
        matches!(
            self,
            RunPhase::Succeeded | RunPhase::Failed | RunPhase::Error | RunPhase::TimedOut
        )
    }

    /// The wire name, e.g. `TimedOut`.
    pub fn as_str(self) -> &'static str {
        match self {
            RunPhase::Pending => "Pending",
            RunPhase::Running => "Running",
            RunPhase::Succeeded => "Succeeded",
            RunPhase::Failed => "Failed",
            RunPhase::Error => "Error",
            RunPhase::TimedOut => "TimedOut",
            RunPhase::Cancelled => "Cancelled",
        }
    }
}

/// Result of one stage.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum StagePhase {
    /// Not started.
    #[default]
    Pending,
    /// In progress.
    Running,
    /// All its tests passed.
    Passed,
    /// A test or deploy failed.
    Failed,
    /// Not run (disabled, or an earlier stage failed).
    Skipped,
    /// The recipe has nothing this stage could test (e.g. no backup labels).
    NotApplicable,
    /// The previous version, needed for the upgrade, did not deploy.
    PreviousVersionFailed,
    /// Stopped while it ran: the run was cancelled or superseded.
    Cancelled,
}

/// Which test step of a stage (the harness' `CCCI_PHASE`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TestPhase {
    /// The install stage's checks of a fresh app.
    Check,
    /// Before a change: seed data.
    Pre,
    /// After a change: verify data.
    Post,
    /// Between backup and restore: change or delete data.
    Mutate,
}

impl TestPhase {
    /// The wire name (`check`, `pre`, `post`, `mutate`).
    pub fn as_str(self) -> &'static str {
        match self {
            TestPhase::Check => "check",
            TestPhase::Pre => "pre",
            TestPhase::Post => "post",
            TestPhase::Mutate => "mutate",
        }
    }
}

/// A step of a run: the run-level `fetch` and `teardown`, or a step of a stage. On the wire
/// its name (`fetch`, `deploy-previous`, `test:pre`, …). Every step can run again after a
/// crash with the same outcome (deploys are applies, tests only read or re-seed, a restore
/// reads the archives on disk, removals are idempotent).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StepName {
    /// Check the recipe out at the run's ref and decide the app (run level).
    Fetch,
    /// Remove everything the run created (run level).
    Teardown,
    /// Deploy the previous version (upgrade stage) or the head.
    Deploy {
        /// The previous version rather than the head.
        previous: bool,
    },
    /// Wait until the deployed version has converged.
    Converge {
        /// Waiting for the previous version.
        previous: bool,
    },
    /// A test step.
    Test(TestPhase),
    /// Remove the app (end of the install stage: the next stage starts fresh).
    Remove,
    /// Wait until the app's services have settled before a backup.
    Settle,
    /// Back the app up following its backupbot labels.
    Backup,
    /// Restore the backup.
    Restore,
    /// Wait until the restored app has converged.
    ConvergeRestored,
}

impl StepName {
    /// Every step, run-level ones first.
    pub const ALL: [StepName; 15] = [
        StepName::Fetch,
        StepName::Teardown,
        StepName::Deploy { previous: true },
        StepName::Deploy { previous: false },
        StepName::Converge { previous: true },
        StepName::Converge { previous: false },
        StepName::Test(TestPhase::Check),
        StepName::Test(TestPhase::Pre),
        StepName::Test(TestPhase::Post),
        StepName::Test(TestPhase::Mutate),
        StepName::Remove,
        StepName::Settle,
        StepName::Backup,
        StepName::Restore,
        StepName::ConvergeRestored,
    ];

    /// The wire name (`deploy-previous`, `test:pre`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            StepName::Fetch => "fetch",
            StepName::Teardown => "teardown",
            StepName::Deploy { previous: true } => "deploy-previous",
            StepName::Deploy { previous: false } => "deploy",
            StepName::Converge { previous: true } => "converge-previous",
            StepName::Converge { previous: false } => "converge",
            StepName::Test(TestPhase::Check) => "test:check",
            StepName::Test(TestPhase::Pre) => "test:pre",
            StepName::Test(TestPhase::Post) => "test:post",
            StepName::Test(TestPhase::Mutate) => "test:mutate",
            StepName::Remove => "remove",
            StepName::Settle => "settle",
            StepName::Backup => "backup",
            StepName::Restore => "restore",
            StepName::ConvergeRestored => "converge-restored",
        }
    }

    /// The step named `name`, if it is one.
    pub fn parse(name: &str) -> Option<StepName> {
        StepName::ALL.into_iter().find(|s| s.as_str() == name)
    }

    /// Whether a failure of this step means the previous version failed (upgrade stage).
    pub fn is_previous(self) -> bool {
        matches!(
            self,
            StepName::Deploy { previous: true } | StepName::Converge { previous: true }
        )
    }
}

impl std::fmt::Display for StepName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for StepName {
    fn serialize<Se: serde::Serializer>(&self, s: Se) -> Result<Se::Ok, Se::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for StepName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = std::borrow::Cow::<'de, str>::deserialize(d)?;
        StepName::parse(&name)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown step {name:?}")))
    }
}

impl JsonSchema for StepName {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "StepName".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let names: Vec<&str> = StepName::ALL.iter().map(|s| s.as_str()).collect();
        schemars::json_schema!({
            "description": "A step of a run: `fetch` and `teardown` at run level, the others within a stage.",
            "type": "string",
            "enum": names,
        })
    }
}

/// Progress of one step within a stage (deploy, converge, test, …).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StepStatus {
    /// Which step.
    pub name: StepName,
    /// When it started (recorded before it runs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started: Option<DateTime<Utc>>,
    /// When it finished (recorded after it ran).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished: Option<DateTime<Utc>>,
    /// Whether it succeeded, once finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ok: Option<bool>,
    /// Detail, e.g. the failing service and task error.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// Attempts an infrastructure error (Docker, git) interrupted so far; at the limit the
    /// run ends in `Error`. A controller restart does not count.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub failed_attempts: u32,
    /// After a failed attempt: the step runs again no earlier than this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_at: Option<DateTime<Utc>>,
    /// A test step's counts (built-in checks, suite and recipe-local tests together).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tests: Option<TestCounts>,
    /// A test step's counts per origin: `builtin`, `suite` (cc-ci's suite of the recipe),
    /// `recipe` (the recipe repository's own `tests/`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub origins: BTreeMap<String, TestCounts>,
    /// A test step's artifacts (JUnit XML, screenshots, traces, page HTML), relative to the
    /// run's artifact directory (`GET /api/v1/testruns/{name}/artifacts/{path}`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub artifacts: Vec<String>,
}

impl StepStatus {
    /// A step not yet started.
    pub fn pending(name: StepName) -> StepStatus {
        StepStatus {
            name,
            started: None,
            finished: None,
            ok: None,
            message: String::new(),
            failed_attempts: 0,
            retry_at: None,
            tests: None,
            origins: Default::default(),
            artifacts: Vec::new(),
        }
    }
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// Test counts from a test step.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TestCounts {
    /// Tests that passed.
    pub passed: u32,
    /// Tests that failed or errored.
    pub failed: u32,
    /// Tests skipped.
    pub skipped: u32,
}

/// Observed state of one stage.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StageStatus {
    /// Which stage.
    pub stage: StageKind,
    /// Its result so far.
    #[serde(default)]
    pub phase: StagePhase,
    /// Steps in the order they ran.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<StepStatus>,
    /// Test counts over all test steps.
    #[serde(default)]
    pub tests: TestCounts,
    /// Names of failing tests.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failing_tests: Vec<String>,
    /// Artifact paths relative to the run's artifact directory.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub artifacts: Vec<String>,
    /// Why it ended the way it did.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// When it started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started: Option<DateTime<Utc>>,
    /// When it finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished: Option<DateTime<Utc>>,
}

/// How tests reached the app.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum RoutingMode {
    /// Through a Ready proxy, by domain, over TLS.
    Proxy,
    /// Straight at the app's proxy-facing service.
    Direct,
}

/// The app a run deployed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AppInfo {
    /// Swarm stack name.
    pub stack: String,
    /// The app's domain.
    pub domain: String,
    /// How tests reached it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routing: Option<RoutingMode>,
    /// Version (tag) under test, if the head has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Version the upgrade stage started from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_version: Option<String>,
}

/// Observed state of a test run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TestRunStatus {
    /// The `generation` this status was computed for.
    #[serde(default)]
    pub observed_generation: u64,
    /// Phase of the run.
    #[serde(default)]
    pub phase: RunPhase,
    /// Position in the admission queue (1 = next), while Pending.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue_position: Option<u32>,
    /// The resolved commit SHA.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// The deployed app.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app: Option<AppInfo>,
    /// Run-level steps outside any stage (`fetch` before the first stage, `teardown` after
    /// the last), recorded like a stage's steps.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<StepStatus>,
    /// One entry per planned stage.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stages: Vec<StageStatus>,
    /// Whether everything the run created in Swarm is gone.
    #[serde(default)]
    pub torn_down: bool,
    /// The forge comment that reports this run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report_comment_id: Option<u64>,
    /// When the run was admitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started: Option<DateTime<Utc>>,
    /// When it reached a terminal phase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished: Option<DateTime<Utc>>,
    /// Why the run is in its phase.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// The run's outcome, decided while the teardown still runs (`phase` turns to it once
    /// the run is torn down).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdict: Option<RunPhase>,
    /// A failed run that asked to keep its app (`spec.keepOnFailure`): the teardown waits
    /// until then (recorded once, so a restart keeps the same deadline).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kept_until: Option<DateTime<Utc>>,
    /// Conditions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}
