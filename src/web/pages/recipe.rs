//! `/recipes/{name}`: a recipe's state and level, what its README claims next to what cc-ci
//! verified, a version × stage grid, the badge Markdown, and its run history.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, header};
use axum::response::Response;
use maud::html;

use super::super::Web;
use super::super::index::{self, RunRow};
use super::super::layout::{self, Viewer};
use super::{commit_cell, phase_text, pr_cell, run_link};
use crate::api::{RecipeSpec, StageKind};
use crate::recipe::{claims, levels};
use crate::store::JsonStore;

/// Runs listed in the history.
const HISTORY: usize = 50;
/// Versions in the grid.
const VERSIONS: usize = 20;

/// Rows of the version × stage grid: per version (newest first), the latest run at it.
pub fn version_grid(runs: &[Arc<RunRow>]) -> Vec<(String, Arc<RunRow>)> {
    let mut out: Vec<(String, Arc<RunRow>)> = Vec::new();
    for r in runs.iter().filter(|r| r.has_verdict()) {
        let v = r
            .version
            .clone()
            .unwrap_or_else(|| layout::short(r.tested_ref()));
        if !out.iter().any(|(seen, _)| *seen == v) && out.len() < VERSIONS {
            out.push((v, r.clone()));
        }
    }
    out
}

fn origin(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            h.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
        })
        .unwrap_or("localhost");
    format!("http://{host}")
}

/// `GET /recipes/{name}`.
pub async fn page<St: JsonStore>(
    State(web): State<Arc<Web<St>>>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Response {
    let viewer = Viewer::of(&web.sessions, &headers);
    let recipe = match layout::record_or_error(
        web.app.store.get::<RecipeSpec>(&name),
        &viewer,
        &format!("There is no recipe called {name:?}."),
    ) {
        Ok(r) => r,
        Err(page) => return *page,
    };
    let runs = index::runs_of(&web.runs, &name);
    let s = web.summary(&name, &recipe.spec.git);
    let judged = s.facts.as_ref().and_then(|f| {
        f.metadata
            .as_ref()
            .map(|m| claims::compare(m, s.latest.as_ref().map(|r| &r.stages[..]), f))
    });
    let base = origin(&headers);
    let markdown = format!("[![cc-ci: {name}]({base}/badge/{name}.svg)]({base}/recipes/{name})");
    let grid = version_grid(&runs);
    layout::page(
        &format!("Recipe {name}"),
        &viewer,
        html! {
            h1 { "Recipe " (name) " " (layout::badge_img(&name)) }
            table.summary { tbody { tr class=(s.state.as_str()) {
                td.state { (s.state.as_str()) }
                td { "level " (layout::level(s.level)) " " (s.level.map(|l| levels::MEANING[usize::from(l)]).unwrap_or("no default-branch run with a result yet")) }
                td { @if let Some(r) = &s.latest { "from " (run_link(r)) " " (layout::when(r.finished)) } }
            } } }
            dl.facts {
                dt { "Repository" } dd.mono { (crate::recipe::source::redact_url(&recipe.spec.git)) }
                dt { "Default branch" } dd { (recipe.spec.default_branch) }
                dt { "Stages" } dd { (recipe.spec.stages.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")) }
                @if recipe.spec.suspended { dt { "Suspended" } dd { "yes: PR comments are not polled" } }
            }
            h2 { "What the recipe claims, and what cc-ci verified" }
            @match &judged {
                None => p.muted { "No README metadata block was recorded (none in the README, or no default-branch run yet)." },
                Some(j) => table id="claims" {
                    thead { tr { th { "Metadata" } th { "README says" } th { "cc-ci saw (latest default-branch run)" } } }
                    tbody { @for c in j {
                        tr class=(if c.contradicted { "failing" } else if c.confirmed { "passing" } else { "unknown" }) {
                            td { (c.key) }
                            td { (c.value) }
                            td { @match &c.verified { Some(v) => { (v) @if c.contradicted { " " span.flag { "⚠ contradicts the claim" } } }, None => span.muted { "not verified by cc-ci" } } }
                        }
                    } }
                },
            }
            @if let Some(f) = &s.facts { @if !f.services.is_empty() {
                p.muted { "Services: " @for (i, svc) in f.services.iter().enumerate() { @if i > 0 { ", " } (svc.name) @if !svc.healthcheck { " (no healthcheck)" } } }
            } }
            h2 { "Levels" }
            ol start="0" { @for (i, m) in levels::MEANING.iter().enumerate() { li class=(if s.level.is_some_and(|l| usize::from(l) >= i) { "" } else { "muted" }) { (m) } } }
            h2 { "Results by version" }
            @if grid.is_empty() { p.muted { "No finished run yet." } } @else {
                table.grid id="grid" {
                    thead { tr { th { "Version" } @for k in StageKind::ALL { th { (k.as_str()) } } th { "Run" } } }
                    tbody { @for (v, r) in &grid { tr {
                        td.mono { (v) }
                        @for k in StageKind::ALL {
                            @match r.stage(k) { Some(st) => td class=(format!("{:?}", st.phase)) { (format!("{:?}", st.phase)) }, None => td.muted { "—" } }
                        }
                        td { (run_link(r)) }
                    } } }
                }
            }
            h2 { "Badge" }
            p { (layout::badge_img(&name)) " Markdown for the recipe's README:" }
            textarea.copy readonly rows="2" { (markdown) }
            p.muted { "shields.io endpoint: " code { (base) "/badge/" (name) ".json" } }
            h2 { "History" }
            table id="history" {
                thead { tr { th { "Run" } th { "PR" } th { "Commit" } th { "Version" } th { "Phase" } th { "Level" } th { "Created" } } }
                tbody { @for r in runs.iter().take(HISTORY) {
                    tr class=(r.phase.as_str()) {
                        td { (run_link(r)) }
                        td { (pr_cell(r)) }
                        td { (commit_cell(r)) }
                        td { (r.version.as_deref().unwrap_or("—")) }
                        td.state { (phase_text(r)) }
                        td { @if r.has_verdict() { (layout::level(Some(levels::level(&r.stages, web.facts(r).as_deref(), None)))) } @else { "—" } }
                        td { (layout::when(r.created)) }
                    }
                } }
            }
            @if runs.len() > HISTORY { p { a href={"/runs?recipe=" (name)} { "All " (runs.len()) " runs" } } }
        },
    )
}
