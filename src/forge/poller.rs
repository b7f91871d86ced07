//! The forge poller: one loop per enrolled Recipe with a `forgeRepo` (and not suspended),
//! started and stopped as Recipes come and go. Each pass reads the repository's comments
//! updated since the cursor (minus an overlap), hands each to the [`Intake`] in creation
//! order, advances the cursor once the whole batch is stored, then looks at the default
//! branch and tags ([`super::branch`]). The poller only writes TestRuns.
//!
//! A pass that fails (forge down, a timeout) changes nothing that was not done: comments
//! processed so far are recorded as such, the cursor stays, the next pass asks again.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio_util::sync::CancellationToken;

use super::branch::{Observed, plan};
use super::intake::{Intake, IntakeError, Outcome, TRIGGER_LABEL};
use crate::api::{Object, Recipe, RecipeSpec, RunSource, TestRun, TestRunSpec};
use crate::store::{LabelSelector, Store};

/// How the poller behaves.
#[derive(Clone, Debug)]
pub struct PollSettings {
    /// Time between two passes of one recipe.
    pub interval: Duration,
    /// Whether default-branch runs are created.
    pub default_branch_runs: bool,
    /// Period of scheduled default-branch runs (`None`: only on changes).
    pub schedule: Option<Duration>,
}

/// What one pass did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PassReport {
    /// Comments the forge returned.
    pub comments: usize,
    /// Runs that exist because of this pass (new or found).
    pub runs: Vec<String>,
}

/// One pass over `recipe`: comments first, then the default branch.
pub async fn poll_once<St: Store>(
    intake: &Intake<St>,
    recipe: &Recipe,
    settings: &PollSettings,
) -> Result<PassReport, IntakeError> {
    let mut report = PassReport::default();
    let Some(repo) = recipe.spec.forge_repo.as_deref() else {
        return Ok(report);
    };
    let mut state = intake.lock(recipe.name()).await?;
    let since = state.get().since(Utc::now());
    let comments = intake.gitea.repo_comments_since(repo, since).await?;
    report.comments = comments.len();
    for c in &comments {
        if let Outcome::Run(name) = intake.process(&mut state, recipe, repo, c, since).await? {
            report.runs.push(name);
        }
    }
    if let Some(newest) = comments.iter().map(|c| c.updated_at).max() {
        state.get_mut().advance(newest);
    }
    if !comments.is_empty() {
        state.save()?;
    }
    if settings.default_branch_runs {
        let branch = recipe.spec.default_branch.as_str();
        let head = intake.gitea.branch_head(repo, branch).await?;
        let tags: Vec<(String, String)> = intake
            .gitea
            .recent_tags(repo)
            .await?
            .into_iter()
            .map(|t| (t.name, t.sha))
            .collect();
        let before = state.get().clone();
        let runs = plan(
            recipe.name(),
            state.get_mut(),
            &Observed {
                branch,
                head: &head,
                tags: &tags,
                now: Utc::now(),
                period: settings.schedule,
            },
        );
        for r in runs {
            let mut run: TestRun = Object::new(
                &r.name,
                TestRunSpec {
                    recipe: recipe.name().to_string(),
                    git: None,
                    git_ref: r.sha,
                    pr: None,
                    source: RunSource {
                        comment_id: None,
                        requester: Some(format!("cc-ci ({})", r.trigger)),
                        triggered_at: Some(Utc::now()),
                    },
                    stages: None,
                    upgrade_from: None,
                    cancel: false,
                    keep_on_failure: None,
                },
            );
            run.metadata
                .labels
                .insert(TRIGGER_LABEL.into(), r.trigger.into());
            intake.create_run(run).await?;
            tracing::info!(recipe = recipe.name(), run = %r.name, trigger = r.trigger,
                "default-branch run stored");
            report.runs.push(r.name);
        }
        if *state.get() != before {
            state.save()?;
        }
    }
    Ok(report)
}

/// The loop of one recipe, until `stop`.
async fn recipe_loop<St: Store>(
    intake: Arc<Intake<St>>,
    name: String,
    settings: PollSettings,
    stop: CancellationToken,
) {
    loop {
        match intake.store.get::<RecipeSpec>(&name) {
            Ok(Some(recipe)) => {
                if let Err(e) = poll_once(&intake, &recipe, &settings).await {
                    tracing::warn!(recipe = %name, error = %e, "forge poll failed; trying again next interval");
                }
            }
            Ok(None) => return,
            Err(e) => tracing::warn!(recipe = %name, error = %e, "reading the Recipe failed"),
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(settings.interval) => {}
        }
    }
}

/// Runs one [`recipe_loop`] per enrolled recipe, re-reading the Recipes every interval, until
/// `shutdown`.
pub async fn run<St: Store>(
    intake: Arc<Intake<St>>,
    settings: PollSettings,
    shutdown: CancellationToken,
) {
    // Wait until the bot's login is known: its own comments must never trigger.
    loop {
        match intake.bot().await {
            Ok(bot) => {
                tracing::info!(bot, "forge poller started");
                break;
            }
            Err(e) => tracing::warn!(error = %e, "cannot ask the forge who the bot is; retrying"),
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(settings.interval) => {}
        }
    }
    let mut loops: HashMap<String, (String, CancellationToken, tokio::task::JoinHandle<()>)> =
        HashMap::new();
    loop {
        match intake.store.list::<RecipeSpec>(&LabelSelector::default()) {
            Ok(recipes) => {
                let wanted: HashMap<String, String> = recipes
                    .into_iter()
                    .filter(|r| !r.spec.suspended && !r.is_deleting())
                    .filter_map(|r| Some((r.metadata.name, r.spec.forge_repo?)))
                    .collect();
                loops.retain(|name, (repo, stop, task)| {
                    let keep = wanted.get(name) == Some(repo) && !task.is_finished();
                    if !keep {
                        stop.cancel();
                    }
                    keep
                });
                for (name, repo) in wanted {
                    if loops.contains_key(&name) {
                        continue;
                    }
                    let stop = shutdown.child_token();
                    let task = tokio::spawn(recipe_loop(
                        intake.clone(),
                        name.clone(),
                        settings.clone(),
                        stop.clone(),
                    ));
                    loops.insert(name, (repo, stop, task));
                }
            }
            Err(e) => tracing::warn!(error = %e, "listing Recipes failed"),
        }
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = tokio::time::sleep(settings.interval.min(Duration::from_secs(5))) => {}
        }
    }
    for (_, (_, stop, task)) in loops {
        stop.cancel();
        let _ = task.await;
    }
}
