//! The TestRun reconciler: admits runs (FIFO under `max_concurrent_runs`), fetches the recipe,
//! walks the stage plan one step per reconcile, and always tears down.
//!
//! # How a run moves
//! `Pending` → admitted → `Running`: the run-level `fetch` step, then each planned stage
//! (install → upgrade → backup-restore; see [`plan`]) step by step, then the run-level
//! `teardown` step, and only then the terminal phase (`Succeeded`, `Failed`, `Error`,
//! `TimedOut`, `Cancelled`) with `tornDown: true`. Once the run's outcome is decided (a stage
//! failed, the run was cancelled or superseded, a deadline passed) it is kept in the
//! `verdict` checkpoint while the teardown runs.
//!
//! # Crash safety
//! Each reconcile runs at most one step. A step is recorded as started (status write) before
//! it runs and as finished after; a controller killed in between finds the step started but
//! not finished and runs it again — every step is safe to repeat (see [`plan::Step`]). An
//! infrastructure error (Docker unreachable, git failing) leaves the step unfinished and is
//! retried with the controller's backoff; after [`MAX_ATTEMPTS`] the run ends in `Error`.
//!
//! # Cancellation and deadlines
//! While a step runs, the record is polled: a deletion, `spec.cancel`, a newer run for the same
//! pull request, or the stage's or run's deadline stops the step (its future is dropped) and
//! the run goes to teardown. The finalizer [`FINALIZER`] makes deleting a run tear it down.

pub mod admission;
pub mod plan;
pub mod steps;
pub mod workspace;

use std::sync::Arc;
use std::time::Duration;

use bollard::Docker;
use chrono::{DateTime, Utc};
use tokio::sync::{Mutex, mpsc};
use tokio_util::sync::CancellationToken;

use self::admission::{Admission, QueueEntry, admission, superseded_by};
use self::plan::{FETCH, Step, TEARDOWN, current_stage, next_step, pending_step};
use self::steps::{RunEnv, StepError, StepResult};
use self::workspace::Workspace;
use super::{RunSettings, Started};
use crate::api::{
    RecipeSpec, RunPhase, StageKind, StagePhase, StepStatus, TestRun, TestRunSpec, TestRunStatus,
};
use crate::executor::TestExecutor;
use crate::metrics::Metrics;
use crate::recipe::redact::Redactor;
use crate::recipe::runlog::RunLogs;
use crate::recipe::secrets::SecretFile;
use crate::runtime::finalizer::{Event, FinalizerError, finalizer};
use crate::runtime::{Action, Cache, Controller, Index, RuntimeSettings, reflector, watcher};
use crate::store::{LabelSelector, Store, StoreError};

/// The controller's name (its `controller` metric label).
pub const NAME: &str = "testrun";

/// The finalizer that guarantees a deleted run is torn down first.
pub const FINALIZER: &str = "cc-ci/testrun-teardown";

/// How often an infrastructure error may interrupt one step before the run ends in `Error`.
pub const MAX_ATTEMPTS: u32 = 3;

/// How often a queued run looks at the queue again.
const QUEUE_RECHECK: Duration = Duration::from_secs(2);

/// How often a running step checks for cancellation, deletion and deadlines.
const STOP_POLL: Duration = Duration::from_millis(500);

/// How often a finished run whose teardown failed tries again.
const TEARDOWN_RETRY: Duration = Duration::from_secs(60);

/// The run-level log stream (admission, fetch, teardown); stages log to their own stream.
pub const RUN_STREAM: &str = "run";

/// Checkpoint holding the decided outcome while the teardown runs.
const VERDICT: &str = "verdict";

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

/// Why a reconcile of a run failed (it is retried with backoff).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Reading or writing the record failed.
    #[error("TestRun {run:?}: {source}")]
    Store {
        /// The run.
        run: String,
        /// What the store said.
        #[source]
        source: StoreError,
    },
    /// A step met an infrastructure problem; it runs again.
    #[error("TestRun {run:?}: step {step} (attempt {attempt}): {message}")]
    Step {
        /// The run.
        run: String,
        /// The step.
        step: String,
        /// Which attempt failed.
        attempt: u32,
        /// What went wrong.
        message: String,
    },
}

/// Why a running step was stopped from outside.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Stop {
    /// The record is gone or being deleted: the finalizer's cleanup takes over.
    Deleted,
    /// Cancelled or superseded; the message says which.
    Cancelled(String),
    /// A deadline passed; the message says which.
    TimedOut(String),
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
) -> Result<Action, FinalizerError<RunError>> {
    // The cache holds only a summary, and can lag behind our own last status write: work from
    // the stored record.
    let run = match ctx.store.get::<TestRunSpec>(&entry.name) {
        Ok(Some(r)) => Arc::new(r),
        Ok(None) => return Ok(Action::await_change()),
        Err(source) => {
            return Err(FinalizerError::ApplyFailed(RunError::Store {
                run: entry.name.clone(),
                source,
            }));
        }
    };
    finalizer(&ctx.store, FINALIZER, run, |event| async {
        match event {
            Event::Apply(run) => apply(&run, &ctx).await,
            Event::Cleanup(run) => cleanup(&run, &ctx).await,
        }
    })
    .await
}

fn store_err(run: &TestRun) -> impl FnOnce(StoreError) -> RunError + '_ {
    move |source| RunError::Store {
        run: run.name().to_string(),
        source,
    }
}

/// Writes `status` onto the stored record (whatever its spec became meanwhile: only the
/// reconciler writes a run's status, so the stored status is ours).
async fn write_status<St: Store>(
    ctx: &Context<St>,
    run: &TestRun,
    status: &TestRunStatus,
) -> Result<(), RunError> {
    for _ in 0..5 {
        let Some(mut fresh) = ctx
            .store
            .get::<TestRunSpec>(run.name())
            .map_err(store_err(run))?
        else {
            return Ok(());
        };
        fresh.status = status.clone();
        fresh.status.observed_generation = fresh.metadata.generation;
        match ctx.store.replace_status(fresh).await {
            Ok(_) => return Ok(()),
            Err(StoreError::Conflict { .. }) => continue,
            Err(StoreError::NotFound { .. }) => return Ok(()),
            Err(e) => return Err(store_err(run)(e)),
        }
    }
    Err(store_err(run)(StoreError::Backend(
        "status write kept conflicting".into(),
    )))
}

/// Appends lines to a run's log stream; logging trouble never stops a run.
async fn log_lines<St: Store>(ctx: &Context<St>, run: &str, stream: &str, lines: &[String]) {
    let redactor = redactor(ctx, run);
    match ctx.logs.writer(run, stream, redactor).await {
        Ok(mut w) => {
            for l in lines {
                if let Err(e) = w.line(l).await {
                    tracing::warn!(run, error = %e, "cannot write the run log");
                    return;
                }
            }
            let _ = w.finish().await;
        }
        Err(e) => tracing::warn!(run, error = %e, "cannot open the run log"),
    }
}

/// A redactor knowing every secret generated for the run so far.
fn redactor<St: Store>(ctx: &Context<St>, run: &str) -> Redactor {
    let redactor = Redactor::new();
    if let Ok(dir) = ctx.logs.run_dir(run)
        && let Ok(file) = SecretFile::open(&Workspace::new(dir).secrets_file())
    {
        file.register_all(&redactor);
    }
    redactor
}

/// The routing mode for runs now, from the stored ProxyDeployments (a store error counts as
/// no proxy being Ready: runs wait).
fn proxy_route<St: Store>(ctx: &Context<St>) -> crate::controllers::deployment::route::Route {
    use crate::controllers::deployment::route::{Route, route};
    match ctx
        .store
        .list::<crate::api::ProxyDeploymentSpec>(&LabelSelector::everything())
    {
        Ok(proxies) => route(&proxies),
        Err(e) => Route::Wait(format!("cannot read the ProxyDeployments: {e}")),
    }
}

fn env<'a, St: Store>(ctx: &'a Context<St>, run: &'a TestRun) -> Result<RunEnv<'a>, String> {
    let recipe = ctx.recipes.get(&run.spec.recipe);
    let url = match (&run.spec.git, &recipe) {
        (Some(g), _) => g.clone(),
        (None, Some(r)) => r.spec.git.clone(),
        (None, None) => {
            return Err(format!(
                "Recipe {:?} does not exist and the run names no git URL",
                run.spec.recipe
            ));
        }
    };
    let dir = ctx.logs.run_dir(run.name()).map_err(|e| e.to_string())?;
    Ok(RunEnv {
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
        workspace: Workspace::new(dir),
        redactor: redactor(ctx, run.name()),
        route: proxy_route(ctx),
    })
}

async fn apply<St: Store>(run: &TestRun, ctx: &Context<St>) -> Result<Action, RunError> {
    match run.status.phase {
        RunPhase::Pending => admit(run, ctx).await,
        RunPhase::Running => progress(run, ctx).await,
        _ if run.status.torn_down => Ok(Action::await_change()),
        _ => retry_teardown(run, ctx).await,
    }
}

/// Deletion: tear down whatever is left, then drop the run's directory (logs included).
async fn cleanup<St: Store>(run: &TestRun, ctx: &Context<St>) -> Result<Action, RunError> {
    if !run.status.torn_down {
        let env = env(ctx, run).ok();
        let removed =
            crate::recipe::deploy::teardown(&ctx.docker, run.name(), steps::REMOVE_TIMEOUT)
                .await
                .map_err(|e| RunError::Step {
                    run: run.name().to_string(),
                    step: TEARDOWN.into(),
                    attempt: 1,
                    message: e.to_string(),
                })?;
        tracing::info!(
            run = run.name(),
            services = removed.services.len(),
            "deleted run torn down"
        );
        if let Some(env) = env {
            let _ = env.workspace.clean().await;
        }
    }
    if let Err(e) = ctx.logs.remove_run(run.name()).await {
        tracing::warn!(run = run.name(), error = %e, "cannot remove the run's directory");
    }
    Ok(Action::await_change())
}

async fn admit<St: Store>(run: &TestRun, ctx: &Context<St>) -> Result<Action, RunError> {
    let now = Utc::now();
    let mut status = run.status.clone();
    let _guard = ctx.admit_lock.lock().await;
    // The store, not the cache: an admission a moment ago must count. One record decoded at
    // a time, keeping only its queue entry.
    let all: Vec<Arc<QueueEntry>> = ctx
        .store
        .list_map::<TestRunSpec, _>(&LabelSelector::everything(), |r| Arc::new(r.into()))
        .map_err(store_err(run))?;
    let entry = QueueEntry::of(run);
    let stopped = if run.spec.cancel {
        Some("cancelled before it started".to_string())
    } else {
        superseded_by(&entry, &all).map(|newer| format!("superseded by {newer} before it started"))
    };
    if let Some(message) = stopped {
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
    if let crate::controllers::deployment::route::Route::Wait(why) = proxy_route(ctx) {
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
                .or_else(|| {
                    ctx.recipes
                        .get(&run.spec.recipe)
                        .map(|r| r.spec.stages.clone())
                })
                .unwrap_or_else(|| StageKind::ALL.to_vec());
            status.phase = RunPhase::Running;
            status.queue_position = None;
            status.started = Some(now);
            status.stages = plan::planned_stages(&stages);
            status.steps = vec![pending_step(FETCH)];
            status.message = "admitted".into();
            write_status(ctx, run, &status).await?;
            let planned: Vec<&str> = status.stages.iter().map(|s| s.stage.as_str()).collect();
            log_lines(
                ctx,
                run.name(),
                RUN_STREAM,
                &[format!(
                    "admitted; stages: {}",
                    if planned.is_empty() {
                        "none".to_string()
                    } else {
                        planned.join(", ")
                    }
                )],
            )
            .await;
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

/// Decides the run's outcome: the stages not ended are skipped, the teardown comes next.
fn conclude(status: &mut TestRunStatus, phase: RunPhase, message: &str, now: DateTime<Utc>) {
    status
        .checkpoints
        .insert(VERDICT.into(), phase.as_str().into());
    status.message = message.to_string();
    let reason = match phase {
        RunPhase::Cancelled => format!("not run: {message}"),
        RunPhase::TimedOut => format!("not run: {message}"),
        _ => "not run: an earlier step failed".to_string(),
    };
    plan::skip_remaining(status, &reason, now);
}

fn verdict_of(status: &TestRunStatus) -> Option<RunPhase> {
    let v = status.checkpoints.get(VERDICT)?;
    RunPhase::ALL.into_iter().find(|p| p.as_str() == v)
}

fn run_deadline(
    ctx_settings: &RunSettings,
    run: &TestRun,
    recipe_seconds: Option<u64>,
) -> Option<DateTime<Utc>> {
    let seconds = recipe_seconds.unwrap_or(ctx_settings.run_timeout_seconds);
    run.status
        .started
        .map(|s| s + chrono::Duration::seconds(seconds as i64))
}

async fn progress<St: Store>(run: &TestRun, ctx: &Context<St>) -> Result<Action, RunError> {
    let now = Utc::now();
    let mut status = run.status.clone();
    if let Some(verdict) = verdict_of(&status) {
        return teardown(run, ctx, status, verdict).await;
    }
    let recipe = ctx.recipes.get(&run.spec.recipe);
    let timeouts = recipe
        .as_ref()
        .map(|r| r.spec.timeouts.clone())
        .unwrap_or_default();
    let stop = if run.spec.cancel {
        Some(Stop::Cancelled("cancelled by request".into()))
    } else if let Some(newer) = superseded_by(&QueueEntry::of(run), &ctx.runs.list()) {
        Some(Stop::Cancelled(format!("superseded by {newer}")))
    } else if run_deadline(&ctx.settings, run, timeouts.run_seconds).is_some_and(|d| now >= d) {
        Some(Stop::TimedOut("the run ran out of time".into()))
    } else {
        None
    };
    if let Some(stop) = stop {
        stopped(&mut status, &stop, now);
        write_status(ctx, run, &status).await?;
        return Ok(Action::requeue(Duration::ZERO));
    }
    let env = match env(ctx, run) {
        Ok(e) => e,
        Err(why) => {
            conclude(&mut status, RunPhase::Error, &why, now);
            write_status(ctx, run, &status).await?;
            return Ok(Action::requeue(Duration::ZERO));
        }
    };
    if let Some(j) = next_step(&status.steps) {
        if status.steps[j].name == FETCH {
            return fetch(run, ctx, &env, status, j).await;
        }
    }
    let Some(i) = current_stage(&status) else {
        let verdict = plan::verdict(&status);
        let message = match verdict {
            RunPhase::Succeeded => "every stage passed or did not apply".to_string(),
            _ => failed_stages(&status),
        };
        conclude(&mut status, verdict, &message, now);
        write_status(ctx, run, &status).await?;
        return Ok(Action::requeue(Duration::ZERO));
    };
    if status.stages[i].phase == StagePhase::Pending {
        return start_stage(run, ctx, &env, status, i).await;
    }
    match next_step(&status.stages[i].steps) {
        Some(j) => stage_step(run, ctx, &env, status, i, j, timeouts.stage_seconds).await,
        None => {
            let stage = &mut status.stages[i];
            stage.phase = StagePhase::Passed;
            stage.finished = Some(now);
            stage.message = "every step passed".into();
            observe_stage(ctx, stage);
            write_status(ctx, run, &status).await?;
            Ok(Action::requeue(Duration::ZERO))
        }
    }
}

fn failed_stages(status: &TestRunStatus) -> String {
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
    failed.join("; ")
}

fn observe_stage<St: Store>(ctx: &Context<St>, stage: &crate::api::StageStatus) {
    if let (Some(s), Some(f)) = (stage.started, stage.finished) {
        let secs = (f - s).num_milliseconds().max(0) as f64 / 1000.0;
        ctx.metrics.observe_stage(stage.stage, stage.phase, secs);
    }
}

/// Records a stop from outside: the step in progress (if any) ends, the run concludes.
fn stopped(status: &mut TestRunStatus, stop: &Stop, now: DateTime<Utc>) {
    let (phase, message) = match stop {
        Stop::Cancelled(m) => (RunPhase::Cancelled, m.clone()),
        Stop::TimedOut(m) => (RunPhase::TimedOut, m.clone()),
        Stop::Deleted => return,
    };
    if let Some(i) = current_stage(status) {
        let stage = &mut status.stages[i];
        if let Some(j) = next_step(&stage.steps)
            && stage.steps[j].started.is_some()
        {
            finish_step(&mut stage.steps[j], false, &message, now);
        }
        if phase == RunPhase::TimedOut && stage.phase == StagePhase::Running {
            stage.phase = StagePhase::Failed;
            stage.finished = Some(now);
            stage.message = message.clone();
        }
    }
    conclude(status, phase, &message, now);
}

fn finish_step(step: &mut StepStatus, ok: bool, message: &str, now: DateTime<Utc>) {
    step.finished = Some(now);
    step.ok = Some(ok);
    step.message = message.to_string();
}

fn attempts_key(stream: &str, step: &str) -> String {
    format!("attempts/{stream}/{step}")
}

/// Records a step as started before it runs; `Err` when infrastructure errors already
/// interrupted it [`MAX_ATTEMPTS`] times. A controller crash does not count as an attempt: the
/// step simply runs again.
fn begin_attempt(
    status: &mut TestRunStatus,
    stream: &str,
    step: &mut StepStatus,
    now: DateTime<Utc>,
) -> Result<u32, String> {
    let failures = failures(status, stream, &step.name);
    if failures >= MAX_ATTEMPTS {
        return Err(format!(
            "{} failed {MAX_ATTEMPTS} times: {}",
            step.name, step.message
        ));
    }
    step.started.get_or_insert(now);
    Ok(failures + 1)
}

fn failures(status: &TestRunStatus, stream: &str, step: &str) -> u32 {
    status
        .checkpoints
        .get(&attempts_key(stream, step))
        .and_then(|v| v.parse::<u32>().ok())
        .unwrap_or(0)
}

/// A run log stream fed from synchronous callbacks (steps log through `FnMut(&str)`); a task
/// writes the lines, redacted, as they come, so progress is visible while a step runs.
struct LogSink {
    // `None` ends the stream: callbacks handed out may outlive the sink's own sender.
    tx: mpsc::UnboundedSender<Option<String>>,
    task: tokio::task::JoinHandle<()>,
}

impl LogSink {
    async fn open<St: Store>(ctx: &Context<St>, run: &str, stream: &str) -> LogSink {
        let (tx, mut rx) = mpsc::unbounded_channel::<Option<String>>();
        let writer = ctx.logs.writer(run, stream, redactor(ctx, run)).await;
        let run = run.to_string();
        let task = tokio::spawn(async move {
            match writer {
                Ok(mut w) => {
                    while let Some(Some(line)) = rx.recv().await {
                        if let Err(e) = w.line(&line).await {
                            tracing::warn!(run, error = %e, "cannot write the run log");
                            break;
                        }
                    }
                    let _ = w.finish().await;
                }
                Err(e) => {
                    tracing::warn!(run, error = %e, "cannot open the run log");
                    while let Some(Some(_)) = rx.recv().await {}
                }
            }
        });
        LogSink { tx, task }
    }

    /// A callback appending lines to the stream.
    fn callback(&self) -> impl FnMut(&str) + Send + 'static {
        let tx = self.tx.clone();
        move |line: &str| {
            let _ = tx.send(Some(line.to_string()));
        }
    }

    /// Writes what is queued and closes the stream.
    async fn close(self, last: Option<String>) {
        if let Some(line) = last {
            let _ = self.tx.send(Some(line));
        }
        let _ = self.tx.send(None);
        let _ = self.task.await;
    }
}

/// Runs `work`, or stops it (dropping it) when the run is deleted, cancelled, superseded, or
/// past `deadline`.
async fn race_stop<St: Store, T>(
    ctx: &Context<St>,
    name: &str,
    deadline: Option<(DateTime<Utc>, String)>,
    work: impl std::future::Future<Output = T>,
) -> Result<T, Stop> {
    tokio::select! {
        r = work => Ok(r),
        s = poll_stop(ctx, name, deadline) => Err(s),
    }
}

fn closing_line<T>(outcome: &Result<Result<T, StepError>, Stop>) -> Option<String> {
    match outcome {
        Err(Stop::Cancelled(m)) | Err(Stop::TimedOut(m)) => Some(format!("stopped: {m}")),
        Ok(Err(e)) => Some(format!("error (the step will be retried): {e}")),
        _ => None,
    }
}

/// Resolves when the run should stop: deleted, cancelled, superseded, or past `deadline`.
async fn poll_stop<St: Store>(
    ctx: &Context<St>,
    name: &str,
    deadline: Option<(DateTime<Utc>, String)>,
) -> Stop {
    loop {
        tokio::time::sleep(STOP_POLL).await;
        match ctx.store.get::<TestRunSpec>(name) {
            Ok(None) => return Stop::Deleted,
            Ok(Some(r)) if r.is_deleting() => return Stop::Deleted,
            Ok(Some(r)) if r.spec.cancel => return Stop::Cancelled("cancelled by request".into()),
            Ok(Some(r)) => {
                if let Some(newer) = superseded_by(&QueueEntry::of(&r), &ctx.runs.list()) {
                    return Stop::Cancelled(format!("superseded by {newer}"));
                }
            }
            Err(e) => {
                tracing::warn!(run = name, error = %e, "cannot read the run while a step runs")
            }
        }
        if let Some((at, why)) = &deadline
            && Utc::now() >= *at
        {
            return Stop::TimedOut(why.clone());
        }
    }
}

/// What to do after an infrastructure error of a step (already recorded in `status`).
async fn step_error<St: Store>(
    ctx: &Context<St>,
    run: &TestRun,
    status: &mut TestRunStatus,
    stream: &str,
    step: &str,
    attempt: u32,
    e: StepError,
) -> Result<Action, RunError> {
    status
        .checkpoints
        .insert(attempts_key(stream, step), attempt.to_string());
    write_status(ctx, run, status).await?;
    Err(RunError::Step {
        run: run.name().to_string(),
        step: step.to_string(),
        attempt,
        message: e.to_string(),
    })
}

async fn fetch<St: Store>(
    run: &TestRun,
    ctx: &Context<St>,
    env: &RunEnv<'_>,
    mut status: TestRunStatus,
    j: usize,
) -> Result<Action, RunError> {
    let now = Utc::now();
    let mut step = status.steps[j].clone();
    let attempt = match begin_attempt(&mut status, RUN_STREAM, &mut step, now) {
        Ok(n) => n,
        Err(why) => {
            finish_step(&mut step, false, &why, now);
            status.steps[j] = step;
            conclude(&mut status, RunPhase::Error, &why, now);
            write_status(ctx, run, &status).await?;
            return Ok(Action::requeue(Duration::ZERO));
        }
    };
    status.steps[j] = step.clone();
    write_status(ctx, run, &status).await?;
    let all = ctx.runs.list();
    let deadline =
        run_deadline(&ctx.settings, run, None).map(|d| (d, "the run ran out of time".to_string()));
    let sink = LogSink::open(ctx, run.name(), RUN_STREAM).await;
    let mut log = sink.callback();
    let outcome = race_stop(
        ctx,
        run.name(),
        deadline,
        steps::fetch(
            env,
            admission::attempt(&QueueEntry::of(run), &all),
            &mut log,
        ),
    )
    .await;
    sink.close(closing_line(&outcome)).await;
    let outcome = outcome.map(|r| {
        r.map(|fetched| match fetched {
            Ok(prepared) => {
                let message = format!(
                    "{} at {}",
                    prepared.app.version.clone().unwrap_or_default(),
                    prepared.commit
                );
                status.commit = Some(prepared.commit);
                status.app = Some(prepared.app);
                StepResult {
                    ok: true,
                    message,
                    report: None,
                }
            }
            Err(why) => StepResult {
                ok: false,
                message: why,
                report: None,
            },
        })
    });
    let now = Utc::now();
    match outcome {
        Err(Stop::Deleted) => Ok(Action::requeue(Duration::ZERO)),
        Err(stop) => {
            finish_step(&mut status.steps[j], false, &format!("{stop:?}"), now);
            stopped(&mut status, &stop, now);
            write_status(ctx, run, &status).await?;
            Ok(Action::requeue(Duration::ZERO))
        }
        Ok(Err(e)) => {
            status.steps[j].message = e.to_string();
            step_error(ctx, run, &mut status, RUN_STREAM, FETCH, attempt, e).await
        }
        Ok(Ok(result)) => {
            finish_step(&mut status.steps[j], result.ok, &result.message, now);
            if !result.ok {
                // The recipe itself is unusable at this ref: no stage can run.
                conclude(&mut status, RunPhase::Failed, &result.message, now);
            }
            write_status(ctx, run, &status).await?;
            Ok(Action::requeue(Duration::ZERO))
        }
    }
}

async fn start_stage<St: Store>(
    run: &TestRun,
    ctx: &Context<St>,
    env: &RunEnv<'_>,
    mut status: TestRunStatus,
    i: usize,
) -> Result<Action, RunError> {
    let now = Utc::now();
    let kind = status.stages[i].stage;
    let facts = match steps::stage_facts(env, &status, kind).await {
        Ok(f) => f,
        Err(e) => {
            return Err(RunError::Step {
                run: run.name().to_string(),
                step: format!("{}: plan", kind.as_str()),
                attempt: 1,
                message: e.to_string(),
            });
        }
    };
    let stage = &mut status.stages[i];
    stage.started = Some(now);
    let line = match facts.and_then(|f| plan::stage_steps(kind, &f)) {
        Ok(steps) => {
            stage.phase = StagePhase::Running;
            stage.steps = steps.iter().map(|s| pending_step(s.name())).collect();
            format!(
                "stage {} started: {}",
                kind.as_str(),
                steps
                    .iter()
                    .map(|s| s.name())
                    .collect::<Vec<_>>()
                    .join(" → ")
            )
        }
        Err(why) => {
            stage.phase = StagePhase::NotApplicable;
            stage.finished = Some(now);
            stage.message = why.clone();
            format!("stage {} does not apply: {why}", kind.as_str())
        }
    };
    write_status(ctx, run, &status).await?;
    log_lines(ctx, run.name(), kind.as_str(), &[line]).await;
    Ok(Action::requeue(Duration::ZERO))
}

#[allow(clippy::too_many_arguments)]
async fn stage_step<St: Store>(
    run: &TestRun,
    ctx: &Context<St>,
    env: &RunEnv<'_>,
    mut status: TestRunStatus,
    i: usize,
    j: usize,
    stage_seconds: Option<u64>,
) -> Result<Action, RunError> {
    let now = Utc::now();
    let kind = status.stages[i].stage;
    let stream = kind.as_str();
    let mut step_status = status.stages[i].steps[j].clone();
    let Some(step) = Step::parse(&step_status.name) else {
        let why = format!("unknown step {:?} in the stage plan", step_status.name);
        conclude(&mut status, RunPhase::Error, &why, now);
        write_status(ctx, run, &status).await?;
        return Ok(Action::requeue(Duration::ZERO));
    };
    let attempt = match begin_attempt(&mut status, stream, &mut step_status, now) {
        Ok(n) => n,
        Err(why) => {
            finish_step(&mut step_status, false, &why, now);
            let stage = &mut status.stages[i];
            stage.steps[j] = step_status;
            stage.phase = StagePhase::Failed;
            stage.finished = Some(now);
            stage.message = why.clone();
            observe_stage(ctx, stage);
            conclude(&mut status, RunPhase::Error, &why, now);
            write_status(ctx, run, &status).await?;
            return Ok(Action::requeue(Duration::ZERO));
        }
    };
    status.stages[i].steps[j] = step_status;
    write_status(ctx, run, &status).await?;

    let stage_deadline = status.stages[i].started.map(|s| {
        let secs = stage_seconds.unwrap_or(ctx.settings.stage_timeout_seconds);
        (
            s + chrono::Duration::seconds(secs as i64),
            format!("stage {stream} ran out of time ({secs} s)"),
        )
    });
    let recipe_run_seconds = ctx
        .recipes
        .get(&run.spec.recipe)
        .and_then(|r| r.spec.timeouts.run_seconds);
    let run_deadline = run_deadline(&ctx.settings, run, recipe_run_seconds)
        .map(|d| (d, "the run ran out of time".to_string()));
    let deadline = match (stage_deadline, run_deadline) {
        (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
        (a, b) => a.or(b),
    };
    let sink = LogSink::open(ctx, run.name(), stream).await;
    let mut log = sink.callback();
    log(&format!("step {} (attempt {attempt})", step.name()));
    let outcome = race_stop(
        ctx,
        run.name(),
        deadline,
        steps::execute(env, &status, kind, step, &mut log),
    )
    .await;
    sink.close(closing_line(&outcome)).await;
    let now = Utc::now();
    match outcome {
        Err(Stop::Deleted) => Ok(Action::requeue(Duration::ZERO)),
        Err(stop) => {
            stopped(&mut status, &stop, now);
            if let Stop::TimedOut(_) = stop {
                observe_stage(ctx, &status.stages[i]);
            }
            write_status(ctx, run, &status).await?;
            Ok(Action::requeue(Duration::ZERO))
        }
        Ok(Err(e)) => {
            status.stages[i].steps[j].message = e.to_string();
            step_error(ctx, run, &mut status, stream, step.name(), attempt, e).await
        }
        Ok(Ok(result)) => {
            let stage = &mut status.stages[i];
            finish_step(&mut stage.steps[j], result.ok, &result.message, now);
            if let Some(report) = &result.report {
                stage.tests.passed += report.counts.passed;
                stage.tests.failed += report.counts.failed;
                stage.tests.skipped += report.counts.skipped;
                stage.failing_tests.extend(report.failing.iter().cloned());
                if let (Some(app), Some(routing)) = (status.app.as_mut(), report.routing) {
                    app.routing = Some(routing);
                }
            }
            let stage = &mut status.stages[i];
            if !result.ok {
                stage.phase = if step.is_previous() {
                    StagePhase::PreviousVersionFailed
                } else {
                    StagePhase::Failed
                };
                stage.finished = Some(now);
                stage.message = format!("{}: {}", step.name(), result.message);
                observe_stage(ctx, stage);
                let message = format!("{}: {}", stream, stage.message);
                conclude(&mut status, RunPhase::Failed, &message, now);
            }
            write_status(ctx, run, &status).await?;
            Ok(Action::requeue(Duration::ZERO))
        }
    }
}

async fn teardown<St: Store>(
    run: &TestRun,
    ctx: &Context<St>,
    mut status: TestRunStatus,
    verdict: RunPhase,
) -> Result<Action, RunError> {
    let now = Utc::now();
    let j = match status.steps.iter().position(|s| s.name == TEARDOWN) {
        Some(j) => j,
        None => {
            status.steps.push(pending_step(TEARDOWN));
            status.steps.len() - 1
        }
    };
    let mut step = status.steps[j].clone();
    let attempt = match begin_attempt(&mut status, RUN_STREAM, &mut step, now) {
        Ok(n) => n,
        Err(why) => {
            // Give up for now: the run ends in Error and the terminal phase keeps retrying.
            finish_step(&mut step, false, &why, now);
            status.steps[j] = step;
            status.phase = RunPhase::Error;
            status.finished = Some(now);
            status.message = format!("{} (and the teardown failed: {why})", status.message);
            write_status(ctx, run, &status).await?;
            return Ok(Action::requeue(TEARDOWN_RETRY));
        }
    };
    status.steps[j] = step;
    write_status(ctx, run, &status).await?;
    // The teardown is never stopped from outside.
    let outcome: Result<StepResult, StepError> = match env(ctx, run) {
        Ok(env) => {
            let sink = LogSink::open(ctx, run.name(), RUN_STREAM).await;
            let mut log = sink.callback();
            let r = steps::teardown(&env, &mut log).await;
            let last = r
                .as_ref()
                .err()
                .map(|e| format!("error (the teardown will be retried): {e}"));
            sink.close(last).await;
            r
        }
        // Without a recipe the run never fetched, so only labelled objects can exist.
        Err(_) => crate::recipe::deploy::teardown(&ctx.docker, run.name(), steps::REMOVE_TIMEOUT)
            .await
            .map(|_| StepResult {
                ok: true,
                message: "removed".into(),
                report: None,
            })
            .map_err(StepError::from),
    };
    let now = Utc::now();
    match outcome {
        Ok(result) => {
            finish_step(&mut status.steps[j], true, &result.message, now);
            status.torn_down = true;
            status.phase = verdict;
            status.finished = Some(now);
            write_status(ctx, run, &status).await?;
            log_lines(
                ctx,
                run.name(),
                RUN_STREAM,
                &[format!(
                    "finished: {} ({})",
                    verdict.as_str(),
                    status.message
                )],
            )
            .await;
            Ok(Action::await_change())
        }
        Err(e) => {
            status.steps[j].message = e.to_string();
            step_error(ctx, run, &mut status, RUN_STREAM, TEARDOWN, attempt, e).await
        }
    }
}

/// A run that ended but whose teardown failed: try again now and then.
async fn retry_teardown<St: Store>(run: &TestRun, ctx: &Context<St>) -> Result<Action, RunError> {
    match crate::recipe::deploy::teardown(&ctx.docker, run.name(), steps::REMOVE_TIMEOUT).await {
        Ok(_) => {
            if let Ok(env) = env(ctx, run) {
                let _ = env.workspace.clean().await;
            }
            let mut status = run.status.clone();
            status.torn_down = true;
            write_status(ctx, run, &status).await?;
            Ok(Action::await_change())
        }
        Err(e) => {
            tracing::warn!(run = run.name(), error = %e, "teardown of a finished run failed again");
            Ok(Action::requeue(TEARDOWN_RETRY))
        }
    }
}
