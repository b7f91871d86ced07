//! The text of a run's pull-request comment, rendered from the TestRun record: a pure function,
//! so the reporter edits the comment only when this text changes.
//!
//! The first line is an HTML comment naming the run: the reporter finds its own comment by it
//! again if it lost the comment id (e.g. killed between posting and storing the id).

use chrono::{DateTime, Utc};

use super::client::StatusState;
use crate::api::{RunPhase, StagePhase, StageStatus, TestRun};

/// Most failing test names listed per stage.
const MAX_FAILING: usize = 10;

/// The marker line identifying the comment of run `name`.
pub fn marker(name: &str) -> String {
    format!("<!-- cc-ci run={name} -->")
}

/// The run's page on the dashboard.
pub fn run_url(public_url: &str, name: &str) -> String {
    format!("{}/runs/{name}", public_url.trim_end_matches('/'))
}

/// A duration as `1m 02s` / `45s` / `1h 03m`.
pub fn duration(from: DateTime<Utc>, to: DateTime<Utc>) -> String {
    let s = (to - from).num_seconds().max(0);
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m {:02}s", s / 60, s % 60),
        _ => format!("{}h {:02}m", s / 3600, (s % 3600) / 60),
    }
}

/// Text safe inside a Markdown table cell: one line, no `|`, no HTML.
fn cell(text: &str) -> String {
    let one_line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let escaped = one_line
        .replace('\\', "\\\\")
        .replace('|', "\\|")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('`', "'");
    let mut s: String = escaped.chars().take(300).collect();
    if escaped.chars().count() > 300 {
        s.push('…');
    }
    s
}

fn stage_result(s: &StageStatus) -> &'static str {
    match s.phase {
        StagePhase::Pending => "⏳ pending",
        StagePhase::Running => "▶️ running",
        StagePhase::Passed => "✅ passed",
        StagePhase::Failed => "❌ failed",
        StagePhase::Skipped => "⏭️ skipped",
        StagePhase::NotApplicable => "➖ not applicable",
        StagePhase::PreviousVersionFailed => "❌ previous version failed",
        StagePhase::Cancelled => "⏹️ cancelled",
    }
}

fn headline(run: &TestRun) -> String {
    let s = &run.status;
    match s.phase {
        RunPhase::Pending => match s.queue_position {
            Some(p) => format!("⏳ **Queued** (position {p} in the queue)"),
            None => "⏳ **Queued**".to_string(),
        },
        RunPhase::Running => match s.stages.iter().find(|st| st.phase == StagePhase::Running) {
            Some(st) => format!("▶️ **Running** — stage `{}`", st.stage.as_str()),
            None => "▶️ **Running**".to_string(),
        },
        RunPhase::Succeeded => "✅ **Succeeded**".to_string(),
        RunPhase::Failed => "❌ **Failed**".to_string(),
        RunPhase::Error => "⚠️ **Error** (a problem on cc-ci's side, not the recipe's)".to_string(),
        RunPhase::TimedOut => "⌛ **Timed out**".to_string(),
        RunPhase::Cancelled => "🚫 **Cancelled**".to_string(),
    }
}

/// The comment text for `run`, linking to `public_url`.
pub fn render(run: &TestRun, public_url: &str) -> String {
    let name = run.name();
    let commit = run.status.commit.as_deref().unwrap_or(&run.spec.git_ref);
    let short = &commit[..commit.len().min(10)];
    let mut out = vec![
        marker(name),
        format!(
            "**cc-ci** test of `{}` at `{short}`: {}",
            run.spec.recipe,
            headline(run)
        ),
        String::new(),
    ];
    if !run.status.stages.is_empty() {
        out.push("| stage | result | duration | tests | failing tests |".into());
        out.push("|---|---|---|---|---|".into());
        for st in &run.status.stages {
            let took = match (st.started, st.finished) {
                (Some(a), Some(b)) => duration(a, b),
                (Some(_), None) => "…".into(),
                _ => String::new(),
            };
            let t = &st.tests;
            let tests = if t.passed + t.failed + t.skipped == 0 {
                String::new()
            } else {
                format!(
                    "{} passed, {} failed, {} skipped",
                    t.passed, t.failed, t.skipped
                )
            };
            let mut failing: Vec<String> = st
                .failing_tests
                .iter()
                .take(MAX_FAILING)
                .map(|f| format!("`{}`", cell(f)))
                .collect();
            if st.failing_tests.len() > MAX_FAILING {
                failing.push(format!("and {} more", st.failing_tests.len() - MAX_FAILING));
            }
            out.push(format!(
                "| {} | {} | {took} | {tests} | {} |",
                st.stage.as_str(),
                stage_result(st),
                failing.join(", ")
            ));
        }
        out.push(String::new());
    }
    if run.status.phase.is_terminal() {
        if let (Some(a), Some(b)) = (run.status.started, run.status.finished) {
            out.push(format!("Total time: {}.", duration(a, b)));
        }
        if !run.status.message.is_empty() {
            out.push(format!("> {}", cell(&run.status.message)));
        }
        out.push(String::new());
    }
    out.push(format!(
        "[Run page and logs]({})",
        run_url(public_url, name)
    ));
    out.join("\n")
}

/// The commit status matching the run's phase.
pub fn status_state(phase: RunPhase) -> StatusState {
    match phase {
        RunPhase::Pending | RunPhase::Running => StatusState::Pending,
        RunPhase::Succeeded => StatusState::Success,
        RunPhase::Failed | RunPhase::TimedOut => StatusState::Failure,
        RunPhase::Error | RunPhase::Cancelled => StatusState::Error,
    }
}

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use super::*;
    use crate::api::{Object, StageKind, TestRunSpec};

    fn run() -> TestRun {
        Object::new(
            "site-pr3-c42",
            TestRunSpec {
                recipe: "site".into(),
                git: None,
                git_ref: "0123456789abcdef0123456789abcdef01234567".into(),
                pr: Some(3),
                source: Default::default(),
                stages: None,
                upgrade_from: None,
                cancel: false,
                keep_on_failure: None,
            },
        )
    }

    fn stage(kind: StageKind, phase: StagePhase) -> StageStatus {
        StageStatus {
            stage: kind,
            phase,
            steps: vec![],
            tests: Default::default(),
            failing_tests: vec![],
            artifacts: vec![],
            message: String::new(),
            started: None,
            finished: None,
        }
    }

    #[test]
    fn a_queued_run_shows_its_position_marker_and_link() {
        let mut r = run();
        r.status.queue_position = Some(2);
        let text = render(&r, "https://ci.example/");
        assert!(
            text.starts_with("<!-- cc-ci run=site-pr3-c42 -->\n"),
            "{text}"
        );
        assert!(text.contains("**Queued** (position 2"), "{text}");
        assert!(text.contains("`0123456789`"), "{text}");
        assert!(
            text.contains("(https://ci.example/runs/site-pr3-c42)"),
            "{text}"
        );
        assert!(!text.contains("| stage |"), "{text}");
    }

    #[test]
    fn a_finished_run_has_its_stage_table_durations_and_failing_tests() {
        let mut r = run();
        let t0 = Utc::now();
        r.status.phase = RunPhase::Failed;
        r.status.started = Some(t0);
        r.status.finished = Some(t0 + Duration::seconds(125));
        r.status.message = "stage upgrade failed | see <log>".into();
        let mut install = stage(StageKind::Install, StagePhase::Passed);
        install.started = Some(t0);
        install.finished = Some(t0 + Duration::seconds(62));
        install.tests.passed = 3;
        let mut upgrade = stage(StageKind::Upgrade, StagePhase::Failed);
        upgrade.started = Some(t0 + Duration::seconds(62));
        upgrade.finished = Some(t0 + Duration::seconds(120));
        upgrade.tests.failed = 12;
        upgrade.failing_tests = (0..12).map(|i| format!("test_{i}|x")).collect();
        r.status.stages = vec![
            install,
            upgrade,
            stage(StageKind::BackupRestore, StagePhase::Skipped),
        ];
        let text = render(&r, "http://ci");
        assert!(text.contains("❌ **Failed**"), "{text}");
        assert!(
            text.contains("| install | ✅ passed | 1m 02s | 3 passed, 0 failed, 0 skipped |"),
            "{text}"
        );
        assert!(text.contains("| upgrade | ❌ failed | 58s |"), "{text}");
        assert!(text.contains("`test_0\\|x`"), "{text}");
        assert!(text.contains("and 2 more"), "{text}");
        assert!(!text.contains("test_11"), "{text}");
        assert!(text.contains("Total time: 2m 05s."), "{text}");
        assert!(text.contains("&lt;log&gt;"), "{text}");
        assert_eq!(status_state(r.status.phase), StatusState::Failure);
    }

    #[test]
    fn a_running_run_names_its_stage() {
        let mut r = run();
        r.status.phase = RunPhase::Running;
        r.status.stages = vec![stage(StageKind::Install, StagePhase::Running)];
        let text = render(&r, "http://ci");
        assert!(text.contains("**Running** — stage `install`"), "{text}");
        assert!(text.contains("| install | ▶️ running |"), "{text}");
    }
}
