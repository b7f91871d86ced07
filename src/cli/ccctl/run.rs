//! `ccctl run RECIPE --ref REF …`: creates a manual TestRun with a generated name
//! (`<recipe>-manual-<6 random [a-z0-9]>`), prints the name, and optionally follows its logs.

use chrono::Utc;
use rand::Rng;
use serde_json::{Value, json};

use super::NotFound;
use super::client::{ApiError, Client};
use super::logs::{LogsRequest, logs};
use crate::api::{API_VERSION, Kind, StageKind};

/// The infix of generated manual run names.
pub const MANUAL_INFIX: &str = "-manual-";
/// Length of the random suffix.
pub const SUFFIX_LEN: usize = 6;
/// How many generated names are tried when one is taken.
const NAME_ATTEMPTS: usize = 5;

/// What `run` was asked for.
#[derive(Debug)]
pub struct RunRequest {
    /// Name of the Recipe record.
    pub recipe: String,
    /// Commit SHA or ref to test.
    pub git_ref: String,
    /// Git URL instead of the Recipe's.
    pub git: Option<String>,
    /// Pull request number.
    pub pr: Option<u64>,
    /// Stages (empty: the Recipe's).
    pub stages: Vec<StageKind>,
    /// Version to upgrade from.
    pub upgrade_from: Option<String>,
    /// Keep the app this long after a failing step.
    pub keep_on_failure: Option<String>,
    /// Follow the run's logs after creating it.
    pub follow: bool,
}

/// A name for a manual run of `recipe`: `<recipe>-manual-<suffix>`, the recipe part shortened
/// so the whole stays within 63 characters (a valid record name for any valid recipe name).
pub fn manual_name(recipe: &str, rng: &mut impl Rng) -> String {
    const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let suffix: String = (0..SUFFIX_LEN)
        .map(|_| CHARS[rng.random_range(0..CHARS.len())] as char)
        .collect();
    let room = 63 - MANUAL_INFIX.len() - SUFFIX_LEN;
    let prefix = recipe[..recipe.len().min(room)].trim_end_matches('-');
    format!("{prefix}{MANUAL_INFIX}{suffix}")
}

/// Who asked: `ccctl:<local user>` when the user is known, else `ccctl`.
pub fn requester() -> String {
    let user = ["USER", "LOGNAME"]
        .iter()
        .filter_map(|k| std::env::var(k).ok())
        .map(|u| u.trim().to_string())
        .find(|u| !u.is_empty());
    match user {
        Some(u) => format!("ccctl:{u}"),
        None => "ccctl".to_string(),
    }
}

fn manifest(name: &str, req: &RunRequest) -> Value {
    let mut spec = json!({
        "recipe": req.recipe,
        "ref": req.git_ref,
        "source": {"requester": requester(), "triggeredAt": Utc::now()},
    });
    if let Some(git) = &req.git {
        spec["git"] = json!(git);
    }
    if let Some(pr) = req.pr {
        spec["pr"] = json!(pr);
    }
    if !req.stages.is_empty() {
        spec["stages"] = json!(req.stages);
    }
    if let Some(v) = &req.upgrade_from {
        spec["upgradeFrom"] = json!(v);
    }
    if let Some(v) = &req.keep_on_failure {
        spec["keepOnFailure"] = json!(v);
    }
    json!({
        "apiVersion": API_VERSION,
        "kind": Kind::TestRun.name(),
        "metadata": {"name": name},
        "spec": spec,
    })
}

fn is_api(e: &anyhow::Error, pred: fn(&ApiError) -> bool) -> bool {
    e.downcast_ref::<ApiError>().is_some_and(pred)
}

/// Runs `run`: checks the Recipe exists (unless `--git` names the repository), creates the
/// TestRun, prints its name, and with `--follow` follows its logs like `logs -f`.
pub async fn run(client: &Client, req: &RunRequest) -> anyhow::Result<()> {
    crate::api::validate_name(&req.recipe)
        .map_err(|e| anyhow::anyhow!("recipe {:?}: {}", req.recipe, e.message))?;
    if req.git.is_none() {
        if let Err(e) = client.get_value(Kind::Recipe, &req.recipe).await {
            if is_api(&e, ApiError::is_not_found) {
                return Err(NotFound(format!(
                    "recipe {:?} does not exist on {}: create it first (ccctl apply -f …), or \
                     pass --git URL to test a repository without a Recipe record",
                    req.recipe,
                    client.base()
                ))
                .into());
            }
            return Err(e);
        }
    }
    let mut rng = rand::rng();
    let mut attempt = 0;
    let name = loop {
        attempt += 1;
        let name = manual_name(&req.recipe, &mut rng);
        match client.create(Kind::TestRun, &manifest(&name, req)).await {
            Ok(_) => break name,
            Err(e) if attempt < NAME_ATTEMPTS && is_api(&e, ApiError::is_already_exists) => {}
            Err(e) => return Err(e),
        }
    };
    println!("{name}");
    if req.follow {
        logs(
            client,
            &LogsRequest {
                run: &name,
                stream: None,
                follow: true,
            },
        )
        .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_names_are_valid_and_fit_63_characters() {
        let mut rng = rand::rng();
        let short = manual_name("hedgedoc", &mut rng);
        assert!(short.starts_with("hedgedoc-manual-"), "{short}");
        assert_eq!(short.len(), "hedgedoc-manual-".len() + SUFFIX_LEN);
        let long = "a".repeat(50) + "-" + &"b".repeat(12);
        assert_eq!(long.len(), 63);
        for recipe in [long.as_str(), "x", "abc-def"] {
            let name = manual_name(recipe, &mut rng);
            assert!(name.len() <= 63, "{name}");
            crate::api::validate_name(&name).unwrap();
        }
        // Cut right after a '-': the dash is dropped rather than doubled.
        let dashy = "a".repeat(48) + "-bbbbbb";
        assert!(manual_name(&dashy, &mut rng).starts_with(&("a".repeat(48) + "-manual-")));
        assert_ne!(manual_name("x", &mut rng), manual_name("x", &mut rng));
    }
}
