//! Conversion of a loaded [`ComposeFile`] into the [`StackSpec`] `docker stack deploy` would
//! send (docker/cli `compose/convert` + `command/stack/swarm/deploy_composefile.go`), with
//! `--resolve-image never`. Pure: reads secret/config files, never talks to Docker.
//!
//! What the CLI sends and this produces:
//! - names `<stack>_<name>` unless an explicit `name:` is given; external objects are not created
//!   (external networks are listed in [`StackSpec::external_networks`]);
//! - `com.docker.stack.namespace=<stack>` on services, container specs, networks, secrets,
//!   configs and named-volume mount options; `com.docker.stack.image` on the service;
//! - only networks some service uses are created; a service without networks joins
//!   `<stack>_default`; a network without a driver gets `overlay`;
//! - secret/config references carry `SecretName`/`ConfigName` and file targets (default target
//!   = the source name, uid/gid `"0"`, mode `0444`) but **no IDs**: the CLI looks IDs up from the
//!   engine right before creating services, so the apply step must fill `SecretID`/`ConfigID`.
//!
//! Deliberate differences (see the crate docs of each helper for details):
//! - [`ConvertOptions::extra_labels`] are added wherever the namespace label goes (and on
//!   declared volumes); the namespace label always wins;
//! - [`ConvertOptions::force_dnsrr`] sets `endpoint_mode: dnsrr` on services without an explicit
//!   endpoint mode and without ingress-published ports (for kernels without IPVS);
//! - [`StackSpec::volumes`] lists declared, non-external named volumes (the CLI leaves their
//!   creation to the engine at mount time).

mod objects;
mod service;
mod task;

use std::collections::BTreeMap;
use std::path::Path;

use super::StackSpec;
use super::compose::{ComposeFile, LoadedCompose};

/// The label naming the stack an object belongs to.
pub const LABEL_NAMESPACE: &str = "com.docker.stack.namespace";
/// The label holding the image as written in the compose file.
pub const LABEL_IMAGE: &str = "com.docker.stack.image";

/// Options for [`convert`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConvertOptions {
    /// Labels added to every object the stack creates (e.g. `cc-ci.managed=true`).
    pub extra_labels: BTreeMap<String, String>,
    /// Use `endpoint_mode: dnsrr` for services that publish no ingress ports and set no endpoint
    /// mode themselves. Off by default (docker/cli never does this); useful where the kernel has
    /// no IPVS and virtual IPs do not route.
    pub force_dnsrr: bool,
}

/// Why a compose model could not be converted. Messages never contain secret contents.
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    /// A secret or config file could not be read.
    #[error("{kind} {name}: cannot read {path}: {source}")]
    ReadFile {
        /// `secret` or `config`.
        kind: &'static str,
        /// The compose name of the object.
        name: String,
        /// The path tried.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A top-level object is incomplete or contradictory.
    #[error("{kind} {name}: {message}")]
    Object {
        /// `secret`, `config`, `network` or `volume`.
        kind: &'static str,
        /// The compose name.
        name: String,
        /// What is wrong.
        message: String,
    },
    /// A service cannot be converted (docker/cli wording, prefixed with `service <name>:`).
    #[error("service {service}: {message}")]
    Service {
        /// The compose service name.
        service: String,
        /// What is wrong, e.g. `undefined secret "db_password"`.
        message: String,
    },
}

/// The namespace of a stack: scopes names and labels.
#[derive(Clone, Debug)]
pub(crate) struct Namespace<'a> {
    pub(crate) name: &'a str,
    pub(crate) extra: &'a BTreeMap<String, String>,
}

impl Namespace<'_> {
    /// `<stack>_<name>`.
    pub(crate) fn scope(&self, name: &str) -> String {
        format!("{}_{name}", self.name)
    }

    /// `labels` plus the extra labels plus the namespace label, as the engine types want them.
    pub(crate) fn labels(
        &self,
        labels: &BTreeMap<String, String>,
    ) -> std::collections::HashMap<String, String> {
        let mut out: std::collections::HashMap<String, String> = labels
            .iter()
            .chain(self.extra.iter())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        out.insert(LABEL_NAMESPACE.to_string(), self.name.to_string());
        out
    }
}

/// Converts `compose` into the objects of stack `stack`. Relative secret/config paths resolve
/// against `base_dir` (paths from [`super::compose::load`] are already absolute).
pub fn convert(
    stack: &str,
    compose: &ComposeFile,
    base_dir: &Path,
    opts: &ConvertOptions,
) -> Result<StackSpec, ConvertError> {
    let ns = Namespace {
        name: stack,
        extra: &opts.extra_labels,
    };
    let mut warnings = Vec::new();
    let (networks, external_networks) = objects::networks(&ns, compose);
    let secrets = objects::secrets(&ns, compose, base_dir)?;
    let configs = objects::configs(&ns, compose, base_dir)?;
    let volumes = objects::volumes(&ns, compose);
    let services = compose
        .services
        .iter()
        .map(|(name, svc)| service::service(&ns, name, svc, compose, opts, &mut warnings))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(StackSpec {
        name: stack.to_string(),
        networks,
        external_networks,
        secrets,
        configs,
        volumes,
        services,
        warnings,
        extra_labels: opts.extra_labels.clone(),
    })
}

/// [`convert`] for the output of [`super::compose::load`], keeping its warnings (load warnings
/// first) and resolving paths against its working directory.
pub fn convert_loaded(
    stack: &str,
    loaded: &LoadedCompose,
    opts: &ConvertOptions,
) -> Result<StackSpec, ConvertError> {
    let mut spec = convert(stack, &loaded.compose, &loaded.working_dir, opts)?;
    let mut warnings = loaded.warnings.clone();
    warnings.append(&mut spec.warnings);
    spec.warnings = warnings;
    Ok(spec)
}

#[cfg(test)]
mod tests;
