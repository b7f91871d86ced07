//! Loading compose files the way `docker stack deploy` does: parse each file (YAML merge keys
//! supported), interpolate, normalize short forms, merge overlays in `COMPOSE_FILE` order, then
//! deserialize into the typed [`ComposeFile`] while reporting every key it does not know.
//!
//! Deliberate differences from docker/cli's loader (everything else follows it):
//! - no JSON-schema validation: unknown keys are warnings (docker/cli rejects them), and a few
//!   loose spellings docker/cli's schema refuses are accepted (`cpus: 0.5` as a number,
//!   `tmpfs.size: 16M`, numeric strings for port `target`/`published`, `init: "${X}"`);
//! - unset variables are reported as warnings (docker/cli substitutes `""` silently);
//! - files with different `version:` values are not rejected;
//! - the single-letter Windows drive rule of short volume specs (`c:/x`) is not applied;
//! - look-ups (`environment: [FOO]`, `~` in bind paths) use the given environment, not the
//!   process environment — the same thing abra does with an app's `.env`.

mod interpolate;
mod load;
mod merge;
pub mod model;
mod normalize;
mod shortform;
pub mod units;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

pub use interpolate::{TemplateError, substitute};
pub use load::{Escape, Root};
pub use model::*;

/// The result of [`load`]: the merged model and what was noticed on the way.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LoadedCompose {
    /// The merged, interpolated compose model.
    pub compose: ComposeFile,
    /// Warnings: unknown keys, ignored options, unset variables, deprecated forms.
    pub warnings: Vec<String>,
    /// Absolute working directory (relative paths were resolved against it).
    pub working_dir: PathBuf,
    /// Each file's tree after interpolation, before normalization (which drops keys Swarm
    /// ignores, such as `privileged`): what the compose policy reads.
    pub sources: Vec<SourceTree>,
}

/// One compose file as written (interpolated), before normalization.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SourceTree {
    /// The file name as given.
    pub file: String,
    /// Its interpolated tree.
    pub tree: Value,
}

/// Why compose files could not be loaded. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum ComposeError {
    /// No file names were given.
    #[error("no compose files specified")]
    NoFiles,
    /// A file could not be read.
    #[error("{file}: cannot read: {source}")]
    Read {
        /// The file as given.
        file: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Malformed YAML.
    #[error("{file}: {message}")]
    Yaml {
        /// The file as given.
        file: String,
        /// 1-based line, when known.
        line: Option<u64>,
        /// Parser message (includes the position).
        message: String,
    },
    /// A path the files name resolves outside the directory they were loaded from (symlinks
    /// followed), or does not exist: nothing was read from it.
    #[error("{file}: {key}: {escape}")]
    Outside {
        /// The file naming the path (or `COMPOSE_FILE`).
        file: String,
        /// Dotted key path such as `configs.app_conf.file`.
        key: String,
        /// The path and why it is refused.
        escape: Escape,
    },
    /// Interpolation failed (required variable missing, bad `$`, bad cast).
    #[error("{file}: {path}: {message}")]
    Interpolation {
        /// The file as given.
        file: String,
        /// Dotted key path such as `services.app.environment.DB`.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// A value has the wrong shape or an option docker/cli refuses.
    #[error("{file}: {path}: {message}")]
    Invalid {
        /// The file (or files, after merging) concerned.
        file: String,
        /// Dotted key path.
        path: String,
        /// What is wrong.
        message: String,
    },
}

/// The compose files named by `COMPOSE_FILE` (colon-separated), defaulting to `compose.yml`.
pub fn compose_files_from_env(env: &BTreeMap<String, String>) -> Vec<String> {
    let files: Vec<String> = env
        .get("COMPOSE_FILE")
        .map(|v| {
            v.split(':')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    if files.is_empty() {
        vec!["compose.yml".to_string()]
    } else {
        files
    }
}

/// Loads `files` (relative to `dir`) with `env` as the interpolation and look-up environment.
/// Every file read — the compose files, `env_file:`, `configs.*.file`, `secrets.*.file` — must
/// resolve inside `dir` after following symlinks ([`Root`]), else [`ComposeError::Outside`]
/// names it before anything outside is opened.
pub fn load(
    dir: &Path,
    files: &[String],
    env: &BTreeMap<String, String>,
) -> Result<LoadedCompose, ComposeError> {
    let first = files.first().ok_or(ComposeError::NoFiles)?;
    let root = Root::new(dir).map_err(|source| ComposeError::Read {
        file: dir.display().to_string(),
        source,
    })?;
    let first_path = dir.join(first);
    let working_dir = std::path::absolute(first_path.parent().unwrap_or(dir))
        .unwrap_or_else(|_| dir.to_path_buf());
    let mut warnings = Vec::new();
    let mut merged: Option<Value> = None;
    let mut sources = Vec::with_capacity(files.len());
    for file in files {
        let path = root
            .file(dir, file)
            .map_err(|escape| ComposeError::Outside {
                file: file.clone(),
                key: "COMPOSE_FILE".into(),
                escape,
            })?;
        let mut tree = parse_file(&path, file)?;
        let lookup = |name: &str| env.get(name).cloned();
        let mut missing = Vec::new();
        interpolate::interpolate_tree(&mut tree, &lookup, &mut missing).map_err(|e| {
            ComposeError::Interpolation {
                file: file.clone(),
                path: e.path,
                message: e.message,
            }
        })?;
        load::check_env_files(&tree, &working_dir, &root).map_err(|(key, escape)| {
            ComposeError::Outside {
                file: file.clone(),
                key,
                escape,
            }
        })?;
        sources.push(SourceTree {
            file: file.clone(),
            tree: tree.clone(),
        });
        for path in interpolate::keys_with_variables(&tree) {
            warnings.push(format!(
                "{file}: {path}: variables in a key are not interpolated (compose only \
                 interpolates values); write it as a list item \"KEY=VALUE\" instead"
            ));
        }
        for (name, path) in missing {
            warnings.push(format!(
                "{file}: {path}: variable {name} is not set, using an empty string"
            ));
        }
        let mut ctx = normalize::Context {
            file,
            dir: &working_dir,
            env,
            warnings: &mut warnings,
        };
        normalize::normalize_file(&mut tree, &mut ctx).map_err(|e| ComposeError::Invalid {
            file: file.clone(),
            path: e.path,
            message: e.message,
        })?;
        match merged.as_mut() {
            None => merged = Some(tree),
            Some(base) => warnings.extend(merge::merge_files(base, tree, file)),
        }
    }
    let merged = merged.unwrap_or(Value::Null);
    let compose: ComposeFile =
        serde_path_to_error::deserialize(&merged).map_err(|e| ComposeError::Invalid {
            file: files.join(":"),
            path: e.path().to_string(),
            message: e.inner().to_string(),
        })?;
    let known = serde_json::to_value(&compose).unwrap_or(Value::Null);
    let mut unknown = Vec::new();
    unknown_keys(&merged, &known, &mut String::new(), &mut unknown);
    warnings.extend(
        unknown
            .into_iter()
            .map(|path| format!("{}: {path}: unknown key, ignored", files.join(":"))),
    );
    load::check_object_files(&compose, &root).map_err(|(key, escape)| ComposeError::Outside {
        file: files.join(":"),
        key,
        escape,
    })?;
    Ok(LoadedCompose {
        compose,
        warnings,
        working_dir,
        sources,
    })
}

fn parse_file(path: &Path, name: &str) -> Result<Value, ComposeError> {
    let text = std::fs::read_to_string(path).map_err(|source| ComposeError::Read {
        file: name.to_string(),
        source,
    })?;
    let mut options = serde_saphyr::Options::default();
    options.legacy_octal_numbers = true;
    let value: Value =
        serde_saphyr::from_str_with_options(&text, options).map_err(|e| ComposeError::Yaml {
            file: name.to_string(),
            line: e.location().map(|l| l.line()),
            message: e.to_string(),
        })?;
    if value.is_null() {
        return Ok(Value::Object(serde_json::Map::new()));
    }
    Ok(value)
}

/// Collects key paths present in `input` but absent from `known` (the model re-serialized);
/// `x-` extension keys are allowed anywhere.
fn unknown_keys(input: &Value, known: &Value, path: &mut String, out: &mut Vec<String>) {
    match (input, known) {
        (Value::Object(i), Value::Object(k)) => {
            for (key, value) in i {
                if key.starts_with("x-") {
                    continue;
                }
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(key);
                match k.get(key) {
                    Some(kv) => unknown_keys(value, kv, path, out),
                    None if !value.is_null() => out.push(path.clone()),
                    None => {}
                }
                path.truncate(len);
            }
        }
        (Value::Array(i), Value::Array(k)) => {
            for (n, (iv, kv)) in i.iter().zip(k).enumerate() {
                let len = path.len();
                path.push_str(&format!("[{n}]"));
                unknown_keys(iv, kv, path, out);
                path.truncate(len);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod load_tests;
