//! File resolution for compose loading, confined to a root directory: every file a compose
//! project reads (the compose files, `env_file:`, `configs.*.file`, `secrets.*.file`) must
//! resolve inside the root **after following symlinks**, or loading stops with an error naming
//! the file and key — before the file is read, so nothing outside the root is ever opened (and a
//! parse error can never quote it).
//!
//! Paths are resolved the way the loader later reads them: joined to the working directory and
//! cleaned lexically (`a/../b` → `b`, like Go's `filepath.Join`), then canonicalized by the
//! operating system (every symlink followed). A path that does not exist passes when its existing
//! prefix is inside (the reader then reports it missing, having read nothing); nothing of the
//! recipe runs during a load, so nothing can change between the check and the read.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::normalize::absolute;

/// A directory that every file a compose project names must stay inside.
#[derive(Clone, Debug)]
pub struct Root {
    /// The directory, canonical (symlinks resolved).
    real: PathBuf,
}

/// A path that leaves the root, or cannot be resolved at all.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{path:?} {reason}")]
pub struct Escape {
    /// The path as the recipe wrote it.
    pub path: String,
    /// Why it is refused (never names where a symlink points).
    pub reason: &'static str,
}

/// Why a name is refused.
const OUTSIDE: &str = "resolves outside the recipe directory (symlinks followed); only files \
                       inside it may be used";

impl Root {
    /// The root `dir` (it must exist).
    pub fn new(dir: &Path) -> std::io::Result<Root> {
        Ok(Root {
            real: dir.canonicalize()?,
        })
    }

    /// The canonical directory.
    pub fn dir(&self) -> &Path {
        &self.real
    }

    /// Whether the canonical path `real` is the root or inside it.
    pub fn contains(&self, real: &Path) -> bool {
        real.starts_with(&self.real)
    }

    /// The file `path` (absolute, or relative to `base`) names, which must exist and resolve
    /// inside the root. Returns the lexically cleaned path the loader will read.
    pub fn file(&self, base: &Path, path: &str) -> Result<PathBuf, Escape> {
        let escape = |reason| Escape {
            path: path.to_string(),
            reason,
        };
        if path.contains('\0') {
            return Err(escape(OUTSIDE));
        }
        let cleaned = PathBuf::from(absolute(base, path));
        match cleaned.canonicalize() {
            Ok(real) if self.contains(&real) => Ok(cleaned),
            Ok(_) => Err(escape(OUTSIDE)),
            // Missing (or a dangling symlink): refused when its existing prefix already leaves
            // the root; otherwise the reader reports it as missing, having read nothing.
            Err(_) if !self.contains(&self.resolve_lenient(&cleaned)) => Err(escape(OUTSIDE)),
            Err(_) => Ok(cleaned),
        }
    }

    /// Where `path` (absolute, lexically clean) leads when it may not exist yet (a bind mount
    /// source): its deepest existing ancestor canonicalized, with the rest appended.
    pub fn resolve_lenient(&self, path: &Path) -> PathBuf {
        let mut existing = path.to_path_buf();
        let mut rest = Vec::new();
        loop {
            if let Ok(mut real) = existing.canonicalize() {
                real.extend(rest.iter().rev());
                return real;
            }
            match (
                existing.file_name().map(|n| n.to_os_string()),
                existing.parent(),
            ) {
                (Some(name), Some(parent)) => {
                    rest.push(name);
                    existing = parent.to_path_buf();
                }
                _ => return path.to_path_buf(),
            }
        }
    }
}

/// Checks every `env_file:` of the file's services (after interpolation, before the
/// normalizer reads them): each entry resolves inside `root` relative to `working_dir`.
/// Returns the key path and the refusal of the first entry that does not.
pub fn check_env_files(
    tree: &Value,
    working_dir: &Path,
    root: &Root,
) -> Result<(), (String, Escape)> {
    let Some(Value::Object(services)) = tree.get("services") else {
        return Ok(());
    };
    for (name, svc) in services {
        let entries: Vec<&Value> = match svc.get("env_file") {
            Some(Value::Array(items)) => items.iter().collect(),
            Some(v @ Value::String(_)) => vec![v],
            _ => Vec::new(),
        };
        for (i, entry) in entries.into_iter().enumerate() {
            let path = match entry {
                Value::String(s) => s.clone(),
                Value::Object(m) => match m.get("path") {
                    Some(Value::String(s)) => s.clone(),
                    _ => continue,
                },
                other => other.to_string(),
            };
            root.file(working_dir, &path)
                .map_err(|e| (format!("services.{name}.env_file[{i}]"), e))?;
        }
    }
    Ok(())
}

/// Checks `configs.*.file` and `secrets.*.file` of the loaded model (absolute by now): each
/// resolves inside `root`. Returns the key path and the refusal of the first that does not.
pub fn check_object_files(
    compose: &super::ComposeFile,
    root: &Root,
) -> Result<(), (String, Escape)> {
    for (section, objects) in [("configs", &compose.configs), ("secrets", &compose.secrets)] {
        for (name, obj) in objects {
            if obj.external {
                continue;
            }
            if let Some(file) = &obj.file {
                root.file(root.dir(), file)
                    .map_err(|e| (format!("{section}.{name}.file"), e))?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_inside_pass_and_escapes_are_refused_symlinks_followed() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("canary"), "CANARY").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("ok.yml"), "").unwrap();
        std::fs::create_dir(d.join("sub")).unwrap();
        std::os::unix::fs::symlink(outside.path().join("canary"), d.join("link")).unwrap();
        std::os::unix::fs::symlink("/", d.join("sub/root")).unwrap();
        std::os::unix::fs::symlink("ok.yml", d.join("inner")).unwrap();
        std::os::unix::fs::symlink(outside.path().join("gone"), d.join("dangling")).unwrap();
        let root = Root::new(d).unwrap();
        assert!(root.file(d, "ok.yml").is_ok());
        assert!(
            root.file(d, "inner").is_ok(),
            "an in-repo symlink to a file inside"
        );
        assert!(root.file(d, "./sub/../ok.yml").is_ok());
        let canary = outside.path().join("canary");
        for bad in [
            "link",
            "sub/root/etc/passwd",
            "../../../../etc/passwd",
            canary.to_str().unwrap(),
        ] {
            let err = root.file(d, bad).unwrap_err();
            assert_eq!(err.reason, OUTSIDE, "{bad}");
            assert!(!err.to_string().contains("canary") || bad.contains("canary"));
        }
        assert!(
            root.file(d, "nope.yml").is_ok(),
            "missing inside: the reader says so"
        );
        assert!(
            root.file(d, "dangling").is_ok(),
            "reading it fails: nothing is read"
        );
        assert_eq!(
            root.file(d, "sub/root/nonexistent").unwrap_err().reason,
            OUTSIDE
        );
    }

    #[test]
    fn lenient_resolution_follows_the_existing_prefix() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::os::unix::fs::symlink("/", d.join("up")).unwrap();
        let root = Root::new(d).unwrap();
        assert_eq!(
            root.resolve_lenient(&d.join("up/nonexistent-x/y")),
            PathBuf::from("/nonexistent-x/y")
        );
        assert!(root.contains(&root.resolve_lenient(&d.join("new/dir"))));
    }
}
