//! Default-branch runs: each enrolled recipe is tested when its default branch moves, when a
//! new release tag appears, and on a period, so it always has a current result on its default
//! branch (the one its badge and level show). These runs have no pull request.
//!
//! Run names are deterministic (`<recipe>-<branch>-<sha12>`, `<recipe>-tag-<tag>`,
//! `<recipe>-sched-<period index>`), so a restart between storing a run and saving the state
//! creates nothing twice.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::cursor::RecipeState;
use super::trigger::{name_with_suffix, slug};

/// A default-branch run to create.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BranchRun {
    /// Its name.
    pub name: String,
    /// The commit to test.
    pub sha: String,
    /// `branch`, `tag` or `schedule` (the trigger label).
    pub trigger: &'static str,
}

/// What the forge says now about a recipe's default branch.
#[derive(Clone, Debug)]
pub struct Observed<'a> {
    /// The default branch's name.
    pub branch: &'a str,
    /// Its commit.
    pub head: &'a str,
    /// The newest tags: (name, commit).
    pub tags: &'a [(String, String)],
    /// Now.
    pub now: DateTime<Utc>,
    /// The scheduled-run period (`None`: no scheduled runs).
    pub period: Option<Duration>,
}

fn short(sha: &str) -> &str {
    &sha[..sha.len().min(12)]
}

/// The runs to create for `recipe` given what was `seen` before, and updates `seen` to the
/// observation (the caller saves it after storing the runs). The first observation of a
/// recipe tests its head once; tags present then are history.
pub fn plan(recipe: &str, seen: &mut RecipeState, now: &Observed<'_>) -> Vec<BranchRun> {
    let mut runs = Vec::new();
    let first = seen.branch_head.is_none();
    if seen.branch_head.as_deref() != Some(now.head) {
        runs.push(BranchRun {
            name: name_with_suffix(
                recipe,
                &format!("{}-{}", slug(now.branch, 20), short(now.head)),
            ),
            sha: now.head.to_string(),
            trigger: "branch",
        });
        seen.branch_head = Some(now.head.to_string());
    }
    for (tag, sha) in now.tags {
        if seen.tags.contains(tag) {
            continue;
        }
        if !first {
            runs.push(BranchRun {
                name: name_with_suffix(recipe, &format!("tag-{}", slug(tag, 40))),
                sha: sha.clone(),
                trigger: "tag",
            });
        }
        seen.tags.push(tag.clone());
    }
    // Keep the tag memory bounded by what the forge shows (its newest page).
    if seen.tags.len() > 200 {
        let drop = seen.tags.len() - 200;
        seen.tags.drain(..drop);
    }
    if let Some(period) = now.period.filter(|p| !p.is_zero()) {
        let secs = period.as_secs().max(1) as i64;
        let due = seen
            .last_scheduled
            .is_none_or(|t| (now.now - t).num_seconds() >= secs);
        if due {
            if !first && runs.is_empty() {
                runs.push(BranchRun {
                    name: name_with_suffix(
                        recipe,
                        &format!("sched-{}", now.now.timestamp() / secs),
                    ),
                    sha: now.head.to_string(),
                    trigger: "schedule",
                });
            }
            seen.last_scheduled = Some(now.now);
        }
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::validate_name;

    fn obs<'a>(head: &'a str, tags: &'a [(String, String)], now: DateTime<Utc>) -> Observed<'a> {
        Observed {
            branch: "main",
            head,
            tags,
            now,
            period: Some(Duration::from_secs(7 * 86400)),
        }
    }

    #[test]
    fn the_first_look_tests_the_head_once_and_tags_then_are_history() {
        let mut s = RecipeState::default();
        let now = Utc::now();
        let tags = vec![("1.0.0+1".to_string(), "a".repeat(40))];
        let runs = plan("site", &mut s, &obs(&"b".repeat(40), &tags, now));
        assert_eq!(runs.len(), 1);
        assert_eq!(runs[0].name, format!("site-main-{}", "b".repeat(12)));
        assert_eq!(runs[0].trigger, "branch");
        validate_name(&runs[0].name).unwrap();
        // The same observation again: nothing.
        assert!(plan("site", &mut s, &obs(&"b".repeat(40), &tags, now)).is_empty());
    }

    #[test]
    fn a_moved_branch_a_new_tag_and_the_period_each_make_a_run() {
        let mut s = RecipeState::default();
        let t0 = Utc::now();
        let none: Vec<(String, String)> = vec![];
        plan("site", &mut s, &obs("aaa", &none, t0));
        let moved = plan("site", &mut s, &obs("bbb", &none, t0));
        assert_eq!(moved.len(), 1);
        assert_eq!(moved[0].sha, "bbb");
        let tags = vec![("1.1.0+2".to_string(), "ccc".to_string())];
        let tagged = plan("site", &mut s, &obs("bbb", &tags, t0));
        assert_eq!(tagged.len(), 1);
        assert_eq!(tagged[0].name, "site-tag-1-1-0-2");
        assert_eq!(tagged[0].sha, "ccc");
        assert!(
            plan(
                "site",
                &mut s,
                &obs("bbb", &tags, t0 + chrono::Duration::days(1))
            )
            .is_empty()
        );
        let weekly = plan(
            "site",
            &mut s,
            &obs("bbb", &tags, t0 + chrono::Duration::days(8)),
        );
        assert_eq!(weekly.len(), 1);
        assert_eq!(weekly[0].trigger, "schedule");
        assert_eq!(weekly[0].sha, "bbb");
    }
}
