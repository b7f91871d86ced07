//! The page frame (header, navigation, sign-in state), the static assets, and the small
//! formatting helpers every page uses (times, durations, commits, levels).

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use maud::{DOCTYPE, Markup, PreEscaped, html};

use super::session::{Session, Sessions};

const CSS: &str = include_str!("static/dashboard.css");
const JS: &str = include_str!("static/live.js");

/// Pages allow only their own scripts and styles.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Who is looking: a signed-in operator (with the CSRF token for forms) or anyone.
#[derive(Clone, Debug)]
pub struct Viewer {
    /// The operator's session.
    pub session: Option<Session>,
    /// The CSRF token forms carry (empty when signed out).
    pub csrf: String,
}

impl Viewer {
    /// The viewer of a request.
    pub fn of(sessions: &Sessions, headers: &HeaderMap) -> Viewer {
        let session = sessions.session(headers, Utc::now().timestamp());
        let csrf = session
            .as_ref()
            .map(|s| sessions.csrf(s))
            .unwrap_or_default();
        Viewer { session, csrf }
    }

    /// Whether an operator is signed in.
    pub fn operator(&self) -> bool {
        self.session.is_some()
    }
}

/// A whole HTML page.
pub fn page(title: &str, viewer: &Viewer, body: Markup) -> Response {
    page_with(StatusCode::OK, title, viewer, body)
}

/// A whole HTML page with a status code.
pub fn page_with(status: StatusCode, title: &str, viewer: &Viewer, body: Markup) -> Response {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · cc-ci" }
                link rel="stylesheet" href="/static/dashboard.css";
            }
            body {
                header {
                    a.brand href="/" { "cc-ci" }
                    nav {
                        a href="/" { "Recipes" }
                        a href="/runs" { "Runs" }
                    }
                    @if viewer.operator() {
                        form.inline method="post" action="/signout" {
                            input type="hidden" name="csrf" value=(viewer.csrf);
                            span { "operator " }
                            button type="submit" { "Sign out" }
                        }
                    } @else {
                        a href="/signin" { "Operator sign-in" }
                    }
                }
                main { (body) }
                footer { "cc-ci " (env!("CARGO_PKG_VERSION")) " · Co-op Cloud recipe CI" }
                script src="/static/live.js" defer {}
            }
        }
    };
    let mut resp = (status, markup).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// An error page.
pub fn error(status: StatusCode, viewer: &Viewer, message: &str) -> Response {
    page_with(
        status,
        status.canonical_reason().unwrap_or("Error"),
        viewer,
        html! {
            h1 { (status.as_u16()) " " (status.canonical_reason().unwrap_or("")) }
            p.error { (message) }
            p { a href="/" { "Back to the recipes" } }
        },
    )
}

/// The record a page shows, or the error page: 404 saying `missing` when there is none, 500
/// with the store's error.
pub fn record_or_error<S: crate::api::Spec>(
    found: Result<Option<crate::api::Object<S>>, crate::store::StoreError>,
    viewer: &Viewer,
    missing: &str,
) -> Result<crate::api::Object<S>, Box<Response>> {
    match found {
        Ok(Some(r)) => Ok(r),
        Ok(None) => Err(Box::new(error(StatusCode::NOT_FOUND, viewer, missing))),
        Err(e) => Err(Box::new(error(
            StatusCode::INTERNAL_SERVER_ERROR,
            viewer,
            &e.to_string(),
        ))),
    }
}

fn asset(body: &'static str, content_type: &'static str) -> Response {
    let mut resp = body.into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    resp
}

/// `GET /static/dashboard.css`.
pub async fn css() -> Response {
    asset(CSS, "text/css; charset=utf-8")
}

/// `GET /static/live.js`.
pub async fn js() -> Response {
    asset(JS, "text/javascript; charset=utf-8")
}

/// A time as "3 min ago" with the exact UTC time as its tooltip.
pub fn when(t: Option<DateTime<Utc>>) -> Markup {
    match t {
        None => html! { span.muted { "—" } },
        Some(t) => {
            let exact = t.format("%Y-%m-%d %H:%M:%S UTC").to_string();
            html! { time datetime=(t.to_rfc3339()) title=(exact) { (ago(Utc::now() - t)) } }
        }
    }
}

/// A clock time for estimates: "at 14:05 UTC (in 3 min)".
pub fn at(t: DateTime<Utc>) -> Markup {
    let delta = t - Utc::now();
    let rel = if delta.num_seconds() <= 0 {
        "now".to_string()
    } else {
        format!("in {}", duration(delta))
    };
    html! { span title=(t.format("%Y-%m-%d %H:%M:%S UTC").to_string()) { (t.format("%H:%M").to_string()) " UTC (" (rel) ")" } }
}

fn ago(d: chrono::Duration) -> String {
    if d.num_seconds() < 5 {
        "just now".into()
    } else {
        format!("{} ago", duration(d))
    }
}

/// A duration as `42 s`, `3 min 5 s`, `2 h 4 min`, `3 d 2 h`.
pub fn duration(d: chrono::Duration) -> String {
    let s = d.num_seconds().max(0);
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min {} s", s / 60, s % 60),
        3600..86400 => format!("{} h {} min", s / 3600, s % 3600 / 60),
        _ => format!("{} d {} h", s / 86400, s % 86400 / 3600),
    }
}

/// The first 7 characters of a commit (or a ref as it is, bounded).
pub fn short(commit: &str) -> String {
    let hex = commit.len() >= 12 && commit.bytes().all(|b| b.is_ascii_hexdigit());
    commit.chars().take(if hex { 7 } else { 40 }).collect()
}

/// A level as a coloured box with its meaning as the tooltip.
pub fn level(level: Option<u8>) -> Markup {
    match level {
        None => html! { span.muted { "—" } },
        Some(l) => {
            let meaning = crate::recipe::levels::MEANING
                .get(usize::from(l))
                .copied()
                .unwrap_or("");
            html! { span class={"level l" (l)} title={"level " (l) ": " (meaning)} { (l) } }
        }
    }
}

/// A recipe's badge image.
pub fn badge_img(recipe: &str) -> Markup {
    html! { img src={"/badge/" (recipe) ".svg"} alt={"badge of " (recipe)} height="20"; }
}

/// Raw HTML (already escaped by its producer).
pub fn raw(s: String) -> PreEscaped<String> {
    PreEscaped(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_commits_read_well() {
        assert_eq!(duration(chrono::Duration::seconds(42)), "42 s");
        assert_eq!(duration(chrono::Duration::seconds(185)), "3 min 5 s");
        assert_eq!(duration(chrono::Duration::seconds(7440)), "2 h 4 min");
        assert_eq!(duration(chrono::Duration::seconds(-3)), "0 s");
        assert_eq!(short("4c1e8f0b2a9d7e6c5b4a39281706f5e4d3c2b1a0"), "4c1e8f0");
        assert_eq!(short("main"), "main");
    }
}
