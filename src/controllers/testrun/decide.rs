//! What a running run does next, given its record and the time: a pure function, so every
//! path (a stop from outside, a retry waiting out its backoff, the next step, the verdict, the
//! teardown) is decided in one place and unit-tested (`tests.rs`).

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::plan::{current_stage, next_step};
use super::record::StepAt;
use super::stop::{Deadline, Limits, Stop, stop_now};
use crate::api::{StagePhase, StepName, TestRun};

/// The next thing a reconcile of a `Running` run does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Next {
    /// Record a stop from outside (the run concludes; the teardown follows).
    Stop(Stop),
    /// The verdict is decided: tear down (the step is created when missing).
    Teardown,
    /// Nothing until the step's retry time (backoff after an infrastructure error).
    Wait(Duration),
    /// Run the step at this place (a run-level fetch or a stage step), stoppable by
    /// `deadline` (and by cancellation, supersede and deletion).
    Step {
        /// Where its status is.
        at: StepAt,
        /// Which step.
        name: StepName,
        /// The earlier of the stage's and the run's deadlines.
        deadline: Option<Deadline>,
    },
    /// Plan stage `i` (or find it does not apply).
    StartStage(usize),
    /// Every step of stage `i` passed.
    PassStage(usize),
    /// Every stage has ended: decide the verdict.
    Conclude,
}

/// Decides what `run` does next. `newer` names a newer run of the same pull request.
pub fn next(run: &TestRun, newer: Option<String>, limits: &Limits, now: DateTime<Utc>) -> Next {
    let status = &run.status;
    if status.verdict.is_some() {
        return Next::Teardown;
    }
    let run_deadline = limits.run_deadline(run);
    if let Some(stop) = stop_now(run, newer, run_deadline.as_ref(), now) {
        return Next::Stop(stop);
    }
    let step_at = |at: StepAt, deadline: Option<Deadline>| {
        let step = at.get(status);
        match step.retry_at {
            Some(t) if t > now => Next::Wait((t - now).to_std().unwrap_or_default()),
            _ => Next::Step {
                at,
                name: step.name,
                deadline,
            },
        }
    };
    if let Some(j) = next_step(&status.steps)
        && status.steps[j].name == StepName::Fetch
    {
        return step_at(StepAt::Run(j), run_deadline);
    }
    let Some(i) = current_stage(status) else {
        return Next::Conclude;
    };
    let stage = &status.stages[i];
    if stage.phase == StagePhase::Pending {
        return Next::StartStage(i);
    }
    let stage_deadline = stage
        .started
        .and_then(|s| limits.stage_deadline(stage.stage, s));
    if let Some(d) = stage_deadline.as_ref().filter(|d| now >= d.at) {
        return Next::Stop(Stop::TimedOut(d.clone()));
    }
    match next_step(&stage.steps) {
        Some(j) => step_at(
            StepAt::Stage(i, j),
            Deadline::earliest(stage_deadline, run_deadline),
        ),
        None => Next::PassStage(i),
    }
}
