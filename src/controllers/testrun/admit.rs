//! Admission of a `Pending` run (the I/O around [`super::admission`]'s pure rules): refused
//! when cancelled, superseded or its Recipe is suspended; admitted FIFO under
//! `max_concurrent_runs`, decided under a lock from a fresh store list so two queued runs never
//! take one slot; else its queue position is kept current.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;

use super::admission::{Admission, QueueEntry, admission, superseded_by};
use super::sink::log_lines;
use super::{Context, ReconcileError, plan, write_status};
use crate::api::{RunPhase, StageKind, StepName, StepStatus, TestRun, TestRunSpec};
use crate::runlog::RUN_STREAM;
use crate::runtime::Action;
use crate::store::{LabelSelector, Store};

/// How often a queued run looks at the queue again.
const QUEUE_RECHECK: Duration = Duration::from_secs(2);

/// Why a run is refused before it starts, if it is.
pub fn refusal(run: &TestRun, newer: Option<String>, recipe_suspended: bool) -> Option<String> {
    if run.spec.cancel {
        Some("cancelled before it started".into())
    } else if let Some(newer) = newer {
        Some(format!("superseded by {newer} before it started"))
    } else if recipe_suspended {
        Some(format!(
            "not run: Recipe {:?} is suspended (spec.suspended), so no new run of it is admitted",
            run.spec.recipe
        ))
    } else {
        None
    }
}

/// Admits, queues or refuses `run`.
pub async fn admit<St: Store>(run: &TestRun, ctx: &Context<St>) -> Result<Action, ReconcileError> {
    let now = Utc::now();
    let mut status = run.status.clone();
    let _guard = ctx.admit_lock.lock().await;
    // The store, not the cache: an admission a moment ago must count. One record decoded at
    // a time, keeping only its queue entry.
    let all: Vec<Arc<QueueEntry>> = ctx
        .store
        .list_map::<TestRunSpec, _>(&LabelSelector::everything(), |r| Arc::new(r.into()))
        .map_err(|source| ReconcileError::store(run, source))?;
    let entry = QueueEntry::of(run);
    let recipe = ctx.recipes.get(&run.spec.recipe);
    let suspended = recipe.as_ref().is_some_and(|r| r.spec.suspended);
    let newer = superseded_by(&entry, &all).map(str::to_string);
    if let Some(message) = refusal(run, newer, suspended) {
        status.phase = RunPhase::Cancelled;
        status.queue_position = None;
        status.torn_down = true;
        status.finished = Some(now);
        status.message = message.clone();
        write_status(ctx, run, &status).await?;
        log_lines(ctx, run.name(), RUN_STREAM, &[message]).await;
        return Ok(Action::await_change());
    }
    // A declared proxy that is not Ready holds every run back (DESIGN.md §7, routing modes).
    if let crate::controllers::deployment::route::Route::Wait(why) = super::proxy_route(ctx) {
        if status.message != why {
            status.message = why.clone();
            write_status(ctx, run, &status).await?;
            log_lines(ctx, run.name(), RUN_STREAM, &[why]).await;
        }
        return Ok(Action::requeue(QUEUE_RECHECK));
    }
    match admission(&entry, &all, ctx.settings.max_concurrent_runs) {
        Admission::Admit => {
            let stages = run
                .spec
                .stages
                .clone()
                .or_else(|| recipe.as_ref().map(|r| r.spec.stages.clone()))
                .unwrap_or_else(|| StageKind::ALL.to_vec());
            status.phase = RunPhase::Running;
            status.queue_position = None;
            status.started = Some(now);
            status.stages = plan::planned_stages(&stages);
            status.steps = vec![StepStatus::pending(StepName::Fetch)];
            status.message = "admitted".into();
            write_status(ctx, run, &status).await?;
            let planned: Vec<&str> = status.stages.iter().map(|s| s.stage.as_str()).collect();
            let line = format!(
                "admitted; stages: {}",
                if planned.is_empty() {
                    "none".to_string()
                } else {
                    planned.join(", ")
                }
            );
            log_lines(ctx, run.name(), RUN_STREAM, &[line]).await;
            Ok(Action::requeue(Duration::ZERO))
        }
        Admission::Wait { position } => {
            if status.queue_position != Some(position) {
                status.queue_position = Some(position);
                status.message = format!(
                    "queued: position {position}, {} run(s) at a time",
                    ctx.settings.max_concurrent_runs
                );
                write_status(ctx, run, &status).await?;
            }
            Ok(Action::requeue(QUEUE_RECHECK))
        }
    }
}
