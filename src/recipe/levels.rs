//! Recipe quality levels 0–8 (in the spirit of YunoHost's app levels), computed from the
//! stage results of one finished default-branch run and the facts its checkout recorded. Pure;
//! `docs/levels.md` is the definition and this file follows it. The one computation behind
//! both `Recipe.status.level` and the dashboard. Levels are cumulative: a recipe is at level
//! *n* when every criterion 1..=*n* holds.

use crate::api::{StageKind, StagePhase, StageStatus};

use super::claims;
use super::facts::RecipeFacts;

/// What a level (and a claim) reads of one stage of a run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StageResult {
    /// Which stage.
    pub kind: StageKind,
    /// Its result.
    pub phase: StagePhase,
    /// Tests that passed.
    pub passed: u32,
    /// Tests that failed.
    pub failed: u32,
    /// Tests skipped.
    pub skipped: u32,
    /// Whether a converge step of the stage succeeded (the app deployed and converged).
    pub converged: bool,
}

impl From<&StageStatus> for StageResult {
    fn from(s: &StageStatus) -> Self {
        StageResult {
            kind: s.stage,
            phase: s.phase,
            passed: s.tests.passed,
            failed: s.tests.failed,
            skipped: s.tests.skipped,
            converged: s
                .steps
                .iter()
                .any(|st| st.name.as_str().starts_with("converge") && st.ok == Some(true)),
        }
    }
}

/// Whether a run speaks for its recipe's result (badge, level, tested ref): a default-branch
/// run (no `pr`) of the recipe's own repository (no `git` of its own, or the recipe's). A
/// pull-request run, or a run of a fork, says nothing about the recipe.
pub fn speaks_for(pr: Option<u64>, run_git: Option<&str>, recipe_git: &str) -> bool {
    pr.is_none() && run_git.is_none_or(|g| g == recipe_git)
}

/// The result of stage `kind` among `stages`.
pub fn stage(stages: &[StageResult], kind: StageKind) -> Option<&StageResult> {
    stages.iter().find(|s| s.kind == kind)
}

/// The highest level.
pub const MAX: u8 = 8;

/// What each level means (index = level), as on the dashboard and in `docs/levels.md`.
pub const MEANING: [&str; 9] = [
    "does not deploy",
    "deploys and converges",
    "install tests pass",
    "upgrade from the previous release keeps the data",
    "backup and restore bring the data back",
    "tests ran and passed in every stage",
    "every service has a healthcheck",
    "README metadata present, no claim contradicted",
    "level 7 in two default-branch runs in a row",
];

fn passed(stages: &[StageResult], kind: StageKind) -> bool {
    stage(stages, kind).is_some_and(|s| s.phase == StagePhase::Passed)
}

/// The level of a finished default-branch run with these `stages`, given the facts its
/// checkout recorded and the level of the default-branch run before it (for level 8).
pub fn level(stages: &[StageResult], facts: Option<&RecipeFacts>, previous: Option<u8>) -> u8 {
    let install = stage(stages, StageKind::Install);
    let criteria: [&dyn Fn() -> bool; 8] = [
        &|| install.is_some_and(|s| s.converged || s.phase == StagePhase::Passed),
        &|| passed(stages, StageKind::Install),
        &|| passed(stages, StageKind::Upgrade),
        &|| passed(stages, StageKind::BackupRestore),
        &|| {
            StageKind::ALL.iter().all(|k| {
                stage(stages, *k).is_some_and(|s| s.passed > 0 && s.failed == 0 && s.skipped == 0)
            })
        },
        &|| facts.is_some_and(RecipeFacts::all_healthchecks),
        &|| {
            facts.is_some_and(|f| {
                f.metadata.as_ref().is_some_and(|m| {
                    !m.is_empty()
                        && claims::compare(m, Some(stages), f)
                            .iter()
                            .all(|c| !c.contradicted)
                })
            })
        },
        &|| previous.is_some_and(|p| p >= 7),
    ];
    criteria.iter().take_while(|c| c()).count() as u8
}

/// One finished default-branch run as a level reads it: its stage results and the facts its
/// checkout recorded.
pub type Verdict<'a> = (&'a [StageResult], Option<&'a RecipeFacts>);

/// A recipe's level from its latest finished default-branch run and the one before it (level
/// 8 asks that one to be at level 7).
pub fn of_recipe(latest: Verdict<'_>, previous: Option<Verdict<'_>>) -> u8 {
    let previous = previous.map(|(stages, facts)| level(stages, facts, None));
    level(latest.0, latest.1, previous)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recipe::facts::ServiceFact;
    use crate::recipe::metadata::Entry;

    fn result(kind: StageKind, phase: StagePhase, passed: u32) -> StageResult {
        StageResult {
            kind,
            phase,
            passed,
            failed: 0,
            skipped: 0,
            converged: phase == StagePhase::Passed,
        }
    }

    fn all_passed() -> Vec<StageResult> {
        StageKind::ALL
            .iter()
            .map(|k| result(*k, StagePhase::Passed, 2))
            .collect()
    }

    fn facts(healthy: bool, metadata: &[(&str, &str)]) -> RecipeFacts {
        RecipeFacts {
            metadata: Some(
                metadata
                    .iter()
                    .map(|(k, v)| Entry {
                        key: k.to_string(),
                        value: v.to_string(),
                    })
                    .collect(),
            ),
            services: vec![ServiceFact {
                name: "app".into(),
                healthcheck: healthy,
            }],
            recipe_tests: true,
        }
    }

    #[test]
    fn stages_give_levels_zero_to_four() {
        assert_eq!(level(&[], None, None), 0);
        let mut failed_deploy = result(StageKind::Install, StagePhase::Failed, 0);
        assert_eq!(level(&[failed_deploy.clone()], None, None), 0);
        failed_deploy.converged = true;
        assert_eq!(level(&[failed_deploy], None, None), 1);
        let install = result(StageKind::Install, StagePhase::Passed, 1);
        assert_eq!(level(std::slice::from_ref(&install), None, None), 2);
        let upgrade = result(StageKind::Upgrade, StagePhase::Passed, 1);
        assert_eq!(level(&[install.clone(), upgrade.clone()], None, None), 3);
        let na = result(StageKind::BackupRestore, StagePhase::NotApplicable, 0);
        assert_eq!(
            level(&[install.clone(), upgrade.clone(), na], None, None),
            3
        );
        // A failed upgrade caps the level even when backup-restore passed.
        let bad_upgrade = result(StageKind::Upgrade, StagePhase::PreviousVersionFailed, 0);
        let br = result(StageKind::BackupRestore, StagePhase::Passed, 1);
        assert_eq!(level(&[install, bad_upgrade, br], None, None), 2);
        assert_eq!(level(&all_passed(), None, None), 5);
    }

    #[test]
    fn tests_hygiene_and_honesty_give_five_to_eight() {
        let mut untested = all_passed();
        untested[2].passed = 0;
        assert_eq!(
            level(
                &untested,
                Some(&facts(true, &[("Backups", "Yes")])),
                Some(8)
            ),
            4
        );
        let mut skipped = all_passed();
        skipped[0].skipped = 1;
        assert_eq!(level(&skipped, None, None), 4);
        let run = all_passed();
        assert_eq!(
            level(&run, Some(&facts(false, &[("Backups", "Yes")])), None),
            5
        );
        assert_eq!(level(&run, Some(&facts(true, &[])), None), 6);
        // A contradicted claim: healthchecks claimed, one missing, would stop at 5 anyway;
        // Tests claimed absent is not a contradiction, SSO is not verified.
        assert_eq!(level(&run, Some(&facts(true, &[("SSO", "Yes")])), None), 7);
        assert_eq!(
            level(&run, Some(&facts(true, &[("SSO", "Yes")])), Some(7)),
            8
        );
        assert_eq!(
            level(&run, Some(&facts(true, &[("SSO", "Yes")])), Some(6)),
            7
        );
        let mut no_backup = all_passed();
        no_backup[2].phase = StagePhase::NotApplicable;
        assert_eq!(
            level(
                &no_backup,
                Some(&facts(true, &[("Backups", "Yes")])),
                Some(8)
            ),
            3
        );
        assert_eq!(MEANING.len(), usize::from(MAX) + 1);
        let honest = facts(true, &[("SSO", "Yes")]);
        assert_eq!(of_recipe((&run, Some(&honest)), None), 7);
        assert_eq!(
            of_recipe((&run, Some(&honest)), Some((&run, Some(&honest)))),
            8
        );
        assert_eq!(of_recipe((&run, Some(&honest)), Some((&run, None))), 7);
    }
}
