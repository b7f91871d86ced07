//! `?watch=true`: a store watch as server-sent events (`init`, `apply`, `init-done`, `delete`,
//! `error`), resumable by `resourceVersion` or `Last-Event-ID`, ended on server shutdown.

use std::collections::HashSet;
use std::convert::Infallible;

use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;

use super::AppState;
use super::error::ApiError;
use crate::api::{Object, Spec};
use crate::store::JsonStore;
use crate::store::{LabelSelector, StoreError, WatchEvent};

/// Where a watch resumes: `?resourceVersion=N`, else the `Last-Event-ID` header; `0`, empty or
/// absent means "from a fresh list".
pub fn resume_point(query: Option<&str>, headers: &HeaderMap) -> Result<Option<u64>, ApiError> {
    let header = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::trim);
    let raw = match query.map(str::trim) {
        Some(q) if !q.is_empty() => q,
        _ => header.unwrap_or(""),
    };
    if raw.is_empty() {
        return Ok(None);
    }
    match raw.parse::<u64>() {
        Ok(0) => Ok(None),
        Ok(n) => Ok(Some(n)),
        Err(_) => Err(ApiError::bad_request(format!(
            "resourceVersion: {raw:?} is not a resource version (a number)"
        ))),
    }
}

/// A resume point past the newest committed write is a client mistake (a version from another
/// server or a typo), not an expired one: answered as `BadRequest` saying so.
pub fn check_not_ahead(from: Option<u64>, latest: Option<u64>) -> Result<(), ApiError> {
    match (from, latest) {
        (Some(from), Some(latest)) if from > latest => Err(ApiError::bad_request(format!(
            "resourceVersion {from} is newer than the newest write of this server ({latest}); \
             start a new watch without it"
        ))),
        _ => Ok(()),
    }
}

fn object_event<S: Spec>(name: &str, obj: &Object<S>) -> Event {
    let data = serde_json::to_string(obj).unwrap_or_else(|_| "{}".into());
    let event = Event::default().event(name).data(data);
    if obj.metadata.resource_version.is_empty() {
        event
    } else {
        event.id(obj.metadata.resource_version.clone())
    }
}

fn error_event(e: StoreError) -> Event {
    Event::default()
        .event("error")
        .data(ApiError::from(e).to_json())
}

/// The SSE response of a watch of kind `S` from `from`, filtered by `selector`.
///
/// With a selector, a record that stops matching is sent as `delete` (as Kubernetes does), so a
/// client's cache stays equal to the filtered list.
pub fn watch_response<S: Spec, St: JsonStore>(
    state: &AppState<St>,
    from: Option<u64>,
    selector: LabelSelector,
) -> Response {
    let upstream = match state.store.watch::<S>(from) {
        Ok(s) => s,
        Err(e @ StoreError::Expired(_)) => {
            let once = futures::stream::once(async move { Ok::<_, Infallible>(error_event(e)) });
            return Sse::new(once).into_response();
        }
        Err(e) => return ApiError::from(e).into_response(),
    };
    let events = async_stream::stream! {
        let mut upstream = upstream;
        let mut matching: HashSet<String> = HashSet::new();
        let filtered = !selector.is_empty();
        while let Some(item) = upstream.next().await {
            match item {
                Ok(WatchEvent::Init) => {
                    matching.clear();
                    yield Event::default().event("init").data("{}");
                }
                Ok(WatchEvent::InitDone) => yield Event::default().event("init-done").data("{}"),
                Ok(WatchEvent::InitApply(obj)) | Ok(WatchEvent::Apply(obj)) => {
                    if !filtered {
                        yield object_event("apply", &obj);
                    } else if selector.matches(&obj.metadata.labels) {
                        matching.insert(obj.metadata.name.clone());
                        yield object_event("apply", &obj);
                    } else if matching.remove(obj.name()) {
                        yield object_event("delete", &obj);
                    }
                }
                Ok(WatchEvent::Delete(obj)) => {
                    let was = matching.remove(obj.name());
                    if !filtered || was || selector.matches(&obj.metadata.labels) {
                        yield object_event("delete", &obj);
                    }
                }
                Err(e) => {
                    yield error_event(e);
                    break;
                }
            }
        }
    };
    let shutdown = state.shutdown.clone();
    let events = events
        .take_until(async move { shutdown.cancelled().await })
        .map(Ok::<_, Infallible>);
    Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_query_version_wins_over_last_event_id() {
        let mut h = HeaderMap::new();
        assert_eq!(resume_point(None, &h).unwrap(), None);
        h.insert("last-event-id", "42".parse().unwrap());
        assert_eq!(resume_point(None, &h).unwrap(), Some(42));
        assert_eq!(resume_point(Some("7"), &h).unwrap(), Some(7));
        assert_eq!(resume_point(Some("0"), &HeaderMap::new()).unwrap(), None);
        assert!(resume_point(Some("x"), &h).is_err());
    }
}
