//! Which columns `ccctl get` shows for each kind, and the light row types that decode only those
//! fields from the server's JSON (fast over long lists, tolerant of fields this ccctl does not know).

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde::de::{DeserializeOwned, IgnoredAny};

use super::table::{age, human_duration};

/// A row type of one kind: its headers and how a decoded record fills them.
pub trait Columns: DeserializeOwned {
    /// Column headers; `wide` appends more.
    fn headers(wide: bool) -> Vec<&'static str>;
    /// The cells of one record, in header order.
    fn cells(&self, wide: bool, now: DateTime<Utc>) -> Vec<String>;
    /// Its metadata.
    fn meta(&self) -> &RowMeta;
    /// Whether lists show the newest record first (runs) rather than by name.
    fn newest_first() -> bool {
        false
    }
}

/// Headers whose cells change with the clock alone; a watch does not print a row again for them.
pub const CLOCK_COLUMNS: [&str; 2] = ["AGE", "DURATION"];

/// Sorts rows for a list: newest first when the kind asks for it (then by name), else by name.
pub fn sort_rows<S: Columns>(rows: &mut [S]) {
    if S::newest_first() {
        rows.sort_by(|a, b| {
            let (a, b) = (a.meta(), b.meta());
            b.creation_timestamp
                .cmp(&a.creation_timestamp)
                .then_with(|| a.name.cmp(&b.name))
        });
    } else {
        rows.sort_by(|a, b| a.meta().name.cmp(&b.meta().name));
    }
}

const NONE: &str = "-";

fn or_none<T: ToString>(s: &Option<T>) -> String {
    s.as_ref()
        .map(|v| v.to_string())
        .unwrap_or_else(|| NONE.to_string())
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

/// The metadata fields tables use.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RowMeta {
    /// `metadata.name`.
    pub name: String,
    /// `metadata.resourceVersion`.
    pub resource_version: String,
    /// `metadata.creationTimestamp`.
    pub creation_timestamp: Option<DateTime<Utc>>,
    /// Present when deletion was requested.
    pub deletion_timestamp: Option<IgnoredAny>,
}

impl RowMeta {
    fn phase(&self, phase: String) -> String {
        if self.deletion_timestamp.is_some() {
            "Terminating".to_string()
        } else {
            phase
        }
    }
}

/// A `Recipe` as its table row sees it.
#[derive(Debug, Deserialize)]
pub struct RecipeRow {
    /// Metadata.
    #[serde(default)]
    pub metadata: RowMeta,
    #[serde(default)]
    spec: RecipeRowSpec,
    #[serde(default)]
    status: RecipeRowStatus,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct RecipeRowSpec {
    git: String,
    forge_repo: Option<String>,
    default_branch: Option<String>,
    stages: Option<Vec<String>>,
    suspended: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct RecipeRowStatus {
    last_run: Option<String>,
    last_run_phase: Option<String>,
    badge: Option<String>,
    level: Option<u64>,
}

impl Columns for RecipeRow {
    fn meta(&self) -> &RowMeta {
        &self.metadata
    }

    fn headers(wide: bool) -> Vec<&'static str> {
        let mut h = vec!["NAME", "GIT", "LAST RUN", "PHASE", "BADGE", "AGE"];
        if wide {
            h.extend(["LEVEL", "FORGE REPO", "BRANCH", "STAGES", "SUSPENDED"]);
        }
        h
    }

    fn cells(&self, wide: bool, now: DateTime<Utc>) -> Vec<String> {
        let (meta, spec, status) = (&self.metadata, &self.spec, &self.status);
        let mut c = vec![
            meta.name.clone(),
            spec.git.clone(),
            or_none(&status.last_run),
            meta.phase(or_none(&status.last_run_phase)),
            or_none(&status.badge),
            age(meta.creation_timestamp, now),
        ];
        if wide {
            c.extend([
                or_none(&status.level),
                or_none(&spec.forge_repo),
                or_none(&spec.default_branch),
                or_none(&spec.stages.as_ref().map(|s| s.join(","))),
                spec.suspended.to_string(),
            ]);
        }
        c
    }
}

/// A `TestRun` as its table row sees it.
#[derive(Debug, Deserialize)]
pub struct RunRow {
    /// Metadata.
    #[serde(default)]
    pub metadata: RowMeta,
    #[serde(default)]
    spec: RunRowSpec,
    #[serde(default)]
    status: RunRowStatus,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct RunRowSpec {
    recipe: String,
    #[serde(rename = "ref")]
    git_ref: String,
    pr: Option<u64>,
    source: RunRowSource,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RunRowSource {
    requester: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct RunRowStatus {
    phase: Option<String>,
    queue_position: Option<u64>,
    commit: Option<String>,
    app: Option<RunRowApp>,
    stages: Vec<RunRowStage>,
    started: Option<DateTime<Utc>>,
    finished: Option<DateTime<Utc>>,
    message: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RunRowApp {
    domain: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RunRowStage {
    stage: String,
    phase: Option<String>,
    message: String,
    steps: Vec<RunRowStep>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RunRowStep {
    name: String,
    ok: Option<bool>,
    finished: Option<DateTime<Utc>>,
    message: String,
}

impl RunRowStatus {
    /// What the run is doing or did: while a stage runs, that stage and its current step (the
    /// run's own message is only updated at admission and at the end); else the run's message.
    fn message(&self) -> String {
        let running = self
            .stages
            .iter()
            .find(|s| s.phase.as_deref() == Some("Running"));
        let text = match running {
            Some(stage) => match stage.steps.last() {
                Some(step) if step.finished.is_none() || step.ok.is_none() => {
                    format!("{}: {} running", stage.stage, step.name)
                }
                Some(step) if !step.message.is_empty() => {
                    format!("{}: {}: {}", stage.stage, step.name, step.message)
                }
                Some(step) => format!("{}: {} done", stage.stage, step.name),
                None if !stage.message.is_empty() => format!("{}: {}", stage.stage, stage.message),
                None => format!("{}: starting", stage.stage),
            },
            None => self.message.clone(),
        };
        or_none_str(text.lines().next().unwrap_or(""))
    }
}

impl Columns for RunRow {
    fn meta(&self) -> &RowMeta {
        &self.metadata
    }

    fn newest_first() -> bool {
        true
    }

    fn headers(wide: bool) -> Vec<&'static str> {
        let mut h = vec![
            "NAME", "RECIPE", "REF", "PR", "PHASE", "QUEUE", "STAGES", "AGE",
        ];
        if wide {
            h.extend(["COMMIT", "REQUESTER", "DOMAIN", "DURATION", "MESSAGE"]);
        }
        h
    }

    fn cells(&self, wide: bool, now: DateTime<Utc>) -> Vec<String> {
        let (meta, spec, status) = (&self.metadata, &self.spec, &self.status);
        let stages = if status.stages.is_empty() {
            NONE.to_string()
        } else {
            let parts: Vec<String> = status
                .stages
                .iter()
                .map(|s| format!("{}:{}", s.stage, s.phase.as_deref().unwrap_or("Pending")))
                .collect();
            parts.join(" ")
        };
        let phase = status.phase.clone().unwrap_or_else(|| "Pending".into());
        let mut c = vec![
            meta.name.clone(),
            spec.recipe.clone(),
            short_ref(&spec.git_ref),
            or_none(&spec.pr),
            meta.phase(phase),
            or_none(&status.queue_position),
            stages,
            age(meta.creation_timestamp, now),
        ];
        if wide {
            let duration = status
                .started
                .map(|s| human_duration(status.finished.unwrap_or(now) - s));
            c.extend([
                or_none(&status.commit.as_deref().map(short_ref)),
                or_none(&spec.source.requester),
                or_none(&status.app.as_ref().map(|a| a.domain.clone())),
                or_none(&duration),
                status.message(),
            ]);
        }
        c
    }
}

/// A `ProxyDeployment` or `AppDeployment` as its table row sees it.
#[derive(Debug, Deserialize)]
pub struct DeploymentRow {
    /// Metadata.
    #[serde(default)]
    pub metadata: RowMeta,
    #[serde(default)]
    spec: DeploymentRowSpec,
    #[serde(default)]
    status: DeploymentRowStatus,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct DeploymentRowSpec {
    git: String,
    version: String,
    domain: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct DeploymentRowStatus {
    phase: Option<String>,
    observed_version: Option<String>,
    services_ready: u64,
    services_total: u64,
    message: String,
}

impl Columns for DeploymentRow {
    fn meta(&self) -> &RowMeta {
        &self.metadata
    }

    fn headers(wide: bool) -> Vec<&'static str> {
        let mut h = vec!["NAME", "VERSION", "DOMAIN", "PHASE", "AGE"];
        if wide {
            h.extend(["READY", "OBSERVED", "GIT", "MESSAGE"]);
        }
        h
    }

    fn cells(&self, wide: bool, now: DateTime<Utc>) -> Vec<String> {
        let (meta, spec, status) = (&self.metadata, &self.spec, &self.status);
        let phase = status.phase.clone().unwrap_or_else(|| "Pending".into());
        let mut c = vec![
            meta.name.clone(),
            spec.version.clone(),
            spec.domain.clone(),
            meta.phase(phase),
            age(meta.creation_timestamp, now),
        ];
        if wide {
            c.extend([
                format!("{}/{}", status.services_ready, status.services_total),
                or_none(&status.observed_version),
                spec.git.clone(),
                or_none_str(status.message.lines().next().unwrap_or("")),
            ]);
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeDelta;
    use serde_json::json;

    fn run(extra_meta: serde_json::Value, status: serde_json::Value) -> RunRow {
        let created = (Utc::now() - TimeDelta::seconds(300)).to_rfc3339();
        let mut meta = json!({"name": "hedgedoc-pr12-c7", "creationTimestamp": created});
        meta.as_object_mut()
            .unwrap()
            .extend(extra_meta.as_object().unwrap().clone());
        serde_json::from_value(json!({
            "apiVersion": "cc-ci/v1alpha1", "kind": "TestRun", "metadata": meta,
            "spec": {"recipe": "hedgedoc", "ref": "0123456789abcdef0123456789abcdef01234567",
                "pr": 12, "someFutureField": true},
            "status": status
        }))
        .unwrap()
    }

    #[test]
    fn run_rows_show_short_ref_pr_and_stage_phases() {
        let r = run(
            json!({}),
            json!({"phase": "Pending", "queuePosition": 2, "stages": [
                {"stage": "install", "phase": "Passed", "steps": [{"name": "deploy"}]},
                {"stage": "upgrade", "phase": "Running"}]}),
        );
        let cells = r.cells(false, Utc::now());
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
        assert_eq!(RunRow::headers(false).len(), cells.len());
        assert_eq!(RunRow::headers(true).len(), r.cells(true, Utc::now()).len());
    }

    #[test]
    fn the_message_follows_the_running_stage_not_the_admission() {
        let r = run(
            json!({}),
            json!({"phase": "Running", "message": "admitted", "stages": [
                {"stage": "install", "phase": "Passed", "steps": [{"name": "deploy", "ok": true}]},
                {"stage": "upgrade", "phase": "Running", "steps": [
                    {"name": "deploy-previous", "ok": true, "finished": "2025-01-01T00:00:00Z"},
                    {"name": "upgrade", "started": "2025-01-01T00:00:01Z"}]}]}),
        );
        let cells = r.cells(true, Utc::now());
        assert_eq!(cells.last().unwrap(), "upgrade: upgrade running");
        let done = run(
            json!({}),
            json!({"phase": "Failed", "message": "install failed: converge: app 0/1\nmore"}),
        );
        assert_eq!(
            done.cells(true, Utc::now()).last().unwrap(),
            "install failed: converge: app 0/1"
        );
    }

    #[test]
    fn runs_list_newest_first_other_kinds_by_name() {
        let at = |name: &str, secs: i64| -> RunRow {
            let t = (Utc::now() - TimeDelta::seconds(secs)).to_rfc3339();
            serde_json::from_value(json!({"metadata": {"name": name, "creationTimestamp": t}}))
                .unwrap()
        };
        let mut runs = vec![at("a-old", 300), at("z-new", 5), at("m-mid", 60)];
        sort_rows(&mut runs);
        let names: Vec<&str> = runs.iter().map(|r| r.metadata.name.as_str()).collect();
        assert_eq!(names, ["z-new", "m-mid", "a-old"]);
        let mut recipes: Vec<RecipeRow> = ["b", "a"]
            .iter()
            .map(|n| serde_json::from_value(json!({"metadata": {"name": n}})).unwrap())
            .collect();
        sort_rows(&mut recipes);
        assert_eq!(recipes[0].metadata.name, "a");
    }

    #[test]
    fn deleting_records_show_terminating() {
        let r = run(
            json!({"deletionTimestamp": "2025-01-01T00:00:00Z"}),
            json!({}),
        );
        assert_eq!(r.cells(false, Utc::now())[4], "Terminating");
    }

    #[test]
    fn recipe_and_deployment_rows_fill_every_header() {
        let rc: RecipeRow = serde_json::from_value(json!({"metadata": {"name": "a"},
            "spec": {"git": "g", "stages": ["install"]},
            "status": {"lastRun": "a-pr1-c2", "lastRunPhase": "Failed", "badge": "failing"}}))
        .unwrap();
        let cells = rc.cells(true, Utc::now());
        assert_eq!(cells.len(), RecipeRow::headers(true).len());
        assert_eq!(&cells[..5], ["a", "g", "a-pr1-c2", "Failed", "failing"]);
        assert_eq!(cells[6], "-");
        let pd: DeploymentRow = serde_json::from_value(json!({"metadata": {"name": "traefik"},
            "spec": {"git": "g", "version": "1.0.0", "domain": "ci.example.org"},
            "status": {"phase": "Ready", "servicesReady": 1, "servicesTotal": 2}}))
        .unwrap();
        let cells = pd.cells(true, Utc::now());
        assert_eq!(cells.len(), DeploymentRow::headers(true).len());
        assert_eq!(&cells[..4], ["traefik", "1.0.0", "ci.example.org", "Ready"]);
        assert_eq!(cells[5], "1/2");
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
