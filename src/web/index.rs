//! The dashboard's in-memory view of every TestRun: one small [`RunRow`] per run (not the whole
//! record), kept current from a store watch, so that the overview and the runs list never decode
//! thousands of records per request.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use crate::api::{RunPhase, StageKind, TestRun, TestRunSpec};
use crate::recipe::levels::{self, StageResult};
use crate::runtime::{Index, reflector, watcher};
use crate::store::Store;

/// What the dashboard lists of one TestRun.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunRow {
    /// The run's name.
    pub name: String,
    /// `spec.recipe`.
    pub recipe: String,
    /// `spec.pr`.
    pub pr: Option<u64>,
    /// `spec.git`: set when the run tested another repository than its recipe's (a fork).
    pub git: Option<String>,
    /// `spec.ref`.
    pub git_ref: String,
    /// `status.commit`.
    pub commit: Option<String>,
    /// `status.app.version`.
    pub version: Option<String>,
    /// `spec.source.requester`.
    pub requester: Option<String>,
    /// `status.phase`.
    pub phase: RunPhase,
    /// `status.queuePosition`.
    pub queue_position: Option<u32>,
    /// `metadata.creationTimestamp`.
    pub created: Option<DateTime<Utc>>,
    /// `status.started`.
    pub started: Option<DateTime<Utc>>,
    /// `status.finished`.
    pub finished: Option<DateTime<Utc>>,
    /// `spec.cancel`.
    pub cancel_requested: bool,
    /// Whether everything the run created in Swarm is gone.
    pub torn_down: bool,
    /// Whether the record is being deleted.
    pub deleting: bool,
    /// Its stages, in plan order.
    pub stages: Vec<StageResult>,
}

impl RunRow {
    /// Whether the run speaks for the result of its recipe, whose repository is `recipe_git`
    /// ([`levels::speaks_for`]).
    pub fn speaks_for(&self, recipe_git: &str) -> bool {
        levels::speaks_for(self.pr, self.git.as_deref(), recipe_git)
    }

    /// Whether the run ended with something to say about the recipe (`Cancelled` runs do not).
    pub fn has_verdict(&self) -> bool {
        self.phase.has_verdict()
    }

    /// The tested commit: `status.commit`, else `spec.ref`.
    pub fn tested_ref(&self) -> &str {
        self.commit.as_deref().unwrap_or(&self.git_ref)
    }

    /// How long it ran, once finished.
    pub fn duration(&self) -> Option<chrono::Duration> {
        Some(self.finished? - self.started?).filter(|d| *d >= chrono::Duration::zero())
    }

    /// The stage of `kind`, if planned.
    pub fn stage(&self, kind: StageKind) -> Option<&StageResult> {
        levels::stage(&self.stages, kind)
    }

    /// Sort key: newest first (creation time, then name).
    pub fn newest_first(a: &RunRow, b: &RunRow) -> std::cmp::Ordering {
        (b.created, &b.name).cmp(&(a.created, &a.name))
    }
}

impl From<TestRun> for RunRow {
    fn from(run: TestRun) -> Self {
        let stages = run.status.stages.iter().map(StageResult::from).collect();
        let app = run.status.app;
        RunRow {
            name: run.metadata.name,
            recipe: run.spec.recipe,
            pr: run.spec.pr,
            git: run.spec.git,
            git_ref: run.spec.git_ref,
            commit: run.status.commit,
            version: app.and_then(|a| a.version),
            requester: run.spec.source.requester,
            phase: run.status.phase,
            queue_position: run.status.queue_position,
            created: run.metadata.creation_timestamp,
            started: run.status.started,
            finished: run.status.finished,
            cancel_requested: run.spec.cancel,
            torn_down: run.status.torn_down,
            deleting: run.metadata.deletion_timestamp.is_some(),
            stages,
        }
    }
}

/// The run index: one [`RunRow`] per TestRun.
pub type RunIndex = Index<RunRow>;

/// Starts keeping a [`RunIndex`] of `store` current, until `shutdown`. Needs a Tokio runtime.
pub fn start<St: Store>(store: &St, shutdown: CancellationToken) -> RunIndex {
    let (index, writer) = reflector::projected::<TestRunSpec, RunRow>(RunRow::from);
    let changes = reflector::reflector(writer, watcher::watch::<TestRunSpec, St>(store.clone()));
    tokio::spawn(async move {
        let mut changes = std::pin::pin!(changes);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                next = changes.next() => if next.is_none() { break },
            }
        }
    });
    index
}

/// The runs of `recipe`, newest first.
pub fn runs_of(index: &RunIndex, recipe: &str) -> Vec<Arc<RunRow>> {
    let mut runs = index.list_where(|r| r.recipe == recipe);
    runs.sort_by(|a, b| RunRow::newest_first(a, b));
    runs
}

/// Every run, newest first.
pub fn all_newest_first(index: &RunIndex) -> Vec<Arc<RunRow>> {
    let mut runs = index.list();
    runs.sort_by(|a, b| RunRow::newest_first(a, b));
    runs
}
