//! Generated app secrets: which `SECRET_<NAME>_VERSION` the enabled compose files use, their
//! values (`length=N` random characters from `charset=`, otherwise a passphrase), and the
//! run-scoped 0600 JSON file that keeps them for the whole run, across controller restarts.
//!
//! Like abra, a secret named `db_password` in compose is versioned by
//! `SECRET_DB_PASSWORD_VERSION` and lives in Swarm as `<stack>_db_password_<version>`. A new
//! version (an upgrade that bumps or adds one) is a new swarm secret with a new value; values
//! already generated are reused, never regenerated.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use rand::Rng;
use rand::seq::IndexedRandom;
use regex::Regex;
use serde::{Deserialize, Serialize};

use super::app::{AppEnv, MAX_OBJECT_NAME};
use super::words::WORDS;
use crate::runlog::redact::Redactor;

/// Words in a generated passphrase (8 bits each).
pub const PASSPHRASE_WORDS: usize = 8;

/// Characters of the `special` charset: punctuation that needs no quoting in YAML or `.env`
/// files (no quotes, backslash, `$`, `#`, space).
const SPECIAL: &str = "!%&()*+,-./:;<=>?@[]^_{|}~";

/// A secret the app needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretSpec {
    /// The compose name, e.g. `db_password`.
    pub name: String,
    /// Its version, e.g. `v1`.
    pub version: String,
    /// `length=N`: N random characters instead of a passphrase.
    pub length: Option<usize>,
    /// `charset=…`, as written.
    pub charset: Option<String>,
}

impl SecretSpec {
    /// The swarm secret's name, `<stack>_<name>_<version>`.
    pub fn swarm_name(&self, stack: &str) -> String {
        format!("{stack}_{}_{}", self.name, self.version)
    }

    /// What follows the stack in [`SecretSpec::swarm_name`], for [`super::app::stack_name`].
    pub fn suffix(&self) -> String {
        format!("_{}_{}", self.name, self.version)
    }
}

/// Longest generated secret: Docker's limit on a secret's size (500 KiB). A recipe asking for
/// more (`length=99999999999`) would have the controller allocate it before Docker refused.
pub const MAX_SECRET_LENGTH: usize = 500 * 1024;

/// Problems with the secrets of an app.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// A compose file uses a version variable the env does not set.
    #[error("the compose files use {0} but the app env does not set it")]
    MissingVersion(String),
    /// `length=` is not a number from 1 to [`MAX_SECRET_LENGTH`].
    #[error("{key}: length={value:?} is not a number from 1 to {MAX_SECRET_LENGTH}")]
    BadLength {
        /// The env key.
        key: String,
        /// The modifier as written.
        value: String,
    },
    /// `charset=` names a class we do not know.
    #[error(
        "{key}: unknown charset {value:?} (known: default, alnum, special, safe, lower, upper, digits, hex)"
    )]
    BadCharset {
        /// The env key.
        key: String,
        /// The modifier as written.
        value: String,
    },
    /// A swarm secret name would exceed Docker's 64-character limit.
    #[error("secret name {0} is longer than {MAX_OBJECT_NAME} characters")]
    NameTooLong(String),
    /// Reading or writing the secrets file.
    #[error("secrets file {path}: {message}")]
    File {
        /// The file.
        path: PathBuf,
        /// What went wrong (never a secret value).
        message: String,
    },
}

static VERSION_VAR: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\bSECRET_([A-Z0-9_]+?)_VERSION\b").expect("valid regex"));

/// The secrets used by the enabled compose files (their texts), versioned by the env.
/// Sorted by name; each once.
pub fn secret_specs(env: &AppEnv, compose_texts: &[&str]) -> Result<Vec<SecretSpec>, SecretError> {
    let used: BTreeSet<String> = compose_texts
        .iter()
        .flat_map(|text| VERSION_VAR.captures_iter(text))
        .map(|c| c[1].to_string())
        .collect();
    used.into_iter()
        .map(|upper| {
            let key = format!("SECRET_{upper}_VERSION");
            let var = env
                .var(&key)
                .filter(|v| !v.value.is_empty())
                .ok_or_else(|| SecretError::MissingVersion(key.clone()))?;
            let length = match var.modifiers.get("length") {
                None => None,
                Some(raw) => match raw.parse::<usize>() {
                    Ok(n) if n > 0 && n <= MAX_SECRET_LENGTH => Some(n),
                    _ => {
                        return Err(SecretError::BadLength {
                            key,
                            value: raw.clone(),
                        });
                    }
                },
            };
            let charset = var.modifiers.get("charset").cloned();
            if let Some(c) = &charset {
                alphabet(c).ok_or_else(|| SecretError::BadCharset {
                    key: key.clone(),
                    value: c.clone(),
                })?;
            }
            Ok(SecretSpec {
                name: upper.to_lowercase(),
                version: var.value.clone(),
                length,
                charset,
            })
        })
        .collect()
}

/// The characters of a `charset=` value: comma-separated classes, e.g. `default,special`.
fn alphabet(charset: &str) -> Option<Vec<char>> {
    const LOWER: &str = "abcdefghijklmnopqrstuvwxyz";
    const UPPER: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    const DIGITS: &str = "0123456789";
    let mut chars = BTreeSet::new();
    for class in charset.split(',').map(str::trim) {
        let set: String = match class {
            "default" | "alnum" | "alphanumeric" => format!("{LOWER}{UPPER}{DIGITS}"),
            "special" => SPECIAL.to_string(),
            "safe" => format!("{LOWER}{UPPER}{DIGITS}-_."),
            "lower" => LOWER.to_string(),
            "upper" => UPPER.to_string(),
            "digits" | "numeric" => DIGITS.to_string(),
            "hex" => "0123456789abcdef".to_string(),
            _ => return None,
        };
        chars.extend(set.chars());
    }
    Some(chars.into_iter().collect())
}

/// A fresh value for `spec`.
pub fn generate(spec: &SecretSpec) -> String {
    let mut rng = rand::rng();
    match spec.length {
        Some(n) => {
            let chars = alphabet(spec.charset.as_deref().unwrap_or("default"))
                .unwrap_or_else(|| alphabet("default").expect("default charset"));
            (0..n)
                .map(|_| *chars.choose(&mut rng).expect("non-empty alphabet"))
                .collect()
        }
        None => (0..PASSPHRASE_WORDS)
            .map(|_| WORDS[rng.random_range(0..WORDS.len())])
            .collect::<Vec<_>>()
            .join("-"),
    }
}

/// The secrets of one run, persisted in a 0600 JSON file (swarm name → value).
#[derive(Debug)]
pub struct SecretFile {
    path: PathBuf,
    values: BTreeMap<String, String>,
}

#[derive(Serialize, Deserialize)]
struct OnDisk {
    secrets: BTreeMap<String, String>,
}

/// A secret to create in Swarm.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppSecret {
    /// `<stack>_<name>_<version>`.
    pub swarm_name: String,
    /// The compose name, e.g. `db_password`.
    pub name: String,
    /// The value.
    pub value: String,
}

impl SecretFile {
    /// Opens the run's secrets file, empty when it does not exist yet.
    pub fn open(path: &Path) -> Result<SecretFile, SecretError> {
        let err = |message: String| SecretError::File {
            path: path.to_path_buf(),
            message,
        };
        let values = match std::fs::read(path) {
            Ok(bytes) => {
                serde_json::from_slice::<OnDisk>(&bytes)
                    .map_err(|e| {
                        // Position only: serde messages can quote the offending value.
                        err(format!(
                            "unreadable at line {} column {}",
                            e.line(),
                            e.column()
                        ))
                    })?
                    .secrets
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(err(e.to_string())),
        };
        Ok(SecretFile {
            path: path.to_path_buf(),
            values,
        })
    }

    /// The value of swarm secret `swarm_name`, if generated.
    pub fn get(&self, swarm_name: &str) -> Option<&str> {
        self.values.get(swarm_name).map(String::as_str)
    }

    /// Every swarm secret name with its value.
    pub fn values(&self) -> &BTreeMap<String, String> {
        &self.values
    }

    /// The secrets of `specs` for `stack`, generating (and persisting, before returning) only
    /// those not generated yet. Every value is registered with `redactor`.
    pub fn ensure(
        &mut self,
        stack: &str,
        specs: &[SecretSpec],
        redactor: &Redactor,
    ) -> Result<Vec<AppSecret>, SecretError> {
        let mut changed = false;
        let mut out = Vec::with_capacity(specs.len());
        for spec in specs {
            let swarm_name = spec.swarm_name(stack);
            if swarm_name.len() > MAX_OBJECT_NAME {
                return Err(SecretError::NameTooLong(swarm_name));
            }
            let value = self
                .values
                .entry(swarm_name.clone())
                .or_insert_with(|| {
                    changed = true;
                    generate(spec)
                })
                .clone();
            redactor.register(&value);
            out.push(AppSecret {
                swarm_name,
                name: spec.name.clone(),
                value,
            });
        }
        if changed {
            self.save()?;
        }
        Ok(out)
    }

    /// Registers every stored value with `redactor` (after a restart).
    pub fn register_all(&self, redactor: &Redactor) {
        for v in self.values.values() {
            redactor.register(v);
        }
    }

    /// Writes the file atomically (temp file with mode 0600, fsync, rename).
    fn save(&self) -> Result<(), SecretError> {
        let err = |message: String| SecretError::File {
            path: self.path.clone(),
            message,
        };
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| err(e.to_string()))?;
        }
        let tmp = self.path.with_extension("tmp");
        let body = serde_json::to_vec_pretty(&OnDisk {
            secrets: self.values.clone(),
        })
        .map_err(|e| err(e.to_string()))?;
        let _ = std::fs::remove_file(&tmp);
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| err(e.to_string()))?;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(|e| err(e.to_string()))?;
        file.write_all(&body).map_err(|e| err(e.to_string()))?;
        file.sync_all().map_err(|e| err(e.to_string()))?;
        std::fs::rename(&tmp, &self.path).map_err(|e| err(e.to_string()))?;
        Ok(())
    }

    /// Deletes the file (at teardown). Missing is fine.
    pub fn remove(self) -> Result<(), SecretError> {
        match std::fs::remove_file(&self.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(SecretError::File {
                path: self.path,
                message: e.to_string(),
            }),
        }
    }
}

#[cfg(test)]
mod tests;
