//! `/runs/{name}/artifacts/{path}`: a file a stage's status lists as an artifact (screenshots,
//! traces, JUnit XML), served from `<run_dir>/artifacts/`. Only listed paths are served, and
//! only when they resolve inside that directory; nothing else of the run directory (its
//! secrets file above all) is reachable. Images are shown inline, anything else downloads.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::super::Web;
use crate::api::TestRunSpec;
use crate::store::JsonStore;

/// The artifact directory of a run, under its run directory.
pub const DIR: &str = "artifacts";
/// The largest artifact served.
const MAX: u64 = 64 * 1024 * 1024;

fn content_type(path: &str) -> Option<&'static str> {
    let p = path.to_ascii_lowercase();
    let ext = p.rsplit_once('.').map(|(_, e)| e)?;
    Some(match ext {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        _ => return None,
    })
}

fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "no such artifact").into_response()
}

/// `GET /runs/{name}/artifacts/{*path}`.
pub async fn file<St: JsonStore>(
    State(web): State<Arc<Web<St>>>,
    Path((name, path)): Path<(String, String)>,
) -> Response {
    let Ok(Some(run)) = web.app.store.get::<TestRunSpec>(&name) else {
        return not_found();
    };
    let listed = run
        .status
        .stages
        .iter()
        .any(|s| s.artifacts.contains(&path));
    if !listed || path.split('/').any(|c| c == ".." || c.is_empty()) || path.starts_with('/') {
        return not_found();
    }
    let Some(logs) = &web.app.run_logs else {
        return not_found();
    };
    let Ok(run_dir) = logs.run_dir(&name) else {
        return not_found();
    };
    let root = run_dir.join(DIR);
    let (Ok(root), Ok(file)) = (root.canonicalize(), root.join(&path).canonicalize()) else {
        return not_found();
    };
    if !file.starts_with(&root)
        || std::fs::metadata(&file).map_or(true, |m| !m.is_file() || m.len() > MAX)
    {
        return not_found();
    }
    let Ok(bytes) = tokio::fs::read(&file).await else {
        return not_found();
    };
    let mut resp = bytes.into_response();
    let h = resp.headers_mut();
    match content_type(&path) {
        Some(t) => {
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static(t));
        }
        None => {
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            );
            h.insert(
                header::CONTENT_DISPOSITION,
                HeaderValue::from_static("attachment"),
            );
        }
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("sandbox; default-src 'none'"),
    );
    resp
}
