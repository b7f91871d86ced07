//! A run's test artifacts on disk: where each step's files go (`<run dir>/artifacts/<stage>/
//! <phase>/…`), copying them out of a job's results directory (regular files only — a test may
//! plant symlinks) through the run's redactor, listing them, and resolving a requested path
//! without escaping the directory.

pub mod redact;

use std::io::Read;
use std::path::{Component, Path, PathBuf};

use crate::runlog::redact::Redactor;

/// The largest single artifact file kept (bigger ones are skipped, and said so).
pub const MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;

/// Why an artifact path or file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    /// The path is not a plain relative path inside the artifact directory.
    #[error("bad artifact path {0:?}")]
    BadPath(String),
    /// No such artifact.
    #[error("no artifact {0:?}")]
    NotFound(String),
    /// Local files.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// What went wrong.
        source: std::io::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ArtifactError + '_ {
    move |source| ArtifactError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The artifact directory of a run.
pub fn root(run_dir: &Path) -> PathBuf {
    run_dir.join("artifacts")
}

/// The relative directory of one step's artifacts, e.g. `install/check`.
pub fn step_prefix(stage: &str, phase: &str) -> String {
    format!("{stage}/{phase}")
}

/// Checks `rel` is a plain relative path (no `..`, no root, no empty or `.` parts, no
/// backslashes or NULs) and returns its parts.
pub fn safe_parts(rel: &str) -> Result<Vec<&str>, ArtifactError> {
    let bad = || ArtifactError::BadPath(rel.to_string());
    if rel.is_empty() || rel.contains('\\') || rel.contains('\0') || rel.starts_with('/') {
        return Err(bad());
    }
    let parts: Vec<&str> = rel.split('/').collect();
    if parts
        .iter()
        .any(|p| p.is_empty() || *p == "." || *p == "..")
    {
        return Err(bad());
    }
    if Path::new(rel)
        .components()
        .any(|c| !matches!(c, Component::Normal(_)))
    {
        return Err(bad());
    }
    Ok(parts)
}

/// The file `rel` below `root`: a regular file reached through real directories only (no
/// symlink anywhere on the way).
pub fn resolve(root: &Path, rel: &str) -> Result<PathBuf, ArtifactError> {
    let parts = safe_parts(rel)?;
    let mut path = root.to_path_buf();
    for (i, part) in parts.iter().enumerate() {
        path.push(part);
        let meta = match std::fs::symlink_metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(ArtifactError::NotFound(rel.to_string()));
            }
            Err(e) => return Err(io(&path)(e)),
        };
        let last = i + 1 == parts.len();
        let fits = if last { meta.is_file() } else { meta.is_dir() };
        if meta.file_type().is_symlink() || !fits {
            return Err(ArtifactError::NotFound(rel.to_string()));
        }
    }
    Ok(path)
}

/// Every artifact file below `root`, as sorted relative paths (symlinks are not followed).
pub fn list(root: &Path) -> Result<Vec<String>, ArtifactError> {
    let mut out = Vec::new();
    if root.is_dir() {
        walk(root, root, &mut out)?;
    }
    out.sort();
    Ok(out)
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) -> Result<(), ArtifactError> {
    for entry in std::fs::read_dir(dir).map_err(io(dir))? {
        let entry = entry.map_err(io(dir))?;
        let kind = entry.file_type().map_err(io(dir))?;
        let path = entry.path();
        if kind.is_dir() {
            walk(root, &path, out)?;
        } else if kind.is_file()
            && let Ok(rel) = path.strip_prefix(root)
            && let Some(rel) = rel.to_str()
        {
            out.push(rel.to_string());
        }
    }
    Ok(())
}

/// Copies the regular files below `from` (a job's results directory) to `root/prefix/`,
/// replacing what an earlier attempt of the step kept. Every file's content and path pass
/// `redactor` on the way ([`redact::redact`]), each secret also in its escaped forms
/// ([`redact::escaped_forms`]): nothing unscrubbed is ever stored, so whatever serves
/// artifacts later cannot leak a secret the run knows. Symlinks, devices, files over
/// [`MAX_FILE_BYTES`] and zips that cannot be scrubbed are skipped (each said in `skipped`).
/// Returns the kept files' paths relative to `root`.
pub fn collect(
    from: &Path,
    root: &Path,
    prefix: &str,
    redactor: &Redactor,
    skipped: &mut Vec<String>,
) -> Result<Vec<String>, ArtifactError> {
    safe_parts(prefix)?;
    let dest = root.join(prefix);
    match std::fs::remove_dir_all(&dest) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(&dest)(e)),
    }
    let mut kept = Vec::new();
    if from.is_dir() {
        let redactor = redactor.with_forms(redact::escaped_forms);
        let mut copy = Copy {
            base: from,
            dest: &dest,
            redactor: &redactor,
            skipped,
            kept: &mut kept,
        };
        copy.tree(from)?;
    }
    kept.sort();
    // Two paths that differed only by a secret became one.
    kept.dedup();
    Ok(kept.into_iter().map(|k| format!("{prefix}/{k}")).collect())
}

/// One [`collect`] in progress.
struct Copy<'a> {
    base: &'a Path,
    dest: &'a Path,
    redactor: &'a Redactor,
    skipped: &'a mut Vec<String>,
    kept: &'a mut Vec<String>,
}

impl Copy<'_> {
    fn tree(&mut self, dir: &Path) -> Result<(), ArtifactError> {
        for entry in std::fs::read_dir(dir).map_err(io(dir))? {
            let entry = entry.map_err(io(dir))?;
            let path = entry.path();
            let rel = path.strip_prefix(self.base).unwrap_or(&path).to_path_buf();
            let Some(rel_str) = rel.to_str() else {
                self.skipped.push(format!(
                    "{}: not UTF-8",
                    self.redactor.redact(&rel.to_string_lossy())
                ));
                continue;
            };
            // A path can carry a secret too (a test parametrised with one).
            let rel_str = self.redactor.redact(rel_str);
            let kind = entry.file_type().map_err(io(&path))?;
            if kind.is_dir() {
                self.tree(&path)?;
            } else if kind.is_file() {
                let size = entry.metadata().map_err(io(&path))?.len();
                if size > MAX_FILE_BYTES {
                    self.skipped
                        .push(format!("{rel_str}: {size} bytes, over the limit"));
                    continue;
                }
                self.file(&path, rel_str)?;
            } else {
                self.skipped.push(format!("{rel_str}: not a regular file"));
            }
        }
        Ok(())
    }

    /// Stores the regular file `path` scrubbed, as `rel` below the destination.
    fn file(&mut self, path: &Path, rel: String) -> Result<(), ArtifactError> {
        let mut bytes = Vec::new();
        std::fs::File::open(path)
            .and_then(|f| f.take(MAX_FILE_BYTES).read_to_end(&mut bytes))
            .map_err(io(path))?;
        let clean = match redact::redact(self.redactor, &rel, &bytes) {
            Ok(clean) => clean,
            Err(e) => {
                self.skipped.push(format!("{rel}: cannot be scrubbed: {e}"));
                return Ok(());
            }
        };
        let target = self.dest.join(&rel);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        std::fs::write(&target, clean).map_err(io(&target))?;
        self.kept.push(rel);
        Ok(())
    }
}

/// The content type an artifact is served with.
pub fn content_type(rel: &str) -> &'static str {
    let ext = rel.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
    match ext.as_deref() {
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("zip") => "application/zip",
        Some("html" | "htm") => "text/html; charset=utf-8",
        Some("xml") => "application/xml",
        Some("json") => "application/json",
        Some("txt" | "log") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_paths_are_refused() {
        for bad in [
            "",
            "/etc/passwd",
            "../secrets.json",
            "install/../../x",
            "a//b",
            "./a",
            "a\\..\\b",
            "a\0b",
        ] {
            assert!(safe_parts(bad).is_err(), "{bad:?}");
        }
        assert_eq!(safe_parts("install/check/x.png").unwrap().len(), 3);
    }

    #[test]
    fn planted_symlinks_are_neither_copied_nor_served() {
        let tmp = tempfile::tempdir().unwrap();
        let results = tmp.path().join("results");
        std::fs::create_dir_all(results.join("artifacts/t")).unwrap();
        std::fs::write(results.join("junit.xml"), "<x/>").unwrap();
        std::fs::write(results.join("artifacts/t/screenshot.png"), "png").unwrap();
        std::fs::write(tmp.path().join("secret"), "token").unwrap();
        std::os::unix::fs::symlink(tmp.path().join("secret"), results.join("leak.txt")).unwrap();
        std::os::unix::fs::symlink(tmp.path(), results.join("dir-link")).unwrap();
        let root = tmp.path().join("artifacts");
        let mut skipped = Vec::new();
        let kept = collect(
            &results,
            &root,
            "install/check",
            &Redactor::new(),
            &mut skipped,
        )
        .unwrap();
        assert_eq!(
            kept,
            [
                "install/check/artifacts/t/screenshot.png",
                "install/check/junit.xml"
            ]
        );
        assert_eq!(skipped.len(), 2, "{skipped:?}");
        assert_eq!(list(&root).unwrap(), kept);
        // A symlink placed in the artifact directory itself is not served either.
        std::os::unix::fs::symlink(tmp.path().join("secret"), root.join("install/s.txt")).unwrap();
        assert!(matches!(
            resolve(&root, "install/s.txt"),
            Err(ArtifactError::NotFound(_))
        ));
        assert!(resolve(&root, "install/check/junit.xml").is_ok());
        assert!(matches!(
            resolve(&root, "install/check"),
            Err(ArtifactError::NotFound(_))
        ));
    }

    /// A results directory as a failing browser test leaves it, a secret in every file.
    fn results_with_a_secret(dir: &Path, secret: &str) {
        use std::io::Write;
        let shot = dir.join("artifacts/test_login");
        std::fs::create_dir_all(&shot).unwrap();
        std::fs::write(dir.join("note.txt"), format!("password={secret}\n")).unwrap();
        std::fs::write(
            shot.join("page.html"),
            format!("<html><body><p id=k>{secret}</p><p>amp&amp;ersand&lt;9</p></body></html>"),
        )
        .unwrap();
        std::fs::write(
            dir.join("junit.xml"),
            format!(
                r#"<testsuites><testsuite name="pytest" tests="1" failures="1"><testcase classname="suite.test_install" name="test_login"><failure message="AssertionError: bad login with {secret}">assert {secret} == x</failure><system-out>typed {secret}</system-out></testcase></testsuite></testsuites>"#
            ),
        )
        .unwrap();
        let mut blob = vec![0u8, 0xff, 0x00];
        blob.extend_from_slice(secret.as_bytes());
        blob.push(0x80);
        std::fs::write(dir.join("dump.bin"), blob).unwrap();
        let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let deflated = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        for (name, text) in [
            (
                "trace.trace",
                format!("{{\"params\":{{\"value\":\"{secret}\"}}}}"),
            ),
            ("resources/page.html", format!("<b>{secret}</b>")),
        ] {
            w.start_file(name, deflated).unwrap();
            w.write_all(text.as_bytes()).unwrap();
        }
        let trace = w.finish().unwrap().into_inner();
        std::fs::write(shot.join("trace.zip"), trace).unwrap();
        let png = b"\x89PNG\r\n\x1a\n pixels";
        std::fs::write(shot.join("screenshot.png"), png).unwrap();
        std::fs::write(dir.join(format!("param-{secret}.txt")), "x").unwrap();
    }

    fn contains(hay: &[u8], needle: &[u8]) -> bool {
        hay.windows(needle.len()).any(|w| w == needle)
    }

    #[test]
    fn collected_artifacts_hold_no_secret_the_run_knows() {
        let secret = "ember-quartz-lagoon-7fq2";
        let redactor = Redactor::new();
        assert!(redactor.register(secret));
        assert!(redactor.register("amp&ersand<9"), "HTML shows it escaped");
        let tmp = tempfile::tempdir().unwrap();
        let results = tmp.path().join("results");
        results_with_a_secret(&results, secret);
        let root = tmp.path().join("artifacts");
        let mut skipped = Vec::new();
        let kept = collect(&results, &root, "install/check", &redactor, &mut skipped).unwrap();
        assert_eq!(skipped, Vec::<String>::new());
        assert_eq!(
            kept,
            [
                "install/check/artifacts/test_login/page.html",
                "install/check/artifacts/test_login/screenshot.png",
                "install/check/artifacts/test_login/trace.zip",
                "install/check/dump.bin",
                "install/check/junit.xml",
                "install/check/note.txt",
                "install/check/param-***.txt",
            ]
        );
        assert_eq!(list(&root).unwrap(), kept);
        let read = |rel: &str| std::fs::read(root.join("install/check").join(rel)).unwrap();
        for rel in &kept {
            let bytes = std::fs::read(root.join(rel)).unwrap();
            assert!(!contains(&bytes, secret.as_bytes()), "{rel}");
        }
        assert_eq!(read("note.txt"), b"password=***\n");
        assert_eq!(
            read("artifacts/test_login/page.html"),
            b"<html><body><p id=k>***</p><p>***</p></body></html>"
        );
        assert_eq!(read("dump.bin"), b"\x00\xff\x00***\x80");
        assert_eq!(
            read("artifacts/test_login/screenshot.png"),
            b"\x89PNG\r\n\x1a\n pixels",
            "an image without the secret's bytes is kept as it was"
        );
        // The run's failing tests come from this copy: scrubbed too.
        let xml = String::from_utf8(read("junit.xml")).unwrap();
        let cases = crate::executor::junit::parse(&xml).unwrap();
        assert_eq!(
            cases[0].outcome,
            crate::executor::junit::Outcome::Failed("AssertionError: bad login with ***".into())
        );
        assert!(xml.contains("typed ***"), "{xml}");
        // The trace is still a zip with the same entries, their content scrubbed.
        let trace = read("artifacts/test_login/trace.zip");
        let mut archive = zip::ZipArchive::new(std::io::Cursor::new(trace)).unwrap();
        let mut entries = Vec::new();
        for i in 0..archive.len() {
            let mut e = archive.by_index(i).unwrap();
            let mut text = String::new();
            e.read_to_string(&mut text).unwrap();
            entries.push((e.name().to_string(), text));
        }
        assert_eq!(
            entries,
            [
                ("trace.trace".into(), r#"{"params":{"value":"***"}}"#.into()),
                ("resources/page.html".into(), "<b>***</b>".into()),
            ]
        );
    }

    #[test]
    fn content_types_follow_the_extension() {
        assert_eq!(content_type("a/screenshot.png"), "image/png");
        assert_eq!(content_type("a/trace.zip"), "application/zip");
        assert_eq!(content_type("a/page.HTML"), "text/html; charset=utf-8");
        assert_eq!(content_type("a/noext"), "application/octet-stream");
    }
}
