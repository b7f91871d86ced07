//! `.env`-style files read with the godotenv semantics Co-op Cloud recipes rely on, including
//! abra's trailing-comment modifiers (`# length=32 charset=alnum`), and `abra.sh` `export` lines.
//!
//! Rules (godotenv, as vendored by abra):
//! - blank lines and lines starting with `#` are skipped (so `#FOO=bar` is not a key);
//! - an optional `export ` prefix is dropped; the key is the text before the first `=`;
//! - `'single'` quotes are literal; `"double"` quotes turn `\n`/`\r` into newlines/returns and
//!   `\x` into `x`, then expand variables; quoted values may span lines;
//! - unquoted values end at ` #` (an inline comment), are trimmed, then expand variables;
//! - `$VAR`/`${VAR}` (upper-case names, digits and `_`) expand to an earlier key of the same file,
//!   else to the base environment, else to the empty string; `\$` is a literal `$`;
//! - the comment after a value (`KEY=v # a=1 b=2`) is kept as modifiers `{a: 1, b: 2}`;
//!   words without `=` are ignored, like abra does.

use std::collections::BTreeMap;

/// One `KEY=value` entry of an env file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnvEntry {
    /// The variable name.
    pub key: String,
    /// The value after unquoting and variable expansion.
    pub value: String,
    /// `k=v` words of the trailing comment (abra's modifiers such as `length=32`).
    pub modifiers: BTreeMap<String, String>,
    /// 1-based line number where the entry starts.
    pub line: usize,
}

/// A parsed env file: entries in file order (a repeated key appears twice; the last wins in
/// [`EnvFile::to_map`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EnvFile {
    /// The entries in the order they appear.
    pub entries: Vec<EnvEntry>,
}

/// A syntax error in an env file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct EnvError {
    /// 1-based line number of the offending entry.
    pub line: usize,
    /// What is wrong (never contains the value itself).
    pub message: String,
}

impl EnvFile {
    /// Parses `text` with no base environment (see [`EnvFile::parse_with_base`]).
    pub fn parse(text: &str) -> Result<EnvFile, EnvError> {
        Self::parse_with_base(text, &BTreeMap::new())
    }

    /// Parses `text`; `$VAR` references not defined earlier in the file resolve from `base`
    /// (e.g. the process environment or an already loaded `.env`).
    pub fn parse_with_base(
        text: &str,
        base: &BTreeMap<String, String>,
    ) -> Result<EnvFile, EnvError> {
        let lines: Vec<&str> = text.lines().collect();
        let mut known: BTreeMap<String, String> = BTreeMap::new();
        let mut entries = Vec::new();
        let mut i = 0;
        while i < lines.len() {
            let start = i;
            let line = lines[i].trim_start();
            i += 1;
            if line.trim().is_empty() || line.starts_with('#') {
                continue;
            }
            let line = line
                .strip_prefix("export ")
                .map(str::trim_start)
                .unwrap_or(line);
            let err = |message: &str| EnvError {
                line: start + 1,
                message: message.to_string(),
            };
            let (key, rest) = line
                .split_once('=')
                .ok_or_else(|| err("expected KEY=VALUE"))?;
            let key = key.trim();
            if !valid_key(key) {
                return Err(err(&format!("invalid variable name {key:?}")));
            }
            let rest = rest.trim_start();
            let lookup = |name: &str| {
                known
                    .get(name)
                    .or_else(|| base.get(name))
                    .cloned()
                    .unwrap_or_default()
            };
            let (value, comment) = match rest.chars().next() {
                Some(q @ ('\'' | '"')) => {
                    // Quoted values may continue on the following lines.
                    let mut body = rest[1..].to_string();
                    let close = loop {
                        if let Some(pos) = closing_quote(&body, q) {
                            break pos;
                        }
                        if i >= lines.len() {
                            return Err(err("unterminated quoted value"));
                        }
                        body.push('\n');
                        body.push_str(lines[i]);
                        i += 1;
                    };
                    let inner = &body[..close];
                    let after = body[close + 1..].trim();
                    let comment = after.strip_prefix('#').map(str::trim);
                    if comment.is_none() && !after.is_empty() {
                        return Err(err("unexpected text after closing quote"));
                    }
                    let value = if q == '"' {
                        expand(&unescape_double(inner), &lookup)
                    } else {
                        inner.to_string()
                    };
                    (value, comment.map(str::to_string))
                }
                _ => {
                    let (raw, comment) = match find_inline_comment(rest) {
                        Some(pos) => (&rest[..pos], Some(rest[pos + 1..].trim().to_string())),
                        None => (rest, None),
                    };
                    (expand(raw.trim(), &lookup), comment)
                }
            };
            known.insert(key.to_string(), value.clone());
            entries.push(EnvEntry {
                key: key.to_string(),
                value,
                modifiers: comment.as_deref().map(parse_modifiers).unwrap_or_default(),
                line: start + 1,
            });
        }
        Ok(EnvFile { entries })
    }

    /// The entries as a map; a key set twice keeps its last value.
    pub fn to_map(&self) -> BTreeMap<String, String> {
        self.entries
            .iter()
            .map(|e| (e.key.clone(), e.value.clone()))
            .collect()
    }

    /// The entry for `key` (the last one if repeated).
    pub fn get(&self, key: &str) -> Option<&EnvEntry> {
        self.entries.iter().rev().find(|e| e.key == key)
    }
}

/// Reads the `export KEY=VALUE` lines of an `abra.sh` without executing anything.
///
/// Lines inside shell function bodies (`name() { … }`) and every other statement are ignored;
/// one level of matching surrounding quotes is removed from the value.
pub fn parse_abra_sh(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut depth: i64 = 0;
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') {
            continue;
        }
        if depth == 0
            && let Some(def) = trimmed.strip_prefix("export ")
            && let Some((key, value)) = def.trim_start().split_once('=')
            && valid_key(key)
        {
            out.push((key.to_string(), strip_quotes(value.trim()).to_string()));
            continue;
        }
        depth += trimmed.matches('{').count() as i64 - trimmed.matches('}').count() as i64;
        depth = depth.max(0);
    }
    out
}

fn valid_key(key: &str) -> bool {
    let mut chars = key.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-')
}

fn strip_quotes(v: &str) -> &str {
    for q in ['"', '\''] {
        if v.len() >= 2 && v.starts_with(q) && v.ends_with(q) {
            return &v[1..v.len() - 1];
        }
    }
    v
}

/// Byte index of the closing quote `q` in `body` (a `\"` does not close a double-quoted value).
fn closing_quote(body: &str, q: char) -> Option<usize> {
    let mut escaped = false;
    for (i, c) in body.char_indices() {
        if q == '"' && escaped {
            escaped = false;
            continue;
        }
        if q == '"' && c == '\\' {
            escaped = true;
        } else if c == q {
            return Some(i);
        }
    }
    None
}

/// Byte index of the `#` that starts an inline comment: one preceded by whitespace.
fn find_inline_comment(rest: &str) -> Option<usize> {
    let bytes = rest.as_bytes();
    (0..bytes.len()).find(|&i| bytes[i] == b'#' && (i == 0 || bytes[i - 1].is_ascii_whitespace()))
}

fn unescape_double(inner: &str) -> String {
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            // `\$` stays escaped so expansion sees a literal dollar.
            Some('$') => out.push_str("\\$"),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

/// Expands `$VAR`, `${VAR}` and `\$` the way godotenv does.
fn expand(value: &str, lookup: &dyn Fn(&str) -> String) -> String {
    let bytes = value.as_bytes();
    let mut out = String::with_capacity(value.len());
    let mut i = 0;
    let is_name = |b: u8| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_';
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if bytes.get(i + 1) == Some(&b'$') => {
                out.push('$');
                i += 2;
            }
            b'$' => {
                let braced = bytes.get(i + 1) == Some(&b'{');
                let start = i + 1 + usize::from(braced);
                let mut end = start;
                while end < bytes.len() && is_name(bytes[end]) {
                    end += 1;
                }
                let closed = !braced || bytes.get(end) == Some(&b'}');
                if end == start || !closed {
                    out.push('$');
                    i += 1;
                    continue;
                }
                out.push_str(&lookup(&value[start..end]));
                i = end + usize::from(braced);
            }
            _ => {
                let ch = value[i..].chars().next().unwrap_or_default();
                out.push(ch);
                i += ch.len_utf8();
            }
        }
    }
    out
}

fn parse_modifiers(comment: &str) -> BTreeMap<String, String> {
    comment
        .split_whitespace()
        .filter_map(|word| word.split_once('='))
        .filter(|(k, _)| !k.is_empty())
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[cfg(test)]
#[path = "env_tests.rs"]
mod tests;
