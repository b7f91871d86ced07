//! Operator actions: sign-in with the API token (a session cookie, see [`crate::web::session`]),
//! sign-out, and cancel / re-run of a run. Every action checks the session and the form's CSRF
//! token; signed out, they answer 403 and change nothing.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Form;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use maud::html;
use serde::Deserialize;

use super::super::Web;
use super::super::layout::{self, Viewer};
use super::super::session::{Session, Sessions};
use crate::api::{Object, RunSource, TestRunSpec};
use crate::store::JsonStore;
use crate::store::StoreError;

/// A form carrying only its CSRF token.
#[derive(Debug, Default, Deserialize)]
pub struct CsrfForm {
    /// The token.
    #[serde(default)]
    pub csrf: String,
}

/// The sign-in form.
#[derive(Debug, Default, Deserialize)]
pub struct SignInForm {
    /// The API token.
    #[serde(default)]
    pub token: String,
}

fn see_other(to: &str) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

/// `GET /signin`.
pub async fn signin_form<St: JsonStore>(
    State(web): State<Arc<Web<St>>>,
    headers: HeaderMap,
) -> Response {
    let viewer = Viewer::of(&web.sessions, &headers);
    form(&viewer, StatusCode::OK, None)
}

fn form(viewer: &Viewer, status: StatusCode, error: Option<&str>) -> Response {
    layout::page_with(
        status,
        "Sign in",
        viewer,
        html! {
            h1 { "Operator sign-in" }
            @if let Some(e) = error { p.error { (e) } }
            p { "Operators sign in with the API token (the server's " code { "--token-file" } ") to cancel and re-run runs. Everything else is readable without signing in." }
            form method="post" action="/signin" {
                label { "API token " input type="password" name="token" autocomplete="current-password" required; }
                " "
                button.primary type="submit" { "Sign in" }
            }
        },
    )
}

/// `POST /signin`: sets the session cookie when the token is right.
pub async fn signin<St: JsonStore>(
    State(web): State<Arc<Web<St>>>,
    headers: HeaderMap,
    Form(f): Form<SignInForm>,
) -> Response {
    match web.sessions.sign_in(&f.token, Utc::now().timestamp()) {
        Some(cookie) => {
            let mut r = see_other("/");
            r.headers_mut().insert(header::SET_COOKIE, cookie);
            r
        }
        None => {
            let viewer = Viewer::of(&web.sessions, &headers);
            form(
                &viewer,
                StatusCode::UNAUTHORIZED,
                Some("That is not the API token (or no token is configured)."),
            )
        }
    }
}

/// `POST /signout`.
pub async fn signout<St: JsonStore>(State(_web): State<Arc<Web<St>>>) -> Response {
    let mut r = see_other("/");
    r.headers_mut()
        .insert(header::SET_COOKIE, Sessions::sign_out());
    r
}

/// The operator's session if the request carries one and the form's CSRF token matches it.
fn authorised<St: JsonStore>(
    web: &Web<St>,
    headers: &HeaderMap,
    csrf: &str,
) -> Result<Session, Box<Response>> {
    let viewer = Viewer::of(&web.sessions, headers);
    let Some(session) = web.sessions.session(headers, Utc::now().timestamp()) else {
        return Err(Box::new(layout::error(
            StatusCode::FORBIDDEN,
            &viewer,
            "Only signed-in operators can do this: sign in with the API token first.",
        )));
    };
    if !web.sessions.csrf_ok(&session, csrf) {
        return Err(Box::new(layout::error(
            StatusCode::FORBIDDEN,
            &viewer,
            "The form's CSRF token is missing or wrong: reload the page and try again.",
        )));
    }
    Ok(session)
}

fn store_error(web_viewer: &Viewer, e: &StoreError) -> Response {
    let status = match e {
        StoreError::NotFound { .. } => StatusCode::NOT_FOUND,
        StoreError::Conflict { .. } => StatusCode::CONFLICT,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    layout::error(status, web_viewer, &e.to_string())
}

/// `POST /runs/{name}/cancel`: sets `spec.cancel` (the TestRun reconciler stops the run).
pub async fn cancel<St: JsonStore>(
    State(web): State<Arc<Web<St>>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    Form(f): Form<CsrfForm>,
) -> Response {
    if let Err(r) = authorised(&web, &headers, &f.csrf) {
        return *r;
    }
    let viewer = Viewer::of(&web.sessions, &headers);
    for _ in 0..3 {
        let mut run = match web.app.store.get::<TestRunSpec>(&name) {
            Ok(Some(r)) => r,
            Ok(None) => return layout::error(StatusCode::NOT_FOUND, &viewer, "No such run."),
            Err(e) => return store_error(&viewer, &e),
        };
        if run.status.phase.is_terminal() || run.spec.cancel {
            return see_other(&format!("/runs/{name}"));
        }
        run.spec.cancel = true;
        match web.app.store.replace(run).await {
            Ok(_) => {
                tracing::info!(run = %name, "cancel requested from the dashboard");
                return see_other(&format!("/runs/{name}"));
            }
            Err(StoreError::Conflict { .. }) => continue,
            Err(e) => return store_error(&viewer, &e),
        }
    }
    layout::error(
        StatusCode::CONFLICT,
        &viewer,
        "The run kept changing; try again.",
    )
}

/// The name of a re-run of `name`: `<name up to 50 chars>-r<6 hex>`.
pub fn rerun_name(name: &str) -> String {
    let stem: String = name.chars().take(50).collect();
    let stem = stem.trim_end_matches('-');
    format!("{stem}-r{}", &hex::encode(rand::random::<[u8; 3]>()))
}

/// `POST /runs/{name}/rerun`: a new TestRun with the same recipe, commit, PR and stages.
pub async fn rerun<St: JsonStore>(
    State(web): State<Arc<Web<St>>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    Form(f): Form<CsrfForm>,
) -> Response {
    if let Err(r) = authorised(&web, &headers, &f.csrf) {
        return *r;
    }
    let viewer = Viewer::of(&web.sessions, &headers);
    let old = match web.app.store.get::<TestRunSpec>(&name) {
        Ok(Some(r)) => r,
        Ok(None) => return layout::error(StatusCode::NOT_FOUND, &viewer, "No such run."),
        Err(e) => return store_error(&viewer, &e),
    };
    let spec = TestRunSpec {
        git_ref: old
            .status
            .commit
            .clone()
            .unwrap_or(old.spec.git_ref.clone()),
        source: RunSource {
            comment_id: None,
            requester: Some("dashboard operator".into()),
            triggered_at: Some(Utc::now()),
        },
        cancel: false,
        ..old.spec.clone()
    };
    let mut run = Object::new(rerun_name(&name), spec);
    run.metadata.labels = old.metadata.labels.clone();
    run.metadata.annotations =
        BTreeMap::from([("cc-ci.coopcloud.tech/rerun-of".to_string(), name.clone())]);
    match web.app.store.create(run).await {
        Ok(created) => {
            tracing::info!(run = %name, rerun = created.metadata.name, "re-run from the dashboard");
            see_other(&format!("/runs/{}", created.metadata.name))
        }
        Err(e) => store_error(&viewer, &e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rerun_names_are_valid_record_names() {
        for name in [
            "a",
            "wiki-pr12-c99",
            &"x".repeat(63),
            &format!("{}-{}", "y".repeat(49), "z".repeat(13)),
        ] {
            let n = rerun_name(name);
            assert!(crate::api::validate_name(&n).is_ok(), "{n}");
        }
    }
}
