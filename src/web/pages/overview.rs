//! `/`: what runs now and what waits (with estimates), then one row per recipe coloured by its
//! latest default-branch result.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use chrono::Utc;
use maud::html;

use super::super::index::RunRow;
use super::super::layout::{self, Viewer};
use super::super::{Web, queue, summary};
use super::{commit_cell, phase_text, pr_cell, run_link};
use crate::api::RecipeSpec;
use crate::store::JsonStore;
use crate::store::LabelSelector;

/// `GET /`.
pub async fn page<St: JsonStore>(State(web): State<Arc<Web<St>>>, headers: HeaderMap) -> Response {
    let viewer = Viewer::of(&web.sessions, &headers);
    let recipes = match web
        .app
        .store
        .list::<RecipeSpec>(&LabelSelector::everything())
    {
        Ok(r) => r,
        Err(e) => return layout::error(StatusCode::INTERNAL_SERVER_ERROR, &viewer, &e.to_string()),
    };
    let mut by_recipe: HashMap<&str, Vec<Arc<RunRow>>> = HashMap::new();
    let all = web.runs.list();
    for r in &all {
        by_recipe
            .entry(r.recipe.as_str())
            .or_default()
            .push(r.clone());
    }
    for runs in by_recipe.values_mut() {
        runs.sort_by(|a, b| RunRow::newest_first(a, b));
    }
    let active: Vec<&RunRow> = all
        .iter()
        .filter(|r| !r.phase.is_terminal() && !r.deleting)
        .map(|r| r.as_ref())
        .collect();
    let durations = |recipe: &str| {
        let past: Vec<chrono::Duration> = by_recipe
            .get(recipe)
            .map(|runs| {
                runs.iter()
                    .filter(|r| r.has_verdict())
                    .filter_map(|r| r.duration())
                    .take(5)
                    .collect()
            })
            .unwrap_or_default();
        queue::typical(&past)
    };
    let estimates = queue::estimate(&active, &durations, Utc::now());
    let row_of = |name: &str| active.iter().find(|r| r.name == name).copied();
    let empty = Vec::new();
    let rows: Vec<(String, summary::RecipeSummary)> = recipes
        .iter()
        .map(|rc| {
            let runs = by_recipe.get(rc.metadata.name.as_str()).unwrap_or(&empty);
            (
                rc.metadata.name.clone(),
                summary::summarise(runs, &rc.spec.git, &|r| web.facts(r)),
            )
        })
        .collect();
    let counts = |s: &str| rows.iter().filter(|(_, r)| r.state.as_str() == s).count();
    layout::page(
        "Recipes",
        &viewer,
        html! {
            h1 { "Recipes" }
            p.muted {
                (rows.len()) " recipes: " (counts("passing")) " passing, " (counts("failing")) " failing, "
                (counts("running")) " running, " (counts("unknown")) " not tested yet. "
                (estimates.iter().filter(|e| e.position.is_none()).count()) " running, "
                (estimates.iter().filter(|e| e.position.is_some()).count()) " queued."
            }
            h2 { "Running and queued" }
            @if estimates.is_empty() {
                p.muted { "Nothing is running or waiting." }
            } @else {
                table id="active" {
                    thead { tr { th { "Run" } th { "Recipe" } th { "PR" } th { "Commit" } th { "Requested by" } th { "Phase" } th { "Queue" } th { "Start" } th { "Estimated finish" } } }
                    tbody {
                        @for e in &estimates {
                            @if let Some(r) = row_of(&e.name) {
                                tr class=(if e.position.is_some() { "queued" } else { "running" }) {
                                    td { (run_link(r)) }
                                    td { a href={"/recipes/" (r.recipe)} { (r.recipe) } }
                                    td { (pr_cell(r)) }
                                    td { (commit_cell(r)) }
                                    td { (r.requester.as_deref().unwrap_or("—")) }
                                    td.state { (phase_text(r)) }
                                    td { @match e.position { Some(p) => { "#" (p) }, None => "running" } }
                                    td { @if e.position.is_some() { "≈ " (layout::at(e.start)) } @else { (layout::when(Some(e.start))) } }
                                    td { "≈ " (layout::at(e.finish)) }
                                }
                            }
                        }
                    }
                }
            }
            h2 { "Recipes" }
            @if rows.is_empty() {
                p.muted { "No recipe is enrolled yet: apply a Recipe record (see docs/recipes.md)." }
            } @else {
                table id="recipes" {
                    thead { tr { th { "Recipe" } th { "State" } th { "Level" } th { "Version" } th { "Commit" } th { "When" } th { "Badge" } th { "Latest PR run" } } }
                    tbody {
                        @for (name, s) in &rows {
                            tr class=(s.state.as_str()) data-recipe=(name) {
                                td { a href={"/recipes/" (name)} { (name) } }
                                td.state {
                                    @match &s.latest {
                                        Some(r) => a href={"/runs/" (r.name)} { (s.state.as_str()) " (" (r.phase.as_str()) ")" },
                                        None => (s.state.as_str()),
                                    }
                                }
                                td { (layout::level(s.level)) }
                                td { (s.latest.as_ref().and_then(|r| r.version.as_deref()).unwrap_or("—")) }
                                td { @if let Some(r) = &s.latest { (commit_cell(r)) } @else { "—" } }
                                td { (layout::when(s.latest.as_ref().and_then(|r| r.finished))) }
                                td { (layout::badge_img(name)) }
                                td {
                                    @match &s.latest_pr {
                                        Some(r) => { (pr_cell(r)) " " a class=(r.phase.as_str()) href={"/runs/" (r.name)} { (phase_text(r)) } }
                                        None => span.muted { "—" },
                                    }
                                }
                            }
                        }
                    }
                }
            }
        },
    )
}
