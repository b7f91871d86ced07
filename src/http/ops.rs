//! Operational endpoints: `/healthz`, `/readyz`, `/metrics`, `/api/v1/version`, and the JSON 404.

use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::error::{ApiError, Reason};
use crate::store::JsonStore;

/// `GET /healthz`: the process answers.
pub async fn healthz() -> &'static str {
    "ok"
}

/// `GET /readyz`: 200 once the store is open, manifests applied and controllers synced.
pub async fn readyz<St: JsonStore>(State(state): State<AppState<St>>) -> Response {
    if state.ready.load(Ordering::Acquire) {
        (StatusCode::OK, "ready").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready").into_response()
    }
}

/// `GET /metrics`: Prometheus text exposition.
pub async fn metrics<St: JsonStore>(State(state): State<AppState<St>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.encode(),
    )
        .into_response()
}

/// `GET /api/v1/version`.
pub async fn version() -> Response {
    axum::Json(serde_json::json!({"version": env!("CARGO_PKG_VERSION")})).into_response()
}

/// Any other path: a JSON `NotFound`.
pub async fn not_found(uri: Uri) -> ApiError {
    ApiError::new(Reason::NotFound, format!("no route for {}", uri.path()))
}
