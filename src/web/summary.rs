//! Per-recipe summaries the pages and badges show: the latest default-branch verdict, its
//! level, the badge state, the latest PR run. Pure over the run rows; recorded facts come
//! through a lookup function.

use std::sync::Arc;

use crate::recipe::facts::RecipeFacts;
use crate::recipe::levels;

use super::badge::BadgeState;
use super::index::RunRow;

/// What the overview shows of one recipe.
#[derive(Clone, Debug)]
pub struct RecipeSummary {
    /// The latest default-branch run with a verdict (`Succeeded`, `Failed`, `Error`, `TimedOut`).
    pub latest: Option<Arc<RunRow>>,
    /// The facts its checkout recorded.
    pub facts: Option<Arc<RecipeFacts>>,
    /// Its level.
    pub level: Option<u8>,
    /// The badge state.
    pub state: BadgeState,
    /// The latest run made for a pull request.
    pub latest_pr: Option<Arc<RunRow>>,
    /// The latest run of any kind.
    pub latest_any: Option<Arc<RunRow>>,
}

/// Summarises a recipe whose repository is `git` from its runs, **newest first**; `facts`
/// looks up a run's recorded facts. Only runs that speak for the recipe (default branch, own
/// repository: the roll-up's rule) decide its state and level.
pub fn summarise(
    runs: &[Arc<RunRow>],
    git: &str,
    facts: &dyn Fn(&RunRow) -> Option<Arc<RecipeFacts>>,
) -> RecipeSummary {
    let mut verdicts = runs.iter().filter(|r| r.speaks_for(git) && r.has_verdict());
    let latest = verdicts.next().cloned();
    let previous = verdicts.next();
    let latest_facts = latest.as_deref().and_then(facts);
    let level = latest.as_deref().map(|run| {
        let prev_facts = previous.and_then(|p| facts(p));
        let prev = previous.map(|p| (&p.stages[..], prev_facts.as_deref()));
        levels::of_recipe((&run.stages, latest_facts.as_deref()), prev)
    });
    let state = match &latest {
        Some(r) if r.phase == crate::api::RunPhase::Succeeded => BadgeState::Passing,
        Some(_) => BadgeState::Failing,
        // Unlike the roll-up's badge, the overview shows any run in progress (a PR's too) on a
        // recipe with no verdict yet: docs/dashboard.md, "yellow running (no verdict yet)".
        None if runs.iter().any(|r| !r.phase.is_terminal()) => BadgeState::Running,
        None => BadgeState::Unknown,
    };
    RecipeSummary {
        latest,
        facts: latest_facts,
        level,
        state,
        latest_pr: runs.iter().find(|r| r.pr.is_some()).cloned(),
        latest_any: runs.first().cloned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::RunPhase;

    const GIT: &str = "https://git.example.org/x.git";

    fn row(name: &str, pr: Option<u64>, phase: RunPhase) -> Arc<RunRow> {
        Arc::new(RunRow {
            name: name.into(),
            recipe: "x".into(),
            pr,
            git: None,
            git_ref: "main".into(),
            commit: None,
            version: None,
            requester: None,
            phase,
            queue_position: None,
            created: None,
            started: None,
            finished: None,
            cancel_requested: false,
            torn_down: true,
            deleting: false,
            stages: vec![],
        })
    }

    #[test]
    fn only_default_branch_verdicts_decide_the_state() {
        let none = |_: &RunRow| None;
        let runs = vec![
            row("pr-fail", Some(3), RunPhase::Failed),
            row("cancelled", None, RunPhase::Cancelled),
            row("ok", None, RunPhase::Succeeded),
            row("old-fail", None, RunPhase::Failed),
        ];
        let s = summarise(&runs, GIT, &none);
        assert_eq!(s.state, BadgeState::Passing);
        assert_eq!(s.latest.unwrap().name, "ok");
        assert_eq!(s.latest_pr.unwrap().name, "pr-fail");
        assert_eq!(s.level, Some(0));
        let s = summarise(&runs[3..], GIT, &none);
        assert_eq!(s.state, BadgeState::Failing);
        let s = summarise(&[row("new", None, RunPhase::Running)], GIT, &none);
        assert_eq!((s.state, s.level), (BadgeState::Running, None));
        let s = summarise(&[], GIT, &none);
        assert_eq!(s.state, BadgeState::Unknown);
        assert!(s.latest_any.is_none());
    }

    /// The roll-up's rule: a run of another repository (a fork) gives no verdict; a run in
    /// progress of any kind still shows a recipe without a verdict as running.
    #[test]
    fn runs_of_another_repository_do_not_decide_the_state() {
        let none = |_: &RunRow| None;
        let mut fork = row("fork", None, RunPhase::Succeeded);
        Arc::make_mut(&mut fork).git = Some("https://git.example.org/someone/x.git".into());
        let mut same = row("same-url", None, RunPhase::Failed);
        Arc::make_mut(&mut same).git = Some(GIT.into());
        let s = summarise(&[fork.clone(), same], GIT, &none);
        assert_eq!(s.state, BadgeState::Failing);
        assert_eq!(s.latest.unwrap().name, "same-url");
        let s = summarise(&[fork], GIT, &none);
        assert_eq!((s.state, s.level), (BadgeState::Unknown, None));
        let s = summarise(&[row("pr", Some(1), RunPhase::Running)], GIT, &none);
        assert_eq!(s.state, BadgeState::Running);
    }
}
