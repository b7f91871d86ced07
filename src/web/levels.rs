//! Recipe quality levels 0–8 (in the spirit of YunoHost's app levels), computed from one
//! finished default-branch run and the facts its checkout recorded. Pure; `docs/levels.md`
//! is the definition and this file follows it. Levels are cumulative: a recipe is at level
//! *n* when every criterion 1..=*n* holds.

use crate::api::{StageKind, StagePhase};
use crate::recipe::facts::RecipeFacts;

use super::claims;
use super::index::RunRow;

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

fn passed(run: &RunRow, kind: StageKind) -> bool {
    run.stage(kind)
        .is_some_and(|s| s.phase == StagePhase::Passed)
}

/// The level of `run` (a finished default-branch run) given the facts its checkout recorded
/// and the level of the default-branch run before it (for level 8).
pub fn level(run: &RunRow, facts: Option<&RecipeFacts>, previous: Option<u8>) -> u8 {
    let install = run.stage(StageKind::Install);
    let criteria: [&dyn Fn() -> bool; 8] = [
        &|| install.is_some_and(|s| s.converged || s.phase == StagePhase::Passed),
        &|| passed(run, StageKind::Install),
        &|| passed(run, StageKind::Upgrade),
        &|| passed(run, StageKind::BackupRestore),
        &|| {
            StageKind::ALL.iter().all(|k| {
                run.stage(*k)
                    .is_some_and(|s| s.passed > 0 && s.failed == 0 && s.skipped == 0)
            })
        },
        &|| facts.is_some_and(RecipeFacts::all_healthchecks),
        &|| {
            facts.is_some_and(|f| {
                f.metadata.as_ref().is_some_and(|m| {
                    !m.is_empty()
                        && claims::compare(m, Some(run), f)
                            .iter()
                            .all(|c| !c.contradicted)
                })
            })
        },
        &|| previous.is_some_and(|p| p >= 7),
    ];
    criteria.iter().take_while(|c| c()).count() as u8
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::RunPhase;
    use crate::recipe::facts::ServiceFact;
    use crate::recipe::metadata::Entry;
    use crate::web::index::StageRow;

    fn stage(kind: StageKind, phase: StagePhase, passed: u32) -> StageRow {
        StageRow {
            kind,
            phase,
            passed,
            failed: 0,
            skipped: 0,
            converged: phase == StagePhase::Passed,
        }
    }

    fn run(stages: Vec<StageRow>) -> RunRow {
        RunRow {
            name: "r".into(),
            recipe: "x".into(),
            pr: None,
            git_ref: "main".into(),
            commit: None,
            version: None,
            requester: None,
            phase: RunPhase::Succeeded,
            queue_position: None,
            created: None,
            started: None,
            finished: None,
            cancel_requested: false,
            torn_down: true,
            deleting: false,
            stages,
        }
    }

    fn all_passed() -> RunRow {
        run(StageKind::ALL
            .iter()
            .map(|k| stage(*k, StagePhase::Passed, 2))
            .collect())
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
        assert_eq!(level(&run(vec![]), None, None), 0);
        let mut failed_deploy = stage(StageKind::Install, StagePhase::Failed, 0);
        assert_eq!(level(&run(vec![failed_deploy.clone()]), None, None), 0);
        failed_deploy.converged = true;
        assert_eq!(level(&run(vec![failed_deploy]), None, None), 1);
        let install = stage(StageKind::Install, StagePhase::Passed, 1);
        assert_eq!(level(&run(vec![install.clone()]), None, None), 2);
        let upgrade = stage(StageKind::Upgrade, StagePhase::Passed, 1);
        assert_eq!(
            level(&run(vec![install.clone(), upgrade.clone()]), None, None),
            3
        );
        let na = stage(StageKind::BackupRestore, StagePhase::NotApplicable, 0);
        assert_eq!(
            level(&run(vec![install.clone(), upgrade.clone(), na]), None, None),
            3
        );
        // A failed upgrade caps the level even when backup-restore passed.
        let bad_upgrade = stage(StageKind::Upgrade, StagePhase::PreviousVersionFailed, 0);
        let br = stage(StageKind::BackupRestore, StagePhase::Passed, 1);
        assert_eq!(level(&run(vec![install, bad_upgrade, br]), None, None), 2);
        assert_eq!(level(&all_passed(), None, None), 5);
    }

    #[test]
    fn tests_hygiene_and_honesty_give_five_to_eight() {
        let mut untested = all_passed();
        untested.stages[2].passed = 0;
        assert_eq!(
            level(
                &untested,
                Some(&facts(true, &[("Backups", "Yes")])),
                Some(8)
            ),
            4
        );
        let mut skipped = all_passed();
        skipped.stages[0].skipped = 1;
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
        no_backup.stages[2].phase = StagePhase::NotApplicable;
        assert_eq!(
            level(
                &no_backup,
                Some(&facts(true, &[("Backups", "Yes")])),
                Some(8)
            ),
            3
        );
        assert_eq!(MEANING.len(), usize::from(MAX) + 1);
    }
}
