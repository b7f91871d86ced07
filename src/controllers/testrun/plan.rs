//! The stage plan of a run: which steps each stage has, which step comes next, and what the
//! recorded steps mean for the stage and the run. Pure functions over [`TestRunStatus`].

use chrono::{DateTime, Utc};

use crate::api::{
    StageKind, StagePhase, StageStatus, StepName, StepStatus, TestPhase, TestRunStatus,
};

/// What the plan of a stage depends on, known when the stage starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StageFacts {
    /// The version the upgrade starts from, if the recipe has one.
    pub previous_version: Option<String>,
    /// Whether the head's compose has backupbot labels.
    pub has_backup_labels: bool,
    /// Whether the app is deployed at the head and converged (the upgrade stage passed).
    pub app_at_head: bool,
}

/// The steps of `stage`, or why the stage does not apply.
pub fn stage_steps(stage: StageKind, facts: &StageFacts) -> Result<Vec<StepName>, String> {
    use StepName::*;
    use TestPhase::*;
    match stage {
        StageKind::Install => Ok(vec![
            Deploy { previous: false },
            Converge { previous: false },
            Test(Check),
            Remove,
        ]),
        StageKind::Upgrade => match &facts.previous_version {
            None => Err("the recipe has no earlier release to upgrade from".into()),
            Some(_) => Ok(vec![
                Deploy { previous: true },
                Converge { previous: true },
                Test(Pre),
                Deploy { previous: false },
                Converge { previous: false },
                Test(Post),
            ]),
        },
        StageKind::BackupRestore => {
            if !facts.has_backup_labels {
                return Err("the recipe has no backupbot labels".into());
            }
            let mut steps = Vec::new();
            if !facts.app_at_head {
                steps.extend([Deploy { previous: false }, Converge { previous: false }]);
            }
            steps.extend([
                Test(Pre),
                Settle,
                Backup,
                Test(Mutate),
                Restore,
                ConvergeRestored,
                Test(Post),
            ]);
            Ok(steps)
        }
    }
}

/// The stages a run plans, in the canonical order.
pub fn planned_stages(wanted: &[StageKind]) -> Vec<StageStatus> {
    StageKind::ALL
        .iter()
        .filter(|k| wanted.contains(k))
        .map(|&stage| StageStatus {
            stage,
            phase: StagePhase::Pending,
            steps: Vec::new(),
            tests: Default::default(),
            failing_tests: Vec::new(),
            artifacts: Vec::new(),
            message: String::new(),
            started: None,
            finished: None,
        })
        .collect()
}

/// Index of the stage in progress or next to run.
pub fn current_stage(status: &TestRunStatus) -> Option<usize> {
    status
        .stages
        .iter()
        .position(|s| matches!(s.phase, StagePhase::Pending | StagePhase::Running))
}

/// Index of the first step of `steps` not finished.
pub fn next_step(steps: &[StepStatus]) -> Option<usize> {
    steps.iter().position(|s| s.finished.is_none())
}

/// Marks every stage not yet ended as `Skipped` with `reason`.
pub fn skip_remaining(status: &mut TestRunStatus, reason: &str, now: DateTime<Utc>) {
    for s in &mut status.stages {
        if matches!(s.phase, StagePhase::Pending | StagePhase::Running) {
            if s.phase == StagePhase::Running {
                s.finished = Some(now);
            }
            s.phase = StagePhase::Skipped;
            s.message = reason.to_string();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(previous: bool, backup: bool, at_head: bool) -> StageFacts {
        StageFacts {
            previous_version: previous.then(|| "1.0.0+1.0".to_string()),
            has_backup_labels: backup,
            app_at_head: at_head,
        }
    }

    fn names(steps: &[StepName]) -> Vec<&'static str> {
        steps.iter().map(|s| s.as_str()).collect()
    }

    #[test]
    fn every_step_name_parses_back_and_round_trips_as_json() {
        for s in StepName::ALL {
            assert_eq!(StepName::parse(s.as_str()), Some(s));
            let json = serde_json::to_value(s).unwrap();
            assert_eq!(json, serde_json::json!(s.as_str()));
            assert_eq!(serde_json::from_value::<StepName>(json).unwrap(), s);
        }
        assert_eq!(StepName::parse("deploy-later"), None);
        assert!(serde_json::from_value::<StepName>(serde_json::json!("deploy-later")).is_err());
    }

    #[test]
    fn the_upgrade_starts_from_the_previous_version_and_needs_one() {
        let steps = stage_steps(StageKind::Upgrade, &facts(true, true, false)).unwrap();
        assert_eq!(
            names(&steps),
            [
                "deploy-previous",
                "converge-previous",
                "test:pre",
                "deploy",
                "converge",
                "test:post"
            ]
        );
        assert!(steps[0].is_previous() && steps[1].is_previous() && !steps[3].is_previous());
        let why = stage_steps(StageKind::Upgrade, &facts(false, true, false)).unwrap_err();
        assert!(why.contains("no earlier release"), "{why}");
    }

    #[test]
    fn backup_restore_deploys_only_when_the_upgrade_left_no_app_and_needs_labels() {
        let on_upgraded = stage_steps(StageKind::BackupRestore, &facts(true, true, true)).unwrap();
        assert_eq!(on_upgraded[0], StepName::Test(TestPhase::Pre));
        assert!(names(&on_upgraded).contains(&"backup"));
        let fresh = stage_steps(StageKind::BackupRestore, &facts(true, true, false)).unwrap();
        assert_eq!(&names(&fresh)[..2], ["deploy", "converge"]);
        assert_eq!(fresh.len(), on_upgraded.len() + 2);
        let why = stage_steps(StageKind::BackupRestore, &facts(true, false, true)).unwrap_err();
        assert!(why.contains("backupbot"), "{why}");
    }

    #[test]
    fn stages_are_planned_in_canonical_order() {
        let mut status = TestRunStatus {
            stages: planned_stages(&[StageKind::BackupRestore, StageKind::Install]),
            ..Default::default()
        };
        let kinds: Vec<_> = status.stages.iter().map(|s| s.stage).collect();
        assert_eq!(kinds, [StageKind::Install, StageKind::BackupRestore]);
        assert_eq!(current_stage(&status), Some(0));
        status.stages[0].phase = StagePhase::Passed;
        assert_eq!(current_stage(&status), Some(1));
        status.stages[1].phase = StagePhase::NotApplicable;
        assert_eq!(current_stage(&status), None);
    }

    #[test]
    fn skipping_leaves_ended_stages_alone() {
        let mut status = TestRunStatus {
            stages: planned_stages(&StageKind::ALL),
            ..Default::default()
        };
        status.stages[0].phase = StagePhase::Failed;
        status.stages[1].phase = StagePhase::Running;
        skip_remaining(&mut status, "an earlier stage failed", Utc::now());
        assert_eq!(status.stages[0].phase, StagePhase::Failed);
        assert_eq!(status.stages[1].phase, StagePhase::Skipped);
        assert!(status.stages[1].finished.is_some());
        assert_eq!(status.stages[2].phase, StagePhase::Skipped);
        assert_eq!(status.stages[2].finished, None);
    }

    #[test]
    fn the_next_step_is_the_first_unfinished_one() {
        let mut steps = vec![
            StepStatus::pending(StepName::Deploy { previous: false }),
            StepStatus::pending(StepName::Converge { previous: false }),
        ];
        assert_eq!(next_step(&steps), Some(0));
        steps[0].started = Some(Utc::now());
        assert_eq!(
            next_step(&steps),
            Some(0),
            "started but not finished: run again"
        );
        steps[0].finished = Some(Utc::now());
        assert_eq!(next_step(&steps), Some(1));
        steps[1].finished = Some(Utc::now());
        assert_eq!(next_step(&steps), None);
    }
}
