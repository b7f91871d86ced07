//! The `TestRun` record: one test of a recipe at a pinned commit, with its stage-by-stage status.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{FieldError, Kind, Object, Spec, StageKind};

mod status;

pub use status::*;

/// A test run record.
pub type TestRun = Object<TestRunSpec>;

/// Where a run came from.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunSource {
    /// Forge comment id that triggered the run (absent for manual runs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment_id: Option<u64>,
    /// Who asked for it (forge login, or the API client for manual runs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requester: Option<String>,
    /// When the trigger happened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub triggered_at: Option<DateTime<Utc>>,
}

/// Desired state of a test run. Immutable once the run started, except for cancellation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TestRunSpec {
    /// Name of the `Recipe` record.
    pub recipe: String,
    /// Git URL to fetch from; defaults to the Recipe's `git`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git: Option<String>,
    /// The pinned commit (full SHA) or a ref resolved to one when the run starts.
    #[serde(rename = "ref")]
    pub git_ref: String,
    /// Pull request number, when triggered from one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pr: Option<u64>,
    /// Trigger details.
    #[serde(default)]
    pub source: RunSource,
    /// Stages to run; defaults to the Recipe's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stages: Option<Vec<StageKind>>,
    /// Version to upgrade from, instead of the highest release tag other than the head.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upgrade_from: Option<String>,
    /// Set to request cancellation.
    #[serde(default)]
    pub cancel: bool,
    /// After a failing step, keep the app deployed this long (`90s`, `30m`, `2h`; at most
    /// 24 h) so a maintainer can look at it; the teardown follows when the time is up, the run
    /// is cancelled or deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_on_failure: Option<String>,
}

/// The longest `keepOnFailure`.
pub const MAX_KEEP_SECONDS: u64 = 24 * 3600;

/// Parses a `keepOnFailure` duration: a whole number with `s`, `m` or `h` (≤ 24 h).
pub fn parse_keep(text: &str) -> Result<std::time::Duration, String> {
    let t = text.trim();
    let (num, unit) = t.split_at(t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len()));
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{text:?} is not a duration like 90s, 30m or 2h"))?;
    let secs = match unit {
        "s" => n,
        "m" => n.saturating_mul(60),
        "h" => n.saturating_mul(3600),
        _ => return Err(format!("{text:?} is not a duration like 90s, 30m or 2h")),
    };
    if secs == 0 || secs > MAX_KEEP_SECONDS {
        return Err(format!("{text:?} must be between 1 s and 24 h"));
    }
    Ok(std::time::Duration::from_secs(secs))
}

impl Spec for TestRunSpec {
    type Status = TestRunStatus;
    const KIND: Kind = Kind::TestRun;

    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        if let Err(e) = super::validate_name(&self.recipe) {
            errors.push(FieldError::new("spec.recipe", e.message));
        }
        if let Some(git) = &self.git
            && let Err(e) = super::validate_git_url("spec.git", git)
        {
            errors.push(e);
        }
        if self.git_ref.trim().is_empty() {
            errors.push(FieldError::new("spec.ref", "must not be empty"));
        }
        if self.git_ref.starts_with('-') {
            errors.push(FieldError::new(
                "spec.ref",
                "must not start with '-' (git would read it as an option)",
            ));
        }
        if self
            .git_ref
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
        {
            errors.push(FieldError::new("spec.ref", "must not contain whitespace"));
        }
        if let Some(keep) = &self.keep_on_failure
            && let Err(e) = parse_keep(keep)
        {
            errors.push(FieldError::new("spec.keepOnFailure", e));
        }
        if let Some(stages) = &self.stages {
            for (i, s) in stages.iter().enumerate() {
                if stages[..i].contains(s) {
                    errors.push(FieldError::new(
                        format!("spec.stages[{i}]"),
                        format!("stage {} is listed twice", s.as_str()),
                    ));
                }
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}
