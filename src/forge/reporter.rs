//! The reporter reconciler: keeps one pull-request comment per PR run, posted when the run is
//! created (queued, with its position), edited as its stages start and finish, and final when
//! it ends; plus an optional commit status on the pinned SHA.
//!
//! # Guarantees
//! - One comment per run: the comment id is kept in the run's `status.reportCommentId`. Before
//!   posting, the intent is recorded ([`POSTING`]); a run with the intent but no id (killed
//!   between posting and storing the id) has its comment found again by the marker line
//!   ([`super::report::marker`]) instead of getting a second one.
//! - Forge outages delay reports, never lose them: a failed call is an error, the runtime
//!   retries with backoff, and the next attempt renders the run as it is then.
//! - A 404/410/423 answer (pull request or repository gone, archived) or 403 on comments stops
//!   reporting for that run: the reason is logged and kept in the run's
//!   `cc-ci.forge/report-stopped` annotation.
//! - A 403 on commit statuses (no write access) turns statuses off for that repository; comments
//!   go on.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use tokio_util::sync::CancellationToken;

use super::client::{ForgeError, StatusState};
use super::intake::Intake;
use super::report::{marker, render, run_url, status_state};
use crate::api::{RecipeSpec, TestRun, TestRunSpec};
use crate::metrics::Metrics;
use crate::runtime::{Action, Cache, Controller, RuntimeSettings, reflector, watcher};
use crate::store::{Store, StoreError};

/// The controller's name.
pub const NAME: &str = "forge-reporter";

/// Annotation saying why reporting stopped for a run.
pub const STOPPED: &str = "cc-ci.forge/report-stopped";

/// Annotation recording that a comment is (about to be) posted for the run: if the run has
/// no comment id yet, a crash may have come between posting and storing it.
pub const POSTING: &str = "cc-ci.forge/report-posting";

/// Annotation holding the hash of a finished run's final comment once it is posted, so a
/// restarted reporter does not edit every old comment again.
pub const REPORTED: &str = "cc-ci.forge/reported";

/// What the reporter works with.
pub struct Context<St> {
    /// The comment intake (store, forge client, bot login).
    pub intake: Arc<Intake<St>>,
    /// Every Recipe (for the forge repository of a run).
    pub recipes: Cache<RecipeSpec>,
    /// Base URL of the run pages.
    pub public_url: String,
    /// Whether commit statuses are set.
    pub commit_status: bool,
    posted: Mutex<HashMap<String, (u64, Option<StatusState>)>>,
    no_status: Mutex<HashSet<String>>,
}

/// Why a report could not be brought up to date (retried with backoff).
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The forge failed.
    #[error("reporting TestRun {run:?}: {source}")]
    Forge {
        /// The run.
        run: String,
        /// The failed call.
        #[source]
        source: ForgeError,
    },
    /// The store failed.
    #[error("reporting TestRun {run:?}: {source}")]
    Store {
        /// The run.
        run: String,
        /// What the store said.
        #[source]
        source: StoreError,
    },
}

fn hash(text: &str) -> u64 {
    use sha2::Digest;
    let d = sha2::Sha256::digest(text.as_bytes());
    u64::from_be_bytes(d[..8].try_into().expect("8 bytes"))
}

fn stops_reporting(e: &ForgeError) -> bool {
    matches!(e.status(), Some(403 | 404 | 410 | 423))
}

/// Starts the reporter until `shutdown`.
pub fn start<St: Store>(
    intake: Arc<Intake<St>>,
    public_url: String,
    commit_status: bool,
    settings: RuntimeSettings,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) -> Vec<tokio::task::JoinHandle<()>> {
    let store = intake.store.clone();
    let (recipes, writer) = reflector::cache::<RecipeSpec>();
    let recipe_changes =
        reflector::reflector(writer, watcher::watch::<RecipeSpec, St>(store.clone()));
    let controller = Controller::<TestRunSpec>::for_store(NAME, &store)
        .settings(settings)
        .metrics(metrics)
        .requires(&recipes)
        .watches(recipe_changes, |_: &crate::api::Recipe| {
            Vec::<String>::new()
        });
    let ctx = Arc::new(Context {
        intake,
        recipes,
        public_url,
        commit_status,
        posted: Mutex::new(HashMap::new()),
        no_status: Mutex::new(HashSet::new()),
    });
    vec![tokio::spawn(controller.run(reconcile::<St>, ctx, shutdown))]
}

/// Brings the comment (and commit status) of one run up to date.
pub async fn reconcile<St: Store>(
    run: Arc<TestRun>,
    ctx: Arc<Context<St>>,
) -> Result<Action, ReportError> {
    let Some(pr) = run.spec.pr else {
        return Ok(Action::await_change());
    };
    if run.metadata.annotations.contains_key(STOPPED) {
        return Ok(Action::await_change());
    }
    let Some(repo) = ctx
        .recipes
        .get(&run.spec.recipe)
        .and_then(|r| r.spec.forge_repo.clone())
    else {
        return Ok(Action::await_change());
    };
    let name = run.name().to_string();
    let forge_err = |source: ForgeError| ReportError::Forge {
        run: name.clone(),
        source,
    };
    let body = render(&run, &ctx.public_url);
    let body_hash = hash(&body);
    if run.metadata.annotations.get(REPORTED) == Some(&format!("{body_hash:016x}")) {
        return Ok(Action::await_change());
    }
    let gitea = &ctx.intake.gitea;
    let result: Result<(), ForgeError> = async {
        let mut id = run.status.report_comment_id;
        if id.is_none() {
            // Only a run whose posting may have happened (intent recorded, id not stored) is
            // looked for on the PR; recording the intent first keeps that search rare.
            if run.metadata.annotations.contains_key(POSTING) {
                id = find_own_comment(&ctx, &repo, pr, &name).await?;
            } else if !annotate(&ctx, &name, POSTING, "true").await {
                return Err(ForgeError {
                    call: "recording the posting intent".into(),
                    kind: super::client::ErrorKind::Transport("store write failed".into()),
                });
            }
            if id.is_none() {
                let c = gitea.create_comment(&repo, pr, &body).await?;
                remember(&ctx, &name, body_hash, None);
                id = Some(c.id);
            }
            let id = id.expect("set above");
            store_comment_id(&ctx, &name, id)
                .await
                .map_err(|e| ForgeError {
                    call: "storing the comment id".into(),
                    kind: super::client::ErrorKind::Transport(e.to_string()),
                })?;
        }
        let id = id.expect("set above");
        let last = ctx.posted.lock().expect("lock").get(&name).copied();
        if last.map(|(h, _)| h) != Some(body_hash) {
            gitea.edit_comment(&repo, id, &body).await?;
            remember(&ctx, &name, body_hash, last.and_then(|l| l.1));
        }
        Ok(())
    }
    .await;
    match result {
        Ok(()) => {}
        Err(e) if stops_reporting(&e) => {
            stop(&ctx, &name, &e).await;
            return Ok(Action::await_change());
        }
        Err(e) => return Err(forge_err(e)),
    }
    if ctx.commit_status {
        set_commit_status(&ctx, &run, &repo)
            .await
            .map_err(forge_err)?;
    }
    if run.status.phase.is_terminal() {
        annotate(&ctx, &name, REPORTED, &format!("{body_hash:016x}")).await;
    }
    Ok(Action::await_change())
}

fn remember<St>(ctx: &Context<St>, run: &str, body: u64, status: Option<StatusState>) {
    ctx.posted
        .lock()
        .expect("lock")
        .insert(run.to_string(), (body, status));
}

/// The bot's comment for `run` on the pull request, if one exists.
async fn find_own_comment<St: Store>(
    ctx: &Context<St>,
    repo: &str,
    pr: u64,
    run: &str,
) -> Result<Option<u64>, ForgeError> {
    let bot = ctx.intake.bot().await?.to_string();
    let mark = marker(run);
    Ok(ctx
        .intake
        .gitea
        .issue_comments(repo, pr)
        .await?
        .into_iter()
        .find(|c| c.user.login.eq_ignore_ascii_case(&bot) && c.body.starts_with(&mark))
        .map(|c| c.id))
}

/// Writes the comment id into the run's status (retrying on conflicts).
async fn store_comment_id<St: Store>(
    ctx: &Context<St>,
    run: &str,
    id: u64,
) -> Result<(), StoreError> {
    let store = &ctx.intake.store;
    for _ in 0..10 {
        let Some(mut fresh) = store.get::<TestRunSpec>(run)? else {
            return Ok(());
        };
        if fresh.status.report_comment_id == Some(id) {
            return Ok(());
        }
        fresh.status.report_comment_id = Some(id);
        match store.replace_status(fresh).await {
            Ok(_) => return Ok(()),
            Err(StoreError::Conflict { .. }) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(StoreError::Backend(
        "the comment id write kept conflicting".into(),
    ))
}

/// Marks reporting as stopped for `run`, with the reason.
async fn stop<St: Store>(ctx: &Context<St>, run: &str, e: &ForgeError) {
    tracing::warn!(run, error = %e, "the forge refuses reports for this run (pull request or repository gone, archived or closed to the bot); reporting stops");
    annotate(ctx, run, STOPPED, &e.to_string()).await;
}

/// Sets an annotation on `run` (retrying on conflicts; failures are logged and answer false).
async fn annotate<St: Store>(ctx: &Context<St>, run: &str, key: &str, value: &str) -> bool {
    let store = &ctx.intake.store;
    for _ in 0..10 {
        let Ok(Some(mut fresh)) = store.get::<TestRunSpec>(run) else {
            return false;
        };
        if fresh.metadata.annotations.get(key).map(String::as_str) == Some(value) {
            return true;
        }
        fresh.metadata.annotations.insert(key.into(), value.into());
        match store.replace(fresh).await {
            Err(StoreError::Conflict { .. }) => continue,
            Err(e) => {
                tracing::warn!(run, key, error = %e, "cannot annotate the run");
                return false;
            }
            Ok(_) => return true,
        }
    }
    false
}

async fn set_commit_status<St: Store>(
    ctx: &Context<St>,
    run: &TestRun,
    repo: &str,
) -> Result<(), ForgeError> {
    if ctx.no_status.lock().expect("lock").contains(repo) {
        return Ok(());
    }
    let name = run.name();
    let state = status_state(run.status.phase);
    let last = ctx.posted.lock().expect("lock").get(name).copied();
    if last.and_then(|l| l.1) == Some(state) {
        return Ok(());
    }
    let sha = run.status.commit.as_deref().unwrap_or(&run.spec.git_ref);
    let description = format!("cc-ci: {}", run.status.phase.as_str());
    match ctx
        .intake
        .gitea
        .set_status(
            repo,
            sha,
            state,
            &description,
            &run_url(&ctx.public_url, name),
        )
        .await
    {
        Ok(()) => {
            if let Some((h, _)) = last {
                remember(ctx, name, h, Some(state));
            }
            Ok(())
        }
        Err(e) if e.status() == Some(403) => {
            tracing::info!(
                repo,
                "no write access for commit statuses; reporting by comments only"
            );
            ctx.no_status.lock().expect("lock").insert(repo.to_string());
            Ok(())
        }
        Err(e) if stops_reporting(&e) => Ok(()),
        Err(e) => Err(e),
    }
}
