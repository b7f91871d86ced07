//! Merging the lines of a run's log streams by time for `ccctl logs run NAME -f`: each stream
//! arrives on its own connection, so lines are held briefly and printed in timestamp order
//! (a run's `finished` line after the stage lines that led to it), not in arrival order.
//!
//! Lines the server stamped (`2025-03-14T09:26:53.123Z text`) sort by that stamp; raw output
//! lines (a test's own output) take the stamp of the line before them in their stream, so a
//! stream's own order is never changed.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// One complete line waiting to be printed.
#[derive(Debug)]
struct Held {
    stamp: String,
    seq: u64,
    stream: String,
    line: Vec<u8>,
    arrived: Instant,
}

/// Complete lines of every stream, held until they can be printed in time order.
#[derive(Debug, Default)]
pub struct Interleaver {
    partial: HashMap<String, Vec<u8>>,
    last_stamp: HashMap<String, String>,
    held: Vec<Held>,
    seq: u64,
}

/// The RFC 3339 stamp (milliseconds, UTC) the run log writes at the start of a line.
fn stamp_of(line: &[u8]) -> Option<&str> {
    let head = line.get(..25)?;
    let ok = head[4] == b'-' && head[10] == b'T' && head[23] == b'Z' && head[24] == b' ';
    ok.then(|| std::str::from_utf8(&head[..24]).ok())
        .flatten()
        .filter(|s| chrono::DateTime::parse_from_rfc3339(s).is_ok())
}

impl Interleaver {
    /// Adds bytes of `stream` that arrived at `now`; a partial line waits for its end.
    pub fn push(&mut self, stream: &str, bytes: &[u8], now: Instant) {
        let buf = self.partial.entry(stream.to_string()).or_default();
        buf.extend_from_slice(bytes);
        let Some(last) = buf.iter().rposition(|&b| b == b'\n') else {
            return;
        };
        let rest = buf.split_off(last + 1);
        let complete = std::mem::replace(buf, rest);
        for line in complete.split_inclusive(|&b| b == b'\n') {
            self.hold(stream, line.to_vec(), now);
        }
    }

    fn hold(&mut self, stream: &str, line: Vec<u8>, arrived: Instant) {
        let stamp = match stamp_of(&line) {
            Some(s) => {
                self.last_stamp.insert(stream.to_string(), s.to_string());
                s.to_string()
            }
            None => self.last_stamp.get(stream).cloned().unwrap_or_default(),
        };
        self.seq += 1;
        self.held.push(Held {
            stamp,
            seq: self.seq,
            stream: stream.to_string(),
            line,
            arrived,
        });
        self.held
            .sort_by(|a, b| (&a.stamp, a.seq).cmp(&(&b.stamp, b.seq)));
    }

    /// The lines to print now, in time order: the earliest ones that arrived at least `hold`
    /// ago (a line that arrived later can still sort before the ones after it).
    pub fn ready(&mut self, now: Instant, hold: Duration) -> Vec<(String, Vec<u8>)> {
        let n = self
            .held
            .iter()
            .take_while(|h| now.saturating_duration_since(h.arrived) >= hold)
            .count();
        self.held.drain(..n).map(|h| (h.stream, h.line)).collect()
    }

    /// Every line still held (partial lines completed), in time order.
    pub fn finish(mut self) -> Vec<(String, Vec<u8>)> {
        let partial: Vec<(String, Vec<u8>)> = self
            .partial
            .drain()
            .filter(|(_, b)| !b.is_empty())
            .collect();
        let now = Instant::now();
        for (stream, mut line) in partial {
            line.push(b'\n');
            self.hold(&stream, line, now);
        }
        self.held.drain(..).map(|h| (h.stream, h.line)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn streams(lines: &[(String, Vec<u8>)]) -> Vec<String> {
        lines
            .iter()
            .map(|(s, l)| format!("[{s}] {}", String::from_utf8_lossy(l).trim_end()))
            .collect()
    }

    #[test]
    fn lines_print_in_time_order_across_streams_not_arrival_order() {
        let t0 = Instant::now();
        let mut m = Interleaver::default();
        // The run stream's last line arrives first, the stage lines that caused it after.
        m.push("run", b"2025-03-14T09:27:05.000Z finished: Error\n", t0);
        m.push(
            "install",
            b"2025-03-14T09:27:01.000Z deploy started\n2025-03-14T09:27:04.500Z converge fail",
            t0,
        );
        assert!(m.ready(t0, Duration::from_millis(500)).is_empty(), "held");
        m.push("install", b"ed: app 0/1 running\nraw output line\n", t0);
        let out = m.ready(t0 + Duration::from_secs(1), Duration::from_millis(500));
        assert_eq!(
            streams(&out),
            [
                "[install] 2025-03-14T09:27:01.000Z deploy started",
                "[install] 2025-03-14T09:27:04.500Z converge failed: app 0/1 running",
                "[install] raw output line",
                "[run] 2025-03-14T09:27:05.000Z finished: Error",
            ]
        );
    }

    #[test]
    fn a_recent_line_holds_back_the_later_ones_and_finish_flushes_everything() {
        let t0 = Instant::now();
        let mut m = Interleaver::default();
        m.push("run", b"2025-03-14T09:27:02.000Z b\n", t0);
        m.push(
            "install",
            b"2025-03-14T09:27:01.000Z a\n",
            t0 + Duration::from_millis(400),
        );
        let hold = Duration::from_millis(500);
        // At t0+0.6 s only "b" has waited long enough, but "a" sorts before it: both wait.
        assert!(m.ready(t0 + Duration::from_millis(600), hold).is_empty());
        let out = m.ready(t0 + Duration::from_millis(900), hold);
        assert_eq!(out.len(), 2);
        m.push("install", b"no newline at the end", t0);
        let rest = m.finish();
        assert_eq!(streams(&rest), ["[install] no newline at the end"]);
    }
}
