//! Loading a run's app from a recipe checkout: `.env.sample` and `abra.sh` read, the env
//! completed ([`AppParams`]), the stack name chosen, the enabled compose files and the
//! secrets they use listed.

use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use regex::Regex;

use super::{AppEnv, AppParams, rewrite_sample, stack_name};
use crate::recipe::secrets::{SecretError, SecretSpec, secret_specs};
use crate::swarm::compose::{Escape, Root};
use crate::swarm::env::{EnvError, EnvFile, parse_abra_sh};

/// A recipe app configured for a run.
#[derive(Clone, Debug)]
pub struct App {
    /// The recipe checkout it was loaded from.
    pub dir: PathBuf,
    /// The complete app env (also exposed to the `app` service).
    pub env: AppEnv,
    /// Its stack name.
    pub stack: String,
    /// Its domain.
    pub domain: String,
    /// The enabled compose files, relative to `dir`, in overlay order.
    pub compose_files: Vec<String>,
    /// The secrets those compose files use.
    pub secrets: Vec<SecretSpec>,
}

/// Why an app could not be configured.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// A recipe file is missing or unreadable.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// `.env.sample` does not parse.
    #[error(".env.sample: {0}")]
    Env(#[from] EnvError),
    /// A compose file named in `COMPOSE_FILE` escapes the recipe directory.
    #[error("COMPOSE_FILE names {0:?}, outside the recipe")]
    ComposePath(String),
    /// A file the recipe names (`.env.sample`, `abra.sh`, a `COMPOSE_FILE` entry) resolves
    /// outside the checkout once symlinks are followed; it was not read.
    #[error("{key}: {escape}")]
    Outside {
        /// What named it, e.g. `COMPOSE_FILE` or `.env.sample`.
        key: String,
        /// The path and why it is refused.
        escape: Escape,
    },
    /// The secrets are inconsistent.
    #[error(transparent)]
    Secrets(#[from] SecretError),
}

static OBJECT_NAME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\$\{?STACK_NAME\}?(_(?:[A-Za-z0-9_-]|\$\{?[A-Z0-9_]+\}?)+)").expect("valid regex")
});

static VAR: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\$\{?([A-Z0-9_]+)\}?").expect("valid regex"));

/// Every `${STACK_NAME}<suffix>` in the compose texts (secret and config names such as
/// `${STACK_NAME}_db_password_${SECRET_DB_PASSWORD_VERSION}`), with variables from `env`
/// substituted: the suffixes the stack name must leave room for.
pub fn object_name_suffixes(compose_texts: &[&str], env: &AppEnv) -> Vec<String> {
    let mut out: Vec<String> = compose_texts
        .iter()
        .flat_map(|t| OBJECT_NAME.captures_iter(t))
        .map(|c| {
            VAR.replace_all(&c[1], |v: &regex::Captures<'_>| {
                env.get(&v[1]).unwrap_or_default().to_string()
            })
            .into_owned()
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

fn read(path: &Path) -> Result<String, AppError> {
    std::fs::read_to_string(path).map_err(|source| AppError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// `name` inside the checkout `root` (symlinks followed), or the refusal naming `key`.
fn confined(root: &Root, name: &str, key: &str) -> Result<PathBuf, AppError> {
    root.file(root.dir(), name)
        .map_err(|escape| AppError::Outside {
            key: key.to_string(),
            escape,
        })
}

/// Configures the app of the recipe checked out in `dir` for a run (see [`AppParams`]).
/// When `params.stack` is `None` the stack name is derived from the domain, leaving room for
/// every secret and config name of this version.
pub fn load(dir: &Path, params: &AppParams) -> Result<App, AppError> {
    let root = Root::new(dir).map_err(|source| AppError::Read {
        path: dir.to_path_buf(),
        source,
    })?;
    let sample = read(&confined(&root, ".env.sample", ".env.sample")?)?;
    let text = rewrite_sample(&sample, &params.sample_assignments(&sample));
    let parsed = AppEnv::from(&EnvFile::parse(&text)?);
    let abra_sh = match std::fs::read_to_string(confined(&root, "abra.sh", "abra.sh")?) {
        Ok(t) => parse_abra_sh(&t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(source) => {
            return Err(AppError::Read {
                path: dir.join("abra.sh"),
                source,
            });
        }
    };
    // A provisional env (no stack yet) tells which compose files and versions are in use.
    let provisional = params.finish(parsed.clone(), &abra_sh, "");
    let compose_files = provisional.compose_files();
    let mut texts = Vec::with_capacity(compose_files.len());
    for f in &compose_files {
        let rel = Path::new(f);
        if rel.is_absolute() || rel.components().any(|c| c.as_os_str() == "..") {
            return Err(AppError::ComposePath(f.clone()));
        }
        texts.push(read(&confined(&root, f, "COMPOSE_FILE")?)?);
    }
    let text_refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let stack = match &params.stack {
        Some(s) => s.clone(),
        None => {
            let suffixes = object_name_suffixes(&text_refs, &provisional);
            stack_name(&params.domain, suffixes.iter().map(String::as_str))
        }
    };
    let env = params.finish(parsed, &abra_sh, &stack);
    let secrets = secret_specs(&env, &text_refs)?;
    Ok(App {
        dir: dir.to_path_buf(),
        env,
        stack,
        domain: params.domain.clone(),
        compose_files,
        secrets,
    })
}
