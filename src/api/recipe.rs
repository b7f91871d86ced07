//! The `Recipe` record: a recipe enrolled for testing, and its rolled-up results.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Condition, FieldError, Kind, Object, RunPhase, Spec, StagePhase};

/// A recipe record.
pub type Recipe = Object<RecipeSpec>;

/// The lifecycle stages a run can go through, in order.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum StageKind {
    /// Fresh deploy of the head, then the install tests.
    Install,
    /// Deploy the previous version, then upgrade to the head.
    Upgrade,
    /// Backup, mutate, restore on the upgraded app.
    BackupRestore,
}

impl StageKind {
    /// The default plan, in order.
    pub const ALL: [StageKind; 3] = [
        StageKind::Install,
        StageKind::Upgrade,
        StageKind::BackupRestore,
    ];

    /// The wire name, e.g. `backup-restore`.
    pub fn as_str(self) -> &'static str {
        match self {
            StageKind::Install => "install",
            StageKind::Upgrade => "upgrade",
            StageKind::BackupRestore => "backup-restore",
        }
    }
}

fn default_stages() -> Vec<StageKind> {
    StageKind::ALL.to_vec()
}

fn default_branch() -> String {
    "main".to_string()
}

/// Time limits, in seconds. Unset values fall back to the controller's configuration.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Timeouts {
    /// Waiting for an app to converge after a deploy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub converge_seconds: Option<u64>,
    /// One stage as a whole.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage_seconds: Option<u64>,
    /// The whole run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_seconds: Option<u64>,
}

/// Desired state of a recipe enrolment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RecipeSpec {
    /// Git URL the recipe is fetched from.
    pub git: String,
    /// Forge repository to poll for `!testme` comments, as `owner/name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forge_repo: Option<String>,
    /// The default branch.
    #[serde(default = "default_branch")]
    pub default_branch: String,
    /// Path of this recipe's test suite, relative to the suites root (default `recipes/<name>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suite_path: Option<String>,
    /// Values that override the app's `.env.sample`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// Stages to run, in order.
    #[serde(default = "default_stages")]
    pub stages: Vec<StageKind>,
    /// Time limits.
    #[serde(default)]
    pub timeouts: Timeouts,
    /// Compose policy exceptions this recipe is allowed, each exact: `KEY` or `KEY:VALUE`
    /// (e.g. `privileged`, `cap_add:NET_ADMIN`, `bind:/var/run/docker.sock`, `ports:8080`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow: Vec<String>,
    /// When true the poller ignores this recipe and no new run of it is admitted.
    #[serde(default)]
    pub suspended: bool,
}

impl Spec for RecipeSpec {
    type Status = RecipeStatus;
    const KIND: Kind = Kind::Recipe;

    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        if let Err(e) = super::validate_git_url("spec.git", &self.git) {
            errors.push(e);
        }
        errors.extend(super::validate_env("spec.env", &self.env));
        if let Some(repo) = &self.forge_repo {
            let parts: Vec<&str> = repo.split('/').collect();
            if parts.len() != 2 || parts.iter().any(|p| p.is_empty()) {
                errors.push(FieldError::new(
                    "spec.forgeRepo",
                    format!("{repo:?} must have the form owner/name"),
                ));
            }
        }
        for (field, value) in [
            (
                "spec.timeouts.convergeSeconds",
                self.timeouts.converge_seconds,
            ),
            ("spec.timeouts.stageSeconds", self.timeouts.stage_seconds),
            ("spec.timeouts.runSeconds", self.timeouts.run_seconds),
        ] {
            if let Some(v) = value
                && !(1..=MAX_TIMEOUT_SECONDS).contains(&v)
            {
                errors.push(FieldError::new(
                    field,
                    format!("{v} is out of range: between 1 and {MAX_TIMEOUT_SECONDS} (30 days)"),
                ));
            }
        }
        let mut seen = Vec::new();
        for (i, s) in self.stages.iter().enumerate() {
            if seen.contains(s) {
                errors.push(FieldError::new(
                    format!("spec.stages[{i}]"),
                    format!("stage {} is listed twice", s.as_str()),
                ));
            }
            seen.push(*s);
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

/// What a recipe's badge says.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Badge {
    /// The last finished run of the recipe's own repository succeeded.
    Passing,
    /// It did not.
    Failing,
    /// No run has finished yet, but one is under way.
    Running,
    /// No run at all.
    Unknown,
}

impl Badge {
    /// The wire name (`passing`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Badge::Passing => "passing",
            Badge::Failing => "failing",
            Badge::Running => "running",
            Badge::Unknown => "unknown",
        }
    }
}

/// The longest time limit a Recipe may set: 30 days (larger values would overflow deadline
/// arithmetic or mean "never", which a CI run must not).
pub const MAX_TIMEOUT_SECONDS: u64 = 30 * 24 * 3600;

/// What the latest run said about one stage.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StageSummary {
    /// Result of the stage in the latest run that reached it.
    pub phase: StagePhase,
    /// The run it comes from.
    pub run: String,
}

/// Observed state of a recipe: counts and its latest run, rolled up from TestRuns.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RecipeStatus {
    /// The `generation` this status was computed for.
    #[serde(default)]
    pub observed_generation: u64,
    /// Number of runs per phase.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub run_counts: BTreeMap<String, u64>,
    /// Name of the most recently created run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_run: Option<String>,
    /// Phase of that run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_run_phase: Option<RunPhase>,
    /// When that run finished, if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_run_finished: Option<DateTime<Utc>>,
    /// Latest result per stage.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub stages: BTreeMap<String, StageSummary>,
    /// The last version or ref tested.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_tested_ref: Option<String>,
    /// Quality level 0–8 (docs/levels.md; the dashboard shows the same), from the last finished
    /// default-branch run, the one before it and the facts their checkouts recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<u8>,
    /// The badge: `passing`, `failing`, `running`, `unknown`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub badge: Option<Badge>,
    /// Conditions, e.g. `Ready`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}
