//! Estimated start and finish of running and queued runs, from past durations. Pure.

use chrono::{DateTime, Duration, Utc};

use super::index::RunRow;

/// The duration assumed for a recipe without a finished run.
pub const DEFAULT_DURATION: Duration = Duration::minutes(10);

/// A running or queued run with its estimates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Estimate {
    /// The run.
    pub name: String,
    /// 1 = next to start; `None` while running.
    pub position: Option<u32>,
    /// When it started, or is expected to.
    pub start: DateTime<Utc>,
    /// When it is expected to finish.
    pub finish: DateTime<Utc>,
}

/// The typical duration of a recipe's run: the median of its last (up to) five finished runs.
pub fn typical(durations: &[Duration]) -> Duration {
    let mut d: Vec<Duration> = durations.iter().take(5).copied().collect();
    if d.is_empty() {
        return DEFAULT_DURATION;
    }
    d.sort();
    d[d.len() / 2]
}

/// Estimates for `active` runs (Running and Pending). Running runs occupy the slots (as many
/// as are running, at least one); queued runs start, in queue order, as slots free up.
pub fn estimate(
    active: &[&RunRow],
    duration_of: &dyn Fn(&str) -> Duration,
    now: DateTime<Utc>,
) -> Vec<Estimate> {
    let mut running: Vec<&RunRow> = active
        .iter()
        .copied()
        .filter(|r| r.phase == crate::api::RunPhase::Running)
        .collect();
    running.sort_by_key(|r| (r.started, r.name.clone()));
    let mut queued: Vec<&RunRow> = active
        .iter()
        .copied()
        .filter(|r| r.phase == crate::api::RunPhase::Pending)
        .collect();
    queued.sort_by_key(|r| {
        (
            r.queue_position.unwrap_or(u32::MAX),
            r.created,
            r.name.clone(),
        )
    });
    let mut out = Vec::new();
    let mut slots: Vec<DateTime<Utc>> = Vec::new();
    for r in running {
        let start = r.started.unwrap_or(now);
        // A run past its typical duration is expected to end any moment, not in the past.
        let finish = (start + duration_of(&r.recipe)).max(now);
        slots.push(finish);
        out.push(Estimate {
            name: r.name.clone(),
            position: None,
            start,
            finish,
        });
    }
    if slots.is_empty() {
        slots.push(now);
    }
    for (i, r) in queued.into_iter().enumerate() {
        let (slot, free) = slots
            .iter()
            .enumerate()
            .min_by_key(|(_, t)| **t)
            .map(|(i, t)| (i, *t))
            .unwrap_or((0, now));
        let finish = free + duration_of(&r.recipe);
        slots[slot] = finish;
        let position = r.queue_position.unwrap_or(i as u32 + 1);
        out.push(Estimate {
            name: r.name.clone(),
            position: Some(position),
            start: free,
            finish,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::RunPhase;

    fn row(
        name: &str,
        recipe: &str,
        phase: RunPhase,
        started: Option<i64>,
        pos: Option<u32>,
    ) -> RunRow {
        RunRow {
            name: name.into(),
            recipe: recipe.into(),
            pr: None,
            git: None,
            git_ref: "main".into(),
            commit: None,
            version: None,
            requester: None,
            phase,
            queue_position: pos,
            created: None,
            started: started.map(|s| DateTime::from_timestamp(s, 0).unwrap()),
            finished: None,
            cancel_requested: false,
            torn_down: false,
            deleting: false,
            stages: vec![],
        }
    }

    #[test]
    fn queued_runs_start_when_the_running_one_should_finish() {
        let now = DateTime::from_timestamp(1000, 0).unwrap();
        let a = row("a", "slow", RunPhase::Running, Some(900), None);
        let c = row("c", "fast", RunPhase::Pending, None, Some(2));
        let b = row("b", "fast", RunPhase::Pending, None, Some(1));
        let dur = |r: &str| {
            if r == "slow" {
                Duration::seconds(300)
            } else {
                Duration::seconds(60)
            }
        };
        let e = estimate(&[&a, &c, &b], &dur, now);
        let at = |s: i64| DateTime::from_timestamp(s, 0).unwrap();
        assert_eq!(
            e[0],
            Estimate {
                name: "a".into(),
                position: None,
                start: at(900),
                finish: at(1200)
            }
        );
        assert_eq!(
            e[1],
            Estimate {
                name: "b".into(),
                position: Some(1),
                start: at(1200),
                finish: at(1260)
            }
        );
        assert_eq!(
            e[2],
            Estimate {
                name: "c".into(),
                position: Some(2),
                start: at(1260),
                finish: at(1320)
            }
        );
        // Overdue: expected to finish now, not in the past; an empty machine starts now.
        let late = row("late", "fast", RunPhase::Running, Some(0), None);
        assert_eq!(estimate(&[&late], &dur, now)[0].finish, now);
        assert_eq!(estimate(&[&b], &dur, now)[0].start, now);
    }

    #[test]
    fn the_typical_duration_is_the_median_of_the_last_five() {
        let s = Duration::seconds;
        assert_eq!(typical(&[]), DEFAULT_DURATION);
        assert_eq!(typical(&[s(10), s(500), s(20)]), s(20));
        assert_eq!(
            typical(&[s(1), s(2), s(3), s(4), s(5), s(1000), s(1000)]),
            s(3)
        );
    }
}
