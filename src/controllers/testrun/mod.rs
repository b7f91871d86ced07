//! The TestRun reconciler: admits runs (FIFO under `max_concurrent_runs`), fetches the recipe,
//! walks the stage plan one step per reconcile, and always tears down.
//!
//! # How a run moves
//! `Pending` → admitted → `Running`: the run-level `fetch` step, then each planned stage
//! (install → upgrade → backup-restore; see [`plan`]) step by step, then the run-level
//! `teardown` step, and only then the terminal phase (`Succeeded`, `Failed`, `Error`,
//! `TimedOut`, `Cancelled`) with `tornDown: true`. Once the run's outcome is decided (a stage
//! failed, the run was cancelled or superseded, a deadline passed) it is kept in
//! `status.verdict` while the teardown runs.
//!
//! # The pieces
//! - [`decide`]: what to do next, from the record and the time (pure);
//! - [`record`]: how each outcome lands in the status (pure);
//! - [`driver`]: the one way a step runs (begin → log → race the stops → outcome);
//! - [`stop`]: cancellation, supersede, deletion and deadlines;
//! - [`sink`]: the run's logs and status text, both through the run's redactor;
//! - [`admit`] / [`admission`]: the queue; [`steps`]: what each step does on the engine;
//!   [`workspace`]: the run's directory.
//!
//! # Crash safety
//! Each reconcile runs at most one step. A step is recorded as started (status write) before
//! it runs and as finished after; a controller killed in between finds the step started but
//! not finished and runs it again (and says so in the log) — every step is safe to repeat. An
//! infrastructure error (Docker unreachable, git failing) leaves the step unfinished; it runs
//! again after a backoff ([`record::retry_delay`]), and after [`record::MAX_ATTEMPTS`] the run
//! ends in `Error`.
//!
//! # Cancellation and deadlines
//! While a step runs, the record is polled: a deletion, `spec.cancel`, a newer run for the same
//! pull request, or the stage's or run's deadline stops the step (its future is dropped) and
//! the run goes to teardown. The finalizer [`FINALIZER`] makes deleting a run tear it down.

pub mod admission;
pub mod admit;
pub mod decide;
pub mod driver;
pub mod keep;
pub mod plan;
pub mod record;
pub mod sink;
pub mod step_env;
pub mod steps;
pub mod stop;
pub mod teardown;
pub mod workspace;

#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use bollard::Docker;
use chrono::Utc;
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

use self::admission::QueueEntry;
use self::decide::Next;
use self::driver::{Stoppable, drive};
use self::record::StepAt;
use self::steps::RunEnv;
use self::stop::{Limits, Stop, newer_run};
use self::workspace::Workspace;
use super::{RunSettings, Started};
use crate::api::{RecipeSpec, RunPhase, StepName, TestRun, TestRunSpec, TestRunStatus};
use crate::executor::TestExecutor;
use crate::metrics::Metrics;
use crate::runlog::{RUN_STREAM, RunLogError, RunLogs};
use crate::runtime::finalizer::{Event, FinalizerError, finalizer};
use crate::runtime::{Action, Cache, Controller, Index, RuntimeSettings, reflector, watcher};
use crate::store::{Store, StoreError};

/// The controller's name (its `controller` metric label).
pub const NAME: &str = "testrun";

/// The finalizer that guarantees a deleted run is torn down first.
pub const FINALIZER: &str = "cc-ci/testrun-teardown";

/// How often a finished run whose teardown failed tries again.
const TEARDOWN_RETRY: Duration = Duration::from_secs(60);

/// How often a status write may meet a conflicting write before giving up.
const STATUS_WRITE_TRIES: usize = 5;

/// What the reconcile works with.
pub struct Context<St> {
    /// The record store.
    pub store: St,
    /// The Docker engine.
    pub docker: Docker,
    /// Run logs (and run directories) under the state dir.
    pub logs: RunLogs,
    /// The `[runs]` settings.
    pub settings: RunSettings,
    /// Runs test steps.
    pub executor: Arc<dyn TestExecutor>,
    /// What admission reads of every TestRun (the controller's own cache).
    pub runs: Index<QueueEntry>,
    /// Every Recipe.
    pub recipes: Cache<RecipeSpec>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Serialises admission decisions, so two queued runs never take the last slot together.
    admit_lock: Mutex<()>,
}

/// Why a reconcile of a run failed (it is retried).
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// Reading or writing the record failed.
    #[error("TestRun {run:?}: {source}")]
    Store {
        /// The run.
        run: String,
        /// What the store said.
        #[source]
        source: StoreError,
    },
    /// The status write kept meeting conflicting writes.
    #[error("TestRun {run:?}: the status write kept conflicting ({STATUS_WRITE_TRIES} tries)")]
    StatusConflict {
        /// The run.
        run: String,
    },
    /// The run's directory cannot be named (never for a valid run name).
    #[error("TestRun {run:?}: {source}")]
    RunDir {
        /// The run.
        run: String,
        /// Why.
        #[source]
        source: RunLogError,
    },
    /// Planning a stage met an infrastructure problem; it is planned again.
    #[error("TestRun {run:?}: planning stage {stage}: {message}")]
    Plan {
        /// The run.
        run: String,
        /// The stage.
        stage: &'static str,
        /// What went wrong, with its causes, redacted.
        message: String,
    },
    /// A step met an infrastructure problem; it runs again after its backoff.
    #[error("TestRun {run:?}: step {step} (attempt {attempt}): {message}")]
    Step {
        /// The run.
        run: String,
        /// The step.
        step: StepName,
        /// Which attempt failed.
        attempt: u32,
        /// What went wrong, with its causes, redacted.
        message: String,
    },
}

impl ReconcileError {
    fn store(run: &TestRun, source: StoreError) -> ReconcileError {
        ReconcileError::Store {
            run: run.name().to_string(),
            source,
        }
    }
}

/// Starts the TestRun controller until `shutdown`.
/// `docker` is the client to use now (`swarm.docker` may not have one yet).
pub fn start<St: Store>(
    store: &St,
    docker: Docker,
    swarm: super::SwarmDeps,
    runtime: RuntimeSettings,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) -> Started {
    let super::SwarmDeps {
        logs,
        runs: settings,
        executor,
        ..
    } = swarm;
    let (recipes, recipes_writer) = reflector::cache::<RecipeSpec>();
    let recipe_changes = reflector::reflector(
        recipes_writer,
        watcher::watch::<RecipeSpec, St>(store.clone()),
    );
    // Long steps hold a worker each; queued runs must still be looked at meanwhile.
    let runtime = RuntimeSettings {
        concurrency: runtime.concurrency.max(settings.max_concurrent_runs + 2),
        ..runtime
    };
    let controller = Controller::for_store_projected(NAME, store, QueueEntry::from)
        .settings(runtime)
        .metrics(metrics.clone())
        .requires(&recipes)
        // A recipe change does not restart anything; draining the stream keeps its cache fresh.
        .watches(recipe_changes, |_: &crate::api::Recipe| {
            Vec::<String>::new()
        });
    let runs = controller.cache();
    let ready = vec![runs.ready_signal(), recipes.ready_signal()];
    let ctx = Arc::new(Context {
        store: store.clone(),
        docker,
        logs,
        settings,
        executor,
        runs,
        recipes,
        metrics,
        admit_lock: Mutex::new(()),
    });
    let task = tokio::spawn(controller.run(reconcile::<St>, ctx, shutdown));
    Started {
        name: NAME,
        ready,
        tasks: vec![task],
    }
}

/// Reconciles one run: the finalizer first, then one step of its lifecycle.
pub async fn reconcile<St: Store>(
    entry: Arc<QueueEntry>,
    ctx: Arc<Context<St>>,
) -> Result<Action, FinalizerError<ReconcileError>> {
    // The cache holds only a summary, and can lag behind our own last status write: work from
    // the stored record.
    let run = match ctx.store.get::<TestRunSpec>(&entry.name) {
        Ok(Some(r)) => Arc::new(r),
        Ok(None) => return Ok(Action::await_change()),
        Err(source) => {
            return Err(FinalizerError::ApplyFailed(ReconcileError::Store {
                run: entry.name.clone(),
                source,
            }));
        }
    };
    finalizer(&ctx.store, FINALIZER, run, |event| async {
        match event {
            Event::Apply(run) => apply(&run, &ctx).await,
            Event::Cleanup(run) => teardown::cleanup(&run, &ctx).await,
        }
    })
    .await
}

/// Writes `status` onto the stored record (whatever its spec became meanwhile: only the
/// reconciler writes a run's status, so the stored status is ours). Every text of it passes
/// the run's redactor first ([`sink::redact_status`]); stages it ends are observed in metrics.
async fn write_status<St: Store>(
    ctx: &Context<St>,
    run: &TestRun,
    status: &TestRunStatus,
) -> Result<(), ReconcileError> {
    let mut status = status.clone();
    sink::redact_status(&mut status, &sink::redactor(ctx, run.name()));
    for _ in 0..STATUS_WRITE_TRIES {
        let Some(mut fresh) = ctx
            .store
            .get::<TestRunSpec>(run.name())
            .map_err(|e| ReconcileError::store(run, e))?
        else {
            return Ok(());
        };
        let before = std::mem::replace(&mut fresh.status, status.clone());
        // The forge reporter keeps its comment id in the status too: never drop it.
        fresh.status.report_comment_id = before.report_comment_id.or(status.report_comment_id);
        fresh.status.observed_generation = fresh.metadata.generation;
        match ctx.store.replace_status(fresh).await {
            Ok(_) => {
                observe_ended_stages(ctx, &before, &status);
                return Ok(());
            }
            Err(StoreError::Conflict { .. }) => continue,
            Err(StoreError::NotFound { .. }) => return Ok(()),
            Err(e) => return Err(ReconcileError::store(run, e)),
        }
    }
    Err(ReconcileError::StatusConflict {
        run: run.name().to_string(),
    })
}

fn observe_ended_stages<St: Store>(ctx: &Context<St>, before: &TestRunStatus, now: &TestRunStatus) {
    for (i, stage) in now.stages.iter().enumerate() {
        let was_open = before.stages.get(i).is_none_or(|b| b.finished.is_none());
        if let (true, Some(s), Some(f)) = (was_open, stage.started, stage.finished) {
            let secs = (f - s).num_milliseconds().max(0) as f64 / 1000.0;
            ctx.metrics.observe_stage(stage.stage, stage.phase, secs);
        }
    }
}

fn workspace<St: Store>(ctx: &Context<St>, run: &TestRun) -> Result<Workspace, ReconcileError> {
    ctx.logs
        .run_dir(run.name())
        .map(Workspace::new)
        .map_err(|source| ReconcileError::RunDir {
            run: run.name().to_string(),
            source,
        })
}

/// The routing mode for runs now, from the stored ProxyDeployments (a store error counts as
/// no proxy being Ready: runs wait).
fn proxy_route<St: Store>(ctx: &Context<St>) -> crate::controllers::deployment::route::Route {
    use crate::controllers::deployment::route::{Route, route};
    match ctx
        .store
        .list::<crate::api::ProxyDeploymentSpec>(&crate::store::LabelSelector::everything())
    {
        Ok(proxies) => route(&proxies),
        Err(e) => Route::Wait(format!("cannot read the ProxyDeployments: {e}")),
    }
}

/// What the steps of `run` work with; `Err(why)` when the run cannot work at all (its Recipe
/// is gone and it names no git URL).
fn env<'a, St: Store>(
    ctx: &'a Context<St>,
    run: &'a TestRun,
) -> Result<Result<RunEnv<'a>, String>, ReconcileError> {
    let recipe = ctx.recipes.get(&run.spec.recipe);
    let url = match (&run.spec.git, &recipe) {
        (Some(g), _) => g.clone(),
        (None, Some(r)) => r.spec.git.clone(),
        (None, None) => {
            return Ok(Err(format!(
                "Recipe {:?} does not exist and the run names no git URL",
                run.spec.recipe
            )));
        }
    };
    Ok(Ok(RunEnv {
        docker: &ctx.docker,
        settings: &ctx.settings,
        executor: &ctx.executor,
        run,
        url,
        overrides: recipe
            .as_ref()
            .map(|r| r.spec.env.clone())
            .unwrap_or_default(),
        converge_seconds: recipe
            .as_ref()
            .and_then(|r| r.spec.timeouts.converge_seconds),
        allow: recipe
            .as_ref()
            .map(|r| r.spec.allow.clone())
            .unwrap_or_default(),
        workspace: workspace(ctx, run)?,
        suite_path: recipe.as_ref().and_then(|r| r.spec.suite_path.clone()),
        redactor: sink::redactor(ctx, run.name()),
        route: proxy_route(ctx),
    }))
}

async fn apply<St: Store>(run: &TestRun, ctx: &Context<St>) -> Result<Action, ReconcileError> {
    match run.status.phase {
        RunPhase::Pending => admit::admit(run, ctx).await,
        RunPhase::Running => progress(run, ctx).await,
        _ if run.status.torn_down => Ok(Action::await_change()),
        _ => teardown::retry(run, ctx).await,
    }
}

/// One step of a running run, as [`decide::next`] says.
async fn progress<St: Store>(run: &TestRun, ctx: &Context<St>) -> Result<Action, ReconcileError> {
    let now = Utc::now();
    let mut status = run.status.clone();
    let recipe = ctx.recipes.get(&run.spec.recipe);
    let limits = Limits::of(&ctx.settings, recipe.as_ref().map(|r| &r.spec));
    let next = decide::next(run, newer_run(ctx, run), &limits, now);
    let env = match &next {
        Next::StartStage(_) | Next::Step { .. } => match env(ctx, run)? {
            Ok(env) => Some(env),
            Err(why) => {
                record::conclude(&mut status, RunPhase::Error, &why, now);
                write_status(ctx, run, &status).await?;
                return Ok(Action::requeue(Duration::ZERO));
            }
        },
        _ => None,
    };
    match (next, env) {
        (Next::Stop(Stop::Deleted), _) => Ok(Action::requeue(Duration::ZERO)),
        (Next::Stop(stop), _) => {
            record::stopped(&mut status, &stop, now);
            write_status(ctx, run, &status).await?;
            sink::log_lines(ctx, run.name(), RUN_STREAM, &[format!("stopped: {stop}")]).await;
            Ok(Action::requeue(Duration::ZERO))
        }
        (Next::Wait(d), _) => Ok(Action::requeue(d)),
        (Next::Teardown, _) => {
            let verdict = status.verdict.unwrap_or(RunPhase::Error);
            match keep::kept_until(&run.spec, &status, verdict, now) {
                Some(until) if now < until => keep::keep_app(run, ctx, status, until).await,
                _ => teardown::teardown(run, ctx, status).await,
            }
        }
        (Next::Conclude, _) => {
            record::stages_ended(&mut status, now);
            write_status(ctx, run, &status).await?;
            Ok(Action::requeue(Duration::ZERO))
        }
        (Next::PassStage(i), _) => {
            record::stage_passed(&mut status, i, now);
            write_status(ctx, run, &status).await?;
            let stage = status.stages[i].stage.as_str();
            sink::log_lines(ctx, run.name(), stage, &[format!("stage {stage} passed")]).await;
            Ok(Action::requeue(Duration::ZERO))
        }
        (Next::StartStage(i), Some(env)) => start_stage(run, ctx, &env, status, i).await,
        (Next::Step { at, name, deadline }, Some(env)) => {
            let stream = match at {
                StepAt::Run(_) => RUN_STREAM.to_string(),
                StepAt::Stage(i, _) => status.stages[i].stage.as_str().to_string(),
            };
            let snapshot = status.clone();
            let env = &env;
            drive(
                ctx,
                run,
                status,
                at,
                &stream,
                Stoppable::Yes(deadline),
                |mut log| async move {
                    match at {
                        StepAt::Run(_) => {
                            let all = ctx.runs.list();
                            let attempt = admission::attempt(&QueueEntry::of(run), &all);
                            steps::fetch(env, attempt, &mut *log).await
                        }
                        StepAt::Stage(i, _) => {
                            let kind = snapshot.stages[i].stage;
                            steps::execute(env, &snapshot, kind, name, &mut *log).await
                        }
                    }
                },
            )
            .await
        }
        (Next::StartStage(_) | Next::Step { .. }, None) => unreachable!("env is built above"),
    }
}

async fn start_stage<St: Store>(
    run: &TestRun,
    ctx: &Context<St>,
    env: &RunEnv<'_>,
    mut status: TestRunStatus,
    i: usize,
) -> Result<Action, ReconcileError> {
    let kind = status.stages[i].stage;
    let facts = match steps::stage_facts(env, &status, kind).await {
        Ok(f) => f,
        Err(e) => {
            return Err(ReconcileError::Plan {
                run: run.name().to_string(),
                stage: kind.as_str(),
                message: env.redactor.redact(&driver::error_chain(&e)),
            });
        }
    };
    let plan = facts.and_then(|f| plan::stage_steps(kind, &f));
    let line = match &plan {
        Ok(steps) => format!(
            "stage {} started: {}",
            kind.as_str(),
            steps
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(" → ")
        ),
        Err(why) => format!("stage {} does not apply: {why}", kind.as_str()),
    };
    record::stage_started(&mut status, i, plan, Utc::now());
    write_status(ctx, run, &status).await?;
    sink::log_lines(ctx, run.name(), kind.as_str(), &[line]).await;
    Ok(Action::requeue(Duration::ZERO))
}
