//! Turning a forge comment into a TestRun: the one path the poller and the webhook share.
//!
//! For a comment that passes the trigger rules ([`super::trigger::decide`]) the intake checks
//! trust (allowlist, then org membership — failing closed), resolves the pull request (open, not
//! merged), pins its head SHA and creates the TestRun under the comment's deterministic name.
//! An untrusted commenter gets one short reply and no run. Each processed comment version is
//! recorded in the recipe's [`RecipeState`] under a per-recipe lock, so the poller and the
//! webhook never process the same comment twice, also across restarts.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio::sync::{Mutex, OnceCell};

use super::client::{Comment, ForgeError, Gitea};
use super::cursor::{RecipeState, StateError};
use super::trigger::{Decision, decide, run_name};
use crate::api::{Object, Recipe, RunSource, TestRun, TestRunSpec};
use crate::store::{Store, StoreError};

/// Label saying what made a run: `pr`, `branch`, `tag` or `schedule`.
pub const TRIGGER_LABEL: &str = "cc-ci.trigger";

/// Who may trigger runs.
#[derive(Clone, Debug, Default)]
pub struct Trust {
    /// Members of this organisation are trusted.
    pub org: Option<String>,
    /// These logins are trusted whatever their membership.
    pub allowlist: Vec<String>,
}

/// What became of one comment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// This version of the comment was processed before.
    AlreadyProcessed,
    /// Not a trigger; the reason is for logs.
    Ignored(&'static str),
    /// A run exists for it (created now or earlier).
    Run(String),
    /// The commenter is not trusted; they got a reply.
    Untrusted,
    /// Trust could not be established (the membership check failed): no run.
    TrustUnknown,
}

/// Why a comment could not be processed now (it is tried again by the next poll).
#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    /// A forge call failed.
    #[error(transparent)]
    Forge(#[from] ForgeError),
    /// Writing the TestRun failed.
    #[error("storing TestRun {name:?}: {source}")]
    Store {
        /// The run.
        name: String,
        /// What the store said.
        #[source]
        source: StoreError,
    },
    /// The recipe's state file failed.
    #[error(transparent)]
    State(#[from] StateError),
}

/// The comment intake of one forge, shared by the poller and the webhook.
pub struct Intake<St> {
    /// The record store TestRuns are written to.
    pub store: St,
    /// The forge.
    pub gitea: Gitea,
    /// Who may trigger runs.
    pub trust: Trust,
    state_dir: PathBuf,
    bot: OnceCell<String>,
    states: std::sync::Mutex<HashMap<String, Arc<Mutex<Option<RecipeState>>>>>,
}

/// The reply an untrusted commenter gets.
pub fn untrusted_reply(login: &str, org: Option<&str>) -> String {
    let who = match org {
        Some(org) => format!("members of the `{org}` organisation and allow-listed users"),
        None => "allow-listed users".to_string(),
    };
    format!(
        "@{login} cc-ci only runs tests for {who}: a PR's code runs on shared machines. \
         Ask a maintainer to comment `!testme` for you."
    )
}

impl<St: Store> Intake<St> {
    /// An intake keeping its per-recipe state files under `state_dir` (`<state>/forge`).
    pub fn new(store: St, gitea: Gitea, trust: Trust, state_dir: PathBuf) -> Self {
        Intake {
            store,
            gitea,
            trust,
            state_dir,
            bot: OnceCell::new(),
            states: std::sync::Mutex::new(HashMap::new()),
        }
    }

    /// The bot's login, asked once from the forge.
    pub async fn bot(&self) -> Result<&str, ForgeError> {
        self.bot
            .get_or_try_init(|| self.gitea.me())
            .await
            .map(String::as_str)
    }

    fn state_file(&self, recipe: &str) -> PathBuf {
        self.state_dir.join(format!("{recipe}.json"))
    }

    /// The recipe's state, locked: loaded from its file on first use.
    pub async fn lock(&self, recipe: &str) -> Result<StateGuard<'_, St>, StateError> {
        let cell = {
            let mut map = self.states.lock().expect("state map lock");
            map.entry(recipe.to_string()).or_default().clone()
        };
        let mut guard = cell.lock_owned().await;
        if guard.is_none() {
            *guard = Some(RecipeState::load(&self.state_file(recipe))?);
        }
        Ok(StateGuard {
            intake: self,
            recipe: recipe.to_string(),
            guard,
        })
    }

    async fn trusted(&self, login: &str) -> Result<Option<bool>, ForgeError> {
        if self
            .trust
            .allowlist
            .iter()
            .any(|a| a.eq_ignore_ascii_case(login))
        {
            return Ok(Some(true));
        }
        let Some(org) = &self.trust.org else {
            return Ok(Some(false));
        };
        match self.gitea.is_member(org, login).await {
            Ok(m) => Ok(Some(m)),
            Err(e) if e.is_transient() => Err(e),
            Err(e) => {
                tracing::warn!(login, org, error = %e,
                    "the membership check failed; not trusting the commenter (fail closed)");
                Ok(None)
            }
        }
    }

    /// Processes one comment of `recipe` (whose `forgeRepo` is `repo`) under its state lock;
    /// `window_start` is the earliest creation time that counts as new. The comment is marked
    /// processed only once what it asked for is done (durably at once when it got a reply).
    pub async fn process(
        &self,
        state: &mut StateGuard<'_, St>,
        recipe: &Recipe,
        repo: &str,
        comment: &Comment,
        window_start: DateTime<Utc>,
    ) -> Result<Outcome, IntakeError> {
        let st = state.get();
        if st.processed(comment.id, comment.updated_at) {
            return Ok(Outcome::AlreadyProcessed);
        }
        let bot = self.bot().await?.to_string();
        let outcome = match decide(comment, &bot, window_start, st.known(comment.id)) {
            Decision::Ignore(why) => Outcome::Ignored(why),
            Decision::Trigger { pr } => self.trigger(recipe, repo, comment, pr).await?,
        };
        match &outcome {
            Outcome::Run(name) => {
                tracing::info!(recipe = recipe.name(), pr = comment.pull_number(), run = %name,
                    requester = %comment.user.login, "!testme: run stored");
            }
            Outcome::Ignored(why) => {
                tracing::debug!(
                    recipe = recipe.name(),
                    comment = comment.id,
                    why,
                    "comment ignored"
                );
            }
            Outcome::Untrusted | Outcome::TrustUnknown => {
                tracing::warn!(recipe = recipe.name(), comment = comment.id,
                    login = %comment.user.login, ?outcome, "!testme from an untrusted commenter: no run");
            }
            Outcome::AlreadyProcessed => {}
        }
        state.get_mut().mark(comment.id, comment.updated_at);
        // Only a reply must not be repeated after a crash: a run is found again by its
        // deterministic name, and an ignored comment is ignored again. The poller saves the
        // whole state with its cursor after each batch.
        if outcome == Outcome::Untrusted {
            state.save()?;
        }
        Ok(outcome)
    }

    async fn trigger(
        &self,
        recipe: &Recipe,
        repo: &str,
        comment: &Comment,
        pr: u64,
    ) -> Result<Outcome, IntakeError> {
        let name = run_name(recipe.name(), pr, comment.id);
        let existing =
            self.store
                .get::<TestRunSpec>(&name)
                .map_err(|source| IntakeError::Store {
                    name: name.clone(),
                    source,
                })?;
        if existing.is_some() {
            return Ok(Outcome::Run(name));
        }
        match self.trusted(&comment.user.login).await? {
            Some(true) => {}
            Some(false) => {
                let reply = untrusted_reply(&comment.user.login, self.trust.org.as_deref());
                self.gitea.create_comment(repo, pr, &reply).await?;
                return Ok(Outcome::Untrusted);
            }
            None => return Ok(Outcome::TrustUnknown),
        }
        let pull = match self.gitea.pull(repo, pr).await {
            Ok(p) => p,
            Err(e) if e.status() == Some(404) => return Ok(Outcome::Ignored("pull request gone")),
            Err(e) => return Err(e.into()),
        };
        if !pull.is_open() {
            return Ok(Outcome::Ignored("pull request closed or merged"));
        }
        let mut run: TestRun = Object::new(
            &name,
            TestRunSpec {
                recipe: recipe.name().to_string(),
                git: None,
                git_ref: pull.head.sha,
                pr: Some(pr),
                source: RunSource {
                    comment_id: Some(comment.id),
                    requester: Some(comment.user.login.clone()),
                    triggered_at: Some(comment.created_at),
                },
                stages: None,
                upgrade_from: None,
                cancel: false,
                keep_on_failure: None,
            },
        );
        run.metadata
            .labels
            .insert(TRIGGER_LABEL.into(), "pr".into());
        self.create_run(run).await?;
        Ok(Outcome::Run(name))
    }

    /// Stores `run`; a run of that name already stored counts as done.
    pub async fn create_run(&self, run: TestRun) -> Result<(), IntakeError> {
        let name = run.metadata.name.clone();
        match self.store.create(run).await {
            Ok(_) | Err(StoreError::AlreadyExists { .. }) => Ok(()),
            Err(source) => Err(IntakeError::Store { name, source }),
        }
    }
}

/// A recipe's state, locked for one poll or one webhook delivery.
pub struct StateGuard<'a, St> {
    intake: &'a Intake<St>,
    recipe: String,
    guard: tokio::sync::OwnedMutexGuard<Option<RecipeState>>,
}

impl<St: Store> StateGuard<'_, St> {
    /// The state.
    pub fn get(&self) -> &RecipeState {
        self.guard.as_ref().expect("loaded on lock")
    }

    /// The state, to change (then [`StateGuard::save`]).
    pub fn get_mut(&mut self) -> &mut RecipeState {
        self.guard.as_mut().expect("loaded on lock")
    }

    /// Writes the state durably.
    pub fn save(&self) -> Result<(), StateError> {
        self.get().save(&self.intake.state_file(&self.recipe))
    }
}
