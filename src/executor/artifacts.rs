//! A run's test artifacts on disk: where each step's files go (`<run dir>/artifacts/<stage>/
//! <phase>/…`), copying them out of a job's results directory (regular files only — a test may
//! plant symlinks), listing them, and resolving a requested path without escaping the directory.

use std::path::{Component, Path, PathBuf};

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
/// replacing what an earlier attempt of the step kept. Symlinks, devices and files over
/// [`MAX_FILE_BYTES`] are skipped (each said in `skipped`). Returns the kept files' paths
/// relative to `root`.
pub fn collect(
    from: &Path,
    root: &Path,
    prefix: &str,
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
        copy_tree(from, from, &dest, skipped, &mut kept)?;
    }
    kept.sort();
    Ok(kept.into_iter().map(|k| format!("{prefix}/{k}")).collect())
}

fn copy_tree(
    base: &Path,
    dir: &Path,
    dest: &Path,
    skipped: &mut Vec<String>,
    kept: &mut Vec<String>,
) -> Result<(), ArtifactError> {
    for entry in std::fs::read_dir(dir).map_err(io(dir))? {
        let entry = entry.map_err(io(dir))?;
        let path = entry.path();
        let rel = path.strip_prefix(base).unwrap_or(&path).to_path_buf();
        let Some(rel_str) = rel.to_str().map(str::to_string) else {
            skipped.push(format!("{}: not UTF-8", rel.display()));
            continue;
        };
        let kind = entry.file_type().map_err(io(&path))?;
        if kind.is_dir() {
            copy_tree(base, &path, dest, skipped, kept)?;
        } else if kind.is_file() {
            let size = entry.metadata().map_err(io(&path))?.len();
            if size > MAX_FILE_BYTES {
                skipped.push(format!("{rel_str}: {size} bytes, over the limit"));
                continue;
            }
            let target = dest.join(&rel);
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent).map_err(io(parent))?;
            }
            std::fs::copy(&path, &target).map_err(io(&target))?;
            kept.push(rel_str);
        } else {
            skipped.push(format!("{rel_str}: not a regular file"));
        }
    }
    Ok(())
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
        let kept = collect(&results, &root, "install/check", &mut skipped).unwrap();
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

    #[test]
    fn content_types_follow_the_extension() {
        assert_eq!(content_type("a/screenshot.png"), "image/png");
        assert_eq!(content_type("a/trace.zip"), "application/zip");
        assert_eq!(content_type("a/page.HTML"), "text/html; charset=utf-8");
        assert_eq!(content_type("a/noext"), "application/octet-stream");
    }
}
