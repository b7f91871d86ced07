//! A test job's verdict: its exit code and JUnit XML turned into the step's report (a
//! collection error or missing results are `Broken`, not a failing recipe), and its overhead
//! logged from the harness' `results.json`.

use std::collections::VecDeque;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use super::junit;
use super::{Broken, StepLog, TestReport};

/// The suite's verdict from the job's exit code and JUnit XML.
pub fn judge(
    code: i64,
    junit_path: &Path,
    tail: &VecDeque<String>,
    stage: &str,
    phase: &str,
    log: StepLog<'_>,
) -> TestReport {
    let last_lines = || {
        tail.iter()
            .rev()
            .take(5)
            .rev()
            .cloned()
            .collect::<Vec<_>>()
            .join(" / ")
    };
    // pytest: 0 passed, 1 failed, 2 interrupted (collection errors), 3 internal error,
    // 4 usage error, 5 no tests collected.
    let cases = match std::fs::read_to_string(junit_path) {
        Ok(xml) => match junit::parse(&xml) {
            Ok(c) => c,
            Err(e) => {
                return broken(format!("the test job's results are unreadable: {e}"));
            }
        },
        Err(_) if code == 5 => Vec::new(),
        Err(_) => {
            return broken(format!(
                "the test job exited with code {code} without results: {}",
                last_lines()
            ));
        }
    };
    let mut report = junit::report(&cases);
    if report.broken.is_none() && cases.is_empty() {
        if code == 0 || code == 5 {
            log(&format!(
                "tests: no suite test selected for {stage}:{phase}: the built-in check alone"
            ));
        } else {
            report.broken = Some(Broken::Collection(format!(
                "the suite could not run (pytest exit code {code}): {}",
                last_lines()
            )));
        }
    } else if report.broken.is_none() && matches!(code, 2..=4) {
        report.broken = Some(Broken::Collection(format!(
            "pytest stopped with exit code {code}: {}",
            last_lines()
        )));
    }
    let c = &report.counts;
    log(&format!(
        "tests: {} passed, {} failed, {} skipped",
        c.passed, c.failed, c.skipped
    ));
    for f in &report.failing {
        log(&format!("tests: FAILED {f}"));
    }
    if let Some(Broken::Collection(why)) = &report.broken {
        log(&format!("tests: ERROR {why}"));
    }
    report
}

fn broken(why: String) -> TestReport {
    TestReport {
        broken: Some(Broken::Collection(why)),
        ..TestReport::default()
    }
}

/// Logs the job's overhead: creation → first test, last test → results parsed (the harness
/// records both test times in `results.json`).
pub fn overheads(created: SystemTime, junit_path: &Path, log: StepLog<'_>) {
    let parsed = SystemTime::now();
    let Some(dir) = junit_path.parent() else {
        return;
    };
    let Ok(text) = std::fs::read_to_string(dir.join("results.json")) else {
        return;
    };
    let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) else {
        return;
    };
    let secs = |t: SystemTime| {
        t.duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or_default()
    };
    if let (Some(first), Some(last)) = (
        v["first_test_started"].as_f64(),
        v["last_test_finished"].as_f64(),
    ) {
        log(&format!(
            "tests: overhead: first test {:.2} s after the job was created; results parsed {:.2} s after the last test",
            first - secs(created),
            secs(parsed) - last
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_without_junit_is_broken_and_no_selected_test_is_said_in_the_log() {
        let tmp = tempfile::tempdir().unwrap();
        let junit = tmp.path().join("junit.xml");
        let tail = VecDeque::from(["ImportError: no module named x".to_string()]);
        let mut lines = Vec::new();
        let r = judge(3, &junit, &tail, "install", "check", &mut |l: &str| {
            lines.push(l.to_string())
        });
        let Some(Broken::Collection(why)) = r.broken else {
            panic!("{r:?}")
        };
        assert!(
            why.contains("code 3") && why.contains("ImportError"),
            "{why}"
        );
        let mut lines = Vec::new();
        let r = judge(5, &junit, &tail, "upgrade", "pre", &mut |l: &str| {
            lines.push(l.to_string())
        });
        assert!(r.broken.is_none() && r.passed());
        assert!(
            lines
                .iter()
                .any(|l| l.contains("no suite test selected for upgrade:pre")),
            "{lines:?}"
        );
    }
}
