//! `/runs`: every run, newest first, 50 a page, filtered by recipe, phase and PR.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use maud::html;
use serde::Deserialize;

use super::super::Web;
use super::super::index::{self, RunRow};
use super::super::layout::{self, Viewer};
use super::{commit_cell, phase_text, pr_cell, run_link};
use crate::api::RunPhase;
use crate::store::JsonStore;

/// Runs per page.
pub const PAGE: usize = 50;

/// The filters (all optional; unknown values match nothing rather than everything).
#[derive(Debug, Default, Deserialize)]
pub struct Filters {
    /// Recipe name.
    #[serde(default)]
    pub recipe: Option<String>,
    /// Phase, e.g. `Failed`.
    #[serde(default)]
    pub phase: Option<String>,
    /// PR number, or `none` for default-branch runs.
    #[serde(default)]
    pub pr: Option<String>,
    /// 1-based page.
    #[serde(default)]
    pub page: Option<String>,
}

impl Filters {
    fn nonempty(v: &Option<String>) -> Option<&str> {
        v.as_deref().map(str::trim).filter(|s| !s.is_empty())
    }

    /// Whether `run` passes the filters.
    pub fn keep(&self, run: &RunRow) -> bool {
        Self::nonempty(&self.recipe).is_none_or(|r| run.recipe == r)
            && Self::nonempty(&self.phase)
                .is_none_or(|p| run.phase.as_str().eq_ignore_ascii_case(p))
            && Self::nonempty(&self.pr).is_none_or(|p| match p {
                "none" => run.pr.is_none(),
                p => p.trim_start_matches('#').parse::<u64>().ok() == run.pr,
            })
    }

    fn query(&self, page: usize) -> String {
        let mut q = vec![format!("page={page}")];
        for (k, v) in [
            ("recipe", &self.recipe),
            ("phase", &self.phase),
            ("pr", &self.pr),
        ] {
            if let Some(v) = Self::nonempty(v) {
                let enc: String = v
                    .bytes()
                    .map(|b| {
                        if b.is_ascii_alphanumeric() || b == b'-' {
                            (b as char).to_string()
                        } else {
                            format!("%{b:02X}")
                        }
                    })
                    .collect();
                q.push(format!("{k}={enc}"));
            }
        }
        q.join("&")
    }
}

/// `GET /runs`.
pub async fn page<St: JsonStore>(
    State(web): State<Arc<Web<St>>>,
    Query(f): Query<Filters>,
    headers: HeaderMap,
) -> Response {
    let viewer = Viewer::of(&web.sessions, &headers);
    let page = f
        .page
        .as_deref()
        .and_then(|p| p.parse::<usize>().ok())
        .unwrap_or(1)
        .max(1);
    let runs: Vec<Arc<RunRow>> = index::all_newest_first(&web.runs)
        .into_iter()
        .filter(|r| f.keep(r))
        .collect();
    let pages = runs.len().div_ceil(PAGE).max(1);
    let shown = runs.iter().skip((page - 1) * PAGE).take(PAGE);
    let value = |v: &Option<String>| v.clone().unwrap_or_default();
    layout::page(
        "Runs",
        &viewer,
        html! {
            h1 { "Runs" }
            form.filters method="get" action="/runs" {
                label { "Recipe" input type="text" name="recipe" value=(value(&f.recipe)); }
                label { "Phase" select name="phase" {
                    option value="" { "any" }
                    @for p in RunPhase::ALL {
                        option value=(p.as_str()) selected[f.phase.as_deref() == Some(p.as_str())] { (p.as_str()) }
                    }
                } }
                label { "PR (number, or none)" input type="text" name="pr" size="8" value=(value(&f.pr)); }
                input type="submit" value="Filter";
                a href="/runs" { "clear" }
            }
            p.muted { (runs.len()) " runs; page " (page) " of " (pages) "." }
            table id="runs" {
                thead { tr { th { "Run" } th { "Recipe" } th { "PR" } th { "Commit" } th { "Version" } th { "Requested by" } th { "Phase" } th { "Created" } th { "Duration" } } }
                tbody {
                    @for r in shown {
                        tr class=(r.phase.as_str()) {
                            td { (run_link(r)) }
                            td { a href={"/recipes/" (r.recipe)} { (r.recipe) } }
                            td { (pr_cell(r)) }
                            td { (commit_cell(r)) }
                            td { (r.version.as_deref().unwrap_or("—")) }
                            td { (r.requester.as_deref().unwrap_or("—")) }
                            td.state { (phase_text(r)) }
                            td { (layout::when(r.created)) }
                            td { (r.duration().map(layout::duration).unwrap_or_else(|| "—".into())) }
                        }
                    }
                }
            }
            div.pager {
                @if page > 1 { a rel="prev" href={"/runs?" (f.query(page - 1))} { "← newer" } }
                @if page < pages { a rel="next" href={"/runs?" (f.query(page + 1))} { "older →" } }
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_match_recipe_phase_and_pr() {
        let row = |pr: Option<u64>| RunRow {
            name: "r".into(),
            recipe: "wiki".into(),
            pr,
            git: None,
            git_ref: "main".into(),
            commit: None,
            version: None,
            requester: None,
            phase: RunPhase::Failed,
            queue_position: None,
            created: None,
            started: None,
            finished: None,
            cancel_requested: false,
            torn_down: true,
            deleting: false,
            stages: vec![],
        };
        let f = |recipe: &str, phase: &str, pr: &str| Filters {
            recipe: Some(recipe.into()),
            phase: Some(phase.into()),
            pr: Some(pr.into()),
            page: None,
        };
        assert!(f("", "", "").keep(&row(None)));
        assert!(f("wiki", "failed", "#7").keep(&row(Some(7))));
        assert!(!f("wiki", "failed", "7").keep(&row(None)));
        assert!(f("", "", "none").keep(&row(None)));
        assert!(!f("blog", "", "").keep(&row(None)));
        assert!(!f("", "Bogus", "").keep(&row(None)));
        assert!(!f("", "", "x'; drop").keep(&row(Some(1))));
        assert_eq!(f("a b&", "", "").query(2), "page=2&recipe=a%20b%26");
    }
}
