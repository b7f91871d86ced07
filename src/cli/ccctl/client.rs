//! The HTTP side of `ccctl`: requests to the cc-ci API and the server's JSON errors.

use std::time::Duration;

use anyhow::Context;
use serde::Deserialize;
use serde_json::Value;

use super::args::{Config, Token, TokenSource};
use crate::api::Kind;
use crate::api::wire::{LOG_SIZE, LogStreamList, NEXT_OFFSET};

/// A piece of a run log read from an offset.
#[derive(Clone, Debug)]
pub struct LogRead {
    /// The bytes read.
    pub data: bytes::Bytes,
    /// Where to read from next.
    pub next_offset: u64,
    /// The log's size when read.
    pub size: u64,
}

/// One field-level cause of an `Invalid` error.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct Cause {
    /// Field path, e.g. `spec.git`.
    #[serde(default)]
    pub field: String,
    /// What is wrong with it.
    #[serde(default)]
    pub message: String,
}

#[derive(Debug, Default, Deserialize)]
struct Details {
    #[serde(default)]
    causes: Vec<Cause>,
}

/// An error answered by the server (`{"code","reason","message","details"}`), or one shaped like it.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct ApiError {
    /// HTTP status.
    #[serde(default)]
    pub code: u16,
    /// CamelCase reason, e.g. `NotFound`.
    #[serde(default)]
    pub reason: String,
    /// Human text.
    #[serde(default)]
    pub message: String,
    /// Field causes (for `Invalid`).
    #[serde(skip)]
    pub causes: Vec<Cause>,
    /// Extra advice from ccctl (e.g. how to pass a token); never a secret.
    #[serde(skip)]
    pub hint: Option<String>,
}

impl ApiError {
    /// Whether the server said the record does not exist.
    pub fn is_not_found(&self) -> bool {
        self.reason == "NotFound" || (self.reason.is_empty() && self.code == 404)
    }

    /// Whether a create was refused because the name is taken.
    pub fn is_already_exists(&self) -> bool {
        self.reason == "AlreadyExists"
    }

    /// Whether the server refused a stale resourceVersion or a concurrent create.
    pub fn is_conflict(&self) -> bool {
        self.code == 409
    }

    fn from_response(status: u16, body: &[u8]) -> ApiError {
        #[derive(Deserialize)]
        struct Wire {
            #[serde(flatten)]
            error: ApiError,
            #[serde(default)]
            details: Option<Details>,
        }
        match serde_json::from_slice::<Wire>(body) {
            Ok(mut w) if !w.error.reason.is_empty() || !w.error.message.is_empty() => {
                if w.error.code == 0 {
                    w.error.code = status;
                }
                w.error.causes = w.details.map(|d| d.causes).unwrap_or_default();
                w.error
            }
            _ => ApiError {
                code: status,
                reason: reason_for(status).to_string(),
                message: String::from_utf8_lossy(body)
                    .trim()
                    .chars()
                    .take(500)
                    .collect(),
                ..ApiError::default()
            },
        }
    }
}

fn reason_for(status: u16) -> &'static str {
    match status {
        400 => "BadRequest",
        401 => "Unauthorized",
        404 => "NotFound",
        409 => "Conflict",
        413 => "PayloadTooLarge",
        415 => "UnsupportedMediaType",
        422 => "Invalid",
        _ => "InternalError",
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let reason = if self.reason.is_empty() {
            "Unknown"
        } else {
            &self.reason
        };
        write!(f, "Error from server ({reason}): {}", self.message)?;
        for c in &self.causes {
            // Servers often repeat the causes in the message; list only what is not there yet.
            let line = format!("{}: {}", c.field, c.message);
            if !self.message.contains(&line) {
                write!(f, "\n  {line}")?;
            }
        }
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ApiError {}

/// A client of one cc-ci API server. Cheap to clone (the connection pool is shared).
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    token: Option<Token>,
    token_source: TokenSource,
    timeout: Duration,
}

/// What an HTTP call failed with.
pub type Result<T> = std::result::Result<T, anyhow::Error>;

impl Client {
    /// A client for the configured server and token.
    pub fn new(config: &Config) -> anyhow::Result<Client> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .no_proxy()
            .user_agent(concat!("ccctl/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Client {
            http,
            base: config.server.clone(),
            token: config.token.clone(),
            token_source: config.token_source.clone(),
            timeout: config.request_timeout,
        })
    }

    /// The server's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// `{base}/api/v1/{plural}[/{name}]`.
    pub fn url(&self, kind: Kind, name: Option<&str>) -> reqwest::Url {
        let mut s = format!("{}/api/v1/{}", self.base, kind.plural());
        if let Some(n) = name {
            s.push('/');
            s.push_str(&encode_segment(n));
        }
        reqwest::Url::parse(&s).unwrap_or_else(|_| {
            // The base was validated in args; a bad name simply yields a 404 from the server.
            reqwest::Url::parse(&format!("{}/api/v1/{}", self.base, kind.plural()))
                .expect("validated base URL")
        })
    }

    fn transport_error(&self, e: reqwest::Error) -> anyhow::Error {
        if e.is_connect() {
            anyhow::anyhow!(
                "cannot connect to the cc-ci API at {} (is `cc-ci serve` running? set --server or CCCTL_SERVER)",
                self.base
            )
        } else if e.is_timeout() {
            anyhow::anyhow!("request to {} timed out", self.base)
        } else {
            anyhow::Error::new(e).context(format!("talking to {}", self.base))
        }
    }

    async fn send(&self, req: reqwest::RequestBuilder, write: bool) -> Result<reqwest::Response> {
        let req = match (&self.token, write) {
            (Some(t), true) => req.bearer_auth(t.expose()),
            _ => req,
        };
        let resp = req.send().await.map_err(|e| self.transport_error(e))?;
        let status = resp.status().as_u16();
        if (200..300).contains(&status) {
            return Ok(resp);
        }
        let body = resp.bytes().await.map_err(|e| self.transport_error(e))?;
        let mut err = ApiError::from_response(status, &body);
        if status == 401 {
            err.hint = Some(match &self.token_source {
                TokenSource::None => format!(
                    "writes need the server's API token: pass --token-file FILE or set CCCTL_TOKEN_FILE \
                     (or run ccctl where {} exists)",
                    super::args::DEFAULT_TOKEN_FILE
                ),
                TokenSource::File(p) => {
                    format!("the token in {} was refused by the server", p.display())
                }
                TokenSource::Value => "the token from --token/CCCTL_TOKEN was refused".into(),
            });
        }
        Err(err.into())
    }

    /// GET returning the raw body bytes.
    pub async fn get_bytes(&self, url: reqwest::Url) -> Result<bytes::Bytes> {
        let resp = self
            .send(self.http.get(url).timeout(self.timeout), false)
            .await?;
        resp.bytes().await.map_err(|e| self.transport_error(e))
    }

    /// GET one record as JSON.
    pub async fn get_value(&self, kind: Kind, name: &str) -> Result<Value> {
        let body = self.get_bytes(self.url(kind, Some(name))).await?;
        Ok(serde_json::from_slice(&body)?)
    }

    /// GET a list (optionally label-selected) as raw bytes.
    pub async fn list_bytes(&self, kind: Kind, selector: Option<&str>) -> Result<bytes::Bytes> {
        let mut url = self.url(kind, None);
        if let Some(sel) = selector {
            url.query_pairs_mut().append_pair("labelSelector", sel);
        }
        self.get_bytes(url).await
    }

    /// Opens a watch stream (no timeout), resuming after `resource_version` when given.
    pub async fn watch(
        &self,
        kind: Kind,
        selector: Option<&str>,
        resource_version: Option<&str>,
    ) -> Result<reqwest::Response> {
        let mut url = self.url(kind, None);
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("watch", "true");
            if let Some(sel) = selector {
                q.append_pair("labelSelector", sel);
            }
            if let Some(rv) = resource_version {
                q.append_pair("resourceVersion", rv);
            }
        }
        self.send(
            self.http.get(url).header("Accept", "text/event-stream"),
            false,
        )
        .await
    }

    /// POST a new record.
    pub async fn create(&self, kind: Kind, body: &Value) -> Result<Value> {
        let req = self
            .http
            .post(self.url(kind, None))
            .json(body)
            .timeout(self.timeout);
        Ok(self.send(req, true).await?.json().await?)
    }

    /// PUT a record (compare-and-swap when `metadata.resourceVersion` is set).
    pub async fn replace(&self, kind: Kind, name: &str, body: &Value) -> Result<Value> {
        let req = self
            .http
            .put(self.url(kind, Some(name)))
            .json(body)
            .timeout(self.timeout);
        Ok(self.send(req, true).await?.json().await?)
    }

    /// DELETE a record; returns the object (deletion pending) or a `Status` body.
    pub async fn delete(&self, kind: Kind, name: &str) -> Result<Value> {
        let req = self
            .http
            .delete(self.url(kind, Some(name)))
            .timeout(self.timeout);
        Ok(self.send(req, true).await?.json().await?)
    }

    /// `{base}/api/v1/testruns/{run}/logs[/{stream}]`.
    pub fn logs_url(&self, run: &str, stream: Option<&str>) -> reqwest::Url {
        let mut url = self.url(Kind::TestRun, Some(run));
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.push("logs");
            if let Some(s) = stream {
                segments.push(s);
            }
        }
        url
    }

    /// `GET /api/v1/testruns/{run}/logs`: the run's log streams in plan order.
    pub async fn log_streams(&self, run: &str) -> Result<LogStreamList> {
        let body = self.get_bytes(self.logs_url(run, None)).await?;
        serde_json::from_slice(&body).context("decoding the list of log streams")
    }

    /// Reads at most `limit` bytes of one log stream from `offset`.
    pub async fn log_read(
        &self,
        run: &str,
        stream: &str,
        offset: u64,
        limit: usize,
    ) -> Result<LogRead> {
        let mut url = self.logs_url(run, Some(stream));
        url.query_pairs_mut()
            .append_pair("offset", &offset.to_string())
            .append_pair("limit", &limit.to_string());
        let resp = self
            .send(self.http.get(url).timeout(self.timeout), false)
            .await?;
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok())
                .with_context(|| format!("the server's log read has no {name} header"))
        };
        let next_offset = header(NEXT_OFFSET)?;
        let size = header(LOG_SIZE)?;
        let data = resp.bytes().await.map_err(|e| self.transport_error(e))?;
        Ok(LogRead {
            data,
            next_offset,
            size,
        })
    }

    /// Opens a follow of one log stream from `offset` (no timeout): the body is the log's bytes
    /// from there on, ending when the run is over.
    pub async fn log_follow(
        &self,
        run: &str,
        stream: &str,
        offset: u64,
    ) -> Result<reqwest::Response> {
        let mut url = self.logs_url(run, Some(stream));
        url.query_pairs_mut()
            .append_pair("offset", &offset.to_string())
            .append_pair("follow", "true");
        self.send(self.http.get(url), false).await
    }

    /// `GET /api/v1/version`.
    pub async fn server_version(&self) -> Result<Value> {
        let url = reqwest::Url::parse(&format!("{}/api/v1/version", self.base))?;
        Ok(serde_json::from_slice(&self.get_bytes(url).await?)?)
    }
}

/// Percent-encodes one path segment (names are DNS labels, but be safe with user input).
fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_errors_keep_reason_message_and_causes() {
        let body = br#"{"code":422,"reason":"Invalid","message":"Recipe \"x\" is invalid","details":{"causes":[{"field":"spec.git","message":"must not be empty"}]}}"#;
        let e = ApiError::from_response(422, body);
        assert_eq!(e.reason, "Invalid");
        let text = e.to_string();
        assert!(text.starts_with("Error from server (Invalid): Recipe \"x\" is invalid"));
        assert!(text.contains("\n  spec.git: must not be empty"), "{text}");
        let repeated = br#"{"code":422,"reason":"Invalid","message":"x is invalid: spec.git: must not be empty","details":{"causes":[{"field":"spec.git","message":"must not be empty"}]}}"#;
        let text = ApiError::from_response(422, repeated).to_string();
        assert_eq!(text.matches("spec.git").count(), 1, "{text}");
    }

    #[test]
    fn non_json_errors_get_a_reason_from_the_status() {
        let e = ApiError::from_response(404, b"nope");
        assert!(e.is_not_found());
        assert_eq!(e.to_string(), "Error from server (NotFound): nope");
    }

    #[test]
    fn path_segments_are_percent_encoded() {
        assert_eq!(encode_segment("a-b.c"), "a-b.c");
        assert_eq!(encode_segment("a/b c"), "a%2Fb%20c");
    }
}
