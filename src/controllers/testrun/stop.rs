//! Stopping a run from outside: deletion, `spec.cancel`, a newer run of the same pull request,
//! and the stage and run deadlines — what each means ([`Stop`], [`Deadline`], pure) and the
//! watch over a running step ([`race_stop`]).

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::Context;
use super::admission::{QueueEntry, superseded_by};
use crate::api::{RecipeSpec, StageKind, TestRun, TestRunSpec};
use crate::controllers::RunSettings;
use crate::store::Store;

/// How often a running step checks for cancellation, deletion and deadlines.
const STOP_POLL: Duration = Duration::from_millis(500);

/// Why a run was stopped from outside.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stop {
    /// The record is gone or being deleted: the finalizer's cleanup takes over.
    Deleted,
    /// `spec.cancel` was set.
    Cancelled,
    /// A newer run of the same pull request exists (its name).
    Superseded(String),
    /// A deadline passed.
    TimedOut(Deadline),
}

impl std::fmt::Display for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Stop::Deleted => f.write_str("the run was deleted"),
            Stop::Cancelled => f.write_str("cancelled by request"),
            Stop::Superseded(newer) => write!(f, "superseded by {newer}"),
            Stop::TimedOut(d) => f.write_str(&d.why),
        }
    }
}

/// A point in time a run or stage must be done by, and what passing it means.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Deadline {
    /// When.
    pub at: DateTime<Utc>,
    /// The message when it passes, e.g. `stage install ran out of time (600 s)`.
    pub why: String,
}

impl Deadline {
    /// `seconds` after `start`; `None` when that is beyond any date (no deadline then).
    fn after(start: DateTime<Utc>, seconds: u64, why: String) -> Option<Deadline> {
        let seconds = i64::try_from(seconds).ok()?;
        let at = start.checked_add_signed(chrono::TimeDelta::try_seconds(seconds)?)?;
        Some(Deadline { at, why })
    }

    /// The earlier of two optional deadlines.
    pub fn earliest(a: Option<Deadline>, b: Option<Deadline>) -> Option<Deadline> {
        match (a, b) {
            (Some(a), Some(b)) => Some(if a.at <= b.at { a } else { b }),
            (a, b) => a.or(b),
        }
    }
}

/// The time limits of a run: the Recipe's, else the controller's `[runs]` settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// The whole run, from admission.
    pub run_seconds: u64,
    /// Each stage, from its start.
    pub stage_seconds: u64,
}

impl Limits {
    /// The limits of a run of `recipe` (which may have been deleted).
    pub fn of(settings: &RunSettings, recipe: Option<&RecipeSpec>) -> Limits {
        let t = recipe.map(|r| &r.timeouts);
        Limits {
            run_seconds: t
                .and_then(|t| t.run_seconds)
                .unwrap_or(settings.run_timeout_seconds),
            stage_seconds: t
                .and_then(|t| t.stage_seconds)
                .unwrap_or(settings.stage_timeout_seconds),
        }
    }

    /// The run's deadline (once admitted).
    pub fn run_deadline(&self, run: &TestRun) -> Option<Deadline> {
        let started = run.status.started?;
        Deadline::after(
            started,
            self.run_seconds,
            format!("the run ran out of time ({} s)", self.run_seconds),
        )
    }

    /// The deadline of a stage that started at `started`.
    pub fn stage_deadline(&self, stage: StageKind, started: DateTime<Utc>) -> Option<Deadline> {
        Deadline::after(
            started,
            self.stage_seconds,
            format!(
                "stage {} ran out of time ({} s)",
                stage.as_str(),
                self.stage_seconds
            ),
        )
    }
}

/// Whether `run` must stop now: deleted, cancelled, superseded by `newer`, or past `deadline`
/// (in that order of precedence).
pub fn stop_now(
    run: &TestRun,
    newer: Option<String>,
    deadline: Option<&Deadline>,
    now: DateTime<Utc>,
) -> Option<Stop> {
    if run.is_deleting() {
        Some(Stop::Deleted)
    } else if run.spec.cancel {
        Some(Stop::Cancelled)
    } else if let Some(newer) = newer {
        Some(Stop::Superseded(newer))
    } else {
        deadline
            .filter(|d| now >= d.at)
            .map(|d| Stop::TimedOut(d.clone()))
    }
}

/// The newer run of the same pull request that supersedes `run`, if any.
pub fn newer_run<St: Store>(ctx: &Context<St>, run: &TestRun) -> Option<String> {
    superseded_by(&QueueEntry::of(run), &ctx.runs.list()).map(str::to_string)
}

/// Runs `work`, or stops it (dropping its future) when the run is deleted, cancelled,
/// superseded or past `deadline`.
pub async fn race_stop<St: Store, T>(
    ctx: &Context<St>,
    name: &str,
    deadline: Option<Deadline>,
    work: impl std::future::Future<Output = T>,
) -> Result<T, Stop> {
    tokio::select! {
        r = work => Ok(r),
        s = poll_stop(ctx, name, deadline) => Err(s),
    }
}

/// Resolves when the run should stop.
async fn poll_stop<St: Store>(ctx: &Context<St>, name: &str, deadline: Option<Deadline>) -> Stop {
    loop {
        tokio::time::sleep(STOP_POLL).await;
        match ctx.store.get::<TestRunSpec>(name) {
            Ok(None) => return Stop::Deleted,
            Ok(Some(run)) => {
                if let Some(stop) =
                    stop_now(&run, newer_run(ctx, &run), deadline.as_ref(), Utc::now())
                {
                    return stop;
                }
            }
            Err(e) => {
                tracing::warn!(run = name, error = %e, "cannot read the run while a step runs");
                if let Some(d) = deadline.as_ref().filter(|d| Utc::now() >= d.at) {
                    return Stop::TimedOut(d.clone());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{Object, Timeouts};

    fn run(started: Option<DateTime<Utc>>) -> TestRun {
        let mut r: TestRun = Object::new(
            "r",
            TestRunSpec {
                recipe: "x".into(),
                git: None,
                git_ref: "main".into(),
                pr: Some(1),
                source: Default::default(),
                stages: None,
                upgrade_from: None,
                cancel: false,
                keep_on_failure: None,
            },
        );
        r.status.started = started;
        r
    }

    fn settings() -> RunSettings {
        RunSettings {
            run_timeout_seconds: 100,
            stage_timeout_seconds: 10,
            ..RunSettings::default()
        }
    }

    #[test]
    fn the_recipes_limits_win_over_the_settings() {
        let mut recipe: RecipeSpec =
            serde_json::from_value(serde_json::json!({"git": "https://h/r.git"})).unwrap();
        assert_eq!(
            Limits::of(&settings(), Some(&recipe)),
            Limits {
                run_seconds: 100,
                stage_seconds: 10
            }
        );
        recipe.timeouts = Timeouts {
            run_seconds: Some(5),
            stage_seconds: Some(3),
            converge_seconds: None,
        };
        let limits = Limits::of(&settings(), Some(&recipe));
        assert_eq!((limits.run_seconds, limits.stage_seconds), (5, 3));
        let t0 = Utc::now();
        let d = limits.run_deadline(&run(Some(t0))).unwrap();
        assert_eq!(d.at, t0 + chrono::Duration::seconds(5));
        assert_eq!(limits.run_deadline(&run(None)), None, "not admitted yet");
    }

    #[test]
    fn a_huge_limit_means_no_deadline_instead_of_an_overflow() {
        let limits = Limits {
            run_seconds: u64::MAX,
            stage_seconds: i64::MAX as u64,
        };
        let t0 = Utc::now();
        assert_eq!(limits.run_deadline(&run(Some(t0))), None);
        assert_eq!(limits.stage_deadline(StageKind::Install, t0), None);
        let r = run(Some(t0));
        assert_eq!(
            stop_now(&r, None, None, t0 + chrono::Duration::days(9999)),
            None
        );
    }

    #[test]
    fn deletion_beats_cancel_beats_supersede_beats_the_deadline() {
        let t0 = Utc::now();
        let deadline = Limits {
            run_seconds: 1,
            stage_seconds: 1,
        }
        .run_deadline(&run(Some(t0)));
        let late = t0 + chrono::Duration::seconds(2);
        let mut r = run(Some(t0));
        assert_eq!(stop_now(&r, None, deadline.as_ref(), t0), None, "in time");
        assert!(matches!(
            stop_now(&r, None, deadline.as_ref(), late),
            Some(Stop::TimedOut(_))
        ));
        assert_eq!(
            stop_now(&r, Some("r2".into()), deadline.as_ref(), late),
            Some(Stop::Superseded("r2".into()))
        );
        r.spec.cancel = true;
        assert_eq!(
            stop_now(&r, Some("r2".into()), deadline.as_ref(), late),
            Some(Stop::Cancelled)
        );
        r.metadata.deletion_timestamp = Some(t0);
        assert_eq!(stop_now(&r, None, None, t0), Some(Stop::Deleted));
    }

    #[test]
    fn stops_read_as_sentences_not_debug_output() {
        assert_eq!(
            Stop::Superseded("r2".into()).to_string(),
            "superseded by r2"
        );
        assert_eq!(Stop::Cancelled.to_string(), "cancelled by request");
        let d = Limits {
            run_seconds: 1,
            stage_seconds: 7,
        }
        .stage_deadline(StageKind::Install, Utc::now())
        .unwrap();
        assert_eq!(
            Stop::TimedOut(d).to_string(),
            "stage install ran out of time (7 s)"
        );
    }

    #[test]
    fn the_earliest_deadline_wins() {
        let t0 = Utc::now();
        let a = Deadline {
            at: t0,
            why: "a".into(),
        };
        let b = Deadline {
            at: t0 + chrono::Duration::seconds(1),
            why: "b".into(),
        };
        assert_eq!(
            Deadline::earliest(Some(b.clone()), Some(a.clone())),
            Some(a.clone())
        );
        assert_eq!(Deadline::earliest(None, Some(b.clone())), Some(b));
        assert_eq!(Deadline::earliest(None, None), None);
    }
}
