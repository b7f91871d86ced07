//! `ccctl get -w`: follows a watch's server-sent events and prints the records as they change,
//! resuming after dropped connections.

use std::collections::HashMap;
use std::io::Write;
use std::marker::PhantomData;
use std::time::Duration;

use anyhow::Context;
use chrono::Utc;
use futures::StreamExt;
use serde_json::Value;

use super::args::Output;
use super::client::{ApiError, Client};
use super::columns::{CLOCK_COLUMNS, Columns, RowMeta};
use super::get::{GetRequest, mark_deleted, print_value};
use super::sse::{SseEvent, SseParser};
use super::table::{Table, write_row};

/// How often in a row a watch may end without delivering anything before ccctl gives up.
const MAX_RECONNECTS: u32 = 5;

/// The initial listing of a watch while it arrives: rows with whether they were deleted (table
/// output), or the objects (other formats).
type Initial<S> = (Vec<(S, bool)>, Vec<Value>);

/// What a watch has shown so far, and how to show the next record.
struct WatchView<'a, S: Columns> {
    req: &'a GetRequest<'a>,
    wide: bool,
    table_mode: bool,
    /// Until the initial listing is complete: its rows (table, with whether deleted) or
    /// objects (other formats).
    initial: Option<Initial<S>>,
    /// Column widths fixed when the header is printed, so rows stay under their headers (a
    /// wider cell shifts only its own row).
    widths: Vec<usize>,
    /// Per name, the last `event:resourceVersion` printed, so a resumed watch repeats nothing.
    seen: HashMap<String, String>,
    /// Per name, the cells last printed (clock columns blanked): a status write that changes
    /// nothing visible prints no row.
    shown: HashMap<String, Vec<String>>,
    /// The resourceVersion to resume from.
    last_rv: Option<String>,
    _rows: PhantomData<S>,
}

/// What to do after a message.
enum Next {
    Continue,
    /// The server expired our resourceVersion: start over from a fresh listing.
    Restart,
}

impl<'a, S: Columns> WatchView<'a, S> {
    fn new(req: &'a GetRequest<'a>) -> Self {
        let wide = req.output == Output::Wide;
        Self {
            req,
            wide,
            table_mode: matches!(req.output, Output::Table | Output::Wide),
            initial: Some((Vec::new(), Vec::new())),
            widths: Vec::new(),
            seen: HashMap::new(),
            shown: HashMap::new(),
            last_rv: None,
            _rows: PhantomData,
        }
    }

    fn handle(&mut self, ev: SseEvent) -> anyhow::Result<Next> {
        match ev.event.as_str() {
            "init-done" => self.initial_done()?,
            "apply" | "delete" => self.record(&ev)?,
            "error" => {
                let err: ApiError = serde_json::from_str(&ev.data).unwrap_or_default();
                if err.reason == "Expired" || err.code == 410 {
                    self.last_rv = None;
                    return Ok(Next::Restart);
                }
                return Err(err.into());
            }
            _ => {}
        }
        Ok(Next::Continue)
    }

    /// Prints the initial listing (aligned as one table) once it is complete.
    fn initial_done(&mut self) -> anyhow::Result<()> {
        let Some((mut rows, values)) = self.initial.take() else {
            return Ok(());
        };
        let stdout = std::io::stdout();
        let mut out = stdout.lock();
        if self.table_mode {
            if rows.is_empty() {
                eprintln!("No resources found yet; watching.");
            }
            let newest_first = S::newest_first();
            rows.sort_by(|(a, _), (b, _)| {
                let (a, b) = (a.meta(), b.meta());
                if newest_first {
                    b.creation_timestamp.cmp(&a.creation_timestamp)
                } else {
                    std::cmp::Ordering::Equal
                }
                .then_with(|| a.name.cmp(&b.name))
            });
            let mut table = Table::new(S::headers(self.wide));
            for (row, deleted) in &rows {
                let cells = self.cells_of(row, *deleted);
                self.remember(&row.meta().name, &cells);
                table.push(cells);
            }
            self.widths = watch_widths(&table, &S::headers(self.wide));
            table.write_with(&mut out, &self.widths)?;
        } else {
            for v in &values {
                print_value(&mut out, self.req.kind, v, self.req.output)?;
            }
        }
        out.flush()?;
        Ok(())
    }

    fn record(&mut self, ev: &SseEvent) -> anyhow::Result<()> {
        let value: Value = serde_json::from_str(&ev.data).context("decoding a watch event")?;
        let meta: RowMeta =
            serde_json::from_value(value["metadata"].clone()).context("decoding a watch event")?;
        match ev.id.as_deref().filter(|i| !i.is_empty()) {
            Some(id) => self.last_rv = Some(id.to_string()),
            None if !meta.resource_version.is_empty() => {
                self.last_rv = Some(meta.resource_version.clone())
            }
            None => {}
        }
        if self.req.name.is_some_and(|n| n != meta.name) {
            return Ok(());
        }
        let version = format!("{}:{}", ev.event, meta.resource_version);
        if self.seen.get(&meta.name) == Some(&version) {
            return Ok(());
        }
        self.seen.insert(meta.name, version);

        let deleted = ev.event == "delete";
        if let Some((rows, values)) = &mut self.initial {
            if self.table_mode {
                let row: S = serde_json::from_value(value)?;
                // A record seen twice before init-done (resume) keeps its latest state.
                rows.retain(|(r, _)| r.meta().name != row.meta().name);
                rows.push((row, deleted));
            } else {
                values.push(value);
            }
            return Ok(());
        }
        let stdout = std::io::stdout();
        let mut out = stdout.lock();
        if self.table_mode {
            let row: S = serde_json::from_value(value)?;
            let cells = self.cells_of(&row, deleted);
            if !self.remember(&row.meta().name, &cells) {
                return Ok(());
            }
            write_row(&mut out, &cells, &self.widths)?;
        } else {
            print_value(&mut out, self.req.kind, &value, self.req.output)?;
        }
        out.flush()?;
        Ok(())
    }
}

impl<S: Columns> WatchView<'_, S> {
    fn cells_of(&self, row: &S, deleted: bool) -> Vec<String> {
        let mut cells = row.cells(self.wide, Utc::now());
        if deleted {
            mark_deleted::<S>(&mut cells, self.wide);
        }
        cells
    }

    /// Records the cells shown for `name`; false when they equal the last shown ones (clock
    /// columns aside), i.e. the row need not be printed again.
    fn remember(&mut self, name: &str, cells: &[String]) -> bool {
        let visible = visible_cells(&S::headers(self.wide), cells);
        if self.shown.get(name) == Some(&visible) {
            return false;
        }
        self.shown.insert(name.to_string(), visible);
        true
    }
}

/// `cells` with the columns that change with the clock alone blanked.
pub fn visible_cells(headers: &[&str], cells: &[String]) -> Vec<String> {
    headers
        .iter()
        .zip(cells)
        .map(|(h, c)| {
            if CLOCK_COLUMNS.contains(h) {
                String::new()
            } else {
                c.clone()
            }
        })
        .collect()
}

/// The widths of a watched table: the initial rows' widths, with room for the longest phase
/// (`Terminating`, `Succeeded`) and ages so the common changes keep rows aligned.
pub fn watch_widths(table: &Table, headers: &[&str]) -> Vec<usize> {
    table
        .widths()
        .into_iter()
        .zip(headers)
        .map(|(w, h)| match *h {
            "PHASE" => w.max("Terminating".len()),
            "AGE" | "DURATION" | "QUEUE" => w.max(5),
            _ => w,
        })
        .collect()
}

/// Runs `get -w`: prints the current records, then every change until interrupted.
///
/// Rows are printed once the initial listing is complete (aligned together), then one per change;
/// rows of deleted records show PHASE `Deleted`. After a dropped connection the watch resumes from
/// the last seen resourceVersion, and a record is printed again only when its resourceVersion
/// changed. An `Expired` answer restarts from a fresh listing.
pub async fn watch<S: Columns>(client: &Client, req: &GetRequest<'_>) -> anyhow::Result<()> {
    let mut view = WatchView::<S>::new(req);
    let mut idle_reconnects = 0u32;
    loop {
        let resp = match client
            .watch(req.kind, req.selector, view.last_rv.as_deref())
            .await
        {
            Ok(resp) => resp,
            // A server restarting: keep trying within the reconnect budget.
            Err(e) if idle_reconnects > 0 && e.downcast_ref::<ApiError>().is_none() => {
                idle_reconnects += 1;
                if idle_reconnects > MAX_RECONNECTS {
                    return Err(e);
                }
                tokio::time::sleep(Duration::from_millis(500 * u64::from(idle_reconnects))).await;
                continue;
            }
            Err(e) => return Err(e),
        };
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
        let mut parser = SseParser::default();
        let mut stream = resp.bytes_stream();
        'stream: while let Some(Ok(chunk)) = stream.next().await {
            idle_reconnects = 0;
            for ev in parser.feed(&chunk) {
                if let Next::Restart = view.handle(ev)? {
                    break 'stream;
                }
            }
        }
        idle_reconnects += 1;
        if idle_reconnects > MAX_RECONNECTS {
            anyhow::bail!(
                "the watch stream from {} keeps ending; giving up",
                client.base()
            );
        }
        tokio::time::sleep(Duration::from_millis(500 * u64::from(idle_reconnects))).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_differing_only_in_age_is_the_same_row() {
        let headers = ["NAME", "PHASE", "AGE"];
        let a = visible_cells(&headers, &["r".into(), "Running".into(), "5s".into()]);
        let b = visible_cells(&headers, &["r".into(), "Running".into(), "9s".into()]);
        let c = visible_cells(&headers, &["r".into(), "Failed".into(), "9s".into()]);
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn watched_columns_leave_room_for_every_phase() {
        let headers = vec!["NAME", "PHASE", "AGE"];
        let mut t = Table::new(headers.clone());
        t.push(vec!["run-1".into(), "Pending".into(), "1s".into()]);
        assert_eq!(watch_widths(&t, &headers), [5, 11, 5]);
    }
}
