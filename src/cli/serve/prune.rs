//! Pruning records declared in Nix: after the manifests directory is applied at start, every
//! record labelled [`NIX_SOURCE_LABEL`]`=nix` that no manifest in the directory declares any
//! more is deleted (through the store, so finalizers run: a removed proxy or app is taken down).
//! Records made through the API or `ccctl` carry no such label and are never pruned.

use std::collections::BTreeSet;
use std::path::Path;

use crate::api::{AppDeploymentSpec, Kind, ProxyDeploymentSpec, RecipeSpec, Spec, TestRunSpec};
use crate::store::{LabelSelector, Store};

/// The label the NixOS module puts on every record it renders.
pub const NIX_SOURCE_LABEL: &str = "cc-ci.source";

/// Its value on records from Nix.
pub const NIX_SOURCE: &str = "nix";

/// `(kind, name)` of every document in the manifests of `dir` (read by the one manifest
/// reader, [`crate::api::manifest`]).
pub fn declared(dir: &Path) -> anyhow::Result<BTreeSet<(Kind, String)>> {
    Ok(crate::api::manifest::read_all(&[dir.to_path_buf()])?
        .into_iter()
        .map(|d| (d.kind, d.name))
        .collect())
}

/// Deletes every record labelled as from Nix that `dir` no longer declares; returns them.
pub async fn prune_undeclared<St: Store>(
    store: &St,
    dir: &Path,
) -> anyhow::Result<Vec<(Kind, String)>> {
    let declared = declared(dir)?;
    let mut pruned = Vec::new();
    pruned.extend(prune_kind::<RecipeSpec, St>(store, &declared).await?);
    pruned.extend(prune_kind::<TestRunSpec, St>(store, &declared).await?);
    pruned.extend(prune_kind::<ProxyDeploymentSpec, St>(store, &declared).await?);
    pruned.extend(prune_kind::<AppDeploymentSpec, St>(store, &declared).await?);
    for (kind, name) in &pruned {
        tracing::info!(%kind, %name, "pruned a record no longer declared in Nix");
    }
    Ok(pruned)
}

async fn prune_kind<S: Spec, St: Store>(
    store: &St,
    declared: &BTreeSet<(Kind, String)>,
) -> anyhow::Result<Vec<(Kind, String)>> {
    let selector = LabelSelector::parse(&format!("{NIX_SOURCE_LABEL}={NIX_SOURCE}"))
        .map_err(anyhow::Error::msg)?;
    let names = store.list_map::<S, String>(&selector, |o| o.metadata.name)?;
    let mut out = Vec::new();
    for name in names {
        if !declared.contains(&(S::KIND, name.clone())) {
            store.delete::<S>(&name).await?;
            out.push((S::KIND, name));
        }
    }
    Ok(out)
}
