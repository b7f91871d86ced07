//! The Recipe status roll-up: counts, latest run, per-stage results, level and badge of each
//! Recipe, computed from its TestRuns; plus the `ccci_testruns{phase}` and `ccci_records` gauges.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::Started;
use crate::api::{
    Kind, Recipe, RecipeSpec, RecipeStatus, RunPhase, StageKind, StagePhase, StageSummary, TestRun,
    TestRunSpec,
};
use crate::metrics::Metrics;
use crate::runtime::{Action, Cache, Controller, RuntimeSettings, reflector, watcher};
use crate::store::{Store, StoreError};

/// The controller's name (its `controller` metric label).
pub const NAME: &str = "recipe-status";

/// How often the record-count gauges are refreshed.
const GAUGE_PERIOD: Duration = Duration::from_secs(5);

/// What the reconcile reads and writes through.
pub struct Context<St> {
    /// Where statuses are written.
    pub store: St,
    /// Every TestRun, kept current by the controller.
    pub runs: Cache<TestRunSpec>,
}

/// Why a roll-up could not be written.
#[derive(Debug, thiserror::Error)]
#[error("writing the status of Recipe {recipe:?}: {source}")]
pub struct RollUpError {
    /// The recipe.
    pub recipe: String,
    /// What the store said (a Conflict means the cached copy was stale; the retry uses a fresh one).
    #[source]
    pub source: StoreError,
}

/// Computes a Recipe's status from its runs (those with `spec.recipe == recipe.name`).
///
/// Rules:
/// - `runCounts`: runs per phase; phases without runs are left out.
/// - `lastRun`/`lastRunPhase`/`lastRunFinished`: the run created last (ties: the greater name).
/// - The *last finished run* is the latest run that ended with a verdict: `Succeeded`, `Failed`,
///   `Error` or `TimedOut` (`Cancelled` runs say nothing about the recipe).
/// - `badge`: from the last finished run, `passing` if it `Succeeded`, `failing` otherwise; with
///   no finished run, `running` while some run is `Pending`/`Running`, and `unknown` without
///   runs. A run in progress does not hide the last known verdict.
/// - `level` (only when a finished run exists): 0, 1 if its `install` stage passed, 2 if
///   `upgrade` passed too, 3 if `backup-restore` passed too. `NotApplicable` does not count.
/// - `stages`: per stage, the result from the latest run in which that stage ended
///   (`Passed`, `Failed`, `NotApplicable`, `PreviousVersionFailed`; not `Skipped`).
/// - `lastTestedRef`: the last finished run's resolved commit, else its `spec.ref`.
/// - `observedGeneration`: the recipe's `generation`; `conditions` are kept as they are.
pub fn roll_up(recipe: &Recipe, runs: &[&TestRun]) -> RecipeStatus {
    let mut runs: Vec<&TestRun> = runs.to_vec();
    runs.sort_by(|a, b| {
        (a.metadata.creation_timestamp, a.name()).cmp(&(b.metadata.creation_timestamp, b.name()))
    });
    let mut run_counts = BTreeMap::new();
    for run in &runs {
        *run_counts
            .entry(run.status.phase.as_str().to_string())
            .or_insert(0) += 1;
    }
    let latest = runs.last();
    let finished = runs.iter().rev().find(|r| has_verdict(r.status.phase));
    let mut stages = BTreeMap::new();
    for run in runs.iter().rev() {
        for s in &run.status.stages {
            if ended(s.phase) && !stages.contains_key(s.stage.as_str()) {
                stages.insert(
                    s.stage.as_str().to_string(),
                    StageSummary {
                        phase: s.phase,
                        run: run.name().to_string(),
                    },
                );
            }
        }
    }
    let badge = match (finished, latest) {
        (Some(f), _) if f.status.phase == RunPhase::Succeeded => "passing",
        (Some(_), _) => "failing",
        (None, Some(_)) if runs.iter().any(|r| !r.status.phase.is_terminal()) => "running",
        _ => "unknown",
    };
    RecipeStatus {
        observed_generation: recipe.metadata.generation,
        run_counts,
        last_run: latest.map(|r| r.name().to_string()),
        last_run_phase: latest.map(|r| r.status.phase),
        last_run_finished: latest.and_then(|r| r.status.finished),
        stages,
        last_tested_ref: finished.map(|r| {
            r.status
                .commit
                .clone()
                .unwrap_or_else(|| r.spec.git_ref.clone())
        }),
        level: finished.map(|r| level(r)),
        badge: Some(badge.to_string()),
        conditions: recipe.status.conditions.clone(),
    }
}

fn has_verdict(phase: RunPhase) -> bool {
    matches!(
        phase,
        RunPhase::Succeeded | RunPhase::Failed | RunPhase::Error | RunPhase::TimedOut
    )
}

fn ended(phase: StagePhase) -> bool {
    matches!(
        phase,
        StagePhase::Passed
            | StagePhase::Failed
            | StagePhase::NotApplicable
            | StagePhase::PreviousVersionFailed
    )
}

fn level(run: &TestRun) -> u8 {
    let passed = |kind: StageKind| {
        run.status
            .stages
            .iter()
            .any(|s| s.stage == kind && s.phase == StagePhase::Passed)
    };
    StageKind::ALL.iter().take_while(|k| passed(**k)).count() as u8
}

/// Rolls up one Recipe and writes its status only if it changed (a no-op pass writes nothing).
pub async fn reconcile<St: Store>(
    recipe: Arc<Recipe>,
    ctx: Arc<Context<St>>,
) -> Result<Action, RollUpError> {
    let all = ctx.runs.list();
    let runs: Vec<&TestRun> = all
        .iter()
        .map(|r| r.as_ref())
        .filter(|r| r.spec.recipe == recipe.name())
        .collect();
    let status = roll_up(&recipe, &runs);
    if status != recipe.status {
        let mut updated = (*recipe).clone();
        updated.status = status;
        ctx.store
            .replace_status(updated)
            .await
            .map_err(|source| RollUpError {
                recipe: recipe.name().to_string(),
                source,
            })?;
    }
    Ok(Action::await_change())
}

/// Starts the roll-up controller (Recipes, triggered by their TestRuns) and the gauge
/// refresher, until `shutdown`.
pub fn start<St: Store>(
    store: &St,
    metrics: Arc<Metrics>,
    settings: RuntimeSettings,
    shutdown: CancellationToken,
) -> Started {
    let (runs, runs_writer) = reflector::cache::<TestRunSpec>();
    let run_changes = reflector::reflector(
        runs_writer,
        watcher::watch::<TestRunSpec, St>(store.clone()),
    );
    let controller = Controller::<RecipeSpec>::for_store(NAME, store)
        .settings(settings)
        .metrics(metrics.clone())
        .requires(&runs)
        .watches(run_changes, |run: &TestRun| Some(run.spec.recipe.clone()));
    let recipes = controller.cache();
    let ready = vec![recipes.ready_signal(), runs.ready_signal()];
    let ctx = Arc::new(Context {
        store: store.clone(),
        runs: runs.clone(),
    });
    let gauges = tokio::spawn(refresh_gauges(recipes, runs, metrics, shutdown.clone()));
    let run = tokio::spawn(controller.run(reconcile::<St>, ctx, shutdown));
    Started {
        name: NAME,
        ready,
        tasks: vec![run, gauges],
    }
}

/// Sets `ccci_testruns{phase}` and `ccci_records{kind}` for Recipes and TestRuns from the
/// caches, now and every few seconds, until `shutdown`.
pub async fn refresh_gauges(
    recipes: Cache<RecipeSpec>,
    runs: Cache<TestRunSpec>,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) {
    tokio::select! {
        () = shutdown.cancelled() => return,
        () = async { recipes.wait_ready().await; runs.wait_ready().await } => {}
    }
    loop {
        let all = runs.list();
        let mut per_phase: BTreeMap<RunPhase, usize> = BTreeMap::new();
        for run in &all {
            *per_phase.entry(run.status.phase).or_default() += 1;
        }
        metrics.set_testruns(|p| per_phase.get(&p).copied().unwrap_or(0));
        metrics.set_records(Kind::TestRun, all.len());
        metrics.set_records(Kind::Recipe, recipes.len());
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(GAUGE_PERIOD) => {}
        }
    }
}
