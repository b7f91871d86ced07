//! The Recipe status roll-up: counts, latest run, per-stage results, level and badge of each
//! Recipe, computed from its TestRuns; plus the `ccci_testruns{phase}` and `ccci_records` gauges.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use super::Started;
use crate::api::{
    Badge, Kind, Recipe, RecipeSpec, RecipeStatus, RunPhase, StagePhase, StageSummary, TestRun,
    TestRunSpec,
};
use crate::metrics::Metrics;
use crate::recipe::facts::{self, RecipeFacts};
use crate::recipe::levels::{self, StageResult};
use crate::runlog::RunLogs;
use crate::runtime::{Action, Cache, Controller, Index, RuntimeSettings, reflector, watcher};
use crate::store::{Store, StoreError};

/// The controller's name (its `controller` metric label).
pub const NAME: &str = "recipe-status";

/// How often the record-count gauges are refreshed.
const GAUGE_PERIOD: Duration = Duration::from_secs(5);

/// What the reconcile reads and writes through.
pub struct Context<St> {
    /// Where statuses are written.
    pub store: St,
    /// What the roll-up reads of every TestRun, kept current by the controller.
    pub runs: Index<RunSummary>,
    /// Where each run's recorded recipe facts are (levels 6 and 7 read them); without it those
    /// levels are not reached.
    pub logs: Option<RunLogs>,
}

/// Looks up the facts a run's checkout recorded, by run name.
pub type FactsLookup<'a> = &'a dyn Fn(&str) -> Option<RecipeFacts>;

/// What the roll-up reads of one TestRun. The controller keeps one per TestRun instead of the
/// whole record (whose stages carry steps, messages, artifacts): with 10,000 runs that is the
/// difference between a few megabytes and a few tens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunSummary {
    /// The run's name.
    pub name: String,
    /// `spec.recipe`.
    pub recipe: String,
    /// `metadata.creationTimestamp`.
    pub created: Option<DateTime<Utc>>,
    /// `status.phase`.
    pub phase: RunPhase,
    /// `status.finished`.
    pub finished: Option<DateTime<Utc>>,
    /// The tested commit: `status.commit`, else `spec.ref`.
    pub tested_ref: String,
    /// Each stage's result, in the run's order.
    pub stages: Vec<StageResult>,
    /// `spec.git`: a run of another repository than the Recipe's says nothing about it.
    pub git: Option<String>,
    /// `spec.pr`: pull-request runs never change the default-branch result.
    pub pr: Option<u64>,
}

impl From<TestRun> for RunSummary {
    fn from(run: TestRun) -> Self {
        RunSummary {
            name: run.metadata.name,
            recipe: run.spec.recipe,
            created: run.metadata.creation_timestamp,
            phase: run.status.phase,
            finished: run.status.finished,
            tested_ref: run.status.commit.unwrap_or(run.spec.git_ref),
            stages: run.status.stages.iter().map(StageResult::from).collect(),
            git: run.spec.git,
            pr: run.spec.pr,
        }
    }
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
/// - The *last finished run* is the latest run of the Recipe's own repository (no `spec.git`,
///   or the Recipe's `git`) that ended with a verdict: `Succeeded`, `Failed`, `Error` or
///   `TimedOut` (`Cancelled` runs, and runs of another repository, say nothing about the
///   recipe). `stages` come from such runs only, too.
/// - `badge`: from the last finished run, `passing` if it `Succeeded`, `failing` otherwise; with
///   no finished run, `running` while some run is `Pending`/`Running`, and `unknown` without
///   runs. A run in progress does not hide the last known verdict.
/// - `level` (only when a finished run exists): the level 0–8 of `docs/levels.md`
///   ([`levels::of_recipe`], the dashboard's), from the last finished run, the one before it
///   and the facts their checkouts recorded (`facts`, by run name).
/// - `stages`: per stage, the result from the latest run in which that stage ended
///   (`Passed`, `Failed`, `NotApplicable`, `PreviousVersionFailed`; not `Skipped`).
/// - `lastTestedRef`: the last finished run's resolved commit, else its `spec.ref`.
/// - `observedGeneration`: the recipe's `generation`; `conditions` are kept as they are.
/// - Pull-request runs (`spec.pr` set) count in `runCounts` and `lastRun*` only: the verdict,
///   `badge`, `level`, `stages` and `lastTestedRef` describe the default branch.
pub fn roll_up(recipe: &Recipe, runs: &[&RunSummary], facts: FactsLookup<'_>) -> RecipeStatus {
    let mut all: Vec<&RunSummary> = runs.to_vec();
    all.sort_by(|a, b| (a.created, &a.name).cmp(&(b.created, &b.name)));
    let mut run_counts = BTreeMap::new();
    for run in &all {
        *run_counts
            .entry(run.phase.as_str().to_string())
            .or_insert(0) += 1;
    }
    let latest = all.last();
    let runs: Vec<&RunSummary> = all
        .iter()
        .copied()
        .filter(|r| levels::speaks_for(r.pr, r.git.as_deref(), &recipe.spec.git))
        .collect();
    let mut verdicts = runs.iter().rev().filter(|r| r.phase.has_verdict());
    let finished = verdicts.next();
    let level = finished.map(|run| {
        let latest_facts = facts(&run.name);
        let previous = verdicts.next();
        let previous_facts = previous.and_then(|p| facts(&p.name));
        levels::of_recipe(
            (&run.stages, latest_facts.as_ref()),
            previous.map(|p| (&p.stages[..], previous_facts.as_ref())),
        )
    });
    let mut stages = BTreeMap::new();
    for run in runs.iter().rev() {
        for stage in &run.stages {
            if ended(stage.phase) && !stages.contains_key(stage.kind.as_str()) {
                stages.insert(
                    stage.kind.as_str().to_string(),
                    StageSummary {
                        phase: stage.phase,
                        run: run.name.clone(),
                    },
                );
            }
        }
    }
    let badge = match (finished, latest) {
        (Some(f), _) if f.phase == RunPhase::Succeeded => Badge::Passing,
        (Some(_), _) => Badge::Failing,
        (None, Some(_)) if runs.iter().any(|r| !r.phase.is_terminal()) => Badge::Running,
        _ => Badge::Unknown,
    };
    RecipeStatus {
        observed_generation: recipe.metadata.generation,
        run_counts,
        last_run: latest.map(|r| r.name.clone()),
        last_run_phase: latest.map(|r| r.phase),
        last_run_finished: latest.and_then(|r| r.finished),
        stages,
        last_tested_ref: finished.map(|r| r.tested_ref.clone()),
        level,
        badge: Some(badge),
        conditions: recipe.status.conditions.clone(),
    }
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

/// Rolls up one Recipe and writes its status only if it changed (a no-op pass writes nothing).
pub async fn reconcile<St: Store>(
    recipe: Arc<Recipe>,
    ctx: Arc<Context<St>>,
) -> Result<Action, RollUpError> {
    let own = ctx.runs.list_where(|r| r.recipe == recipe.name());
    let runs: Vec<&RunSummary> = own.iter().map(|r| r.as_ref()).collect();
    let lookup = |run: &str| facts::load_run(ctx.logs.as_ref()?, run);
    let status = roll_up(&recipe, &runs, &lookup);
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
/// refresher, until `shutdown`. `logs` is where runs recorded their recipe facts.
pub fn start<St: Store>(
    store: &St,
    logs: Option<RunLogs>,
    metrics: Arc<Metrics>,
    settings: RuntimeSettings,
    shutdown: CancellationToken,
) -> Started {
    let (runs, runs_writer) = reflector::projected::<TestRunSpec, RunSummary>(RunSummary::from);
    let run_changes = reflector::reflector(
        runs_writer,
        watcher::watch::<TestRunSpec, St>(store.clone()),
    );
    let controller = Controller::<RecipeSpec>::for_store(NAME, store)
        .settings(settings)
        .metrics(metrics.clone())
        .requires(&runs)
        .watches(run_changes, |run: &RunSummary| Some(run.recipe.clone()));
    let recipes = controller.cache();
    let ready = vec![recipes.ready_signal(), runs.ready_signal()];
    let ctx = Arc::new(Context {
        store: store.clone(),
        runs: runs.clone(),
        logs,
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
    runs: Index<RunSummary>,
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
            *per_phase.entry(run.phase).or_default() += 1;
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
