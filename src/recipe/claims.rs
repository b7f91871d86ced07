//! "What the recipe claims vs what runs showed": each README metadata entry next to what
//! cc-ci verified for it, and whether a run contradicts it. Pure.

use crate::api::{StageKind, StagePhase};

use super::facts::RecipeFacts;
use super::levels::{self, StageResult};
use super::metadata::{Claim, Entry, claim};

/// One metadata entry, judged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Judged {
    /// The key as the README writes it.
    pub key: String,
    /// The value as the README writes it.
    pub value: String,
    /// What cc-ci saw, when it checks this key (`None`: not verified by cc-ci).
    pub verified: Option<String>,
    /// Whether the run or the checkout contradicts the claim.
    pub contradicted: bool,
    /// Whether what cc-ci saw confirms the claim (a claimed feature was seen working).
    pub confirmed: bool,
}

fn judge(
    key: &str,
    c: Claim,
    run: Option<&[StageResult]>,
    facts: &RecipeFacts,
) -> Option<(String, bool, bool)> {
    match key.to_ascii_lowercase().as_str() {
        "healthcheck" | "healthchecks" => {
            let missing: Vec<&str> = facts
                .services
                .iter()
                .filter(|s| !s.healthcheck)
                .map(|s| s.name.as_str())
                .collect();
            let seen = if facts.services.is_empty() {
                "no services found".to_string()
            } else if missing.is_empty() {
                "every service has a healthcheck".to_string()
            } else {
                format!("no healthcheck: {}", missing.join(", "))
            };
            let all = facts.all_healthchecks();
            Some((seen, c.affirms() && !all, c.affirms() && all))
        }
        "backups" | "backup" => {
            let phase = levels::stage(run?, StageKind::BackupRestore).map(|s| s.phase);
            let seen = match phase {
                Some(StagePhase::Passed) => "backup and restore passed",
                Some(StagePhase::Failed) => "backup-restore failed",
                Some(StagePhase::NotApplicable) => "no backup labels (not applicable)",
                Some(_) => "backup-restore did not run",
                None => "backup-restore not planned",
            };
            let contradicted = c.affirms()
                && matches!(phase, Some(StagePhase::Failed | StagePhase::NotApplicable));
            let confirmed = c.affirms() && phase == Some(StagePhase::Passed);
            Some((seen.to_string(), contradicted, confirmed))
        }
        "tests" => {
            let ran: u32 = run.map_or(0, |r| r.iter().map(|s| s.passed + s.failed).sum());
            let seen = match (facts.recipe_tests, ran) {
                (true, n) => format!("recipe ships tests/; {n} tests ran"),
                (false, n) => format!("no tests/ in the recipe; {n} tests ran (cc-ci's own)"),
            };
            let ok = facts.recipe_tests && ran > 0;
            Some((seen, c.affirms() && !facts.recipe_tests, c.affirms() && ok))
        }
        _ => None,
    }
}

/// Every entry of `metadata`, judged against `run` (the stage results of the default-branch
/// run) and `facts`.
pub fn compare(
    metadata: &[Entry],
    run: Option<&[StageResult]>,
    facts: &RecipeFacts,
) -> Vec<Judged> {
    metadata
        .iter()
        .map(|e| {
            let judged = judge(&e.key, claim(&e.value), run, facts);
            Judged {
                key: e.key.clone(),
                value: e.value.clone(),
                verified: judged.as_ref().map(|(s, _, _)| s.clone()),
                contradicted: judged.as_ref().is_some_and(|(_, c, _)| *c),
                confirmed: judged.as_ref().is_some_and(|(_, _, ok)| *ok),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recipe::facts::ServiceFact;

    fn run_with_backup(phase: StagePhase) -> Vec<StageResult> {
        vec![StageResult {
            kind: StageKind::BackupRestore,
            phase,
            passed: 1,
            failed: 0,
            skipped: 0,
            converged: true,
        }]
    }

    fn entries(pairs: &[(&str, &str)]) -> Vec<Entry> {
        pairs
            .iter()
            .map(|(k, v)| Entry {
                key: k.to_string(),
                value: v.to_string(),
            })
            .collect()
    }

    #[test]
    fn a_backup_claim_is_contradicted_by_a_failing_or_missing_backup() {
        let facts = RecipeFacts::default();
        let m = entries(&[("Backups", "❶💚"), ("Category", "Apps")]);
        for (phase, contradicted) in [
            (StagePhase::Failed, true),
            (StagePhase::NotApplicable, true),
            (StagePhase::Passed, false),
            (StagePhase::Skipped, false),
        ] {
            let j = compare(&m, Some(&run_with_backup(phase)[..]), &facts);
            assert_eq!(j[0].contradicted, contradicted, "{phase:?}");
            assert_eq!(j[0].confirmed, phase == StagePhase::Passed, "{phase:?}");
            assert!(j[0].verified.is_some());
            assert_eq!(j[1].verified, None);
            assert!(!j[1].contradicted);
        }
        let no = compare(
            &entries(&[("Backups", "No")]),
            Some(&run_with_backup(StagePhase::Failed)[..]),
            &facts,
        );
        assert!(!no[0].contradicted);
    }

    #[test]
    fn healthcheck_and_tests_claims_are_checked_against_the_checkout() {
        let facts = RecipeFacts {
            metadata: None,
            services: vec![
                ServiceFact {
                    name: "app".into(),
                    healthcheck: true,
                },
                ServiceFact {
                    name: "db".into(),
                    healthcheck: false,
                },
            ],
            recipe_tests: false,
        };
        let j = compare(
            &entries(&[("Healthcheck", "Yes"), ("Tests", "2")]),
            None,
            &facts,
        );
        assert!(j[0].contradicted && j[1].contradicted, "{j:?}");
        assert!(j[0].verified.as_deref().unwrap().contains("db"));
        let j = compare(
            &entries(&[("Healthcheck", "No"), ("Tests", "No")]),
            None,
            &facts,
        );
        assert!(!j[0].contradicted && !j[1].contradicted);
    }
}
