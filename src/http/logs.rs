//! Run-log routes: `GET /api/v1/testruns/{name}/logs` (the run's streams and their sizes) and
//! `GET /api/v1/testruns/{name}/logs/{stream}` (bytes from an offset, or `?follow=true` as a
//! chunked `text/plain` stream that ends when the run is over). The files themselves are
//! [`RunLogs`], written (already redacted) by the TestRun reconciler.

use std::time::Duration;

use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Deserialize;

use super::AppState;
use super::error::{ApiError, Reason};
use crate::api::{StageKind, TestRunSpec};
use crate::runlog::{RUN_STREAM, RunLogError, RunLogs};
use crate::store::JsonStore;

pub use crate::api::wire::{LOG_OFFSET, LOG_SIZE, LogStream, LogStreamList, NEXT_OFFSET};

/// Default `limit` of a plain read: 1 MiB.
pub const DEFAULT_LIMIT: usize = 1 << 20;
/// Largest `limit` a plain read accepts: 16 MiB.
pub const MAX_LIMIT: usize = 16 << 20;
/// How often a follow looks at the file and the run's phase.
pub const FOLLOW_POLL: Duration = Duration::from_millis(250);
/// A follow ends once the run is terminal and its log has not grown for this long.
pub const FOLLOW_QUIET: Duration = Duration::from_secs(1);
/// Most bytes a follow reads (and sends as one chunk) at a time.
const FOLLOW_CHUNK: usize = 64 * 1024;

/// The rank of a stream in plan order: `run`, then the stages in plan order, then the rest.
fn plan_rank(stream: &str) -> usize {
    if stream == RUN_STREAM {
        return 0;
    }
    StageKind::ALL
        .iter()
        .position(|s| s.as_str() == stream)
        .map_or(StageKind::ALL.len() + 1, |i| i + 1)
}

/// Sorts stream names in plan order (`run`, `install`, `upgrade`, `backup-restore`), any other
/// streams after them by name.
pub fn sort_streams(streams: &mut [String]) {
    streams.sort_by(|a, b| plan_rank(a).cmp(&plan_rank(b)).then_with(|| a.cmp(b)));
}

/// Query parameters of a stream read.
#[derive(Debug, Default, Deserialize)]
pub struct ReadParams {
    /// Byte offset to start from (default 0).
    #[serde(default)]
    pub offset: Option<String>,
    /// Most bytes to answer (plain reads only; default 1 MiB, at most 16 MiB).
    #[serde(default)]
    pub limit: Option<String>,
    /// `true` streams the log as it grows.
    #[serde(default)]
    pub follow: Option<String>,
}

fn number<T: std::str::FromStr>(name: &str, raw: Option<&str>) -> Result<Option<T>, ApiError> {
    match raw.map(str::trim) {
        None | Some("") => Ok(None),
        Some(v) => v.parse::<T>().map(Some).map_err(|_| {
            ApiError::bad_request(format!("{name}: {v:?} is not a non-negative integer"))
        }),
    }
}

fn flag(name: &str, raw: Option<&str>) -> Result<bool, ApiError> {
    match raw {
        None | Some("false") | Some("0") => Ok(false),
        Some("true") | Some("1") | Some("") => Ok(true),
        Some(other) => Err(ApiError::bad_request(format!(
            "{name}: expected true or false, got {other:?}"
        ))),
    }
}

fn logs_of<St>(state: &AppState<St>) -> Result<&RunLogs, ApiError> {
    state.run_logs.as_ref().ok_or_else(|| {
        ApiError::new(
            Reason::NotFound,
            "this server keeps no run logs (it was started without a state directory)",
        )
    })
}

fn log_error(e: RunLogError) -> ApiError {
    match e {
        RunLogError::BadName(name) => ApiError::bad_request(format!(
            "{name:?} is not a log stream name (lowercase letters, digits, '-' and '.')"
        )),
        RunLogError::Io { .. } => {
            tracing::error!(error = %e, "reading a run log failed");
            ApiError::new(Reason::InternalError, e.to_string())
        }
    }
}

/// The run's phase, or `None` when the record does not exist.
fn run_state<St: JsonStore>(state: &AppState<St>, name: &str) -> Result<Option<bool>, ApiError> {
    Ok(state
        .store
        .get::<TestRunSpec>(name)?
        .map(|run| run.status.phase.is_terminal()))
}

/// A run name that cannot exist is a 400 that says it is the run's name that is wrong.
fn check_run_name(name: &str) -> Result<(), ApiError> {
    crate::api::validate_name(name).map_err(|e| {
        ApiError::bad_request(format!(
            "{name:?} is not a valid TestRun name: {}",
            e.message
        ))
    })
}

fn run_not_found(name: &str) -> ApiError {
    ApiError::new(
        Reason::NotFound,
        format!("{} {name:?} not found", crate::api::Kind::TestRun),
    )
}

/// `GET /api/v1/testruns/{name}/logs`: the run's streams with their sizes, in plan order.
pub async fn list<St: JsonStore>(
    State(state): State<AppState<St>>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let logs = logs_of(&state)?;
    check_run_name(&name)?;
    if run_state(&state, &name)?.is_none() {
        return Err(run_not_found(&name));
    }
    let mut names = logs.streams(&name).await.map_err(log_error)?;
    sort_streams(&mut names);
    let mut streams = Vec::with_capacity(names.len());
    for stream in names {
        // Reading nothing from past the end answers the size.
        let size = logs
            .read(&name, &stream, u64::MAX, 0)
            .await
            .map_err(log_error)?
            .size;
        streams.push(LogStream { name: stream, size });
    }
    Ok(axum::Json(LogStreamList { run: name, streams }).into_response())
}

fn header_value(n: u64) -> HeaderValue {
    HeaderValue::from(n)
}

/// `GET /api/v1/testruns/{name}/logs/{stream}?offset=N[&limit=M][&follow=true]`.
///
/// A plain read answers up to `limit` bytes from `offset` with [`NEXT_OFFSET`], [`LOG_SIZE`] and
/// [`LOG_OFFSET`] headers; an offset past the end reads nothing and answers the size as the next
/// offset. A stream that does not exist (yet) reads as empty.
///
/// With `follow=true` the body is chunked `text/plain`: what exists from `offset`, then every
/// byte appended, each exactly once; it ends once the run is in a terminal phase and the file
/// has not grown for [`FOLLOW_QUIET`], when the record is deleted, or on server shutdown.
/// [`LOG_OFFSET`] gives the offset of the first byte; a client resumes at that offset plus the
/// bytes it received.
pub async fn read<St: JsonStore>(
    State(state): State<AppState<St>>,
    Path((name, stream)): Path<(String, String)>,
    query: Result<Query<ReadParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(params) =
        query.map_err(|e| ApiError::bad_request(format!("bad query parameters: {e}")))?;
    let offset = number::<u64>("offset", params.offset.as_deref())?.unwrap_or(0);
    let limit = number::<usize>("limit", params.limit.as_deref())?.unwrap_or(DEFAULT_LIMIT);
    if limit > MAX_LIMIT {
        return Err(ApiError::bad_request(format!(
            "limit: at most {MAX_LIMIT} bytes per read (got {limit})"
        )));
    }
    let follow = flag("follow", params.follow.as_deref())?;
    let logs = logs_of(&state)?.clone();
    check_run_name(&name)?;
    // Check the stream name before the record, so a bad name is a 400 whatever the run.
    logs.path(&name, &stream).map_err(log_error)?;
    if run_state(&state, &name)?.is_none() {
        return Err(run_not_found(&name));
    }
    if follow {
        return Ok(follow_response(state, logs, name, stream, offset));
    }
    let chunk = logs
        .read(&name, &stream, offset, limit)
        .await
        .map_err(log_error)?;
    let first = chunk.next_offset - chunk.data.len() as u64;
    let mut resp = (StatusCode::OK, chunk.data).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    h.insert(NEXT_OFFSET, header_value(chunk.next_offset));
    h.insert(LOG_SIZE, header_value(chunk.size));
    h.insert(LOG_OFFSET, header_value(first));
    Ok(resp)
}

fn follow_response<St: JsonStore>(
    state: AppState<St>,
    logs: RunLogs,
    name: String,
    stream: String,
    offset: u64,
) -> Response {
    let body = follow(state, logs, name, stream, offset);
    let mut resp = Response::new(Body::from_stream(body));
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    h.insert(LOG_OFFSET, header_value(offset));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // Tell buffering reverse proxies (nginx) to pass chunks through as they come.
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    resp
}

/// The bytes of log `stream` of run `name` from `offset` as they are written, each exactly
/// once: what exists, then every append; ends once the run is terminal and the file has not
/// grown for [`FOLLOW_QUIET`], when the record is gone, or on server shutdown. The one log
/// follower: the `follow=true` read and the dashboard's live log both use it.
pub fn follow<St: JsonStore>(
    state: AppState<St>,
    logs: RunLogs,
    name: String,
    stream: String,
    offset: u64,
) -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
    let shutdown = state.shutdown.clone();
    async_stream::stream! {
        let mut pos = offset;
        let mut quiet_since: Option<tokio::time::Instant> = None;
        loop {
            // The phase is read before the file: whatever was logged before the run turned
            // terminal is then read in this same round.
            let terminal = match run_state(&state, &name) {
                Ok(Some(t)) => Some(t),
                Ok(None) => None,
                Err(e) => {
                    tracing::warn!(run = %name, error = %e, "following a run log: store read failed");
                    break;
                }
            };
            let mut grew = false;
            loop {
                match logs.read(&name, &stream, pos, FOLLOW_CHUNK).await {
                    Ok(chunk) if chunk.data.is_empty() => break,
                    Ok(chunk) => {
                        // A non-empty read always starts at `pos` (only reads past the end
                        // are clamped), so nothing is ever sent twice.
                        pos += chunk.data.len() as u64;
                        grew = true;
                        yield Ok::<Bytes, std::io::Error>(Bytes::from(chunk.data));
                    }
                    Err(e) => {
                        tracing::warn!(run = %name, %stream, error = %e, "following a run log failed");
                        yield Err(std::io::Error::other(e.to_string()));
                        return;
                    }
                }
            }
            match terminal {
                None => break,
                Some(true) if !grew => {
                    let since = *quiet_since.get_or_insert_with(tokio::time::Instant::now);
                    if since.elapsed() >= FOLLOW_QUIET {
                        break;
                    }
                }
                _ => quiet_since = None,
            }
            tokio::select! {
                () = tokio::time::sleep(FOLLOW_POLL) => {}
                () = shutdown.cancelled() => break,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_sort_in_plan_order_then_by_name() {
        let mut s: Vec<String> = [
            "zeta",
            "upgrade",
            "backup-restore",
            "alpha",
            "run",
            "install",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        sort_streams(&mut s);
        assert_eq!(
            s,
            [
                "run",
                "install",
                "upgrade",
                "backup-restore",
                "alpha",
                "zeta"
            ]
        );
    }

    #[test]
    fn offsets_and_flags_are_checked() {
        assert_eq!(number::<u64>("offset", Some("12")).unwrap(), Some(12));
        assert_eq!(number::<u64>("offset", None).unwrap(), None);
        let e = number::<u64>("offset", Some("-1")).unwrap_err();
        assert_eq!(e.reason, Reason::BadRequest);
        assert!(e.message.contains("offset"), "{}", e.message);
        assert!(flag("follow", Some("true")).unwrap());
        assert!(!flag("follow", None).unwrap());
        assert!(flag("follow", Some("yes please")).is_err());
    }
}
