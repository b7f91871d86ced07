//! Backups: [`export`] writes every record as one JSON line (the record itself, whose `kind`
//! field says its kind); [`import`] restores such a file, keeping names, uids, specs, statuses
//! and timestamps (each restored record gets a new `resourceVersion`).

use std::collections::HashSet;
use std::io::{BufRead, Write};

use super::sled_store::{Decision, SledStore};
use super::{LabelSelector, StoreError};
use crate::api::{
    API_VERSION, AppDeploymentSpec, Kind, Object, ProxyDeploymentSpec, RecipeSpec, Spec,
    TestRunSpec, validate_name,
};

/// Errors of [`export`] and [`import`].
#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    /// Reading or writing the backup file failed.
    #[error("backup file I/O failed: {0}")]
    Io(#[from] std::io::Error),
    /// A line of the backup is not a valid record.
    #[error("line {line}: {message}")]
    Line {
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        message: String,
    },
    /// Records of the backup exist already (and replacing was not asked for).
    #[error(
        "{} record(s) already exist, e.g. {}; import into an empty store or pass --replace",
        .0.len(),
        .0.first().map(String::as_str).unwrap_or("")
    )]
    Exists(Vec<String>),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What [`import`] restored.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImportSummary {
    /// Records written.
    pub records: usize,
    /// Of those, records that replaced an existing one.
    pub replaced: usize,
}

/// Writes every record of `store` to `out`, one JSON object per line (kinds in
/// [`Kind::ALL`] order, names sorted). Returns how many records were written.
pub fn export(store: &SledStore, out: &mut impl Write) -> Result<usize, TransferError> {
    let mut n = 0;
    for kind in Kind::ALL {
        for record in store.list_raw(kind, &LabelSelector::everything())? {
            out.write_all(record.as_bytes())?;
            out.write_all(b"\n")?;
            n += 1;
        }
    }
    out.flush()?;
    Ok(n)
}

/// One decoded line of a backup.
enum Loaded {
    Recipe(Object<RecipeSpec>),
    TestRun(Object<TestRunSpec>),
    ProxyDeployment(Object<ProxyDeploymentSpec>),
    AppDeployment(Object<AppDeploymentSpec>),
}

/// Decodes and checks one record, filling what a hand-written manifest leaves out (uid,
/// creation time, generation) as `create` would.
fn load<S: Spec>(value: serde_json::Value) -> Result<Object<S>, String> {
    let mut obj: Object<S> = serde_json::from_value(value).map_err(|e| e.to_string())?;
    obj.api_version = API_VERSION.to_string();
    if obj.metadata.uid.is_empty() {
        obj.metadata.uid = uuid::Uuid::new_v4().to_string();
    }
    obj.metadata
        .creation_timestamp
        .get_or_insert_with(chrono::Utc::now);
    obj.metadata.generation = obj.metadata.generation.max(1);
    validate_name(&obj.metadata.name).map_err(|e| e.to_string())?;
    obj.spec.validate().map_err(|errors| {
        errors
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ")
    })?;
    Ok(obj)
}

fn parse_line(text: &str) -> Result<(Kind, String, Loaded), String> {
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let kind_name = value
        .get("kind")
        .and_then(|k| k.as_str())
        .ok_or("the record has no \"kind\"")?;
    let kind = Kind::ALL
        .into_iter()
        .find(|k| k.name() == kind_name)
        .ok_or_else(|| format!("unknown kind {kind_name:?}"))?;
    let loaded = match kind {
        Kind::Recipe => Loaded::Recipe(load(value)?),
        Kind::TestRun => Loaded::TestRun(load(value)?),
        Kind::ProxyDeployment => Loaded::ProxyDeployment(load(value)?),
        Kind::AppDeployment => Loaded::AppDeployment(load(value)?),
    };
    let name = match &loaded {
        Loaded::Recipe(o) => o.metadata.name.clone(),
        Loaded::TestRun(o) => o.metadata.name.clone(),
        Loaded::ProxyDeployment(o) => o.metadata.name.clone(),
        Loaded::AppDeployment(o) => o.metadata.name.clone(),
    };
    Ok((kind, name, loaded))
}

/// Writes one restored record; returns whether it replaced one.
fn restore<S: Spec>(store: &SledStore, obj: Object<S>, replace: bool) -> Result<bool, StoreError> {
    let name = obj.metadata.name.clone();
    let mut existed = false;
    store.inner.apply(&name, |current: Option<Object<S>>| {
        existed = current.is_some();
        if existed && !replace {
            return Err(StoreError::AlreadyExists {
                kind: S::KIND,
                name: name.clone(),
            });
        }
        Ok(Decision::Put(obj))
    })?;
    Ok(existed)
}

/// Restores records written by [`export`]. Checks the whole file first (every line must be a
/// valid record, no name twice, and — unless `replace` — no name may exist in the store), so a
/// bad backup changes nothing. Flushes before returning.
pub fn import(
    store: &SledStore,
    input: impl BufRead,
    replace: bool,
) -> Result<ImportSummary, TransferError> {
    let mut records = Vec::new();
    let mut seen = HashSet::new();
    for (i, line) in input.lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let (kind, name, loaded) = parse_line(&line).map_err(|message| TransferError::Line {
            line: i + 1,
            message,
        })?;
        if !seen.insert((kind, name.clone())) {
            return Err(TransferError::Line {
                line: i + 1,
                message: format!("{kind} {name:?} appears twice"),
            });
        }
        records.push((kind, name, loaded));
    }
    if !replace {
        let existing: Vec<String> = records
            .iter()
            .filter(|(kind, name, _)| matches!(store.get_raw(*kind, name), Ok(Some(_))))
            .map(|(kind, name, _)| format!("{kind} {name:?}"))
            .collect();
        if !existing.is_empty() {
            return Err(TransferError::Exists(existing));
        }
    }
    let mut summary = ImportSummary::default();
    for (_, _, loaded) in records {
        let replaced = match loaded {
            Loaded::Recipe(o) => restore(store, o, replace)?,
            Loaded::TestRun(o) => restore(store, o, replace)?,
            Loaded::ProxyDeployment(o) => restore(store, o, replace)?,
            Loaded::AppDeployment(o) => restore(store, o, replace)?,
        };
        summary.records += 1;
        summary.replaced += usize::from(replaced);
    }
    store.flush()?;
    Ok(summary)
}
