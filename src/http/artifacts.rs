//! Artifact routes: `GET /api/v1/testruns/{name}/artifacts` (the run's artifact files, JSON)
//! and `GET /api/v1/testruns/{name}/artifacts/{*path}` (one file, with its content type).
//! Paths never leave the run's artifact directory (see [`crate::executor::artifacts::resolve`]);
//! pages a test saved are served sandboxed, so their scripts cannot act on this origin.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::AppState;
use super::error::{ApiError, Reason};
use crate::api::TestRunSpec;
use crate::executor::artifacts::{self, ArtifactError};
use crate::store::JsonStore;

/// The body of `GET /api/v1/testruns/{name}/artifacts`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArtifactList {
    /// The run's name.
    pub run: String,
    /// Artifact paths, e.g. `install/check/artifacts/<test>/screenshot.png`.
    pub artifacts: Vec<String>,
}

fn root<St: JsonStore>(state: &AppState<St>, name: &str) -> Result<std::path::PathBuf, ApiError> {
    let logs = state
        .run_logs
        .as_ref()
        .ok_or_else(|| ApiError::new(Reason::NotFound, "this server keeps no run artifacts"))?;
    if state.store.get::<TestRunSpec>(name)?.is_none() {
        return Err(ApiError::new(
            Reason::NotFound,
            format!("testruns {name:?} not found"),
        ));
    }
    let dir = logs
        .run_dir(name)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    Ok(artifacts::root(&dir))
}

fn artifact_error(e: ArtifactError) -> ApiError {
    match e {
        ArtifactError::BadPath(_) => ApiError::bad_request(e.to_string()),
        ArtifactError::NotFound(_) => ApiError::new(Reason::NotFound, e.to_string()),
        ArtifactError::Io { .. } => ApiError::new(Reason::InternalError, e.to_string()),
    }
}

/// `GET /api/v1/testruns/{name}/artifacts`.
pub async fn list<St: JsonStore>(
    State(state): State<AppState<St>>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let root = root(&state, &name)?;
    let artifacts = tokio::task::spawn_blocking(move || artifacts::list(&root))
        .await
        .map_err(|e| ApiError::new(Reason::InternalError, e.to_string()))?
        .map_err(artifact_error)?;
    Ok(axum::Json(ArtifactList {
        run: name,
        artifacts,
    })
    .into_response())
}

/// `GET /api/v1/testruns/{name}/artifacts/{*path}`.
pub async fn read<St: JsonStore>(
    State(state): State<AppState<St>>,
    Path((name, path)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let root = root(&state, &name)?;
    let file = artifacts::resolve(&root, &path).map_err(artifact_error)?;
    let bytes = tokio::fs::read(&file)
        .await
        .map_err(|e| ApiError::new(Reason::InternalError, e.to_string()))?;
    let mut response = Response::new(Body::from(bytes));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(artifacts::content_type(&path)),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("sandbox"),
    );
    Ok(response)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use axum::http::{Request, StatusCode};
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    use super::super::{AppState, WriteAuth, router};
    use crate::api::{Object, RunSource, TestRunSpec};
    use crate::metrics::Metrics;
    use crate::runlog::RunLogs;
    use crate::store::{SledStore, Store};

    async fn get(app: &axum::Router, uri: &str) -> (StatusCode, Option<String>, Vec<u8>) {
        let res = app
            .clone()
            .oneshot(Request::get(uri).body(axum::body::Body::empty()).unwrap())
            .await
            .unwrap();
        let status = res.status();
        let ct = res
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_string());
        let body = res.into_body().collect().await.unwrap().to_bytes().to_vec();
        (status, ct, body)
    }

    #[tokio::test]
    async fn artifacts_are_listed_and_served_and_no_path_escapes_the_run() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(&dir.path().join("store")).unwrap();
        let state_dir = dir.path().join("state");
        let logs = RunLogs::new(&state_dir);
        for name in ["r1", "r2"] {
            let spec = TestRunSpec {
                recipe: "x".into(),
                git: None,
                git_ref: "main".into(),
                pr: None,
                source: RunSource::default(),
                stages: None,
                upgrade_from: None,
                cancel: false,
                keep_on_failure: None,
            };
            store.create(Object::new(name, spec)).await.unwrap();
        }
        let run_dir = logs.run_dir("r1").unwrap();
        let shot = run_dir.join("artifacts/install/check/artifacts/t/screenshot.png");
        std::fs::create_dir_all(shot.parent().unwrap()).unwrap();
        std::fs::write(&shot, b"\x89PNG fake").unwrap();
        std::fs::write(run_dir.join("secrets.json"), "{\"db\":\"s3cret\"}").unwrap();
        let other = logs.run_dir("r2").unwrap().join("artifacts");
        std::fs::create_dir_all(&other).unwrap();
        std::fs::write(other.join("x.txt"), "other run").unwrap();
        std::fs::write(state_dir.join("api-token"), "tok").unwrap();
        std::os::unix::fs::symlink(
            run_dir.join("secrets.json"),
            run_dir.join("artifacts/install/leak.txt"),
        )
        .unwrap();
        let state = AppState::new(store, Arc::new(Metrics::new()), WriteAuth::token("t"))
            .with_run_logs(logs);
        let app = router(state);

        let (status, _, body) = get(&app, "/api/v1/testruns/r1/artifacts").await;
        assert_eq!(status, StatusCode::OK);
        let list: super::ArtifactList = serde_json::from_slice(&body).unwrap();
        assert_eq!(list.artifacts, ["install/check/artifacts/t/screenshot.png"]);
        let (status, ct, body) = get(
            &app,
            "/api/v1/testruns/r1/artifacts/install/check/artifacts/t/screenshot.png",
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(ct.as_deref(), Some("image/png"));
        assert_eq!(body, b"\x89PNG fake");

        for attack in [
            "/api/v1/testruns/r1/artifacts/../secrets.json",
            "/api/v1/testruns/r1/artifacts/%2e%2e/secrets.json",
            "/api/v1/testruns/r1/artifacts/install/..%2f..%2fsecrets.json",
            "/api/v1/testruns/r1/artifacts/%2e%2e%2f%2e%2e%2fr2/artifacts/x.txt",
            "/api/v1/testruns/r1/artifacts/%2e%2e%2f%2e%2e%2f%2e%2e%2fapi-token",
            "/api/v1/testruns/r1/artifacts/%2fetc%2fpasswd",
            "/api/v1/testruns/r1/artifacts/install/leak.txt",
            "/api/v1/testruns/..%2fr2/artifacts/x.txt",
        ] {
            let (status, _, body) = get(&app, attack).await;
            assert!(
                status == StatusCode::BAD_REQUEST || status == StatusCode::NOT_FOUND,
                "{attack}: {status}"
            );
            let text = String::from_utf8_lossy(&body);
            assert!(
                !text.contains("s3cret") && !text.contains("other run") && !text.contains("tok\""),
                "{attack}: {text}"
            );
        }
        let (status, _, _) = get(&app, "/api/v1/testruns/nope/artifacts").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
}
