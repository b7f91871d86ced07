//! `ccctl get`: one record or a list as a table, JSON, YAML or names; `-w` streams changes.

use std::io::Write;

use anyhow::Context;
use chrono::Utc;
use serde::Deserialize;
use serde_json::Value;

use super::args::Output;
use super::client::{ApiError, Client};
use super::columns::{Columns, sort_rows};
use super::table::Table;
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
            let mut items: Vec<S> = if name.is_some() {
                vec![decode(&body, "get")?]
            } else {
                decode::<List<S>>(&body, "list")?.items
            };
            sort_rows(&mut items);
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

/// Shows a deleted record's row with `Deleted` in its PHASE column.
pub(super) fn mark_deleted<S: Columns>(cells: &mut [String], wide: bool) {
    if let Some(i) = S::headers(wide).iter().position(|h| *h == "PHASE") {
        cells[i] = "Deleted".to_string();
    }
}

/// Prints one object of a watch in a non-table format.
pub(super) fn print_value(
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
