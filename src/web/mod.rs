//! The dashboard: server-rendered HTML pages (maud templates compiled into the binary), plain
//! CSS and a little plain JavaScript for the live log, SVG badges, and operator actions behind
//! a sign-in. It only reads records and run logs (and, for operators, cancels or re-runs
//! TestRuns through the store). `docs/dashboard.md` describes the pages.
//!
//! | route | what |
//! |---|---|
//! | `/` | recipes overview, running and queued runs on top |
//! | `/runs` | every run, newest first, paged, filtered |
//! | `/runs/{name}` | one run: stages × steps, failing tests, artifacts, live log per stage |
//! | `/recipes/{name}` | one recipe: claims vs verified, version × stage grid, history |
//! | `/badge/{recipe}.svg`, `.json` | badge, shields.io endpoint |

mod ansi;
pub mod badge;
pub mod index;
mod layout;
mod live;
mod pages;
pub mod queue;
pub mod session;
pub mod summary;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use axum::Router;
use axum::routing::{get, post};

use crate::http::AppState;
use crate::recipe::facts::{self, RecipeFacts};
use crate::store::JsonStore;

use index::{RunIndex, RunRow};
use session::Sessions;

/// Most recorded facts kept in memory (the latest runs' of each recipe are what pages read).
const FACTS_CACHE: usize = 4096;

/// Everything the dashboard's handlers share.
pub struct Web<St> {
    /// The API's state: store, auth, run logs, shutdown.
    pub app: AppState<St>,
    /// One row per TestRun.
    pub runs: RunIndex,
    /// Operator sessions.
    pub sessions: Sessions,
    facts: Mutex<HashMap<String, Option<Arc<RecipeFacts>>>>,
}

impl<St: JsonStore> Web<St> {
    /// The facts recorded for `run` at fetch time (cached once the run is over).
    pub fn facts(&self, run: &RunRow) -> Option<Arc<RecipeFacts>> {
        let cache = || self.facts.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(f) = cache().get(&run.name) {
            return f.clone();
        }
        let loaded = facts::load_run(self.app.run_logs.as_ref()?, &run.name).map(Arc::new);
        if run.phase.is_terminal() {
            let mut c = cache();
            if c.len() >= FACTS_CACHE {
                c.clear();
            }
            c.insert(run.name.clone(), loaded.clone());
        }
        loaded
    }

    /// The summary of `recipe` (whose repository is `git`) from the index.
    pub fn summary(&self, recipe: &str, git: &str) -> summary::RecipeSummary {
        let runs = index::runs_of(&self.runs, recipe);
        summary::summarise(&runs, git, &|r| self.facts(r))
    }
}

/// The dashboard's routes, served from `state` (the API's state). Starts the run index when a
/// Tokio runtime is present (it always is under `cc-ci serve`).
pub fn router<St: JsonStore>(state: &AppState<St>) -> Router {
    let runs = if tokio::runtime::Handle::try_current().is_ok() {
        index::start(&state.store, state.shutdown.clone())
    } else {
        crate::runtime::reflector::projected::<crate::api::TestRunSpec, RunRow>(RunRow::from).0
    };
    let web = Arc::new(Web {
        sessions: Sessions::new(&state.auth),
        app: state.clone(),
        runs,
        facts: Mutex::new(HashMap::new()),
    });
    Router::new()
        .route("/", get(pages::overview::page::<St>))
        .route("/runs", get(pages::runs::page::<St>))
        .route("/runs/{name}", get(pages::run::page::<St>))
        .route("/runs/{name}/log/{stream}", get(live::raw::<St>))
        .route("/runs/{name}/events/{stream}", get(live::events::<St>))
        .route(
            "/runs/{name}/artifacts/{*path}",
            get(pages::artifacts::file::<St>),
        )
        .route("/runs/{name}/cancel", post(pages::actions::cancel::<St>))
        .route("/runs/{name}/rerun", post(pages::actions::rerun::<St>))
        .route("/recipes/{name}", get(pages::recipe::page::<St>))
        .route("/badge/{file}", get(pages::badge::badge::<St>))
        .route(
            "/signin",
            get(pages::actions::signin_form::<St>).post(pages::actions::signin::<St>),
        )
        .route("/signout", post(pages::actions::signout::<St>))
        .route("/static/dashboard.css", get(layout::css))
        .route("/static/live.js", get(layout::js))
        .with_state(web)
}

#[cfg(test)]
mod tests;
