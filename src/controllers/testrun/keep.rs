//! Keeping a failed run's app deployed for debugging (`spec.keepOnFailure`): whether the
//! teardown waits, and until when ([`kept_until`], pure), and the reconcile step that records
//! it in `status.keptUntil` so a restart keeps the same deadline ([`keep_app`]).

use chrono::{DateTime, Utc};

use std::time::Duration;

use super::{Context, ReconcileError, sink, write_status};
use crate::api::{RunPhase, TestRun, TestRunSpec, TestRunStatus, parse_keep};
use crate::runlog::RUN_STREAM;
use crate::runtime::Action;
use crate::store::Store;

/// When the teardown of a run decided as `verdict` may start: `None` now (no keep asked, not a
/// failure, cancelled), else the recorded or (first time) `now + keepOnFailure`.
pub fn kept_until(
    spec: &TestRunSpec,
    status: &TestRunStatus,
    verdict: RunPhase,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    if verdict != RunPhase::Failed || spec.cancel {
        return None;
    }
    let keep = parse_keep(spec.keep_on_failure.as_deref()?).ok()?;
    if let Some(at) = status.kept_until {
        return Some(at);
    }
    Some(now + chrono::Duration::from_std(keep).ok()?)
}

/// A failed run that asked to keep its app: record (once) until when, say so, and come back
/// then (or on a change: cancelling or deleting the run tears it down at once).
pub async fn keep_app<St: Store>(
    run: &TestRun,
    ctx: &Context<St>,
    mut status: TestRunStatus,
    until: DateTime<Utc>,
) -> Result<Action, ReconcileError> {
    if status.kept_until.is_none() {
        status.kept_until = Some(until);
        let stack = status
            .app
            .as_ref()
            .map(|a| a.stack.clone())
            .unwrap_or_default();
        let line = format!(
            "the app (stack {stack}) is kept for debugging until {} (keepOnFailure); the teardown follows then, or at once when the run is cancelled or deleted",
            until.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        );
        status.message = format!("{}; {line}", status.message);
        write_status(ctx, run, &status).await?;
        sink::log_lines(ctx, run.name(), RUN_STREAM, &[line]).await;
    }
    let left = (until - Utc::now()).to_std().unwrap_or_default();
    Ok(Action::requeue(left.min(Duration::from_secs(30))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(keep: Option<&str>) -> TestRunSpec {
        TestRunSpec {
            recipe: "r".into(),
            git: None,
            git_ref: "main".into(),
            pr: None,
            source: Default::default(),
            stages: None,
            upgrade_from: None,
            cancel: false,
            keep_on_failure: keep.map(str::to_string),
        }
    }

    #[test]
    fn only_a_failed_run_that_asked_is_kept_and_the_deadline_survives_a_restart() {
        let now = Utc::now();
        let mut status = TestRunStatus::default();
        assert_eq!(
            kept_until(&spec(None), &status, RunPhase::Failed, now),
            None
        );
        let keep = spec(Some("30m"));
        assert_eq!(kept_until(&keep, &status, RunPhase::Error, now), None);
        assert_eq!(kept_until(&keep, &status, RunPhase::TimedOut, now), None);
        let until = kept_until(&keep, &status, RunPhase::Failed, now).unwrap();
        assert_eq!(until - now, chrono::Duration::minutes(30));
        status.kept_until = Some(until);
        let later = now + chrono::Duration::minutes(10);
        assert_eq!(
            kept_until(&keep, &status, RunPhase::Failed, later),
            Some(until)
        );
        let mut cancelled = keep.clone();
        cancelled.cancel = true;
        assert_eq!(
            kept_until(&cancelled, &status, RunPhase::Failed, later),
            None
        );
    }

    #[test]
    fn durations_are_bounded() {
        assert_eq!(parse_keep("90s").unwrap().as_secs(), 90);
        assert_eq!(parse_keep("2h").unwrap().as_secs(), 7200);
        for bad in ["", "30", "0m", "25h", "1d", "-5m", "5 m", "m"] {
            assert!(parse_keep(bad).is_err(), "{bad:?}");
        }
    }
}
