//! `ccctl get`: one record or a list as a table, JSON, YAML or names; `-w` streams changes.

use std::collections::HashMap;
use std::io::Write;

use anyhow::Context;
use chrono::Utc;
use futures::StreamExt;
use serde::Deserialize;
use serde_json::Value;

use super::args::Output;
use super::client::{ApiError, Client};
use super::columns::Columns;
use super::sse::SseParser;
use super::table::{Table, write_row};
use crate::api::Kind;

/// What `get` was asked for.
#[derive(Debug)]
pub struct GetRequest<'a> {
    /// Which kind.
    pub kind: Kind,
    /// One record, or all.
    pub name: Option<&'a str>,
    /// Output format.
    pub output: Output,
    /// Label selector.
    pub selector: Option<&'a str>,
    /// A missing `name` is not an error.
    pub ignore_not_found: bool,
}

#[derive(Deserialize)]
#[serde(bound = "")]
struct List<S: Columns> {
    #[serde(default)]
    items: Vec<S>,
}

#[derive(Deserialize)]
struct NameOnly {
    metadata: NameMeta,
}

#[derive(Deserialize)]
struct NameMeta {
    name: String,
    #[serde(default, rename = "resourceVersion")]
    resource_version: String,
}

#[derive(Deserialize)]
struct NameList {
    #[serde(default)]
    items: Vec<NameOnly>,
}

/// Writes `value` as pretty JSON or as YAML.
pub fn write_value(out: &mut impl Write, value: &Value, output: Output) -> anyhow::Result<()> {
    match output {
        Output::Yaml => {
            let text = serde_saphyr::to_string(value).context("rendering YAML")?;
            out.write_all(text.as_bytes())?;
            if !text.ends_with('\n') {
                out.write_all(b"\n")?;
            }
        }
        _ => {
            serde_json::to_writer_pretty(&mut *out, value)?;
            out.write_all(b"\n")?;
        }
    }
    Ok(())
}

fn decode<T: serde::de::DeserializeOwned>(body: &[u8], what: &str) -> anyhow::Result<T> {
    serde_json::from_slice(body).with_context(|| {
        format!("the server's answer to {what} is not what this ccctl understands")
    })
}

/// Runs `get` (without `-w`).
pub async fn get<S: Columns>(client: &Client, req: &GetRequest<'_>) -> anyhow::Result<()> {
    let kind = req.kind;
    let body = match req.name {
        Some(name) => match client.get_bytes(client.url(kind, Some(name))).await {
            Ok(b) => b,
            Err(e)
                if req.ignore_not_found
                    && e.downcast_ref::<ApiError>()
                        .is_some_and(ApiError::is_not_found) =>
            {
                return Ok(());
            }
            Err(e) => return Err(e),
        },
        None => client.list_bytes(kind, req.selector).await?,
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, stdout.lock());
    match (req.output, req.name) {
        (Output::Json | Output::Yaml, _) => {
            let value: Value = decode(&body, "get")?;
            write_value(&mut out, &value, req.output)?;
        }
        (Output::Name, Some(_)) => {
            let one: NameOnly = decode(&body, "get")?;
            writeln!(
                out,
                "{}/{}",
                kind.name().to_ascii_lowercase(),
                one.metadata.name
            )?;
        }
        (Output::Name, None) => {
            let list: NameList = decode(&body, "list")?;
            let prefix = kind.name().to_ascii_lowercase();
            for item in list.items {
                writeln!(out, "{prefix}/{}", item.metadata.name)?;
            }
        }
        (Output::Table | Output::Wide, name) => {
            let wide = req.output == Output::Wide;
            let items: Vec<S> = if name.is_some() {
                vec![decode(&body, "get")?]
            } else {
                decode::<List<S>>(&body, "list")?.items
            };
            if items.is_empty() {
                out.flush()?;
                eprintln!("No resources found.");
                return Ok(());
            }
            let now = Utc::now();
            let mut table = Table::new(S::headers(wide));
            for item in &items {
                table.push(item.cells(wide, now));
            }
            table.write_to(&mut out, true)?;
        }
    }
    out.flush()?;
    Ok(())
}

/// Runs `get -w`: prints the current records, then every change until interrupted.
///
/// Rows are printed once the initial listing is complete (aligned together), then one per change.
/// After a dropped connection the watch resumes from the last seen resourceVersion; a record is
/// printed again only when its resourceVersion changed.
pub async fn watch<S: Columns>(client: &Client, req: &GetRequest<'_>) -> anyhow::Result<()> {
    let kind = req.kind;
    let wide = req.output == Output::Wide;
    let mut seen: HashMap<String, String> = HashMap::new();
    let mut widths: Option<Vec<usize>> = None;
    let mut initial = Table::new(S::headers(wide));
    let mut last_rv: Option<String> = None;
    let mut initial_values: Vec<Value> = Vec::new();
    let mut retries = 0u32;
    loop {
        let resp = client.watch(kind, req.selector, last_rv.as_deref()).await?;
        let mut parser = SseParser::default();
        let event_stream = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        if !event_stream {
            anyhow::bail!(
                "{} does not answer watches with an event stream",
                client.base()
            );
        }
        let mut stream = resp.bytes_stream();
        'stream: loop {
            let chunk = match stream.next().await {
                Some(Ok(c)) => c,
                Some(Err(_)) | None => break,
            };
            retries = 0;
            for ev in parser.feed(&chunk) {
                match ev.event.as_str() {
                    "init" => {}
                    "init-done" if widths.is_none() => {
                        let stdout = std::io::stdout();
                        let mut out = stdout.lock();
                        if matches!(req.output, Output::Table | Output::Wide) {
                            if initial.is_empty() {
                                eprintln!("No resources found yet; watching.");
                            }
                            widths = Some(initial.write_to(&mut out, true)?);
                        } else {
                            for v in initial_values.drain(..) {
                                print_value(&mut out, kind, &v, req.output)?;
                            }
                            widths = Some(Vec::new());
                        }
                        out.flush()?;
                    }
                    "apply" | "delete" => {
                        let value: Value =
                            serde_json::from_str(&ev.data).context("decoding a watch event")?;
                        let meta: NameOnly = serde_json::from_value(value.clone())
                            .context("decoding a watch event")?;
                        if let Some(id) = ev.id.clone().filter(|i| !i.is_empty()) {
                            last_rv = Some(id);
                        } else if !meta.metadata.resource_version.is_empty() {
                            last_rv = Some(meta.metadata.resource_version.clone());
                        }
                        if req.name.is_some_and(|n| n != meta.metadata.name) {
                            continue;
                        }
                        let key = meta.metadata.name.clone();
                        let rv_key = format!("{}:{}", ev.event, meta.metadata.resource_version);
                        if seen.get(&key) == Some(&rv_key) {
                            continue;
                        }
                        seen.insert(key, rv_key);
                        let table_mode = matches!(req.output, Output::Table | Output::Wide);
                        match (&widths, table_mode) {
                            (None, true) => {
                                let obj: S = serde_json::from_value(value)?;
                                initial.push(obj.cells(wide, Utc::now()));
                            }
                            (None, false) => initial_values.push(value),
                            (Some(_), true) => {
                                let obj: S = serde_json::from_value(value)?;
                                let mut cells = obj.cells(wide, Utc::now());
                                if ev.event == "delete" {
                                    mark_deleted::<S>(&mut cells, wide);
                                }
                                let w = widths.as_mut().expect("matched Some");
                                for (w, c) in w.iter_mut().zip(&cells) {
                                    *w = (*w).max(c.chars().count());
                                }
                                let stdout = std::io::stdout();
                                let mut out = stdout.lock();
                                write_row(&mut out, &cells, w)?;
                                out.flush()?;
                            }
                            (Some(_), false) => {
                                let stdout = std::io::stdout();
                                let mut out = stdout.lock();
                                print_value(&mut out, kind, &value, req.output)?;
                                out.flush()?;
                            }
                        }
                    }
                    "error" => {
                        let err: ApiError = serde_json::from_str(&ev.data).unwrap_or_default();
                        if err.reason == "Expired" || err.code == 410 {
                            last_rv = None;
                            retries = 0;
                            break 'stream;
                        }
                        return Err(err.into());
                    }
                    _ => {}
                }
            }
        }
        retries += 1;
        if retries > 5 {
            anyhow::bail!(
                "the watch stream from {} keeps ending; giving up",
                client.base()
            );
        }
        tokio::time::sleep(std::time::Duration::from_millis(500 * u64::from(retries))).await;
    }
}

/// Shows a deleted record's row with `Deleted` in its PHASE column.
fn mark_deleted<S: Columns>(cells: &mut [String], wide: bool) {
    if let Some(i) = S::headers(wide).iter().position(|h| *h == "PHASE") {
        cells[i] = "Deleted".to_string();
    }
}

fn print_value(
    out: &mut impl Write,
    kind: Kind,
    value: &Value,
    output: Output,
) -> anyhow::Result<()> {
    match output {
        Output::Name => {
            let name = value["metadata"]["name"].as_str().unwrap_or_default();
            writeln!(out, "{}/{name}", kind.name().to_ascii_lowercase())?;
        }
        Output::Yaml => {
            out.write_all(b"---\n")?;
            write_value(out, value, output)?;
        }
        _ => write_value(out, value, output)?,
    }
    Ok(())
}
