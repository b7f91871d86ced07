//! The dashboard's pages and form actions, one file per page.

pub mod actions;
pub mod artifacts;
pub mod badge;
pub mod overview;
pub mod recipe;
pub mod run;
pub mod runs;

use maud::{Markup, html};

use super::index::RunRow;
use super::layout;

/// A run's phase cell text with "(cancel requested)" when asked.
pub fn phase_text(run: &RunRow) -> String {
    if run.cancel_requested && !run.phase.is_terminal() {
        format!("{} (cancelling)", run.phase.as_str())
    } else {
        run.phase.as_str().to_string()
    }
}

/// The link to a run, with its PR and commit.
pub fn run_link(run: &RunRow) -> Markup {
    html! { a.mono href={"/runs/" (run.name)} { (run.name) } }
}

/// PR number or "default branch".
pub fn pr_cell(run: &RunRow) -> Markup {
    html! {
        @match run.pr {
            Some(pr) => a href={"/runs?pr=" (pr) "&recipe=" (run.recipe)} { "#" (pr) },
            None => span.muted { "default branch" },
        }
    }
}

/// The tested commit, short.
pub fn commit_cell(run: &RunRow) -> Markup {
    html! { code title=(run.tested_ref()) { (layout::short(run.tested_ref())) } }
}
