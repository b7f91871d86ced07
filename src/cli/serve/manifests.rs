//! Applying a directory of manifests at start: every `*.yaml`, `*.yml` (multi-document) and
//! `*.json` file, each record created or its spec and metadata replaced, checked exactly as the
//! API checks a write. Errors name the file and the document.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde_json::Value;

use crate::api::{AppDeploymentSpec, Kind, ProxyDeploymentSpec, RecipeSpec, Spec, TestRunSpec};
use crate::http::{Purpose, decode_object};
use crate::store::Store;

/// What applying a manifest did to its record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The record did not exist.
    Created,
    /// Its spec, labels or annotations changed.
    Updated,
    /// It already matched.
    Unchanged,
}

/// The manifest files of `dir`, sorted by name.
pub fn manifest_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let entries = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read the manifests directory {}", dir.display()))?;
    for entry in entries {
        let path = entry?.path();
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        if path.is_file() && matches!(ext, "yaml" | "yml" | "json") {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// The documents of one manifest file (YAML may hold several, separated by `---`; JSON holds
/// one object or an array of them). Empty documents are skipped.
pub fn parse_documents(path: &Path, text: &str) -> anyhow::Result<Vec<Value>> {
    let docs: Vec<Value> = if path.extension().and_then(|e| e.to_str()) == Some("json") {
        match serde_json::from_str(text)? {
            Value::Array(items) => items,
            one => vec![one],
        }
    } else {
        serde_saphyr::from_multiple(text)?
    };
    Ok(docs.into_iter().filter(|d| !d.is_null()).collect())
}

/// Applies every manifest in `dir`. Stops at the first bad one with an error naming it.
pub async fn apply_dir<St: Store>(store: &St, dir: &Path) -> anyhow::Result<Vec<Outcome>> {
    let mut outcomes = Vec::new();
    for file in manifest_files(dir)? {
        let text = std::fs::read_to_string(&file)
            .with_context(|| format!("cannot read the manifest {}", file.display()))?;
        let docs = parse_documents(&file, &text)
            .with_context(|| format!("the manifest {} is not valid", file.display()))?;
        for (i, doc) in docs.into_iter().enumerate() {
            let outcome = apply_value(store, doc).await.with_context(|| {
                format!(
                    "the manifest {} (document {}) was refused",
                    file.display(),
                    i + 1
                )
            })?;
            outcomes.push(outcome);
        }
    }
    tracing::info!(dir = %dir.display(), records = outcomes.len(), "applied manifests");
    Ok(outcomes)
}

/// Applies one manifest document, dispatching on its `kind`.
pub async fn apply_value<St: Store>(store: &St, doc: Value) -> anyhow::Result<Outcome> {
    let Some(kind_name) = doc.get("kind").and_then(Value::as_str) else {
        bail!("it has no `kind` (one of Recipe, TestRun, ProxyDeployment, AppDeployment)");
    };
    let Some(kind) = Kind::parse(kind_name) else {
        bail!(
            "kind {kind_name:?} is unknown (one of Recipe, TestRun, ProxyDeployment, AppDeployment)"
        );
    };
    match kind {
        Kind::Recipe => apply_one::<RecipeSpec, St>(store, doc).await,
        Kind::TestRun => apply_one::<TestRunSpec, St>(store, doc).await,
        Kind::ProxyDeployment => apply_one::<ProxyDeploymentSpec, St>(store, doc).await,
        Kind::AppDeployment => apply_one::<AppDeploymentSpec, St>(store, doc).await,
    }
}

async fn apply_one<S: Spec, St: Store>(store: &St, doc: Value) -> anyhow::Result<Outcome> {
    let mut obj =
        decode_object::<S>(doc, Purpose::Create).map_err(|e| anyhow::anyhow!(e.message))?;
    let name = obj.name().to_string();
    let outcome = match store.get::<S>(&name)? {
        None => {
            store.create(obj).await?;
            Outcome::Created
        }
        Some(current)
            if current.spec == obj.spec
                && current.metadata.labels == obj.metadata.labels
                && current.metadata.annotations == obj.metadata.annotations =>
        {
            Outcome::Unchanged
        }
        Some(current) => {
            // Unconditional replace; keep what controllers own (finalizers).
            obj.metadata.resource_version.clear();
            obj.metadata.finalizers = current.metadata.finalizers;
            store.replace(obj).await?;
            Outcome::Updated
        }
    };
    tracing::info!(kind = %S::KIND, %name, ?outcome, "applied manifest");
    Ok(outcome)
}
