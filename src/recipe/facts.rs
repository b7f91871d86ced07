//! What a recipe checkout says about itself, recorded at fetch time into the run's directory
//! (`<run_dir>/recipe-facts.json`) so it outlives the checkout: the README's metadata block,
//! which services declare a healthcheck, and whether the recipe ships its own `tests/`.
//! The dashboard reads it for levels and for "what the recipe claims vs what runs showed".

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::metadata::{self, Entry};
use crate::runlog::RunLogs;

/// The file name under the run directory.
pub const FILE: &str = "recipe-facts.json";
/// The largest compose file or README read.
const MAX_FILE: u64 = 1024 * 1024;
/// The most services recorded.
const MAX_SERVICES: usize = 64;

/// One service of the recipe's compose files.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceFact {
    /// The service name (bounded).
    pub name: String,
    /// Whether it declares a healthcheck (not `disable: true`).
    pub healthcheck: bool,
}

/// What the checkout said about itself.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecipeFacts {
    /// The README's metadata block, when it has one.
    #[serde(default)]
    pub metadata: Option<Vec<Entry>>,
    /// The services of the enabled compose files, by name.
    #[serde(default)]
    pub services: Vec<ServiceFact>,
    /// Whether the recipe repository has a `tests/` directory.
    #[serde(default)]
    pub recipe_tests: bool,
}

impl RecipeFacts {
    /// Whether there are services and every one declares a healthcheck.
    pub fn all_healthchecks(&self) -> bool {
        !self.services.is_empty() && self.services.iter().all(|s| s.healthcheck)
    }
}

/// The services of one compose text and whether each declares a healthcheck; merged into
/// `into` (a later file's healthcheck counts for a service an earlier one declared). An
/// unparsable text adds nothing.
pub fn add_services(compose: &str, into: &mut Vec<ServiceFact>) {
    let Ok(doc) = serde_saphyr::from_str::<serde_json::Value>(compose) else {
        return;
    };
    let Some(services) = doc.get("services").and_then(|s| s.as_object()) else {
        return;
    };
    for (name, svc) in services {
        let hc = svc.get("healthcheck");
        let declared = hc.is_some_and(|h| {
            h.is_object() && h.get("disable").and_then(|d| d.as_bool()) != Some(true)
        });
        let name: String = name.chars().filter(|c| !c.is_control()).take(64).collect();
        if let Some(s) = into.iter_mut().find(|s| s.name == name) {
            s.healthcheck |= declared;
        } else if into.len() < MAX_SERVICES {
            into.push(ServiceFact {
                name,
                healthcheck: declared,
            });
        }
    }
}

/// Reads `rel` inside `dir`, refusing anything that resolves outside it (symlinks included)
/// and anything too large.
fn read_inside(dir: &Path, rel: &str) -> Option<String> {
    let root = dir.canonicalize().ok()?;
    let path = root.join(rel).canonicalize().ok()?;
    if !path.starts_with(&root) || std::fs::metadata(&path).ok()?.len() > MAX_FILE {
        return None;
    }
    std::fs::read_to_string(path).ok()
}

/// The facts of the checkout in `dir` whose enabled compose files are `compose_files`
/// (relative to `dir`).
pub fn collect(dir: &Path, compose_files: &[String]) -> RecipeFacts {
    let mut services = Vec::new();
    for f in compose_files {
        if let Some(text) = read_inside(dir, f) {
            add_services(&text, &mut services);
        }
    }
    let root = dir.canonicalize().ok();
    let tests = dir.join("tests");
    let recipe_tests = tests.is_dir()
        && root.is_some_and(|r| tests.canonicalize().is_ok_and(|t| t.starts_with(r)));
    RecipeFacts {
        metadata: read_inside(dir, "README.md").and_then(|r| metadata::parse(&r)),
        services,
        recipe_tests,
    }
}

/// Collects the facts of `dir` and writes them to `<run_dir>/recipe-facts.json`. Best effort:
/// the facts only inform the dashboard, so a failure is logged, never fatal.
pub fn record(dir: &Path, compose_files: &[String], run_dir: &Path) {
    let facts = collect(dir, compose_files);
    let path = run_dir.join(FILE);
    let tmp = run_dir.join(format!("{FILE}.tmp"));
    let written = serde_json::to_vec(&facts)
        .map_err(std::io::Error::other)
        .and_then(|body| {
            std::fs::create_dir_all(run_dir)?;
            std::fs::write(&tmp, body)?;
            std::fs::rename(&tmp, &path)
        });
    if let Err(e) = written {
        tracing::warn!(file = %path.display(), error = %e, "cannot record the recipe's facts");
    }
}

/// The facts recorded for the run in `run_dir`, if any.
pub fn load(run_dir: &Path) -> Option<RecipeFacts> {
    let path = run_dir.join(FILE);
    if std::fs::metadata(&path).ok()?.len() > MAX_FILE {
        return None;
    }
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

/// The facts run `run` recorded, from its directory under `logs` (`None`: none recorded, or
/// unreadable).
pub fn load_run(logs: &RunLogs, run: &str) -> Option<RecipeFacts> {
    load(&logs.run_dir(run).ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn healthchecks_are_read_per_service_across_overlays() {
        let mut s = Vec::new();
        add_services(
            "services:\n  app:\n    image: x\n    healthcheck:\n      test: [\"CMD\", \"true\"]\n  db:\n    image: y\n  cache:\n    healthcheck:\n      disable: true\n",
            &mut s,
        );
        assert_eq!(
            s,
            [
                ServiceFact {
                    name: "app".into(),
                    healthcheck: true
                },
                ServiceFact {
                    name: "db".into(),
                    healthcheck: false
                },
                ServiceFact {
                    name: "cache".into(),
                    healthcheck: false
                },
            ]
        );
        add_services(
            "services:\n  db:\n    healthcheck:\n      test: pg_isready\n",
            &mut s,
        );
        assert!(s[1].healthcheck);
        add_services("{{{{ not yaml", &mut s);
        add_services("services: [1, 2]", &mut s);
        assert_eq!(s.len(), 3);
        let facts = RecipeFacts {
            services: s,
            ..RecipeFacts::default()
        };
        assert!(!facts.all_healthchecks());
        assert!(!RecipeFacts::default().all_healthchecks());
    }

    #[test]
    fn collect_reads_the_checkout_and_refuses_to_leave_it() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(
            outside.path().join("secret.yml"),
            "services:\n  evil:\n    healthcheck: {test: x}\n",
        )
        .unwrap();
        let recipe = dir.path().join("r");
        std::fs::create_dir_all(recipe.join("tests")).unwrap();
        std::fs::write(
            recipe.join("compose.yml"),
            "services:\n  app:\n    image: x\n",
        )
        .unwrap();
        std::fs::write(
            recipe.join("README.md"),
            "<!-- metadata -->\n* **Backups**: Yes\n<!-- endmetadata -->",
        )
        .unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret.yml"), recipe.join("link.yml"))
            .unwrap();
        let files = [
            "compose.yml".to_string(),
            "link.yml".into(),
            "../../etc/passwd".into(),
        ];
        let facts = collect(&recipe, &files);
        assert_eq!(facts.services.len(), 1, "{facts:?}");
        assert!(facts.recipe_tests);
        assert_eq!(facts.metadata.as_ref().unwrap()[0].key, "Backups");

        let run_dir = dir.path().join("runs/r1");
        record(&recipe, &files, &run_dir);
        assert_eq!(load(&run_dir), Some(facts));
        assert_eq!(load(&dir.path().join("runs/none")), None);
    }
}
