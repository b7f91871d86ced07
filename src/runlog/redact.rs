//! Scrubbing secret values out of text before it is written anywhere (run logs, status
//! messages, errors): a shared [`Redactor`] and a [`StreamRedactor`] for chunked output.
//!
//! Values shorter than [`MIN_SECRET_LEN`] are never registered: replacing every `1` or `on`
//! in a log would make it unreadable while protecting nothing (such values are guessable).

use std::sync::{Arc, RwLock};

use regex::bytes::Regex;

/// What a secret is replaced with.
pub const MASK: &str = "***";

/// Shortest value the redactor accepts.
pub const MIN_SECRET_LEN: usize = 6;

/// A thread-safe set of secret values; clones share the set. Registration rebuilds one
/// matcher (an alternation of the literal values, longest first); scrubbing only reads it.
#[derive(Clone, Debug, Default)]
pub struct Redactor {
    inner: Arc<RwLock<Matcher>>,
}

#[derive(Debug, Default)]
struct Matcher {
    values: Vec<Vec<u8>>,
    regex: Option<Regex>,
    longest: usize,
}

impl Redactor {
    /// An empty redactor.
    pub fn new() -> Redactor {
        Redactor::default()
    }

    /// Registers a secret value. Returns false (and registers nothing) when the value is
    /// shorter than [`MIN_SECRET_LEN`] bytes after trimming. Values with surrounding
    /// whitespace (e.g. a trailing newline read from a file) are registered trimmed too.
    pub fn register(&self, value: &str) -> bool {
        let trimmed = value.trim();
        if trimmed.len() < MIN_SECRET_LEN {
            return false;
        }
        let mut m = self.inner.write().unwrap_or_else(|e| e.into_inner());
        let mut changed = false;
        for v in [value, trimmed] {
            if v.len() >= MIN_SECRET_LEN && !m.values.iter().any(|x| x == v.as_bytes()) {
                m.values.push(v.as_bytes().to_vec());
                changed = true;
            }
        }
        if changed {
            m.values
                .sort_by(|a, b| b.len().cmp(&a.len()).then(a.cmp(b)));
            let pattern = m
                .values
                .iter()
                .map(|v| regex::escape(&String::from_utf8_lossy(v)))
                .collect::<Vec<_>>()
                .join("|");
            m.regex = Some(Regex::new(&pattern).expect("escaped literals form a valid regex"));
            m.longest = m.values.first().map_or(0, Vec::len);
        }
        true
    }

    /// Number of distinct values registered.
    pub fn len(&self) -> usize {
        self.read().values.len()
    }

    /// Whether nothing is registered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Matcher> {
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    /// `text` with every registered value replaced by [`MASK`].
    pub fn redact(&self, text: &str) -> String {
        let m = self.read();
        match &m.regex {
            Some(re) if re.is_match(text.as_bytes()) => {
                let out = re.replace_all(text.as_bytes(), MASK.as_bytes());
                // Every value is valid UTF-8 and so is the mask: the result stays valid.
                String::from_utf8_lossy(&out).into_owned()
            }
            _ => text.to_string(),
        }
    }

    /// `bytes` with every registered value replaced by [`MASK`].
    pub fn redact_bytes(&self, bytes: &[u8]) -> Vec<u8> {
        let m = self.read();
        match &m.regex {
            Some(re) => re.replace_all(bytes, MASK.as_bytes()).into_owned(),
            None => bytes.to_vec(),
        }
    }

    /// A new redactor holding every value of this one and, for each, the other forms `forms`
    /// gives (e.g. how the value reads once escaped into HTML). It is a snapshot: values
    /// registered here later are not in it.
    pub fn with_forms(&self, forms: impl Fn(&str) -> Vec<String>) -> Redactor {
        let values: Vec<String> = self
            .read()
            .values
            .iter()
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .collect();
        let derived = Redactor::new();
        for value in values {
            derived.register(&value);
            for form in forms(&value) {
                derived.register(&form);
            }
        }
        derived
    }

    /// A scrubber for one stream of chunks (e.g. a container's log) sharing this set.
    pub fn stream(&self) -> StreamRedactor {
        StreamRedactor {
            redactor: self.clone(),
            pending: Vec::new(),
        }
    }
}

/// Scrubs a byte stream delivered in arbitrary chunks, so that a secret split across two
/// chunks is still caught.
///
/// It holds back the last `longest secret - 1` bytes of what it has seen (a possible start of
/// a secret) until more data or [`StreamRedactor::finish`] arrives. Limits: a value registered
/// after part of it was already passed on cannot be caught, and output lags input by at most
/// the longest secret's length — call `finish` at the end of the stream.
#[derive(Debug)]
pub struct StreamRedactor {
    redactor: Redactor,
    pending: Vec<u8>,
}

impl StreamRedactor {
    /// Feeds one chunk; returns the scrubbed bytes that are safe to pass on now.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<u8> {
        self.pending.extend_from_slice(chunk);
        let m = self.redactor.read();
        let Some(re) = &m.regex else {
            return std::mem::take(&mut self.pending);
        };
        let hold = m.longest.saturating_sub(1);
        let mut cut = self.pending.len().saturating_sub(hold);
        let mut out = Vec::with_capacity(self.pending.len());
        let mut copied = 0;
        for found in re.find_iter(&self.pending) {
            if found.start() >= cut {
                break;
            }
            out.extend_from_slice(&self.pending[copied..found.start()]);
            out.extend_from_slice(MASK.as_bytes());
            copied = found.end();
            cut = cut.max(found.end());
        }
        out.extend_from_slice(&self.pending[copied..cut.max(copied)]);
        self.pending.drain(..cut.max(copied));
        out
    }

    /// Flushes what is held back, scrubbed.
    pub fn finish(mut self) -> Vec<u8> {
        let rest = std::mem::take(&mut self.pending);
        self.redactor.redact_bytes(&rest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registered_values_are_masked_everywhere() {
        let r = Redactor::new();
        assert!(r.register("correct-horse-battery"));
        assert!(r.register("s3cr3t-token\n"));
        let clone = r.clone();
        let line = "login with correct-horse-battery and s3cr3t-token; again correct-horse-battery";
        assert_eq!(clone.redact(line), "login with *** and ***; again ***");
        assert_eq!(
            r.redact_bytes(b"x s3cr3t-token\n y"),
            b"x *** y".to_vec(),
            "the untrimmed value (with its newline) is masked whole"
        );
        assert_eq!(r.redact("nothing here"), "nothing here");
    }

    #[test]
    fn short_and_empty_values_are_refused() {
        let r = Redactor::new();
        for v in ["", "  ", "1", "true", "abcde", "  abcd  "] {
            assert!(!r.register(v), "{v:?}");
        }
        assert!(r.is_empty());
        assert_eq!(r.redact("true 1 abcde"), "true 1 abcde");
    }

    #[test]
    fn longer_values_win_over_their_prefixes() {
        let r = Redactor::new();
        r.register("abcdef");
        r.register("abcdefghij");
        assert_eq!(r.redact("[abcdefghij] [abcdef]"), "[***] [***]");
        assert_eq!(r.len(), 2);
    }

    #[test]
    fn regex_metacharacters_are_literal() {
        let r = Redactor::new();
        r.register("a.b*c+d?(e)|f");
        assert_eq!(r.redact("x a.b*c+d?(e)|f y aXbbbcd"), "x *** y aXbbbcd");
    }

    #[test]
    fn derived_redactors_also_mask_the_forms_given() {
        let r = Redactor::new();
        r.register("a&b<c>d-value");
        let derived = r.with_forms(|v| vec![v.replace('&', "&amp;"), v.to_uppercase()]);
        assert_eq!(
            derived.redact("[a&b<c>d-value] [a&amp;b<c>d-value] [A&B<C>D-VALUE]"),
            "[***] [***] [***]"
        );
        assert_eq!(r.redact("[a&amp;b<c>d-value]"), "[a&amp;b<c>d-value]");
        r.register("registered-later");
        assert_eq!(derived.redact("registered-later"), "registered-later");
    }

    #[test]
    fn secrets_split_across_chunks_are_caught() {
        let r = Redactor::new();
        r.register("passphrase-of-words");
        let text = b"start passphrase-of-words middle passphrase-of-words end".to_vec();
        for size in 1..text.len() {
            let mut s = r.stream();
            let mut out = Vec::new();
            for chunk in text.chunks(size) {
                out.extend(s.push(chunk));
            }
            out.extend(s.finish());
            assert_eq!(
                String::from_utf8(out).unwrap(),
                "start *** middle *** end",
                "chunk size {size}"
            );
        }
    }

    #[test]
    fn a_stream_passes_data_through_when_nothing_is_registered() {
        let r = Redactor::new();
        let mut s = r.stream();
        assert_eq!(s.push(b"abc"), b"abc".to_vec());
        assert_eq!(s.finish(), Vec::<u8>::new());
    }

    #[test]
    fn redactor_is_shared_across_threads() {
        let r = Redactor::new();
        let handles: Vec<_> = (0..4)
            .map(|i| {
                let r = r.clone();
                std::thread::spawn(move || r.register(&format!("thread-secret-{i}")))
            })
            .collect();
        for h in handles {
            assert!(h.join().unwrap());
        }
        assert_eq!(r.redact("thread-secret-3 thread-secret-0"), "*** ***");
    }
}
