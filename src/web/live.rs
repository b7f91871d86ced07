//! The live log of a run's stage as server-sent events, and the raw log download. Bytes come
//! from [`crate::http::logs::follow`] (the one log follower); this module cuts them at line
//! ends, renders them to HTML ([`super::ansi`]) and sends each piece once as an `log` event
//! whose id is the byte offset after it. A browser that reconnects sends that id back
//! (`Last-Event-ID`) and continues from there, so nothing is repeated or lost across a
//! reconnect or a server restart. An `end` event says the run is over and the log complete.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::StreamExt;
use serde::Deserialize;

use super::Web;
use super::ansi::{Ansi, render_log};
use crate::api::TestRunSpec;
use crate::runlog::RunLogs;
use crate::store::JsonStore;

/// A partial line longer than this is sent without waiting for its end.
const MAX_PENDING: usize = 256 * 1024;
/// How long a browser waits before reconnecting.
const RETRY: Duration = Duration::from_millis(500);

/// `?offset=N`.
#[derive(Debug, Default, Deserialize)]
pub struct OffsetQuery {
    /// Byte offset to start from.
    #[serde(default)]
    pub offset: Option<u64>,
}

fn plain(status: StatusCode, msg: &str) -> Response {
    (status, msg.to_string()).into_response()
}

fn logs_and_check<St: JsonStore>(
    web: &Web<St>,
    name: &str,
    stream: &str,
) -> Result<RunLogs, Box<Response>> {
    let logs = web.app.run_logs.clone().ok_or_else(|| {
        Box::new(plain(
            StatusCode::NOT_FOUND,
            "this server keeps no run logs",
        ))
    })?;
    logs.path(name, stream)
        .map_err(|_| Box::new(plain(StatusCode::BAD_REQUEST, "not a log stream name")))?;
    match web.app.store.get::<TestRunSpec>(name) {
        Ok(Some(_)) => Ok(logs),
        Ok(None) => Err(Box::new(plain(StatusCode::NOT_FOUND, "no such run"))),
        Err(e) => Err(Box::new(plain(
            StatusCode::INTERNAL_SERVER_ERROR,
            &e.to_string(),
        ))),
    }
}

fn html_of(state: &mut Ansi, bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() + 64);
    render_log(state, &String::from_utf8_lossy(bytes), &mut out);
    out
}

/// `GET /runs/{name}/events/{stream}?offset=N` (or `Last-Event-ID: N`): the live log.
pub async fn events<St: JsonStore>(
    State(web): State<Arc<Web<St>>>,
    Path((name, stream)): Path<(String, String)>,
    Query(q): Query<OffsetQuery>,
    headers: HeaderMap,
) -> Response {
    let logs = match logs_and_check(&web, &name, &stream) {
        Ok(l) => l,
        Err(r) => return *r,
    };
    let resumed = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let offset = resumed.or(q.offset).unwrap_or(0);
    let app = web.app.clone();
    let run = name.clone();
    let body = async_stream::stream! {
        yield Ok::<Event, std::convert::Infallible>(Event::default().retry(RETRY).comment("cc-ci live log"));
        let follow = crate::http::logs::follow(app.clone(), logs, run.clone(), stream, offset);
        let mut follow = std::pin::pin!(follow);
        let mut pos = offset;
        let mut pending: Vec<u8> = Vec::new();
        let mut ansi = Ansi::default();
        while let Some(chunk) = follow.next().await {
            let Ok(chunk) = chunk else { break };
            pending.extend_from_slice(&chunk);
            let cut = match pending.iter().rposition(|b| *b == b'\n') {
                Some(i) => i + 1,
                None if pending.len() > MAX_PENDING => pending.len(),
                None => continue,
            };
            let piece: Vec<u8> = pending.drain(..cut).collect();
            pos += piece.len() as u64;
            yield Ok(Event::default().event("log").id(pos.to_string()).data(html_of(&mut ansi, &piece)));
        }
        // The follower ended: the run is over (or gone), or the server is stopping. Only in
        // the first case is the log complete; otherwise the browser reconnects from `pos`.
        let over = match app.store.get::<TestRunSpec>(&run) {
            Ok(Some(r)) => r.status.phase.is_terminal(),
            Ok(None) => true,
            Err(_) => false,
        };
        if over && !app.shutdown.is_cancelled() {
            if !pending.is_empty() {
                pos += pending.len() as u64;
                yield Ok(Event::default().event("log").id(pos.to_string()).data(html_of(&mut ansi, &pending)));
            }
            yield Ok(Event::default().event("end").id(pos.to_string()).data("end"));
        }
    };
    let mut resp = Sse::new(body)
        .keep_alive(KeepAlive::default())
        .into_response();
    resp.headers_mut()
        .insert("x-accel-buffering", HeaderValue::from_static("no"));
    resp
}

/// `GET /runs/{name}/log/{stream}`: the whole log as plain text.
pub async fn raw<St: JsonStore>(
    State(web): State<Arc<Web<St>>>,
    Path((name, stream)): Path<(String, String)>,
) -> Response {
    let logs = match logs_and_check(&web, &name, &stream) {
        Ok(l) => l,
        Err(r) => return *r,
    };
    let body = async_stream::stream! {
        let mut pos = 0u64;
        loop {
            match logs.read(&name, &stream, pos, 256 * 1024).await {
                Ok(c) if c.data.is_empty() => break,
                Ok(c) => {
                    pos = c.next_offset;
                    yield Ok::<Bytes, std::io::Error>(Bytes::from(c.data));
                }
                Err(e) => {
                    yield Err(std::io::Error::other(e.to_string()));
                    break;
                }
            }
        }
    };
    let mut resp = Response::new(Body::from_stream(body));
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}
