//! The record routes, generic over the kind (`S: Spec`) and the store: list, get, create,
//! replace, replace status, delete. `?watch=true` on a list is handed to [`super::watch`].

use axum::Json;
use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::{BufMut, Bytes, BytesMut};
use serde::Deserialize;

use super::AppState;
use super::decode::{Purpose, decode_object, parse_json, read_json_body};
use super::error::{ApiError, Reason};
use crate::api::{API_VERSION, Object, Spec};
use crate::store::JsonStore;
use crate::store::LabelSelector;

/// Query parameters of a list or watch.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListParams {
    /// `true` turns the list into a watch.
    #[serde(default)]
    pub watch: Option<String>,
    /// Equality-based selector, e.g. `app=x,tier!=web`.
    #[serde(default)]
    pub label_selector: Option<String>,
    /// For a watch: resume after this version.
    #[serde(default)]
    pub resource_version: Option<String>,
}

fn json_response(status: StatusCode, body: impl Into<Body>) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.into(),
    )
        .into_response()
}

/// `GET /api/v1/{plural}`: the list, or a watch with `?watch=true`.
pub async fn list<S: Spec, St: JsonStore>(
    State(state): State<AppState<St>>,
    headers: HeaderMap,
    query: Result<Query<ListParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(params) =
        query.map_err(|e| ApiError::bad_request(format!("bad query parameters: {e}")))?;
    let selector = LabelSelector::parse(params.label_selector.as_deref().unwrap_or(""))
        .map_err(|e| ApiError::bad_request(format!("labelSelector: {e}")))?;
    let watch = match params.watch.as_deref() {
        None | Some("false") | Some("0") => false,
        Some("true") | Some("1") | Some("") => true,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "watch: expected true or false, got {other:?}"
            )));
        }
    };
    if watch {
        let from = super::watch::resume_point(params.resource_version.as_deref(), &headers)?;
        super::watch::check_not_ahead(from, state.store.latest_resource_version())?;
        return Ok(super::watch::watch_response::<S, St>(
            &state, from, selector,
        ));
    }
    let store = state.store.clone();
    // Serializing 10,000 records is CPU work: keep it off the async workers.
    let body = tokio::task::spawn_blocking(move || list_body::<S, St>(&store, &selector))
        .await
        .map_err(|e| ApiError::new(Reason::InternalError, format!("listing failed: {e}")))??;
    Ok(json_response(StatusCode::OK, body))
}

/// The JSON of a `<Kind>List`, assembled from the records' stored JSON without re-encoding them.
pub fn list_body<S: Spec, St: JsonStore>(
    store: &St,
    selector: &LabelSelector,
) -> Result<Bytes, ApiError> {
    // Read the version first: a watch started from it may repeat a change the list already
    // shows, but never misses one.
    let latest = store.latest_resource_version();
    let items = store.list_json::<S>(selector)?;
    let version = latest.unwrap_or_else(|| max_version(&items));
    let size: usize = items.iter().map(|i| i.len() + 1).sum();
    let mut out = BytesMut::with_capacity(size + 160);
    out.put_slice(
        format!(
            r#"{{"apiVersion":"{API_VERSION}","kind":"{}List","metadata":{{"resourceVersion":"{version}"}},"items":["#,
            S::KIND.name()
        )
        .as_bytes(),
    );
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.put_u8(b',');
        }
        out.put_slice(item);
    }
    out.put_slice(b"]}");
    Ok(out.freeze())
}

fn max_version(items: &[Bytes]) -> u64 {
    #[derive(Deserialize)]
    struct Meta {
        metadata: Version,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Version {
        #[serde(default)]
        resource_version: String,
    }
    items
        .iter()
        .filter_map(|i| serde_json::from_slice::<Meta>(i).ok())
        .filter_map(|m| m.metadata.resource_version.parse::<u64>().ok())
        .max()
        .unwrap_or(0)
}

/// `GET /api/v1/{plural}/{name}`.
pub async fn get<S: Spec, St: JsonStore>(
    State(state): State<AppState<St>>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    match state.store.get_json::<S>(&name)? {
        Some(bytes) => Ok(json_response(StatusCode::OK, bytes)),
        None => Err(not_found::<S>(&name)),
    }
}

fn not_found<S: Spec>(name: &str) -> ApiError {
    ApiError::new(Reason::NotFound, format!("{} {name:?} not found", S::KIND))
}

async fn decoded_body<S: Spec, St: JsonStore>(
    state: &AppState<St>,
    headers: &HeaderMap,
    body: Body,
    purpose: Purpose<'_>,
) -> Result<Object<S>, ApiError> {
    let bytes = read_json_body(headers, body, state.body_limit).await?;
    decode_object::<S>(parse_json(&bytes)?, purpose)
}

/// `POST /api/v1/{plural}` → 201 with the stored record.
pub async fn create<S: Spec, St: JsonStore>(
    State(state): State<AppState<St>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let obj = decoded_body::<S, St>(&state, &headers, body, Purpose::Create).await?;
    let stored = state.store.create(obj).await?;
    Ok((StatusCode::CREATED, Json(stored)).into_response())
}

/// `PUT /api/v1/{plural}/{name}`: spec and metadata, compare-and-swap when a version is given.
pub async fn replace<S: Spec, St: JsonStore>(
    State(state): State<AppState<St>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let obj = decoded_body::<S, St>(&state, &headers, body, Purpose::Replace(&name)).await?;
    let stored = state.store.replace(obj).await?;
    Ok(Json(stored).into_response())
}

/// `PUT /api/v1/{plural}/{name}/status`: the status only; never bumps `generation`.
pub async fn replace_status<S: Spec, St: JsonStore>(
    State(state): State<AppState<St>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let obj = decoded_body::<S, St>(&state, &headers, body, Purpose::Status(&name)).await?;
    let stored = state.store.replace_status(obj).await?;
    Ok(Json(stored).into_response())
}

/// `DELETE /api/v1/{plural}/{name}`: the record while finalizers are pending, else a `Status`.
pub async fn delete<S: Spec, St: JsonStore>(
    State(state): State<AppState<St>>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    match state.store.delete::<S>(&name).await? {
        Some(pending) => Ok(Json(pending).into_response()),
        None => Ok(Json(serde_json::json!({
            "apiVersion": API_VERSION,
            "kind": "Status",
            "status": "Success",
            "details": {"name": name, "kind": S::KIND.name()},
        }))
        .into_response()),
    }
}
