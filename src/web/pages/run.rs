//! `/runs/{name}`: the page a PR comment links to. Recipe, PR and commit links, requester,
//! phase, the stage × step table, failing tests, screenshots and artifacts, and per stage the
//! log: its tail rendered into the page (complete without JavaScript once the run is over,
//! with the raw log a link away), followed live over server-sent events while it runs.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use maud::{Markup, html};

use super::super::Web;
use super::super::ansi::{Ansi, render_log};
use super::super::index::RunRow;
use super::super::layout::{self, Viewer};
use crate::api::{RecipeSpec, StepStatus, TestRun, TestRunSpec};
use crate::http::logs::sort_streams;
use crate::store::JsonStore;

/// How much of each log's end is rendered into the page.
pub const TAIL: u64 = 128 * 1024;

/// The web address of a recipe's repository, from its git URL (http(s) only, credentials
/// removed), for PR and commit links.
pub fn repo_web_url(git: &str) -> Option<String> {
    let url = crate::recipe::source::redact_url(git);
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))?;
    if rest.contains('@') || rest.contains(['"', '<', '>', ' ', '\\']) {
        return None;
    }
    let scheme = if url.starts_with("https://") {
        "https://"
    } else {
        "http://"
    };
    Some(format!(
        "{scheme}{}",
        rest.trim_end_matches('/').trim_end_matches(".git")
    ))
}

fn step_rows(stage: &str, steps: &[StepStatus]) -> Markup {
    html! {
        @for s in steps {
            tr class=(match s.ok { Some(true) => "Succeeded", Some(false) => "Failed", None => if s.started.is_some() { "Running" } else { "Pending" } }) {
                td.muted { (stage) }
                td.mono { (s.name) }
                td { @match s.ok { Some(true) => "ok", Some(false) => "failed", None => { @if s.started.is_some() { "running" } @else { "pending" } } } }
                td { @match (s.started, s.finished) { (Some(a), Some(b)) => (layout::duration(b - a)), _ => "—" } }
                td { (s.message) }
            }
        }
    }
}

struct LogView {
    stream: String,
    html: String,
    skipped: u64,
    end: u64,
}

async fn log_views<St: JsonStore>(web: &Web<St>, run: &TestRun) -> Vec<LogView> {
    let Some(logs) = &web.app.run_logs else {
        return Vec::new();
    };
    let name = run.metadata.name.as_str();
    let mut streams = logs.streams(name).await.unwrap_or_default();
    let terminal = run.status.phase.is_terminal();
    if !terminal {
        // Planned stages that have not logged yet get a live console too, so their log
        // appears without a reload once they start.
        for s in &run.status.stages {
            if !streams.iter().any(|x| x == s.stage.as_str()) {
                streams.push(s.stage.as_str().to_string());
            }
        }
    }
    sort_streams(&mut streams);
    let mut out = Vec::new();
    for stream in streams {
        let Ok(size) = logs.read(name, &stream, u64::MAX, 0).await.map(|c| c.size) else {
            continue;
        };
        let start = size.saturating_sub(TAIL);
        let Ok(chunk) = logs.read(name, &stream, start, TAIL as usize).await else {
            continue;
        };
        let mut data = chunk.data.as_slice();
        let mut from = start;
        if start > 0 {
            // Start on a line.
            let nl = data
                .iter()
                .position(|b| *b == b'\n')
                .map_or(data.len(), |i| i + 1);
            data = &data[nl..];
            from += nl as u64;
        }
        if !terminal {
            // End on a line: the live log continues from there.
            let nl = data.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
            data = &data[..nl];
        }
        let mut html = String::with_capacity(data.len() + 256);
        render_log(
            &mut Ansi::default(),
            &String::from_utf8_lossy(data),
            &mut html,
        );
        out.push(LogView {
            end: from + data.len() as u64,
            stream,
            html,
            skipped: from,
        });
    }
    out
}

fn is_image(path: &str) -> bool {
    let p = path.to_ascii_lowercase();
    [".png", ".jpg", ".jpeg", ".gif", ".webp"]
        .iter()
        .any(|e| p.ends_with(e))
}

/// `GET /runs/{name}`.
pub async fn page<St: JsonStore>(
    State(web): State<Arc<Web<St>>>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Response {
    let viewer = Viewer::of(&web.sessions, &headers);
    let run = match layout::record_or_error(
        web.app.store.get::<TestRunSpec>(&name),
        &viewer,
        &format!("There is no run called {name:?} (it may have been pruned)."),
    ) {
        Ok(r) => r,
        Err(page) => return *page,
    };
    let repo = web
        .app
        .store
        .get::<RecipeSpec>(&run.spec.recipe)
        .ok()
        .flatten()
        .and_then(|r| repo_web_url(run.spec.git.as_deref().unwrap_or(&r.spec.git)));
    let row = RunRow::from(run.clone());
    let st = &run.status;
    let terminal = st.phase.is_terminal();
    let logs = log_views(&web, &run).await;
    let commit = st
        .commit
        .clone()
        .unwrap_or_else(|| run.spec.git_ref.clone());
    layout::page(
        &format!("Run {name}"),
        &viewer,
        html! {
            h1 { "Run " span.mono { (name) } }
            table.summary { tbody { tr class=(st.phase.as_str()) {
                td.state { (super::phase_text(&row)) }
                td { (st.message) }
            } } }
            dl.facts {
                dt { "Recipe" } dd { a href={"/recipes/" (run.spec.recipe)} { (run.spec.recipe) } }
                dt { "Pull request" } dd {
                    @match (run.spec.pr, &repo) {
                        (Some(pr), Some(repo)) => a href={(repo) "/pulls/" (pr)} { "#" (pr) },
                        (Some(pr), None) => { "#" (pr) },
                        (None, _) => span.muted { "default branch" },
                    }
                }
                dt { "Commit" } dd {
                    @match &repo {
                        Some(repo) => a.mono href={(repo) "/commit/" (commit)} { (commit) },
                        None => code { (commit) },
                    }
                }
                dt { "Version" } dd {
                    (st.app.as_ref().and_then(|a| a.version.as_deref()).unwrap_or("—"))
                    @if let Some(prev) = st.app.as_ref().and_then(|a| a.previous_version.as_deref()) { span.muted { " (upgrade from " (prev) ")" } }
                }
                @if let Some(app) = &st.app {
                    dt { "App" } dd {
                        code { (app.domain) }
                        span.muted { (match app.routing {
                            Some(crate::api::RoutingMode::Proxy) => " — tests went through the proxy, by domain over TLS",
                            Some(crate::api::RoutingMode::Direct) => " — tests went straight to the app (no proxy declared)",
                            None => "",
                        }) }
                    }
                }
                dt { "Requested by" } dd { (run.spec.source.requester.as_deref().unwrap_or("—")) }
                dt { "Created" } dd { (layout::when(run.metadata.creation_timestamp)) }
                @if let Some(pos) = st.queue_position { dt { "Queue position" } dd { "#" (pos) } }
                dt { "Started" } dd { (layout::when(st.started)) }
                dt { "Finished" } dd { (layout::when(st.finished)) }
                dt { "Duration" } dd { (row.duration().map(layout::duration).unwrap_or_else(|| "—".into())) }
            }
            @if viewer.operator() {
                div.actions {
                    @if !terminal && !run.spec.cancel {
                        form.inline method="post" action={"/runs/" (name) "/cancel"} {
                            input type="hidden" name="csrf" value=(viewer.csrf);
                            button.danger #cancel type="submit" { "Cancel run" }
                        }
                    }
                    @if terminal {
                        form.inline method="post" action={"/runs/" (name) "/rerun"} {
                            input type="hidden" name="csrf" value=(viewer.csrf);
                            button.primary #rerun type="submit" { "Re-run" }
                        }
                    }
                }
            }
            h2 { "Stages" }
            table id="stages" {
                thead { tr { th { "Stage" } th { "Result" } th { "Tests" } th { "Duration" } th { "Message" } } }
                tbody {
                    @for s in &st.stages {
                        tr class=(format!("{:?}", s.phase)) {
                            td { a href={"#log-" (s.stage.as_str())} { (s.stage.as_str()) } }
                            td.state { (format!("{:?}", s.phase)) }
                            td { (s.tests.passed) " passed, " (s.tests.failed) " failed, " (s.tests.skipped) " skipped" }
                            td { @match (s.started, s.finished) { (Some(a), Some(b)) => (layout::duration(b - a)), _ => "—" } }
                            td { (s.message) }
                        }
                    }
                }
            }
            h2 { "Steps" }
            table id="steps" {
                thead { tr { th { "Stage" } th { "Step" } th { "Result" } th { "Duration" } th { "Detail" } } }
                tbody {
                    @let (before, after): (Vec<&StepStatus>, Vec<&StepStatus>) = st.steps.iter().partition(|s| s.name.as_str() != "teardown");
                    (step_rows("run", &before.into_iter().cloned().collect::<Vec<_>>()))
                    @for s in &st.stages { (step_rows(s.stage.as_str(), &s.steps)) }
                    (step_rows("run", &after.into_iter().cloned().collect::<Vec<_>>()))
                }
            }
            @if st.stages.iter().any(|s| !s.failing_tests.is_empty()) {
                h2 { "Failing tests" }
                table id="failing" {
                    thead { tr { th { "Stage" } th { "Test" } th { "Message" } } }
                    tbody {
                        @for s in &st.stages { @for t in &s.failing_tests {
                            tr.Failed { td { (s.stage.as_str()) } td.mono { (t) } td { (s.message) } }
                        } }
                    }
                }
            }
            @if st.stages.iter().any(|s| !s.artifacts.is_empty()) {
                h2 { "Screenshots and artifacts" }
                @for s in &st.stages { @for a in &s.artifacts {
                    div.artifact {
                        span.muted { (s.stage.as_str()) ": " }
                        a href={"/runs/" (name) "/artifacts/" (a)} download { (a) }
                        @if is_image(a) { img.shot src={"/runs/" (name) "/artifacts/" (a)} alt=(a) loading="lazy"; }
                    }
                } }
            }
            h2 { "Logs" }
            @if terminal && logs.is_empty() { p.muted { "No log yet." } }
        @if !terminal && logs.is_empty() { p.muted { "Reload once the run has started to follow its log." } }
            @for l in &logs {
                h3 id={"log-" (l.stream)} { (l.stream) }
                div.logbar {
                    @if terminal { span.muted { "finished" } } @else { span.live id={"console-" (l.stream) "-status"} { "live" } }
                    a href={"/runs/" (name) "/log/" (l.stream)} download={(name) "-" (l.stream) ".log"} { "raw log" }
                    @if l.skipped > 0 { span.muted { "the first " (l.skipped / 1024) " KiB are only in the raw log" } }
                }
                @if terminal {
                    pre.console id={"console-" (l.stream)} { (layout::raw(l.html.clone())) }
                } @else {
                    pre.console id={"console-" (l.stream)} data-events={"/runs/" (name) "/events/" (l.stream)} data-offset=(l.end) { (layout::raw(l.html.clone())) }
                }
            }
            @if !terminal && logs.is_empty() {
                p.muted { "The log appears here once the run has started: reload then." }
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_links_come_only_from_clean_http_urls() {
        assert_eq!(
            repo_web_url("https://git.coopcloud.tech/coop-cloud/wiki.git").as_deref(),
            Some("https://git.coopcloud.tech/coop-cloud/wiki")
        );
        let u = repo_web_url("https://user:hunter2@git.example.org/a/b").unwrap_or_default();
        assert!(!u.contains("hunter2"), "{u}");
        assert_eq!(repo_web_url("ssh://git@host/a/b"), None);
        assert_eq!(repo_web_url("/srv/git/recipe"), None);
        assert_eq!(repo_web_url("https://h/a\"onmouseover=x"), None);
    }
}
