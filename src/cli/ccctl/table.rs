//! Aligned plain-text tables (kubectl's look: upper-case headers, columns three spaces apart) and
//! human ages such as `5m` or `3d4h`.

use std::io::{self, Write};

use chrono::{DateTime, Utc};

/// Space between columns.
const GAP: usize = 3;

/// A table of text cells; every row has as many cells as there are headers.
#[derive(Debug, Default)]
pub struct Table {
    headers: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// An empty table with these headers.
    pub fn new(headers: Vec<&'static str>) -> Table {
        Table {
            headers,
            rows: Vec::new(),
        }
    }

    /// Appends a row.
    pub fn push(&mut self, row: Vec<String>) {
        debug_assert_eq!(row.len(), self.headers.len());
        self.rows.push(row);
    }

    /// Number of rows (headers not counted).
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Column widths in characters over the headers and every row.
    pub fn widths(&self) -> Vec<usize> {
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        widths
    }

    /// Writes the header line and all rows, aligned; returns the widths used.
    pub fn write_to(&self, out: &mut impl Write, with_headers: bool) -> io::Result<Vec<usize>> {
        let widths = self.widths();
        if with_headers {
            let headers: Vec<String> = self.headers.iter().map(|h| h.to_string()).collect();
            write_row(out, &headers, &widths)?;
        }
        for row in &self.rows {
            write_row(out, row, &widths)?;
        }
        Ok(widths)
    }

    /// Writes the header line and all rows padded to `widths` (e.g. wider than the rows need).
    pub fn write_with(&self, out: &mut impl Write, widths: &[usize]) -> io::Result<()> {
        let headers: Vec<String> = self.headers.iter().map(|h| h.to_string()).collect();
        write_row(out, &headers, widths)?;
        for row in &self.rows {
            write_row(out, row, widths)?;
        }
        Ok(())
    }

    /// The table as a string (headers included).
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        self.write_to(&mut out, true).expect("writing to a Vec");
        String::from_utf8(out).expect("cells are UTF-8")
    }
}

/// Writes one row padded to `widths` (the last cell is not padded); a cell wider than its column
/// pushes the rest of that row to the right rather than being cut.
pub fn write_row(out: &mut impl Write, row: &[String], widths: &[usize]) -> io::Result<()> {
    let mut line = String::with_capacity(widths.iter().sum::<usize>() + widths.len() * GAP);
    let last = row.len().saturating_sub(1);
    for (i, cell) in row.iter().enumerate() {
        line.push_str(cell);
        if i < last {
            let w = widths.get(i).copied().unwrap_or(0);
            let pad = w.saturating_sub(cell.chars().count()) + GAP;
            line.extend(std::iter::repeat_n(' ', pad));
        }
    }
    line.push('\n');
    out.write_all(line.as_bytes())
}

/// kubectl's human duration: `45s`, `3m12s`, `42m`, `5h3m`, `20h`, `3d4h`, `120d`, `2y30d`, `9y`.
pub fn human_duration(d: chrono::TimeDelta) -> String {
    let secs = d.num_seconds().max(0);
    let (m, h, day) = (60, 3600, 86_400);
    let year = 365 * day;
    if secs < 2 * m {
        format!("{secs}s")
    } else if secs < 10 * m {
        let s = secs % m;
        if s == 0 {
            format!("{}m", secs / m)
        } else {
            format!("{}m{}s", secs / m, s)
        }
    } else if secs < 3 * h {
        format!("{}m", secs / m)
    } else if secs < 8 * h {
        let mins = (secs % h) / m;
        if mins == 0 {
            format!("{}h", secs / h)
        } else {
            format!("{}h{}m", secs / h, mins)
        }
    } else if secs < 48 * h {
        format!("{}h", secs / h)
    } else if secs < 8 * day {
        let hours = (secs % day) / h;
        if hours == 0 {
            format!("{}d", secs / day)
        } else {
            format!("{}d{}h", secs / day, hours)
        }
    } else if secs < 2 * year {
        format!("{}d", secs / day)
    } else if secs < 8 * year {
        let days = (secs % year) / day;
        if days == 0 {
            format!("{}y", secs / year)
        } else {
            format!("{}y{}d", secs / year, days)
        }
    } else {
        format!("{}y", secs / year)
    }
}

/// Age of a timestamp relative to `now`, or `<unknown>`.
pub fn age(ts: Option<DateTime<Utc>>, now: DateTime<Utc>) -> String {
    match ts {
        Some(t) => human_duration(now - t),
        None => "<unknown>".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeDelta;

    #[test]
    fn columns_are_aligned_three_spaces_apart_and_the_last_is_not_padded() {
        let mut t = Table::new(vec!["NAME", "PHASE", "AGE"]);
        t.push(vec!["a".into(), "Succeeded".into(), "5m".into()]);
        t.push(vec!["longer-name".into(), "Pending".into(), "12d".into()]);
        assert_eq!(
            t.render(),
            "NAME          PHASE       AGE\n\
             a             Succeeded   5m\n\
             longer-name   Pending     12d\n"
        );
    }

    #[test]
    fn widths_count_characters_not_bytes() {
        let mut t = Table::new(vec!["N", "X"]);
        t.push(vec!["äöü".into(), "x".into()]);
        assert_eq!(t.widths(), vec![3, 1]);
        assert_eq!(t.render(), "N     X\näöü   x\n");
    }

    #[test]
    fn durations_read_like_kubectl() {
        let s = TimeDelta::seconds;
        assert_eq!(human_duration(s(0)), "0s");
        assert_eq!(human_duration(s(119)), "119s");
        assert_eq!(human_duration(s(192)), "3m12s");
        assert_eq!(human_duration(s(180)), "3m");
        assert_eq!(human_duration(s(42 * 60)), "42m");
        assert_eq!(human_duration(s(5 * 3600 + 3 * 60)), "5h3m");
        assert_eq!(human_duration(s(20 * 3600)), "20h");
        assert_eq!(human_duration(s(3 * 86_400 + 4 * 3600)), "3d4h");
        assert_eq!(human_duration(s(120 * 86_400)), "120d");
        assert_eq!(human_duration(s(-5)), "0s");
    }
}
