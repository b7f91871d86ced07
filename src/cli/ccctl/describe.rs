//! `ccctl describe`: a multi-line human view of one record — metadata, spec, status, conditions,
//! and for test runs every stage with its steps and durations.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::table::{Table, age, human_duration};
use crate::api::{
    Condition, ConditionStatus, Kind, StagePhase, StageStatus, StepStatus, TestRunStatus,
};

const KEY_WIDTH: usize = 20;

fn field(out: &mut String, key: &str, value: &str) {
    let _ = writeln!(out, "{:<KEY_WIDTH$}{value}", format!("{key}:"));
}

fn yaml_block(out: &mut String, value: &Value, indent: &str) {
    let text = serde_saphyr::to_string(value).unwrap_or_else(|_| value.to_string());
    for line in text.lines() {
        let _ = writeln!(out, "{indent}{line}");
    }
}

fn timestamp(value: &Value, now: DateTime<Utc>) -> Option<String> {
    let t: DateTime<Utc> = value.as_str()?.parse().ok()?;
    Some(format!("{} ({} ago)", t.to_rfc3339(), age(Some(t), now)))
}

fn key_values(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::Object(m)) if !m.is_empty() => m
            .iter()
            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or(&v.to_string())))
            .collect(),
        _ => vec!["<none>".to_string()],
    }
}

/// `key:` then the first line; later lines aligned under it without a key (kubectl's layout).
fn multi(out: &mut String, key: &str, lines: &[String]) {
    for (i, line) in lines.iter().enumerate() {
        if i == 0 {
            field(out, key, line);
        } else {
            let _ = writeln!(out, "{:KEY_WIDTH$}{line}", "");
        }
    }
}

fn span(
    started: Option<DateTime<Utc>>,
    finished: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> String {
    match (started, finished) {
        (Some(s), Some(f)) => human_duration(f - s),
        (Some(s), None) => format!("{} (running)", human_duration(now - s)),
        _ => "-".to_string(),
    }
}

fn step_result(step: &StepStatus) -> &'static str {
    match (step.ok, step.finished) {
        (Some(true), _) => "ok",
        (Some(false), _) => "failed",
        (None, Some(_)) => "done",
        (None, None) if step.started.is_some() => "running",
        _ => "pending",
    }
}

/// `label` then `text`; every further line of `text` aligned under its first.
fn indented_text(out: &mut String, label: &str, text: &str) {
    let pad = " ".repeat(label.chars().count());
    for (i, line) in text.lines().enumerate() {
        let _ = writeln!(out, "{}{line}", if i == 0 { label } else { &pad });
    }
}

/// A table cell: the first line of `text`, saying how many lines are left out.
fn one_line(text: &str) -> String {
    let mut lines = text.lines();
    let first = lines.next().unwrap_or("").to_string();
    match lines.count() {
        0 => first,
        n => format!("{first} (+{n} more lines; -o yaml shows them)"),
    }
}

fn indent_table(out: &mut String, table: &Table, indent: &str) {
    for line in table.render().lines() {
        let _ = writeln!(out, "{indent}{line}");
    }
}

fn stages(out: &mut String, stages: &[StageStatus], now: DateTime<Utc>) {
    out.push_str("Stages:\n");
    if stages.is_empty() {
        out.push_str("  <none>\n");
        return;
    }
    for stage in stages {
        let t = &stage.tests;
        let _ = write!(
            out,
            "  {}: {:?}  duration {}",
            stage.stage.as_str(),
            stage.phase,
            span(stage.started, stage.finished, now),
        );
        // Only a stage that ran has test counts; a skipped one's zeros would read as a result.
        if matches!(
            stage.phase,
            StagePhase::Running | StagePhase::Passed | StagePhase::Failed
        ) {
            let _ = write!(
                out,
                "  tests passed {} failed {} skipped {}",
                t.passed, t.failed, t.skipped
            );
        }
        out.push('\n');
        indented_text(out, "    Message: ", &stage.message);
        if !stage.steps.is_empty() {
            let mut table = Table::new(vec!["STEP", "RESULT", "DURATION", "MESSAGE"]);
            for step in &stage.steps {
                table.push(vec![
                    step.name.to_string(),
                    step_result(step).to_string(),
                    span(step.started, step.finished, now),
                    one_line(&step.message),
                ]);
            }
            indent_table(out, &table, "    ");
        }
        for name in &stage.failing_tests {
            let _ = writeln!(out, "    Failing: {name}");
        }
        for artifact in &stage.artifacts {
            let _ = writeln!(out, "    Artifact: {artifact}");
        }
    }
}

fn conditions(out: &mut String, conditions: &[Condition], now: DateTime<Utc>) {
    out.push_str("Conditions:\n");
    if conditions.is_empty() {
        out.push_str("  <none>\n");
        return;
    }
    let mut table = Table::new(vec!["TYPE", "STATUS", "REASON", "AGE", "MESSAGE"]);
    for c in conditions {
        let status = match c.status {
            ConditionStatus::True => "True",
            ConditionStatus::False => "False",
            ConditionStatus::Unknown => "Unknown",
        };
        table.push(vec![
            c.type_.clone(),
            status.to_string(),
            c.reason.clone(),
            age(Some(c.last_transition_time), now),
            one_line(&c.message),
        ]);
    }
    indent_table(out, &table, "  ");
}

/// Renders one record (as the server returned it) for people.
pub fn render(kind: Kind, obj: &Value, now: DateTime<Utc>) -> String {
    let mut out = String::new();
    let meta = &obj["metadata"];
    field(&mut out, "Name", meta["name"].as_str().unwrap_or(""));
    field(&mut out, "Kind", kind.name());
    multi(&mut out, "Labels", &key_values(meta.get("labels")));
    multi(
        &mut out,
        "Annotations",
        &key_values(meta.get("annotations")),
    );
    if let Some(t) = timestamp(&meta["creationTimestamp"], now) {
        field(&mut out, "Created", &t);
    }
    if let Some(t) = timestamp(&meta["deletionTimestamp"], now) {
        field(&mut out, "Deletion Requested", &t);
    }
    let finalizers: Vec<String> = meta["finalizers"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|f| f.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    field(
        &mut out,
        "Finalizers",
        &if finalizers.is_empty() {
            "<none>".to_string()
        } else {
            finalizers.join(", ")
        },
    );
    field(&mut out, "Generation", &meta["generation"].to_string());
    field(
        &mut out,
        "Resource Version",
        meta["resourceVersion"].as_str().unwrap_or(""),
    );
    out.push_str("Spec:\n");
    yaml_block(&mut out, &obj["spec"], "  ");

    let mut status = obj.get("status").cloned().unwrap_or(Value::Null);
    let conds: Vec<Condition> = status
        .get("conditions")
        .and_then(|c| serde_json::from_value(c.clone()).ok())
        .unwrap_or_default();
    let run_status: Option<TestRunStatus> = (kind == Kind::TestRun)
        .then(|| serde_json::from_value(status.clone()).ok())
        .flatten();
    if let Some(map) = status.as_object_mut() {
        map.remove("conditions");
        if run_status.is_some() {
            map.remove("stages");
        }
    }
    out.push_str("Status:\n");
    match &status {
        Value::Object(m) if !m.is_empty() => yaml_block(&mut out, &status, "  "),
        _ => out.push_str("  <none>\n"),
    }
    if let Some(run) = &run_status {
        if run.started.is_some() {
            field(&mut out, "Duration", &span(run.started, run.finished, now));
        }
        stages(&mut out, &run.stages, now);
    }
    conditions(&mut out, &conds, now);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn runs_show_metadata_stages_steps_and_conditions() {
        let now: DateTime<Utc> = "2025-01-01T12:10:00Z".parse().unwrap();
        let run = json!({
            "apiVersion": "cc-ci/v1alpha1", "kind": "TestRun",
            "metadata": {"name": "hedgedoc-pr1", "resourceVersion": "42", "generation": 1,
                "creationTimestamp": "2025-01-01T12:00:00Z", "labels": {"team": "a", "tier": "web"},
                "finalizers": ["cc-ci/teardown"]},
            "spec": {"recipe": "hedgedoc", "ref": "abc"},
            "status": {"phase": "Running", "started": "2025-01-01T12:01:00Z",
                "stages": [{"stage": "install", "phase": "Passed",
                    "started": "2025-01-01T12:01:00Z", "finished": "2025-01-01T12:03:30Z",
                    "tests": {"passed": 3, "failed": 0, "skipped": 1},
                    "steps": [{"name": "deploy", "started": "2025-01-01T12:01:00Z",
                        "finished": "2025-01-01T12:01:12Z", "ok": true}]}],
                "conditions": [{"type": "Admitted", "status": "True", "reason": "Slot",
                    "message": "", "lastTransitionTime": "2025-01-01T12:01:00Z"}]}
        });
        let text = render(Kind::TestRun, &run, now);
        assert!(
            text.contains("Name:               hedgedoc-pr1\n"),
            "{text}"
        );
        assert!(
            text.contains("Labels:             team=a\n                    tier=web\n"),
            "a second label is aligned under the first, without a key: {text}"
        );
        assert!(
            text.contains("Created:            2025-01-01T12:00:00+00:00 (10m ago)"),
            "{text}"
        );
        assert!(
            text.contains("Finalizers:         cc-ci/teardown\n"),
            "{text}"
        );
        assert!(text.contains("  recipe: hedgedoc\n"), "{text}");
        assert!(text.contains("  phase: Running\n"), "{text}");
        assert!(text.contains("Duration:           9m (running)"), "{text}");
        assert!(
            text.contains("  install: Passed  duration 2m30s  tests passed 3 failed 0 skipped 1\n"),
            "{text}"
        );
        assert!(text.contains("    deploy   ok       12s"), "{text}");
        assert!(text.contains("  Admitted   True     Slot     9m"), "{text}");
    }

    #[test]
    fn multi_line_messages_keep_the_layout_and_skipped_stages_show_no_test_counts() {
        let now: DateTime<Utc> = "2025-01-01T12:10:00Z".parse().unwrap();
        let run = json!({
            "kind": "TestRun", "metadata": {"name": "r"}, "spec": {"recipe": "a", "ref": "main"},
            "status": {"phase": "Failed", "stages": [
                {"stage": "install", "phase": "Failed",
                    "message": "converge: app 0/1 running\nlast log lines:\n  boom",
                    "steps": [{"name": "converge", "ok": false,
                        "message": "app 0/1 running\nlast log lines:\n  boom"}]},
                {"stage": "upgrade", "phase": "Skipped"}],
                "conditions": [{"type": "Ready", "status": "False", "reason": "Failed",
                    "message": "first\nsecond", "lastTransitionTime": "2025-01-01T12:01:00Z"}]}
        });
        let text = render(Kind::TestRun, &run, now);
        assert!(
            text.contains(
                "    Message: converge: app 0/1 running\n             last log lines:\n               boom\n"
            ),
            "continuation lines are aligned under the first: {text}"
        );
        assert!(
            text.contains("app 0/1 running (+2 more lines; -o yaml shows them)"),
            "{text}"
        );
        assert!(text.contains("first (+1 more lines"), "{text}");
        assert!(text.contains("  upgrade: Skipped  duration -\n"), "{text}");
        assert!(!text.contains("Skipped  duration -  tests"), "{text}");
        // Every line of the stages section is indented (none starts at column 0 but headers).
        let stages = text.split("Stages:\n").nth(1).unwrap();
        let body = stages.split("Conditions:").next().unwrap();
        assert!(body.lines().all(|l| l.starts_with("  ")), "{body}");
    }

    #[test]
    fn empty_status_and_conditions_say_none() {
        let now = Utc::now();
        let rc = json!({"kind": "Recipe", "metadata": {"name": "a"}, "spec": {"git": "g"}, "status": {}});
        let text = render(Kind::Recipe, &rc, now);
        assert!(
            text.contains("Status:\n  <none>\nConditions:\n  <none>\n"),
            "{text}"
        );
        assert!(text.contains("Annotations:        <none>\n"), "{text}");
    }
}
