//! The end of every run: removing everything it created — its swarm objects (labelled with the
//! run **and** this controller's instance) and its workspace and secrets file — as the run's
//! last step ([`teardown`]), as a periodic retry after it gave up ([`retry`]), and when the
//! record is deleted ([`cleanup`]). None of it needs the Recipe record.

use bollard::Docker;

use super::driver::{self, Stoppable, drive};
use super::record::StepAt;
use super::steps::{REMOVE_TIMEOUT, StepError, StepResult};
use super::workspace::Workspace;
use super::{Context, ReconcileError, TEARDOWN_RETRY, sink, workspace, write_status};
use crate::api::{StepName, StepStatus, TestRun, TestRunStatus};
use crate::executor::StepLog;
use crate::recipe::deploy;
use crate::runlog::RUN_STREAM;
use crate::runtime::Action;
use crate::store::Store;

/// The verdict is decided: remove everything the run created (never stopped from outside).
pub async fn teardown<St: Store>(
    run: &TestRun,
    ctx: &Context<St>,
    mut status: TestRunStatus,
) -> Result<Action, ReconcileError> {
    let j = match status
        .steps
        .iter()
        .position(|s| s.name == StepName::Teardown)
    {
        Some(j) => j,
        None => {
            status.steps.push(StepStatus::pending(StepName::Teardown));
            status.steps.len() - 1
        }
    };
    let workspace = workspace(ctx, run)?;
    let (docker, instance) = (&ctx.docker, ctx.settings.instance.as_str());
    drive(
        ctx,
        run,
        status,
        StepAt::Run(j),
        RUN_STREAM,
        Stoppable::No,
        |mut log| {
            let workspace = &workspace;
            async move { remove_all(docker, instance, run.name(), workspace, &mut *log).await }
        },
    )
    .await
}

/// A run that ended but whose teardown gave up: try again now and then.
pub async fn retry<St: Store>(run: &TestRun, ctx: &Context<St>) -> Result<Action, ReconcileError> {
    let workspace = workspace(ctx, run)?;
    let sink = sink::LogSink::open(ctx, run.name(), RUN_STREAM).await;
    let mut log = sink.callback();
    let outcome = remove_all(
        &ctx.docker,
        &ctx.settings.instance,
        run.name(),
        &workspace,
        &mut log,
    )
    .await;
    match outcome {
        Ok(_) => {
            sink.close(Some("teardown retried: done".into())).await;
            let mut status = run.status.clone();
            status.torn_down = true;
            write_status(ctx, run, &status).await?;
            Ok(Action::await_change())
        }
        Err(e) => {
            let why = driver::error_chain(&e);
            sink.close(Some(format!("teardown retried, failed again: {why}")))
                .await;
            tracing::warn!(run = run.name(), error = %sink::redactor(ctx, run.name()).redact(&why),
                "teardown of a finished run failed again");
            Ok(Action::requeue(TEARDOWN_RETRY))
        }
    }
}

/// Deletion: tear down whatever is left, then drop the run's directory (logs included).
pub async fn cleanup<St: Store>(
    run: &TestRun,
    ctx: &Context<St>,
) -> Result<Action, ReconcileError> {
    if !run.status.torn_down {
        let workspace = workspace(ctx, run)?;
        let mut quiet = |_: &str| {};
        remove_all(
            &ctx.docker,
            &ctx.settings.instance,
            run.name(),
            &workspace,
            &mut quiet,
        )
        .await
        .map_err(|e| ReconcileError::Step {
            run: run.name().to_string(),
            step: StepName::Teardown,
            attempt: 1,
            message: sink::redactor(ctx, run.name()).redact(&driver::error_chain(&e)),
        })?;
        tracing::info!(run = run.name(), "deleted run torn down");
    }
    if let Err(e) = ctx.logs.remove_run(run.name()).await {
        tracing::warn!(run = run.name(), error = %e, "cannot remove the run's directory");
    }
    Ok(Action::await_change())
}

/// Removes everything the run owns in Swarm (its objects labelled with the run **and** this
/// controller's instance: another instance's run of the same name is not touched), then its
/// checkouts, secrets file and backups. Needs nothing of the Recipe, so it works after the
/// Recipe record is gone.
pub async fn remove_all(
    docker: &Docker,
    instance: &str,
    run: &str,
    workspace: &Workspace,
    log: StepLog<'_>,
) -> Result<StepResult, StepError> {
    let removed = deploy::teardown(docker, instance, run, REMOVE_TIMEOUT).await?;
    log(&format!(
        "removed {} services, {} networks, {} volumes, {} secrets, {} configs",
        removed.services.len(),
        removed.networks.len(),
        removed.volumes.len(),
        removed.secrets.len(),
        removed.configs.len()
    ));
    workspace.clean().await?;
    log("removed the run's checkouts, secrets file and backups");
    Ok(StepResult::passed("everything the run created is removed"))
}
