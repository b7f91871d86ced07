//! `ccctl logs run NAME [-f] [--stream S]`: prints a run's logs, every stream in plan order
//! under a header, or follows them (each line prefixed with its stream) until the run is over,
//! resuming dropped connections from the last byte received.

use std::collections::HashSet;
use std::io::Write;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::NotFound;
use super::client::{ApiError, Client};
use super::interleave::Interleaver;
use crate::api::{Kind, RunPhase};

/// How many reconnects in a row may fail (or deliver nothing) before a follow gives up; with
/// the growing delays between them that is about 7 s of server downtime.
const MAX_RECONNECTS: u32 = 5;
/// Bytes per plain read.
const READ_LIMIT: usize = 1 << 20;
/// How often `-f` without `--stream` looks for streams that appeared since.
const DISCOVER_EVERY: Duration = Duration::from_secs(1);

/// What `logs` was asked for.
#[derive(Debug)]
pub struct LogsRequest<'a> {
    /// The run.
    pub run: &'a str,
    /// Only this stream.
    pub stream: Option<&'a str>,
    /// Keep printing until the run is over.
    pub follow: bool,
}

/// Runs `logs`.
pub async fn logs(client: &Client, req: &LogsRequest<'_>) -> anyhow::Result<()> {
    // Also answers NotFound (exit 3) for a run that does not exist.
    let list = client.log_streams(req.run).await?;
    let names: Vec<String> = list.streams.iter().map(|s| s.name.clone()).collect();
    match (req.stream, req.follow) {
        (Some(stream), true) => {
            let stdout = std::io::stdout();
            follow_stream(client, req.run, stream, 0, |b| {
                let mut out = stdout.lock();
                out.write_all(b)?;
                out.flush()?;
                Ok(())
            })
            .await
        }
        (Some(stream), false) => {
            if !names.iter().any(|n| n == stream) {
                // The server's verdict on the name first: a malformed one is a BadRequest.
                client.log_read(req.run, stream, 0, 0).await?;
                return Err(NotFound(format!(
                    "testrun {:?} has no log stream {stream:?} (it has: {})",
                    req.run,
                    if names.is_empty() {
                        "none yet".to_string()
                    } else {
                        names.join(", ")
                    }
                ))
                .into());
            }
            print_stream(client, req.run, stream).await
        }
        (None, false) => {
            for (i, stream) in names.iter().enumerate() {
                {
                    let mut out = std::io::stdout().lock();
                    if i > 0 {
                        writeln!(out)?;
                    }
                    writeln!(out, "==> {stream} <==")?;
                }
                print_stream(client, req.run, stream).await?;
            }
            if names.is_empty() {
                eprintln!("testrun {:?} has no logs yet.", req.run);
            }
            Ok(())
        }
        (None, true) => follow_all(client, req.run, names).await,
    }
}

/// Prints one stream from the start to its current end.
async fn print_stream(client: &Client, run: &str, stream: &str) -> anyhow::Result<()> {
    let mut offset = 0;
    let mut last = None;
    loop {
        let chunk = client.log_read(run, stream, offset, READ_LIMIT).await?;
        if chunk.data.is_empty() {
            break;
        }
        last = chunk.data.last().copied();
        let mut out = std::io::stdout().lock();
        out.write_all(&chunk.data)?;
        out.flush()?;
        offset = chunk.next_offset;
        if offset >= chunk.size {
            break;
        }
    }
    if last.is_some_and(|b| b != b'\n') {
        println!();
    }
    Ok(())
}

/// Whether the run is over: `Some(true)` terminal, `Some(false)` still going, `None` gone.
async fn run_over(client: &Client, run: &str) -> anyhow::Result<Option<bool>> {
    match client.get_value(Kind::TestRun, run).await {
        Ok(v) => {
            let phase = v["status"]["phase"]
                .as_str()
                .and_then(|p| serde_json::from_value::<RunPhase>(p.into()).ok())
                .unwrap_or_default();
            Ok(Some(phase.is_terminal()))
        }
        Err(e)
            if e.downcast_ref::<ApiError>()
                .is_some_and(ApiError::is_not_found) =>
        {
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

fn is_server_error(e: &anyhow::Error) -> bool {
    e.downcast_ref::<ApiError>().is_some()
}

/// Follows one stream from `offset`, handing every byte to `sink` exactly once, until the run is
/// over or deleted. A dropped connection (server restart, network) is resumed from the offset
/// of the last byte received.
pub async fn follow_stream(
    client: &Client,
    run: &str,
    stream: &str,
    offset: u64,
    mut sink: impl FnMut(&[u8]) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let mut pos = offset;
    let mut failures = 0u32;
    loop {
        if failures > 0 {
            if failures > MAX_RECONNECTS {
                anyhow::bail!(
                    "lost the log stream {stream:?} of testrun {run:?} from {} and could not resume it",
                    client.base()
                );
            }
            tokio::time::sleep(Duration::from_millis(500 * u64::from(failures))).await;
        }
        let resp = match client.log_follow(run, stream, pos).await {
            Ok(resp) => resp,
            Err(e)
                if e.downcast_ref::<ApiError>()
                    .is_some_and(ApiError::is_not_found)
                    && failures > 0 =>
            {
                // Deleted while we were reconnecting: nothing more will come.
                return Ok(());
            }
            Err(e) if !is_server_error(&e) => {
                failures += 1;
                continue;
            }
            Err(e) => return Err(e),
        };
        let mut body = resp.bytes_stream();
        let mut dropped = false;
        while let Some(item) = body.next().await {
            match item {
                Ok(bytes) => {
                    if !bytes.is_empty() {
                        failures = 0;
                    }
                    pos += bytes.len() as u64;
                    sink(&bytes)?;
                }
                Err(_) => {
                    dropped = true;
                    break;
                }
            }
        }
        if !dropped {
            // The server ends a follow when the run is over, but also when it shuts down:
            // only the run's state tells which.
            match run_over(client, run).await {
                Ok(Some(true)) | Ok(None) => return Ok(()),
                Ok(Some(false)) => {}
                Err(e) if !is_server_error(&e) => {}
                Err(e) => return Err(e),
            }
        }
        failures += 1;
    }
}

/// How long `-f` holds a line before printing it, so lines of other streams written at the same
/// time (each stream has its own connection) can be printed in time order.
const INTERLEAVE_HOLD: Duration = Duration::from_millis(600);

fn print_lines(lines: Vec<(String, Vec<u8>)>) -> std::io::Result<()> {
    if lines.is_empty() {
        return Ok(());
    }
    let mut out = std::io::stdout().lock();
    for (stream, line) in lines {
        write!(out, "[{stream}] ")?;
        out.write_all(&line)?;
    }
    out.flush()
}

/// `-f` without `--stream`: follows every stream at once (and those that appear later) until
/// the run is over, printing whole lines prefixed with their stream, merged in time order.
async fn follow_all(client: &Client, run: &str, initial: Vec<String>) -> anyhow::Result<()> {
    let (tx, mut rx) = mpsc::unbounded_channel::<(String, Bytes)>();
    let mut tx = Some(tx);
    let mut followers: JoinSet<anyhow::Result<()>> = JoinSet::new();
    let mut known: HashSet<String> = HashSet::new();
    let mut spawn = |stream: String,
                     followers: &mut JoinSet<anyhow::Result<()>>,
                     tx: &mpsc::UnboundedSender<(String, Bytes)>| {
        if !known.insert(stream.clone()) {
            return;
        }
        let (client, run, tx) = (client.clone(), run.to_string(), tx.clone());
        followers.spawn(async move {
            follow_stream(&client, &run, &stream, 0, |b| {
                // The receiver only goes away when ccctl is exiting anyway.
                let _ = tx.send((stream.clone(), Bytes::copy_from_slice(b)));
                Ok(())
            })
            .await
        });
    };
    if let Some(tx) = &tx {
        for s in initial {
            spawn(s, &mut followers, tx);
        }
    }
    let mut merged = Interleaver::default();
    let mut discover = tokio::time::interval(DISCOVER_EVERY);
    discover.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut flush = tokio::time::interval(INTERLEAVE_HOLD / 3);
    loop {
        tokio::select! {
            received = rx.recv() => match received {
                Some((stream, bytes)) => merged.push(&stream, &bytes, std::time::Instant::now()),
                // Every follower ended (the run is over) and no new one can start.
                None => break,
            },
            _ = flush.tick() => {
                print_lines(merged.ready(std::time::Instant::now(), INTERLEAVE_HOLD))?;
            }
            Some(done) = followers.join_next() => done??,
            _ = discover.tick(), if tx.is_some() => {
                // The phase first, then the list: a stream created before the run ended is
                // in a list read after it.
                let over = match run_over(client, run).await {
                    Ok(over) => over,
                    Err(e) if !is_server_error(&e) => continue,
                    Err(e) => return Err(e),
                };
                match client.log_streams(run).await {
                    Ok(list) => {
                        if let Some(tx) = &tx {
                            for s in list.streams {
                                spawn(s.name, &mut followers, tx);
                            }
                        }
                    }
                    Err(e) if !is_server_error(&e) => continue,
                    Err(e) if e.downcast_ref::<ApiError>().is_some_and(ApiError::is_not_found) => {}
                    Err(e) => return Err(e),
                }
                if over != Some(false) {
                    // No new streams from here on; the channel closes with the last follower.
                    tx = None;
                }
            }
        }
    }
    while let Some(done) = followers.join_next().await {
        done??;
    }
    print_lines(merged.finish())?;
    Ok(())
}
