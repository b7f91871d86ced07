//! Retention: a periodic task that prunes finished TestRuns beyond `[retention] keep` per
//! recipe and PR (default-branch runs count as one group per recipe), with their run
//! directories (logs, facts, artifacts), so the store and memory stay bounded however long the
//! server runs. The run a recipe's latest result and level come from is never pruned.
//!
//! ```toml
//! [retention]
//! keep = 20              # finished runs kept per recipe and PR
//! interval_seconds = 600 # how often to prune (also once at start)
//! enabled = true
//! ```

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::api::{RunPhase, TestRun, TestRunSpec};
use crate::runlog::RunLogs;
use crate::store::{LabelSelector, Store, StoreError};

/// The `[retention]` settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetentionSettings {
    /// Whether finished runs are pruned at all. Default true.
    pub enabled: bool,
    /// Finished runs kept per recipe and PR. Default 20.
    pub keep: usize,
    /// Seconds between prunes (one also runs at start). Default 600.
    pub interval_seconds: u64,
}

impl Default for RetentionSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            keep: 20,
            interval_seconds: 600,
        }
    }
}

/// What pruning reads of a run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    /// The run's name.
    pub name: String,
    /// `spec.recipe`.
    pub recipe: String,
    /// `spec.pr`.
    pub pr: Option<u64>,
    /// `status.phase`.
    pub phase: RunPhase,
    /// `metadata.creationTimestamp`.
    pub created: Option<DateTime<Utc>>,
    /// Whether its swarm objects are gone (only such runs are pruned).
    pub torn_down: bool,
    /// Whether deletion was already requested.
    pub deleting: bool,
}

impl From<TestRun> for Candidate {
    fn from(r: TestRun) -> Self {
        Candidate {
            name: r.metadata.name,
            recipe: r.spec.recipe,
            pr: r.spec.pr,
            phase: r.status.phase,
            created: r.metadata.creation_timestamp,
            torn_down: r.status.torn_down,
            deleting: r.metadata.deletion_timestamp.is_some(),
        }
    }
}

/// The runs to prune: in each (recipe, PR) group, the finished, torn-down runs after the
/// newest `keep` finished ones. Never a run in progress, never one being deleted, and never a
/// recipe's newest run with a verdict (its latest result) nor its two newest default-branch
/// runs with a verdict (its level comes from the newest; level 8 reads the one before).
pub fn plan(runs: &[Candidate], keep: usize) -> Vec<String> {
    /// How many default-branch verdicts a level reads (`recipe::levels::of_recipe`).
    const LEVEL_RUNS: usize = 2;
    let mut sorted: Vec<&Candidate> = runs.iter().collect();
    sorted.sort_by(|a, b| (b.created, &b.name).cmp(&(a.created, &a.name)));
    let mut protected: HashSet<&str> = HashSet::new();
    let mut seen_any: HashSet<&str> = HashSet::new();
    let mut seen_default: HashMap<&str, usize> = HashMap::new();
    for r in sorted.iter().filter(|r| r.phase.has_verdict()) {
        if seen_any.insert(&r.recipe) {
            protected.insert(&r.name);
        }
        if r.pr.is_none() {
            let seen = seen_default.entry(&r.recipe).or_default();
            if *seen < LEVEL_RUNS {
                *seen += 1;
                protected.insert(&r.name);
            }
        }
    }
    let mut kept: BTreeMap<(&str, Option<u64>), usize> = BTreeMap::new();
    let mut out = Vec::new();
    for r in sorted {
        if !r.phase.is_terminal() || r.deleting {
            continue;
        }
        let n = kept.entry((&r.recipe, r.pr)).or_default();
        if *n < keep {
            *n += 1;
            continue;
        }
        if r.torn_down && !protected.contains(r.name.as_str()) {
            out.push(r.name.clone());
        }
    }
    out
}

/// Prunes once: deletes every planned run and, when the record is gone at once (no finalizer
/// to run), its directory; a run with a finalizer has its directory removed by the TestRun
/// reconciler's deletion path. Returns how many runs were deleted.
pub async fn prune_once<St: Store>(
    store: &St,
    logs: &RunLogs,
    keep: usize,
) -> Result<usize, StoreError> {
    let runs =
        store.list_map::<TestRunSpec, Candidate>(&LabelSelector::everything(), Candidate::from)?;
    let names = plan(&runs, keep);
    drop(runs);
    let mut deleted = 0;
    for name in names {
        match store.delete::<TestRunSpec>(&name).await {
            Ok(None) => {
                if let Err(e) = logs.remove_run(&name).await {
                    tracing::warn!(run = %name, error = %e, "retention: cannot remove the run directory");
                }
                deleted += 1;
            }
            Ok(Some(_)) => deleted += 1,
            Err(StoreError::NotFound { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(deleted)
}

/// Prunes at start and every `interval_seconds` until `shutdown`.
pub async fn run<St: Store>(
    store: St,
    logs: RunLogs,
    settings: RetentionSettings,
    shutdown: CancellationToken,
) {
    if !settings.enabled {
        return;
    }
    let period = Duration::from_secs(settings.interval_seconds.max(1));
    loop {
        match prune_once(&store, &logs, settings.keep).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                pruned = n,
                keep = settings.keep,
                "retention: pruned finished runs"
            ),
            Err(e) => tracing::warn!(error = %e, "retention: pruning failed; retrying later"),
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(period) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(name: &str, recipe: &str, pr: Option<u64>, phase: RunPhase, t: i64) -> Candidate {
        Candidate {
            name: name.into(),
            recipe: recipe.into(),
            pr,
            phase,
            created: DateTime::from_timestamp(t, 0),
            torn_down: true,
            deleting: false,
        }
    }

    #[test]
    fn keeps_the_newest_per_recipe_and_pr_and_never_a_running_one() {
        let mut runs: Vec<Candidate> = (0..10)
            .map(|i| c(&format!("a-pr1-{i}"), "a", Some(1), RunPhase::Failed, i))
            .collect();
        runs.push(c("a-pr2-0", "a", Some(2), RunPhase::Succeeded, 0));
        runs.push(c("a-pr1-running", "a", Some(1), RunPhase::Running, -5));
        let mut plan = plan(&runs, 3);
        plan.sort();
        // a-pr1-9 is the recipe's newest verdict (protected anyway), 8 and 7 complete the three.
        assert_eq!(
            plan,
            (0..7).map(|i| format!("a-pr1-{i}")).collect::<Vec<_>>()
        );
    }

    #[test]
    fn the_latest_result_and_level_survive_pruning() {
        let mut runs = vec![
            c("main-ok", "a", None, RunPhase::Succeeded, 1),
            c("main-cancel-1", "a", None, RunPhase::Cancelled, 2),
            c("main-cancel-2", "a", None, RunPhase::Cancelled, 3),
        ];
        // keep = 1: the newest default-branch run is a cancelled one, but the verdict that
        // decides the recipe's state and level stays.
        assert_eq!(plan(&runs, 1), ["main-cancel-1"]);
        // Level 8 reads the verdict before the newest: both stay, an older third goes.
        let mut three = runs.clone();
        three.push(c("main-older", "a", None, RunPhase::Failed, 0));
        three.push(c("main-new", "a", None, RunPhase::Succeeded, 4));
        let mut planned = plan(&three, 1);
        planned.sort();
        assert_eq!(planned, ["main-cancel-1", "main-cancel-2", "main-older"]);
        // Not torn down, or already being deleted: left alone.
        runs[1].torn_down = false;
        assert!(plan(&runs, 1).is_empty());
        runs[1].torn_down = true;
        runs[1].deleting = true;
        assert!(plan(&runs, 1).is_empty());
        // keep = 0 still keeps the protected runs.
        let runs = vec![
            c("pr", "b", Some(4), RunPhase::Failed, 5),
            c("m", "b", None, RunPhase::Failed, 1),
        ];
        assert!(plan(&runs, 0).is_empty());
    }

    #[tokio::test]
    async fn pruning_deletes_records_and_their_directories() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::SledStore::open(&dir.path().join("store")).unwrap();
        let logs = RunLogs::new(dir.path());
        for i in 0..5 {
            let mut run = TestRun::new(
                format!("r-{i}"),
                TestRunSpec {
                    recipe: "a".into(),
                    git: None,
                    git_ref: "main".into(),
                    pr: Some(1),
                    source: Default::default(),
                    stages: None,
                    upgrade_from: None,
                    cancel: false,
                    keep_on_failure: None,
                },
            );
            run = store.create(run).await.unwrap();
            run.status.phase = RunPhase::Failed;
            run.status.torn_down = true;
            store.replace_status(run).await.unwrap();
            let mut w = logs
                .writer(
                    &format!("r-{i}"),
                    "install",
                    crate::runlog::redact::Redactor::new(),
                )
                .await
                .unwrap();
            w.line("x").await.unwrap();
            w.finish().await.unwrap();
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(prune_once(&store, &logs, 2).await.unwrap(), 3);
        let left: Vec<String> = store
            .list::<TestRunSpec>(&LabelSelector::everything())
            .unwrap()
            .into_iter()
            .map(|r| r.metadata.name)
            .collect();
        assert_eq!(left, ["r-3", "r-4"]);
        assert!(!logs.run_dir("r-0").unwrap().exists());
        assert!(logs.run_dir("r-4").unwrap().exists());
        assert_eq!(prune_once(&store, &logs, 2).await.unwrap(), 0);
    }
}
