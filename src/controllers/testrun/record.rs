//! How what happened lands in a run's status: a step begun, finished, interrupted by an
//! infrastructure error or given up on; a stage started or passed; a stop from outside; the
//! verdict; the teardown. Pure functions over [`TestRunStatus`], each called once per event,
//! so every outcome is written in one place.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::plan::skip_remaining;
use super::steps::StepResult;
use super::stop::Stop;
use crate::api::{RunPhase, StagePhase, StepName, StepStatus, TestRunStatus};

/// How often an infrastructure error may interrupt one step before the run ends in `Error`.
pub const MAX_ATTEMPTS: u32 = 3;

/// The first wait before a step interrupted by an infrastructure error runs again; it doubles
/// with each further failure.
pub const RETRY_BASE: Duration = Duration::from_secs(2);

/// The wait before the attempt after `failed` failed ones.
pub fn retry_delay(failed: u32) -> Duration {
    RETRY_BASE.saturating_mul(1 << failed.saturating_sub(1).min(5))
}

/// Where a step's status lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StepAt {
    /// `status.steps[j]` (fetch, teardown).
    Run(usize),
    /// `status.stages[i].steps[j]`.
    Stage(usize, usize),
}

impl StepAt {
    /// The step's status entry.
    pub fn get(self, status: &TestRunStatus) -> &StepStatus {
        match self {
            StepAt::Run(j) => &status.steps[j],
            StepAt::Stage(i, j) => &status.stages[i].steps[j],
        }
    }

    fn get_mut(self, status: &mut TestRunStatus) -> &mut StepStatus {
        match self {
            StepAt::Run(j) => &mut status.steps[j],
            StepAt::Stage(i, j) => &mut status.stages[i].steps[j],
        }
    }
}

/// How a step is begun.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Begun {
    /// For the first time, or again after an infrastructure error: attempt `n`.
    Attempt(u32),
    /// Again after the controller stopped while it ran (not counted as a failed attempt).
    Resumed(u32),
}

/// Records the step at `at` as started before it runs. `Err(why)` when infrastructure errors
/// already interrupted it [`MAX_ATTEMPTS`] times (see [`give_up`]).
pub fn begin(status: &mut TestRunStatus, at: StepAt, now: DateTime<Utc>) -> Result<Begun, String> {
    let step = at.get_mut(status);
    if step.failed_attempts >= MAX_ATTEMPTS {
        return Err(format!(
            "{} failed {MAX_ATTEMPTS} times: {}",
            step.name, step.message
        ));
    }
    let attempt = step.failed_attempts + 1;
    step.retry_at = None;
    if step.started.is_some() {
        Ok(Begun::Resumed(attempt))
    } else {
        step.started = Some(now);
        Ok(Begun::Attempt(attempt))
    }
}

fn finish(step: &mut StepStatus, ok: bool, message: &str, now: DateTime<Utc>) {
    step.finished = Some(now);
    step.ok = Some(ok);
    step.message = message.to_string();
}

/// Records an infrastructure error of the step at `at`: it counts as a failed attempt, and
/// the step runs again no earlier than [`retry_delay`] from `now`.
pub fn failed_attempt(status: &mut TestRunStatus, at: StepAt, why: &str, now: DateTime<Utc>) {
    let step = at.get_mut(status);
    step.failed_attempts += 1;
    step.message = why.to_string();
    // Not started any more: a step found started but unfinished was cut short by a restart.
    step.started = None;
    let delay = chrono::Duration::from_std(retry_delay(step.failed_attempts))
        .unwrap_or(chrono::Duration::MAX);
    step.retry_at = now.checked_add_signed(delay);
}

/// The step at `at` failed [`MAX_ATTEMPTS`] times: it ends failed with `why`, and so does its
/// stage; the run ends in `Error` (a teardown that gives up ends the run at once, leaving
/// `tornDown` false for the periodic retry).
pub fn give_up(status: &mut TestRunStatus, at: StepAt, why: &str, now: DateTime<Utc>) {
    finish(at.get_mut(status), false, why, now);
    if let StepAt::Stage(i, _) = at {
        let stage = &mut status.stages[i];
        stage.phase = StagePhase::Failed;
        stage.finished = Some(now);
        stage.message = why.to_string();
    }
    if at.get(status).name == StepName::Teardown {
        status.phase = RunPhase::Error;
        status.finished = Some(now);
        status.message = format!("{} (and the teardown failed: {why})", status.message);
    } else {
        conclude(status, RunPhase::Error, why, now);
    }
}

/// Decides the run's outcome: the stages not ended are skipped, the teardown comes next.
pub fn conclude(status: &mut TestRunStatus, verdict: RunPhase, message: &str, now: DateTime<Utc>) {
    status.verdict = Some(verdict);
    status.message = message.to_string();
    let reason = match verdict {
        RunPhase::Cancelled | RunPhase::TimedOut => format!("not run: {message}"),
        _ => "not run: an earlier step failed".to_string(),
    };
    skip_remaining(status, &reason, now);
}

/// Records a stop from outside: the step in progress (if any) ends, the stage in progress is
/// `Cancelled` (or `Failed` when its time ran out), the run concludes.
pub fn stopped(status: &mut TestRunStatus, stop: &Stop, now: DateTime<Utc>) {
    let phase = match stop {
        Stop::Deleted => return,
        Stop::Cancelled | Stop::Superseded(_) => RunPhase::Cancelled,
        Stop::TimedOut(_) => RunPhase::TimedOut,
    };
    let message = stop.to_string();
    for step in &mut status.steps {
        if step.started.is_some() && step.finished.is_none() {
            finish(step, false, &message, now);
        }
    }
    for stage in &mut status.stages {
        if stage.phase != StagePhase::Running {
            continue;
        }
        for step in &mut stage.steps {
            if step.started.is_some() && step.finished.is_none() {
                finish(step, false, &message, now);
            }
        }
        stage.phase = match phase {
            RunPhase::TimedOut => StagePhase::Failed,
            _ => StagePhase::Cancelled,
        };
        stage.finished = Some(now);
        stage.message = message.clone();
    }
    conclude(status, phase, &message, now);
}

/// Records the finished step at `at` (a test step's counts go to its stage). A failure of a
/// stage step fails the stage and the run; a failed fetch fails the run; a finished teardown
/// ends the run in its verdict.
pub fn done(status: &mut TestRunStatus, at: StepAt, result: StepResult, now: DateTime<Utc>) {
    let name = at.get(status).name;
    finish(at.get_mut(status), result.ok, &result.message, now);
    match at {
        StepAt::Run(_) if name == StepName::Teardown => {
            status.torn_down = true;
            status.phase = status.verdict.unwrap_or(RunPhase::Error);
            status.finished = Some(now);
        }
        StepAt::Run(_) => {
            if let Some(fetched) = result.fetched {
                status.commit = Some(fetched.commit);
                status.app = Some(fetched.app);
            }
            if !result.ok {
                // The recipe itself is unusable at this ref: no stage can run.
                conclude(status, RunPhase::Failed, &result.message, now);
            }
        }
        StepAt::Stage(i, _) => {
            if let Some(report) = &result.report {
                let step = at.get_mut(status);
                step.tests = Some(report.counts.clone());
                step.origins = report.origins.clone();
                step.artifacts = report.artifacts.clone();
                let stage = &mut status.stages[i];
                stage.artifacts.retain(|a| !report.artifacts.contains(a));
                stage.artifacts.extend(report.artifacts.iter().cloned());
                stage.tests.passed += report.counts.passed;
                stage.tests.failed += report.counts.failed;
                stage.tests.skipped += report.counts.skipped;
                stage.failing_tests.extend(report.failing.iter().cloned());
                if let (Some(app), Some(routing)) = (status.app.as_mut(), report.routing) {
                    app.routing = Some(routing);
                }
            }
            if !result.ok {
                let stage = &mut status.stages[i];
                stage.phase = if name.is_previous() {
                    StagePhase::PreviousVersionFailed
                } else {
                    StagePhase::Failed
                };
                stage.finished = Some(now);
                stage.message = format!("{name}: {}", result.message);
                let message = format!("{}: {}", stage.stage.as_str(), stage.message);
                // Tests that could not give a verdict are not a failing recipe.
                let verdict = match result.report.as_ref().and_then(|r| r.broken.as_ref()) {
                    Some(crate::executor::Broken::Collection(_)) => RunPhase::Error,
                    Some(crate::executor::Broken::TimedOut(_)) => RunPhase::TimedOut,
                    None => RunPhase::Failed,
                };
                conclude(status, verdict, &message, now);
            }
        }
    }
}

/// Starts stage `i` with its planned steps, or marks it `NotApplicable` with why.
pub fn stage_started(
    status: &mut TestRunStatus,
    i: usize,
    plan: Result<Vec<StepName>, String>,
    now: DateTime<Utc>,
) {
    let stage = &mut status.stages[i];
    stage.started = Some(now);
    match plan {
        Ok(steps) => {
            stage.phase = StagePhase::Running;
            stage.steps = steps.into_iter().map(StepStatus::pending).collect();
        }
        Err(why) => {
            stage.phase = StagePhase::NotApplicable;
            stage.finished = Some(now);
            stage.message = why;
        }
    }
}

/// Every step of stage `i` passed.
pub fn stage_passed(status: &mut TestRunStatus, i: usize, now: DateTime<Utc>) {
    let stage = &mut status.stages[i];
    stage.phase = StagePhase::Passed;
    stage.finished = Some(now);
    stage.message = "every step passed".into();
}

/// The verdict once every stage has ended: `Failed` if a stage failed (or its previous
/// version did) or if no stage passed at all (a run that tested nothing is not a pass), else
/// `Succeeded`.
pub fn stages_ended(status: &mut TestRunStatus, now: DateTime<Utc>) {
    let failed: Vec<String> = status
        .stages
        .iter()
        .filter(|s| {
            matches!(
                s.phase,
                StagePhase::Failed | StagePhase::PreviousVersionFailed
            )
        })
        .map(|s| format!("{}: {}", s.stage.as_str(), s.message))
        .collect();
    let passed = status.stages.iter().any(|s| s.phase == StagePhase::Passed);
    let (verdict, message) = if !failed.is_empty() {
        (RunPhase::Failed, failed.join("; "))
    } else if !passed {
        (
            RunPhase::Failed,
            "nothing was tested: no stage ran (none planned, or none applies to the recipe)"
                .to_string(),
        )
    } else {
        (
            RunPhase::Succeeded,
            "every stage passed or did not apply".to_string(),
        )
    };
    conclude(status, verdict, &message, now);
}
