//! Which columns `ccctl get` shows for each kind, and how a record fills them.

use chrono::{DateTime, Utc};

use super::table::{age, human_duration};
use crate::api::{
    AppDeploymentSpec, DeploymentStatus, Object, ProxyDeploymentSpec, RecipeSpec, Spec, StageKind,
    TestRunSpec,
};

/// A record kind that can be shown as a table row.
pub trait Columns: Spec {
    /// Column headers; `wide` appends more.
    fn headers(wide: bool) -> Vec<&'static str>;
    /// The cells of one record, in header order.
    fn cells(obj: &Object<Self>, wide: bool, now: DateTime<Utc>) -> Vec<String>;
}

const NONE: &str = "-";

fn or_none(s: Option<impl ToString>) -> String {
    s.map(|v| v.to_string()).unwrap_or_else(|| NONE.to_string())
}

fn or_none_str(s: &str) -> String {
    if s.is_empty() {
        NONE.to_string()
    } else {
        s.to_string()
    }
}

/// A ref as people read it: full commit SHAs shortened to 7 characters, other refs unchanged.
pub fn short_ref(r: &str) -> String {
    if r.len() >= 12 && r.bytes().all(|b| b.is_ascii_hexdigit()) {
        r[..7].to_string()
    } else {
        r.to_string()
    }
}

fn stage_list(stages: &[StageKind]) -> String {
    let names: Vec<&str> = stages.iter().map(|s| s.as_str()).collect();
    names.join(",")
}

fn phase_of<S: Spec>(obj: &Object<S>, phase: String) -> String {
    if obj.is_deleting() {
        "Terminating".to_string()
    } else {
        phase
    }
}

impl Columns for RecipeSpec {
    fn headers(wide: bool) -> Vec<&'static str> {
        let mut h = vec!["NAME", "GIT", "LAST RUN", "PHASE", "BADGE", "AGE"];
        if wide {
            h.extend(["LEVEL", "FORGE REPO", "BRANCH", "STAGES", "SUSPENDED"]);
        }
        h
    }

    fn cells(obj: &Object<Self>, wide: bool, now: DateTime<Utc>) -> Vec<String> {
        let (spec, status) = (&obj.spec, &obj.status);
        let phase = or_none(status.last_run_phase.map(|p| p.as_str()));
        let mut c = vec![
            obj.metadata.name.clone(),
            spec.git.clone(),
            or_none(status.last_run.as_deref()),
            phase_of(obj, phase),
            or_none(status.badge.as_deref()),
            age(obj.metadata.creation_timestamp, now),
        ];
        if wide {
            c.extend([
                or_none(status.level),
                or_none(spec.forge_repo.as_deref()),
                spec.default_branch.clone(),
                stage_list(&spec.stages),
                spec.suspended.to_string(),
            ]);
        }
        c
    }
}

impl Columns for TestRunSpec {
    fn headers(wide: bool) -> Vec<&'static str> {
        let mut h = vec![
            "NAME", "RECIPE", "REF", "PR", "PHASE", "QUEUE", "STAGES", "AGE",
        ];
        if wide {
            h.extend(["COMMIT", "REQUESTER", "DOMAIN", "DURATION", "MESSAGE"]);
        }
        h
    }

    fn cells(obj: &Object<Self>, wide: bool, now: DateTime<Utc>) -> Vec<String> {
        let (spec, status) = (&obj.spec, &obj.status);
        let stages = if status.stages.is_empty() {
            NONE.to_string()
        } else {
            let parts: Vec<String> = status
                .stages
                .iter()
                .map(|s| format!("{}:{:?}", s.stage.as_str(), s.phase))
                .collect();
            parts.join(" ")
        };
        let mut c = vec![
            obj.metadata.name.clone(),
            spec.recipe.clone(),
            short_ref(&spec.git_ref),
            or_none(spec.pr),
            phase_of(obj, status.phase.as_str().to_string()),
            or_none(status.queue_position),
            stages,
            age(obj.metadata.creation_timestamp, now),
        ];
        if wide {
            let duration = status
                .started
                .map(|s| human_duration(status.finished.unwrap_or(now) - s));
            c.extend([
                or_none(status.commit.as_deref().map(short_ref)),
                or_none(spec.source.requester.as_deref()),
                or_none(status.app.as_ref().map(|a| a.domain.as_str())),
                or_none(duration),
                or_none_str(&status.message),
            ]);
        }
        c
    }
}

fn deployment_headers(wide: bool) -> Vec<&'static str> {
    let mut h = vec!["NAME", "VERSION", "DOMAIN", "PHASE", "AGE"];
    if wide {
        h.extend(["READY", "OBSERVED", "GIT", "MESSAGE"]);
    }
    h
}

fn deployment_cells<S: Spec<Status = DeploymentStatus>>(
    obj: &Object<S>,
    (git, version, domain): (&str, &str, &str),
    wide: bool,
    now: DateTime<Utc>,
) -> Vec<String> {
    let status = &obj.status;
    let mut c = vec![
        obj.metadata.name.clone(),
        version.to_string(),
        domain.to_string(),
        phase_of(obj, format!("{:?}", status.phase)),
        age(obj.metadata.creation_timestamp, now),
    ];
    if wide {
        c.extend([
            format!("{}/{}", status.services_ready, status.services_total),
            or_none(status.observed_version.as_deref()),
            git.to_string(),
            or_none_str(&status.message),
        ]);
    }
    c
}

impl Columns for ProxyDeploymentSpec {
    fn headers(wide: bool) -> Vec<&'static str> {
        deployment_headers(wide)
    }

    fn cells(obj: &Object<Self>, wide: bool, now: DateTime<Utc>) -> Vec<String> {
        let s = &obj.spec;
        deployment_cells(obj, (&s.git, &s.version, &s.domain), wide, now)
    }
}

impl Columns for AppDeploymentSpec {
    fn headers(wide: bool) -> Vec<&'static str> {
        deployment_headers(wide)
    }

    fn cells(obj: &Object<Self>, wide: bool, now: DateTime<Utc>) -> Vec<String> {
        let s = &obj.spec;
        deployment_cells(obj, (&s.git, &s.version, &s.domain), wide, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{StagePhase, StageStatus, TestRun};
    use chrono::TimeDelta;

    fn run() -> TestRun {
        let spec: TestRunSpec = serde_json::from_value(serde_json::json!({
            "recipe": "hedgedoc",
            "ref": "0123456789abcdef0123456789abcdef01234567",
            "pr": 12
        }))
        .unwrap();
        let mut run = TestRun::new("hedgedoc-pr12-c7", spec);
        run.metadata.creation_timestamp = Some(Utc::now() - TimeDelta::seconds(300));
        run
    }

    #[test]
    fn run_rows_show_short_ref_pr_and_stage_phases() {
        let mut r = run();
        r.status.queue_position = Some(2);
        for (stage, phase) in [
            (StageKind::Install, StagePhase::Passed),
            (StageKind::Upgrade, StagePhase::Running),
        ] {
            r.status.stages.push(StageStatus {
                stage,
                phase,
                steps: vec![],
                tests: Default::default(),
                failing_tests: vec![],
                artifacts: vec![],
                message: String::new(),
                started: None,
                finished: None,
            });
        }
        let cells = TestRunSpec::cells(&r, false, Utc::now());
        assert_eq!(
            cells,
            [
                "hedgedoc-pr12-c7",
                "hedgedoc",
                "0123456",
                "12",
                "Pending",
                "2",
                "install:Passed upgrade:Running",
                "5m"
            ]
        );
        assert_eq!(TestRunSpec::headers(false).len(), cells.len());
        assert_eq!(
            TestRunSpec::headers(true).len(),
            TestRunSpec::cells(&r, true, Utc::now()).len()
        );
    }

    #[test]
    fn deleting_records_show_terminating() {
        let mut r = run();
        r.metadata.deletion_timestamp = Some(Utc::now());
        assert_eq!(TestRunSpec::cells(&r, false, Utc::now())[4], "Terminating");
    }

    #[test]
    fn branch_names_are_not_shortened() {
        assert_eq!(short_ref("main"), "main");
        assert_eq!(
            short_ref("feature/deadbeefdeadbeef"),
            "feature/deadbeefdeadbeef"
        );
        assert_eq!(short_ref("deadbeefdeadbeef"), "deadbee");
    }
}
