//! `/badge/{recipe}.svg` and `/badge/{recipe}.json`: the recipe's state and level as a badge,
//! never cached (it changes with every run).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::super::Web;
use super::super::badge::{self, BadgeState};
use crate::api::RecipeSpec;
use crate::store::JsonStore;

/// The badge's left-hand label.
pub const LABEL: &str = "cc-ci";

/// `GET /badge/{file}` with `file` = `<recipe>.svg` or `<recipe>.json`. An unknown recipe gets
/// an `unknown` badge (a README keeps rendering) with status 404.
pub async fn badge<St: JsonStore>(
    State(web): State<Arc<Web<St>>>,
    Path(file): Path<String>,
) -> Response {
    let (recipe, svg) = match (file.strip_suffix(".svg"), file.strip_suffix(".json")) {
        (Some(r), _) => (r, true),
        (_, Some(r)) => (r, false),
        _ => {
            return (
                StatusCode::NOT_FOUND,
                "badges are /badge/<recipe>.svg or .json",
            )
                .into_response();
        }
    };
    let record = match crate::api::validate_name(recipe) {
        Ok(()) => web.app.store.get::<RecipeSpec>(recipe).ok().flatten(),
        Err(_) => None,
    };
    let known = record.is_some();
    let (state, level) = match record {
        Some(r) => {
            let s = web.summary(recipe, &r.spec.git);
            (s.state, s.level)
        }
        None => (BadgeState::Unknown, None),
    };
    let status = if known {
        StatusCode::OK
    } else {
        StatusCode::NOT_FOUND
    };
    let mut resp = if svg {
        let mut r = (status, badge::svg(LABEL, state, level)).into_response();
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("image/svg+xml; charset=utf-8"),
        );
        r
    } else {
        (status, axum::Json(badge::endpoint(LABEL, state, level))).into_response()
    };
    let h = resp.headers_mut();
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, no-store, must-revalidate, max-age=0"),
    );
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    h.insert(header::EXPIRES, HeaderValue::from_static("0"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    resp
}
