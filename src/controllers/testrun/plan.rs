//! The stage plan of a run: which steps each stage has, which step comes next, and what the
//! recorded steps mean for the stage and the run. Pure functions over [`TestRunStatus`].

use chrono::{DateTime, Utc};

use crate::api::{RunPhase, StageKind, StagePhase, StageStatus, StepStatus, TestRunStatus};

/// Which test step of a stage (the harness' `CCCI_PHASE`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TestPhase {
    /// The install stage's checks of a fresh app.
    Check,
    /// Before a change: seed data.
    Pre,
    /// After a change: verify data.
    Post,
    /// Between backup and restore: change or delete data.
    Mutate,
}

impl TestPhase {
    /// The wire name (`check`, `pre`, `post`, `mutate`).
    pub fn as_str(self) -> &'static str {
        match self {
            TestPhase::Check => "check",
            TestPhase::Pre => "pre",
            TestPhase::Post => "post",
            TestPhase::Mutate => "mutate",
        }
    }
}

/// One step of a stage. Every step can run again after a crash with the same outcome
/// (deploys are applies, tests only read or re-seed, a restore reads the archives on disk).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Deploy the previous version (upgrade stage) or the head.
    Deploy {
        /// The previous version rather than the head.
        previous: bool,
    },
    /// Wait until the deployed version has converged.
    Converge {
        /// Waiting for the previous version.
        previous: bool,
    },
    /// A test step.
    Test(TestPhase),
    /// Remove the app (end of the install stage: the next stage starts fresh).
    Remove,
    /// Wait until the app's services have settled before a backup.
    Settle,
    /// Back the app up following its backupbot labels.
    Backup,
    /// Restore the backup.
    Restore,
    /// Wait until the restored app has converged.
    ConvergeRestored,
}

impl Step {
    /// The step's name in status (`deploy-previous`, `test:pre`, …).
    pub fn name(self) -> &'static str {
        match self {
            Step::Deploy { previous: true } => "deploy-previous",
            Step::Deploy { previous: false } => "deploy",
            Step::Converge { previous: true } => "converge-previous",
            Step::Converge { previous: false } => "converge",
            Step::Test(TestPhase::Check) => "test:check",
            Step::Test(TestPhase::Pre) => "test:pre",
            Step::Test(TestPhase::Post) => "test:post",
            Step::Test(TestPhase::Mutate) => "test:mutate",
            Step::Remove => "remove",
            Step::Settle => "settle",
            Step::Backup => "backup",
            Step::Restore => "restore",
            Step::ConvergeRestored => "converge-restored",
        }
    }

    /// The step named `name`, if it is one.
    pub fn parse(name: &str) -> Option<Step> {
        ALL_STEPS.iter().copied().find(|s| s.name() == name)
    }

    /// Whether a failure of this step means the previous version failed (upgrade stage).
    pub fn is_previous(self) -> bool {
        matches!(
            self,
            Step::Deploy { previous: true } | Step::Converge { previous: true }
        )
    }
}

const ALL_STEPS: [Step; 13] = [
    Step::Deploy { previous: true },
    Step::Deploy { previous: false },
    Step::Converge { previous: true },
    Step::Converge { previous: false },
    Step::Test(TestPhase::Check),
    Step::Test(TestPhase::Pre),
    Step::Test(TestPhase::Post),
    Step::Test(TestPhase::Mutate),
    Step::Remove,
    Step::Settle,
    Step::Backup,
    Step::Restore,
    Step::ConvergeRestored,
];

/// Run-level step names (in `status.steps`).
pub const FETCH: &str = "fetch";
/// The run-level teardown step.
pub const TEARDOWN: &str = "teardown";

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
pub fn stage_steps(stage: StageKind, facts: &StageFacts) -> Result<Vec<Step>, String> {
    use Step::*;
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

/// A fresh status entry for a step not yet started.
pub fn pending_step(name: &str) -> StepStatus {
    StepStatus {
        name: name.to_string(),
        started: None,
        finished: None,
        ok: None,
        message: String::new(),
        tests: None,
        origins: Default::default(),
        artifacts: Vec::new(),
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

/// The run's verdict once every stage has ended: `Failed` if a stage failed (or its previous
/// version did), else `Succeeded`.
pub fn verdict(status: &TestRunStatus) -> RunPhase {
    let failed = status.stages.iter().any(|s| {
        matches!(
            s.phase,
            StagePhase::Failed | StagePhase::PreviousVersionFailed
        )
    });
    if failed {
        RunPhase::Failed
    } else {
        RunPhase::Succeeded
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

    fn names(steps: &[Step]) -> Vec<&'static str> {
        steps.iter().map(|s| s.name()).collect()
    }

    #[test]
    fn every_step_name_parses_back() {
        for s in ALL_STEPS {
            assert_eq!(Step::parse(s.name()), Some(s));
        }
        assert_eq!(Step::parse("deploy-later"), None);
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
        assert_eq!(on_upgraded[0], Step::Test(TestPhase::Pre));
        assert!(names(&on_upgraded).contains(&"backup"));
        let fresh = stage_steps(StageKind::BackupRestore, &facts(true, true, false)).unwrap();
        assert_eq!(&names(&fresh)[..2], ["deploy", "converge"]);
        assert_eq!(fresh.len(), on_upgraded.len() + 2);
        let why = stage_steps(StageKind::BackupRestore, &facts(true, false, true)).unwrap_err();
        assert!(why.contains("backupbot"), "{why}");
    }

    #[test]
    fn stages_are_planned_in_canonical_order_and_the_verdict_follows_them() {
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
        assert_eq!(verdict(&status), RunPhase::Succeeded);
        status.stages[1].phase = StagePhase::PreviousVersionFailed;
        assert_eq!(verdict(&status), RunPhase::Failed);
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
        let mut steps = vec![pending_step("deploy"), pending_step("converge")];
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
