//! The metadata block of a Co-op Cloud recipe README (`<!-- metadata -->` … `<!-- endmetadata -->`):
//! its `Key: value` lines, and what a value claims (`Yes`/`No`, or a score such as `❶💚` or
//! `1, alpha`). Pure; README text is untrusted, so everything is bounded.

use serde::{Deserialize, Serialize};

/// The most README text scanned for a block.
pub const MAX_README: usize = 256 * 1024;
/// The most entries kept from a block.
pub const MAX_ENTRIES: usize = 32;
/// The longest key kept, in characters.
pub const MAX_KEY: usize = 40;
/// The longest value kept, in characters (longer values are cut).
pub const MAX_VALUE: usize = 200;

const START: &str = "<!-- metadata -->";
const END: &str = "<!-- endmetadata -->";

/// One `Key: value` line of the block, as written (markup removed, bounded).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The key, e.g. `Backups`.
    pub key: String,
    /// The value, e.g. `❶💚`.
    pub value: String,
}

/// What a metadata value claims.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Claim {
    /// `Yes` (or `✅`).
    Yes,
    /// `No`, `0` (or `❌`).
    No,
    /// A score of 1 or more (`❶💚`, `2, beta`): the feature is there, at that quality.
    Score(u8),
    /// `N/A`, `-`, empty.
    NotApplicable,
    /// Free text (`Apps`, an image link).
    Text,
}

impl Claim {
    /// Whether the value says the feature is present.
    pub fn affirms(self) -> bool {
        matches!(self, Claim::Yes | Claim::Score(_))
    }

    /// Whether the value says the feature is absent.
    pub fn denies(self) -> bool {
        matches!(self, Claim::No)
    }
}

/// The entries of the first metadata block of `readme`, or `None` without a complete block.
pub fn parse(readme: &str) -> Option<Vec<Entry>> {
    let text = cut(readme, MAX_README);
    let start = text.find(START)? + START.len();
    let end = start + text[start..].find(END)?;
    let entries: Vec<Entry> = text[start..end]
        .lines()
        .filter_map(entry)
        .take(MAX_ENTRIES)
        .collect();
    Some(entries)
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

fn clean(s: &str, max_chars: usize) -> String {
    s.chars()
        .filter(|c| !c.is_control())
        .take(max_chars)
        .collect::<String>()
        .trim()
        .to_string()
}

fn entry(line: &str) -> Option<Entry> {
    let line = line.trim();
    let line = line
        .strip_prefix("* ")
        .or_else(|| line.strip_prefix("- "))
        .unwrap_or(line)
        .trim();
    let (key, value) = line.split_once(':')?;
    let key = key.trim().trim_matches('*').trim_matches('_').trim();
    let value = value.trim().trim_matches('*').trim();
    if key.is_empty() || key.chars().count() > MAX_KEY || key.contains('<') {
        return None;
    }
    Some(Entry {
        key: clean(key, MAX_KEY),
        value: clean(value, MAX_VALUE),
    })
}

/// The value of `key` (case-insensitive) among `entries`.
pub fn value<'a>(entries: &'a [Entry], key: &str) -> Option<&'a str> {
    entries
        .iter()
        .find(|e| e.key.eq_ignore_ascii_case(key))
        .map(|e| e.value.as_str())
}

fn circled(c: char) -> Option<u8> {
    let n = match c {
        '\u{2776}'..='\u{277F}' => c as u32 - 0x2776 + 1,
        '\u{2460}'..='\u{2468}' => c as u32 - 0x2460 + 1,
        '\u{278A}'..='\u{2793}' => c as u32 - 0x278A + 1,
        '\u{24FF}' | '\u{24EA}' => 0,
        _ => return None,
    };
    u8::try_from(n).ok()
}

/// What `value` claims.
pub fn claim(value: &str) -> Claim {
    let v = value.trim();
    let lower = v.to_lowercase();
    let word = lower
        .split(|c: char| c == ',' || c.is_whitespace() || c == '(')
        .next()
        .unwrap_or("");
    match word {
        "yes" | "y" | "true" | "✅" | "✔" | "✔️" => return Claim::Yes,
        "no" | "n" | "false" | "❌" | "✗" | "none" => return Claim::No,
        "" | "n/a" | "na" | "-" | "?" | "unknown" => return Claim::NotApplicable,
        _ => {}
    }
    if let Some(n) = v.chars().next().and_then(circled) {
        return if n == 0 { Claim::No } else { Claim::Score(n) };
    }
    let digits: String = word.chars().take_while(char::is_ascii_digit).collect();
    if !digits.is_empty() && digits.len() == word.len() {
        return match digits.parse::<u8>() {
            Ok(0) => Claim::No,
            Ok(n) => Claim::Score(n),
            Err(_) => Claim::Text,
        };
    }
    Claim::Text
}

#[cfg(test)]
mod tests {
    use super::*;

    const README: &str = "# Nextcloud\n\n<!-- metadata -->\n\n* **Category**: Apps\n\
        * **Status**: 1, alpha\n* **Image**: [`nextcloud`](https://hub.docker.com/_/nextcloud), 4, upstream\n\
        * **Healthcheck**: Yes\n* **Backups**: ❶💚\n* **Email**: No\n* **Tests**: ❷💛\n\
        * **SSO**: N/A\n\n<!-- endmetadata -->\n\nMore text: not: metadata\n";

    #[test]
    fn a_coop_cloud_block_parses_into_its_entries() {
        let e = parse(README).unwrap();
        let keys: Vec<&str> = e.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "Category",
                "Status",
                "Image",
                "Healthcheck",
                "Backups",
                "Email",
                "Tests",
                "SSO"
            ]
        );
        assert_eq!(value(&e, "status"), Some("1, alpha"));
        assert_eq!(claim(value(&e, "Backups").unwrap()), Claim::Score(1));
        assert_eq!(claim(value(&e, "Tests").unwrap()), Claim::Score(2));
        assert_eq!(claim(value(&e, "Healthcheck").unwrap()), Claim::Yes);
        assert_eq!(claim(value(&e, "Email").unwrap()), Claim::No);
        assert_eq!(claim(value(&e, "SSO").unwrap()), Claim::NotApplicable);
        assert_eq!(claim(value(&e, "Category").unwrap()), Claim::Text);
        assert_eq!(claim(value(&e, "Status").unwrap()), Claim::Score(1));
    }

    #[test]
    fn claims_in_their_many_spellings() {
        for (v, c) in [
            ("yes", Claim::Yes),
            ("YES (since 2.0)", Claim::Yes),
            ("No", Claim::No),
            ("0", Claim::No),
            ("0, work-in-progress", Claim::No),
            ("3, beta", Claim::Score(3)),
            ("⓿", Claim::No),
            ("❸🍎", Claim::Score(3)),
            ("②", Claim::Score(2)),
            ("", Claim::NotApplicable),
            ("n/a", Claim::NotApplicable),
            ("99999999999", Claim::Text),
            ("nginx 1.25", Claim::Text),
        ] {
            assert_eq!(claim(v), c, "{v:?}");
        }
        assert!(Claim::Score(1).affirms() && Claim::Yes.affirms() && !Claim::Text.affirms());
        assert!(Claim::No.denies() && !Claim::NotApplicable.denies());
    }

    #[test]
    fn without_a_complete_block_there_is_no_metadata() {
        assert_eq!(parse("no block here"), None);
        assert_eq!(parse("<!-- metadata -->\n* **Backups**: Yes\n"), None);
        assert_eq!(parse("<!-- endmetadata -->\n<!-- metadata -->"), None);
        assert_eq!(parse("<!-- metadata --><!-- endmetadata -->"), Some(vec![]));
    }

    #[test]
    fn hostile_readmes_stay_bounded_and_inert() {
        // Markup and scripts are kept as text (the page escapes them), control characters go.
        let e = parse(
            "<!-- metadata -->\n* **Category**: <script>alert(1)</script>\u{7}\u{1b}[31m\n\
             * **<img src=x>**: y\n*: empty key\n**Healthcheck**:**Yes**\n<!-- endmetadata -->",
        )
        .unwrap();
        assert_eq!(e.len(), 2, "{e:?}");
        assert_eq!(e[0].value, "<script>alert(1)</script>[31m");
        assert_eq!(e[1].key, "Healthcheck");
        assert_eq!(claim(&e[1].value), Claim::Yes);

        // Huge values are cut, many lines are capped, and a block past the scan limit is ignored.
        let long = format!(
            "<!-- metadata -->\n* **K**: {}\n{}<!-- endmetadata -->",
            "é".repeat(10_000),
            "* **X**: 1\n".repeat(1000)
        );
        let e = parse(&long).unwrap();
        assert_eq!(e.len(), MAX_ENTRIES);
        assert_eq!(e[0].value.chars().count(), MAX_VALUE);
        let late = format!(
            "{}<!-- metadata -->\n* **K**: v\n<!-- endmetadata -->",
            "x".repeat(MAX_README)
        );
        assert_eq!(parse(&late), None);
        // A multi-byte character across the scan limit does not panic.
        let edge = format!("{}é<!-- metadata -->", "x".repeat(MAX_README - 1));
        assert_eq!(parse(&edge), None);
        let key = format!(
            "<!-- metadata -->\n* **{}**: v\n<!-- endmetadata -->",
            "k".repeat(41)
        );
        assert_eq!(parse(&key), Some(vec![]));
    }
}
