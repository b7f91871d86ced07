//! The one compose → stack pipeline, used by `cc-ci stack render|deploy` and by a TestRun's
//! deploy alike (so the conformance corpus checks exactly what runs deploy):
//!
//! 1. load the compose files, every file they name confined to the source directory
//!    ([`crate::swarm::compose::load`]);
//! 2. for a recipe app, what abra does to the `app` service ([`super::app::prepare_compose`]);
//! 3. the compose policy ([`super::policy`]) with the caller's allowances — bind sources are
//!    resolved on disk here (symlinks followed) so the policy itself stays pure;
//! 4. conversion to a [`StackSpec`], with the caller's labels;
//! 5. the run's generated secrets (recipes declare them `external`).
//!
//! Nothing converts or deploys a compose without passing through [`build`].

use std::collections::BTreeMap;
use std::path::Path;

use base64::Engine;
use bollard::models::SecretSpec as SwarmSecretSpec;

use super::app::{AppEnv, prepare_compose};
use super::policy::{self, Allowances, BindTarget, PolicyError};
use super::secrets::AppSecret;
use crate::swarm::StackSpec;
use crate::swarm::compose::{self, ComposeError, ComposeFile, LoadedCompose, Root};
use crate::swarm::convert::{ConvertError, ConvertOptions, convert_loaded};
use crate::swarm::docker::NAMESPACE_LABEL;

/// A recipe app's part of a stack: its env (exposed to the `app` service), name and version
/// (abra's labels).
#[derive(Clone, Copy, Debug)]
pub struct RecipeApp<'a> {
    /// The complete app env.
    pub env: &'a AppEnv,
    /// Recipe name.
    pub recipe: &'a str,
    /// Version deployed.
    pub version: &'a str,
}

/// Everything a stack is built from.
#[derive(Clone, Debug)]
pub struct StackSource<'a> {
    /// The directory every file must stay inside (a recipe checkout).
    pub dir: &'a Path,
    /// Compose files relative to `dir`, in overlay order.
    pub files: &'a [String],
    /// Interpolation and look-up environment.
    pub env: &'a BTreeMap<String, String>,
    /// The stack name (namespace).
    pub stack: &'a str,
    /// Labels put on every object.
    pub labels: BTreeMap<String, String>,
    /// Use `endpoint_mode: dnsrr` where a service sets none (hosts without IPVS).
    pub force_dnsrr: bool,
    /// The compose policy's exceptions.
    pub allow: &'a Allowances,
    /// For a recipe app: abra's additions to the `app` service.
    pub app: Option<RecipeApp<'a>>,
    /// Generated secrets to create alongside the stack.
    pub secrets: &'a [AppSecret],
}

/// Why a stack could not be built. Every variant names the file or key concerned.
#[derive(Debug, thiserror::Error)]
pub enum StackError {
    /// The compose files do not load (or name a path outside the directory).
    #[error("compose: {0}")]
    Compose(#[from] ComposeError),
    /// The compose asks for something the policy refuses.
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// The compose model does not convert.
    #[error("convert: {0}")]
    Convert(#[from] ConvertError),
}

/// Where each bind mount source of `compose` leads: inside `root` or a host path (symlinks
/// followed, missing tails appended).
pub fn bind_targets(compose: &ComposeFile, root: &Root) -> BTreeMap<String, BindTarget> {
    let mut out = BTreeMap::new();
    for svc in compose.services.values() {
        for vol in svc.volumes.iter().filter(|v| v.kind == "bind") {
            let Some(source) = &vol.source else { continue };
            let real = root.resolve_lenient(Path::new(source));
            let target = if root.contains(&real) {
                BindTarget::Checkout
            } else {
                BindTarget::Host(real)
            };
            out.insert(source.clone(), target);
        }
    }
    out
}

/// Steps 1–3: the loaded compose (with abra's additions), having passed the policy.
pub fn load_checked(src: &StackSource<'_>) -> Result<LoadedCompose, StackError> {
    let mut loaded = compose::load(src.dir, src.files, src.env)?;
    if let Some(app) = &src.app {
        prepare_compose(&mut loaded.compose, app.env, app.recipe, app.version);
    }
    let root = Root::new(src.dir).map_err(|source| ComposeError::Read {
        file: src.dir.display().to_string(),
        source,
    })?;
    let binds = bind_targets(&loaded.compose, &root);
    let input = policy::Input {
        compose: &loaded.compose,
        sources: &loaded.sources,
        stack: src.stack,
        binds: &binds,
    };
    policy::enforce(&input, src.allow)?;
    Ok(loaded)
}

/// The whole pipeline: the stack spec to apply. Warnings are in the spec's `warnings`.
pub fn build(src: &StackSource<'_>) -> Result<StackSpec, StackError> {
    let loaded = load_checked(src)?;
    let opts = ConvertOptions {
        extra_labels: src.labels.clone(),
        force_dnsrr: src.force_dnsrr,
    };
    let mut spec = convert_loaded(src.stack, &loaded, &opts)?;
    let b64 = base64::engine::general_purpose::STANDARD;
    for s in src.secrets {
        if spec
            .secrets
            .iter()
            .any(|x| x.name.as_deref() == Some(&s.swarm_name))
        {
            continue;
        }
        spec.secrets.push(SwarmSecretSpec {
            name: Some(s.swarm_name.clone()),
            labels: Some(
                [(NAMESPACE_LABEL.to_string(), src.stack.to_string())]
                    .into_iter()
                    .collect(),
            ),
            data: Some(b64.encode(s.value.as_bytes())),
            ..Default::default()
        });
    }
    Ok(spec)
}
