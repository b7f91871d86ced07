//! Keeping a failed run's app deployed for debugging (`spec.keepOnFailure`): whether the
//! teardown waits, and until when. Pure; the reconciler records the moment in the
//! [`KEPT_UNTIL`] checkpoint so a restart keeps the same deadline.

use chrono::{DateTime, Utc};

use crate::api::{RunPhase, TestRunSpec, TestRunStatus, parse_keep};

/// Checkpoint holding when a kept app is torn down (RFC 3339).
pub const KEPT_UNTIL: &str = "kept-until";

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
    if let Some(at) = status.checkpoints.get(KEPT_UNTIL) {
        return DateTime::parse_from_rfc3339(at)
            .ok()
            .map(|t| t.with_timezone(&Utc));
    }
    Some(now + chrono::Duration::from_std(keep).ok()?)
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
        status
            .checkpoints
            .insert(KEPT_UNTIL.into(), until.to_rfc3339());
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
