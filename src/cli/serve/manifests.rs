//! Applying a directory of manifests at start: every `*.yaml`, `*.yml` (multi-document) and
//! `*.json` file, each record created or its spec and metadata replaced, checked exactly as the
//! API checks a write. Errors name the file and the document.

use std::path::Path;

use anyhow::Context;
use serde_json::Value;

use crate::api::manifest;
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

/// Applies every manifest in `dir` (read by [`manifest::read_all`], the reader `ccctl apply`
/// uses). Stops at the first bad one with an error naming its file and document.
pub async fn apply_dir<St: Store>(store: &St, dir: &Path) -> anyhow::Result<Vec<Outcome>> {
    let mut outcomes = Vec::new();
    let docs = manifest::read_all(&[dir.to_path_buf()])
        .with_context(|| format!("the manifests in {} are not valid", dir.display()))?;
    for doc in docs {
        let outcome = apply_document(store, doc.kind, doc.value)
            .await
            .with_context(|| format!("the manifest {} was refused", doc.source))?;
        outcomes.push(outcome);
    }
    tracing::info!(dir = %dir.display(), records = outcomes.len(), "applied manifests");
    Ok(outcomes)
}

/// Applies one manifest document of `kind`.
pub async fn apply_document<St: Store>(
    store: &St,
    kind: Kind,
    doc: Value,
) -> anyhow::Result<Outcome> {
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
