//! Admission of runs: the FIFO queue under `max_concurrent_runs`, queue positions, and which
//! run supersedes which (a newer `!testme` on the same pull request).

use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::api::{RunPhase, TestRun};
use crate::runtime::Keyed;

/// What admission and superseding read of a run. The controller's cache holds one per TestRun
/// instead of the whole record (the reconcile reads the record from the store anyway), so a
/// history of 10,000 finished runs costs little memory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueEntry {
    /// The run's name.
    pub name: String,
    /// Its `resourceVersion`: every write is a change the controller looks at.
    pub resource_version: String,
    /// `spec.recipe`.
    pub recipe: String,
    /// `spec.pr`.
    pub pr: Option<u64>,
    /// `metadata.creationTimestamp`.
    pub created: Option<DateTime<Utc>>,
    /// `status.phase`.
    pub phase: RunPhase,
    /// `spec.cancel`.
    pub cancel: bool,
    /// Whether the record is being deleted.
    pub deleting: bool,
}

impl QueueEntry {
    /// The entry of `run`.
    pub fn of(run: &TestRun) -> Self {
        QueueEntry {
            name: run.metadata.name.clone(),
            resource_version: run.metadata.resource_version.clone(),
            recipe: run.spec.recipe.clone(),
            pr: run.spec.pr,
            created: run.metadata.creation_timestamp,
            phase: run.status.phase,
            cancel: run.spec.cancel,
            deleting: run.is_deleting(),
        }
    }
}

impl From<TestRun> for QueueEntry {
    fn from(run: TestRun) -> Self {
        QueueEntry::of(&run)
    }
}

impl Keyed for QueueEntry {
    fn key(&self) -> &str {
        &self.name
    }
}

/// Whether a Pending run may start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    /// Start it now.
    Admit,
    /// Wait; `position` 1 is next.
    Wait {
        /// Position in the queue.
        position: u32,
    },
}

fn fifo_key(run: &QueueEntry) -> (Option<DateTime<Utc>>, &str) {
    (run.created, &run.name)
}

/// Whether `run` (Pending) is admitted, given every run the controller knows: at most `max`
/// runs are `Running` at once and Pending runs start in creation order (ties by name). Runs
/// being deleted or asked to cancel are not queued.
pub fn admission(run: &QueueEntry, all: &[Arc<QueueEntry>], max: usize) -> Admission {
    let running = all.iter().filter(|r| r.phase == RunPhase::Running).count();
    let mut queue: Vec<&QueueEntry> = all
        .iter()
        .map(|r| r.as_ref())
        .filter(|r| r.phase == RunPhase::Pending && !r.cancel && !r.deleting)
        .collect();
    queue.sort_by(|a, b| fifo_key(a).cmp(&fifo_key(b)));
    let index = queue
        .iter()
        .position(|r| r.name == run.name)
        .unwrap_or(queue.len());
    let free = max.max(1).saturating_sub(running);
    if index < free {
        Admission::Admit
    } else {
        Admission::Wait {
            position: (index - free + 1) as u32,
        }
    }
}

/// The newest run that supersedes `run`: one for the same recipe and pull request, created
/// after it. Runs without a pull request (manual runs) are never superseded.
pub fn superseded_by<'a>(run: &QueueEntry, all: &'a [Arc<QueueEntry>]) -> Option<&'a str> {
    let pr = run.pr?;
    all.iter()
        .filter(|r| r.recipe == run.recipe && r.pr == Some(pr))
        .filter(|r| fifo_key(r) > fifo_key(run))
        .max_by(|a, b| fifo_key(a).cmp(&fifo_key(b)))
        .map(|r| r.name.as_str())
}

/// How many runs for the same recipe and pull request were created before `run`: the `-<n>`
/// of its domain, so a repeated run never shares a stack with an earlier one — also while
/// both are fetching (it does not depend on what an earlier run has resolved yet).
pub fn attempt(run: &QueueEntry, all: &[Arc<QueueEntry>]) -> u32 {
    all.iter()
        .filter(|r| r.name != run.name)
        .filter(|r| r.recipe == run.recipe && r.pr == run.pr)
        .filter(|r| fifo_key(r) < fifo_key(run))
        .count() as u32
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone, Utc};

    use super::*;
    use crate::api::{Object, RunSource, TestRunSpec};

    fn run(name: &str, minute: i64, phase: RunPhase, pr: Option<u64>) -> Arc<QueueEntry> {
        let mut r = Object::new(
            name,
            TestRunSpec {
                recipe: "site".into(),
                git: None,
                git_ref: "main".into(),
                pr,
                source: RunSource::default(),
                stages: None,
                upgrade_from: None,
                cancel: false,
                keep_on_failure: None,
            },
        );
        r.metadata.creation_timestamp =
            Some(Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap() + Duration::minutes(minute));
        r.status.phase = phase;
        Arc::new(QueueEntry::of(&r))
    }

    #[test]
    fn pending_runs_start_in_creation_order_under_the_cap() {
        let all = vec![
            run("c", 3, RunPhase::Pending, None),
            run("a", 1, RunPhase::Pending, None),
            run("b", 2, RunPhase::Pending, None),
            run("old", 0, RunPhase::Succeeded, None),
        ];
        assert_eq!(admission(&all[1], &all, 1), Admission::Admit);
        assert_eq!(admission(&all[2], &all, 1), Admission::Wait { position: 1 });
        assert_eq!(admission(&all[0], &all, 1), Admission::Wait { position: 2 });
        assert_eq!(admission(&all[2], &all, 2), Admission::Admit);
    }

    #[test]
    fn a_running_run_takes_a_slot_and_cancelled_ones_do_not_queue() {
        let mut cancelled = (*run("a", 1, RunPhase::Pending, None)).clone();
        cancelled.cancel = true;
        let all = vec![
            run("busy", 0, RunPhase::Running, None),
            Arc::new(cancelled),
            run("b", 2, RunPhase::Pending, None),
        ];
        assert_eq!(admission(&all[2], &all, 1), Admission::Wait { position: 1 });
        assert_eq!(admission(&all[2], &all, 2), Admission::Admit);
    }

    #[test]
    fn a_newer_run_on_the_same_pull_request_supersedes_older_ones() {
        let all = vec![
            run("pr1-a", 1, RunPhase::Running, Some(1)),
            run("pr1-b", 2, RunPhase::Pending, Some(1)),
            run("pr1-c", 3, RunPhase::Pending, Some(1)),
            run("pr2", 4, RunPhase::Pending, Some(2)),
            run("manual", 5, RunPhase::Pending, None),
        ];
        assert_eq!(superseded_by(&all[0], &all), Some("pr1-c"));
        assert_eq!(superseded_by(&all[1], &all), Some("pr1-c"));
        assert_eq!(superseded_by(&all[2], &all), None);
        assert_eq!(superseded_by(&all[3], &all), None);
        assert_eq!(superseded_by(&all[4], &all), None);
    }

    #[test]
    fn repeated_runs_of_one_pull_request_get_increasing_attempts() {
        let all = vec![
            run("one", 1, RunPhase::Running, Some(1)),
            run("two", 2, RunPhase::Pending, Some(1)),
            run("other-pr", 0, RunPhase::Pending, Some(2)),
        ];
        assert_eq!(attempt(&all[0], &all), 0);
        assert_eq!(attempt(&all[1], &all), 1);
        assert_eq!(attempt(&all[2], &all), 0);
    }
}
