//! Scrubbing one artifact's content with the run's [`Redactor`] before it is stored: a zip
//! archive (a Playwright `trace.zip`) is rewritten with every entry scrubbed, anything else
//! has its bytes scrubbed as they are.
//!
//! Why bytes, whatever the file: the redactor matches byte strings, so a secret in UTF-8 text
//! (HTML, JUnit XML, JSON, logs) and a secret's bytes inside a binary blob (an image's text
//! metadata included) are found alike, with no guess at a file's type to get wrong. What
//! bytes cannot show is a secret *drawn* in an image: the pixels of a screenshot of a page
//! that displays one. Compressed data hides its text, hence the zip rewrite; other compressed
//! containers (gzip, tar.gz, video) are only scrubbed as bytes (see `docs/secrets.md`).
//! Formats escape text too: [`escaped_forms`] gives the forms a secret takes in HTML, XML,
//! JSON and URLs, for the caller to register beside the value.
//!
//! A zip that cannot be read whole (damaged, encrypted, a compression other than stored or
//! deflate, nested deeper than [`MAX_ZIP_DEPTH`], expanding past [`MAX_EXPANDED_BYTES`]) is an
//! error: the caller keeps nothing rather than a file it could not scrub.

use std::io::{Cursor, Read, Write};

use zip::result::ZipError;
use zip::{ZipArchive, ZipWriter};

use crate::runlog::redact::Redactor;

/// The most a zip artifact (with the zips inside it) may expand to while it is scrubbed.
pub const MAX_EXPANDED_BYTES: u64 = 4 * super::MAX_FILE_BYTES;

/// How deep zips inside zips are opened (a trace inside an archive of traces is two levels).
pub const MAX_ZIP_DEPTH: usize = 3;

/// Why an artifact could not be scrubbed (and so is not kept).
#[derive(Debug, thiserror::Error)]
pub enum RedactError {
    /// The zip could not be read or written.
    #[error("unreadable zip archive: {0}")]
    Zip(#[from] ZipError),
    /// Reading or writing an entry failed.
    #[error("zip entry: {0}")]
    Entry(#[from] std::io::Error),
    /// Its entries expand to more than [`MAX_EXPANDED_BYTES`].
    #[error("zip archive expands to too many bytes (the limit is {MAX_EXPANDED_BYTES})")]
    TooLarge,
    /// Zips nested deeper than [`MAX_ZIP_DEPTH`].
    #[error("zip archives nested over {MAX_ZIP_DEPTH} deep")]
    TooDeep,
}

/// The forms a secret `value` takes once a file format has escaped it, beside its own: HTML
/// and XML entities (as Chromium's serializer, pytest's JUnit writer and Python's
/// `html.escape` write them, in text and in attributes), a JSON string's escapes, and URL
/// percent-encoding (RFC 3986, `encodeURIComponent`, HTML forms). A generated secret of the
/// `special` charset (`&`, `<`, `>`, `/`, …) shows up in `page.html` or `junit.xml` only in
/// such a form.
pub fn escaped_forms(value: &str) -> Vec<String> {
    const MARKUP: [&[(char, &str)]; 5] = [
        &[('&', "&amp;"), ('<', "&lt;"), ('>', "&gt;")],
        &[('&', "&amp;"), ('"', "&quot;")],
        &[
            ('&', "&amp;"),
            ('<', "&lt;"),
            ('>', "&gt;"),
            ('"', "&quot;"),
        ],
        &[
            ('&', "&amp;"),
            ('<', "&lt;"),
            ('>', "&gt;"),
            ('"', "&quot;"),
            ('\'', "&#x27;"),
        ],
        &[
            ('&', "&amp;"),
            ('<', "&lt;"),
            ('>', "&gt;"),
            ('"', "&quot;"),
            ('\'', "&#39;"),
        ],
    ];
    const JSON: [&[(char, &str)]; 2] = [
        &[('\\', "\\\\"), ('"', "\\\"")],
        &[('\\', "\\\\"), ('"', "\\\""), ('/', "\\/")],
    ];
    let replace = |table: &[(char, &str)]| -> String {
        let mut out = String::with_capacity(value.len());
        for c in value.chars() {
            match table.iter().find(|(from, _)| *from == c) {
                Some((_, to)) => out.push_str(to),
                None => out.push(c),
            }
        }
        out
    };
    let percent = |kept: &str, space: Option<char>| -> String {
        let mut out = String::with_capacity(value.len());
        for b in value.bytes() {
            match (b, space) {
                (b' ', Some(plus)) => out.push(plus),
                _ if b.is_ascii_alphanumeric() || kept.as_bytes().contains(&b) => {
                    out.push(char::from(b));
                }
                _ => out.push_str(&format!("%{b:02X}")),
            }
        }
        out
    };
    let mut forms: Vec<String> = MARKUP
        .iter()
        .chain(JSON.iter())
        .map(|t| replace(t))
        .collect();
    forms.push(percent("-._~", None));
    forms.push(percent("-_.!~*'()", None));
    forms.push(percent("*-._", Some('+')));
    forms.sort();
    forms.dedup();
    forms.retain(|f| f != value);
    forms
}

/// Whether `bytes` start like a zip archive (a local file header, or the end record of an
/// empty archive).
pub fn is_zip(bytes: &[u8]) -> bool {
    bytes.starts_with(b"PK\x03\x04") || bytes.starts_with(b"PK\x05\x06")
}

/// `bytes` of the artifact `name` with every secret `redactor` knows replaced by its mask.
/// A zip (by content, or named `*.zip`) is rewritten entry by entry.
pub fn redact(redactor: &Redactor, name: &str, bytes: &[u8]) -> Result<Vec<u8>, RedactError> {
    redact_within(redactor, name, bytes, MAX_EXPANDED_BYTES)
}

/// [`redact`], with `budget` bytes a zip may expand to.
fn redact_within(
    redactor: &Redactor,
    name: &str,
    bytes: &[u8],
    mut budget: u64,
) -> Result<Vec<u8>, RedactError> {
    if is_zip(bytes) || name.to_ascii_lowercase().ends_with(".zip") {
        redact_zip(redactor, bytes, 1, &mut budget)
    } else {
        Ok(redactor.redact_bytes(bytes))
    }
}

/// Rewrites the zip `bytes`: same entries in the same order, each name, content and the
/// archive comment scrubbed; entries inside that are zips themselves get the same treatment.
/// Entry comments and extra fields are dropped (they could carry text too).
fn redact_zip(
    redactor: &Redactor,
    bytes: &[u8],
    depth: usize,
    budget: &mut u64,
) -> Result<Vec<u8>, RedactError> {
    if depth > MAX_ZIP_DEPTH {
        return Err(RedactError::TooDeep);
    }
    let mut archive = ZipArchive::new(Cursor::new(bytes))?;
    let mut out = ZipWriter::new(Cursor::new(Vec::with_capacity(bytes.len())));
    out.set_raw_comment(redactor.redact_bytes(archive.comment()).into_boxed_slice());
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i)?;
        let name = redactor.redact(entry.name());
        let options = entry.options();
        if entry.is_dir() {
            out.add_directory(name, options)?;
            continue;
        }
        let mut content = Vec::new();
        // Read one byte past the budget: the declared size may lie.
        (&mut entry).take(*budget + 1).read_to_end(&mut content)?;
        let used = content.len() as u64;
        if used > *budget {
            return Err(RedactError::TooLarge);
        }
        *budget -= used;
        let clean = if is_zip(&content) {
            redact_zip(redactor, &content, depth + 1, budget)?
        } else {
            redactor.redact_bytes(&content)
        };
        out.start_file(name, options)?;
        out.write_all(&clean)?;
    }
    Ok(out.finish()?.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use zip::write::SimpleFileOptions;

    const SECRET: &str = "tulip-harbor-velvet-oxide";

    fn redactor() -> Redactor {
        let r = Redactor::new();
        assert!(r.register(SECRET));
        r
    }

    /// A zip of `(name, content)` entries (a name ending in `/` is a directory), deflated.
    fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut w = ZipWriter::new(Cursor::new(Vec::new()));
        let options =
            SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
        for (name, content) in entries {
            if name.ends_with('/') {
                w.add_directory(*name, options).unwrap();
            } else {
                w.start_file(*name, options).unwrap();
                w.write_all(content).unwrap();
            }
        }
        w.finish().unwrap().into_inner()
    }

    /// Every entry of a zip: name and content.
    fn entries(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
        let mut archive = ZipArchive::new(Cursor::new(bytes)).expect("a valid zip");
        (0..archive.len())
            .map(|i| {
                let mut e = archive.by_index(i).unwrap();
                let mut content = Vec::new();
                e.read_to_end(&mut content).unwrap();
                (e.name().to_string(), content)
            })
            .collect()
    }

    fn contains(hay: &[u8], needle: &str) -> bool {
        hay.windows(needle.len()).any(|w| w == needle.as_bytes())
    }

    #[test]
    fn text_and_binary_files_are_scrubbed_as_bytes() {
        let r = redactor();
        let html = format!("<p>key: <code>{SECRET}</code></p>");
        assert_eq!(
            redact(&r, "page.html", html.as_bytes()).unwrap(),
            b"<p>key: <code>***</code></p>"
        );
        let mut blob = vec![0u8, 0xff, 0xfe, 0x89];
        blob.extend_from_slice(SECRET.as_bytes());
        blob.extend_from_slice(&[0x00, 0xc3]);
        assert_eq!(
            redact(&r, "dump.bin", &blob).unwrap(),
            [&[0u8, 0xff, 0xfe, 0x89][..], b"***", &[0x00, 0xc3]].concat()
        );
        assert_eq!(redact(&r, "a.txt", b"nothing").unwrap(), b"nothing");
    }

    #[test]
    fn escaped_forms_of_a_secret_are_masked_too() {
        let r = Redactor::new();
        r.register("k9&Q<z>/\"w x");
        let r = r.with_forms(escaped_forms);
        for (name, escaped) in [
            ("page.html", "k9&amp;Q&lt;z&gt;/\"w x"),
            ("junit.xml", "k9&amp;Q&lt;z&gt;/&quot;w x"),
            ("attr.html", "k9&amp;Q<z>/&quot;w x"),
            ("trace.json", "k9&Q<z>/\\\"w x"),
            ("trace.json", "k9&Q<z>\\/\\\"w x"),
            ("urls.txt", "k9%26Q%3Cz%3E%2F%22w%20x"),
            ("form.txt", "k9%26Q%3Cz%3E%2F%22w+x"),
        ] {
            let text = format!("<p>{escaped}</p>");
            assert_eq!(
                redact(&r, name, text.as_bytes()).unwrap(),
                b"<p>***</p>",
                "{escaped}"
            );
        }
        assert_eq!(escaped_forms("plain-alnum-value42"), Vec::<String>::new());
    }

    #[test]
    fn a_zip_keeps_its_entries_with_their_content_scrubbed() {
        let r = redactor();
        let line = |i| format!("{{\"type\":\"action\",\"n\":{i},\"value\":\"{SECRET}\"}}\n");
        let trace: String = (0..200).map(line).collect();
        let original = zip_of(&[
            ("trace.trace", trace.as_bytes()),
            ("resources/", b""),
            ("resources/ab12.html", format!("<b>{SECRET}</b>").as_bytes()),
            ("resources/cd34.jpeg", b"\xff\xd8\xff\xe0 not the secret"),
        ]);
        assert!(
            !contains(&original, SECRET),
            "deflate hides the secret from a byte scan: the reason for the rewrite"
        );
        let clean = redact(&r, "trace.zip", &original).unwrap();
        let got = entries(&clean);
        let names: Vec<&str> = got.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "trace.trace",
                "resources/",
                "resources/ab12.html",
                "resources/cd34.jpeg"
            ]
        );
        assert_eq!(got[0].1, trace.replace(SECRET, "***").into_bytes());
        assert_eq!(got[2].1, b"<b>***</b>");
        assert_eq!(got[3].1, b"\xff\xd8\xff\xe0 not the secret");
        for (name, content) in &got {
            assert!(!contains(content, SECRET), "{name}");
        }
    }

    #[test]
    fn zips_inside_zips_and_names_and_comments_are_scrubbed() {
        let r = redactor();
        let inner = zip_of(&[("note.txt", SECRET.as_bytes())]);
        let mut w = ZipWriter::new(Cursor::new(Vec::new()));
        w.set_comment(format!("made with {SECRET}"));
        let stored = SimpleFileOptions::default();
        w.start_file("inner.zip", stored).unwrap();
        w.write_all(&inner).unwrap();
        w.start_file(format!("by-{SECRET}.txt"), stored).unwrap();
        w.write_all(b"plain").unwrap();
        let outer = w.finish().unwrap().into_inner();

        let clean = redact(&r, "bundle.zip", &outer).unwrap();
        assert!(!contains(&clean, SECRET));
        let archive = ZipArchive::new(Cursor::new(&clean)).unwrap();
        assert_eq!(archive.comment(), b"made with ***");
        let got = entries(&clean);
        assert_eq!(got[1].0, "by-***.txt");
        assert_eq!(
            entries(&got[0].1),
            [("note.txt".to_string(), b"***".to_vec())]
        );
    }

    #[test]
    fn a_zip_that_cannot_be_read_whole_is_refused() {
        let r = redactor();
        let good = zip_of(&[("a.txt", SECRET.as_bytes())]);
        let truncated = &good[..good.len() / 2];
        assert!(matches!(
            redact(&r, "t.zip", truncated),
            Err(RedactError::Zip(_))
        ));
        assert!(
            redact(&r, "not-a-zip.zip", b"hello").is_err(),
            "named .zip must be a zip"
        );
        let mut nested = zip_of(&[("x.txt", b"x")]);
        for _ in 0..MAX_ZIP_DEPTH {
            nested = zip_of(&[("n.zip", &nested)]);
        }
        assert!(matches!(
            redact(&r, "deep.zip", &nested),
            Err(RedactError::TooDeep)
        ));
    }

    #[test]
    fn a_zip_expanding_past_the_budget_is_refused() {
        let r = redactor();
        let zeros = vec![0u8; 600 << 10];
        let bomb = zip_of(&[("a", &zeros[..]), ("b", &zeros[..])]);
        assert!(bomb.len() < 10 << 10, "{}", bomb.len());
        assert!(redact_within(&r, "fits.zip", &bomb, 2 << 20).is_ok());
        assert!(matches!(
            redact_within(&r, "bomb.zip", &bomb, 1 << 20),
            Err(RedactError::TooLarge)
        ));
    }
}
