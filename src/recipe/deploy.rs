//! Deploying a run's app on the native swarm engine and tearing down everything a run owns.
//!
//! A deploy is: load the enabled compose files with the app env, do what abra does to the
//! `app` service ([`super::app::prepare_compose`]), convert, add the run's generated secrets
//! (recipes declare them `external`), label every object with `cc-ci.managed=true` and
//! `cc-ci.run=<run>`, then apply. Converging is the caller's next step
//! ([`crate::swarm::converge::wait`]), so that it can be recorded as a step of its own. An
//! upgrade is the same call with the new version's [`App`] and the same stack: volumes and
//! existing secrets are kept, new secrets are created, services are updated in place.

use std::collections::BTreeMap;

use base64::Engine;
use bollard::Docker;
use bollard::models::SecretSpec as SwarmSecretSpec;

use super::app::{App, prepare_compose};
use super::secrets::AppSecret;
use crate::swarm::StackSpec;
use crate::swarm::apply::{ApplyOptions, ApplyReport, apply};
use crate::swarm::compose::{self, ComposeError};
use crate::swarm::convert::{ConvertError, ConvertOptions, convert_loaded};
use crate::swarm::docker::{EngineError, NAMESPACE_LABEL};
use crate::swarm::remove::{RemoveOptions, RemoveReport, remove_by_label};

/// Label every object of cc-ci carries.
pub const MANAGED_LABEL: &str = "cc-ci.managed";

/// Label naming the run that owns an object.
pub const RUN_LABEL: &str = "cc-ci.run";

/// Label naming the controller instance that owns an object (`[runs] instance`); the janitor
/// only touches objects of its own instance.
pub const INSTANCE_LABEL: &str = "cc-ci.instance";

/// Why an app could not be deployed.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    /// The compose files do not load.
    #[error("compose: {0}")]
    Compose(#[from] ComposeError),
    /// The compose model does not convert.
    #[error("convert: {0}")]
    Convert(#[from] ConvertError),
    /// The Docker engine refused or failed.
    #[error(transparent)]
    Engine(#[from] EngineError),
}

/// The labels of every object run `run` of controller instance `instance` creates.
pub fn run_labels(instance: &str, run: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (MANAGED_LABEL.to_string(), "true".to_string()),
        (INSTANCE_LABEL.to_string(), instance.to_string()),
        (RUN_LABEL.to_string(), run.to_string()),
    ])
}

/// How to build a run's stack.
#[derive(Clone, Debug)]
pub struct StackOptions<'a> {
    /// The controller instance (for labels).
    pub instance: &'a str,
    /// The run's name (for labels).
    pub run: &'a str,
    /// Recipe name (for abra's labels).
    pub recipe: &'a str,
    /// Version being deployed (tag, or short commit).
    pub version: &'a str,
    /// Use `endpoint_mode: dnsrr` where a service sets none (hosts without IPVS).
    pub force_dnsrr: bool,
}

/// The stack spec of `app` (pure apart from reading the recipe's files): compose loaded and
/// converted, abra's additions to the `app` service, the generated `secrets` added, every
/// object labelled for the run. Warnings are in the spec's `warnings`.
pub fn stack_spec(
    app: &App,
    secrets: &[AppSecret],
    opts: &StackOptions<'_>,
) -> Result<StackSpec, DeployError> {
    stack_spec_labelled(app, secrets, opts, run_labels(opts.instance, opts.run))
}

/// Like [`stack_spec`], labelling every object with `labels` instead of a run's labels (for
/// long-lived deployments, whose objects must never look like a run's; `opts.instance` and
/// `opts.run` are then unused).
pub fn stack_spec_labelled(
    app: &App,
    secrets: &[AppSecret],
    opts: &StackOptions<'_>,
    labels: BTreeMap<String, String>,
) -> Result<StackSpec, DeployError> {
    let mut loaded = compose::load(&app.dir, &app.compose_files, &app.env.to_map())?;
    prepare_compose(&mut loaded.compose, &app.env, opts.recipe, opts.version);
    let convert_opts = ConvertOptions {
        extra_labels: labels,
        force_dnsrr: opts.force_dnsrr,
    };
    let mut spec = convert_loaded(&app.stack, &loaded, &convert_opts)?;
    let b64 = base64::engine::general_purpose::STANDARD;
    for s in secrets {
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
                [(NAMESPACE_LABEL.to_string(), app.stack.clone())]
                    .into_iter()
                    .collect(),
            ),
            data: Some(b64.encode(s.value.as_bytes())),
            ..Default::default()
        });
    }
    Ok(spec)
}

/// Applies a run's stack (create, or update in place). Idempotent.
pub async fn deploy(docker: &Docker, spec: &StackSpec) -> Result<ApplyReport, DeployError> {
    Ok(apply(docker, spec, &ApplyOptions { prune: true }).await?)
}

/// Removes every swarm object of run `run` — services first, then networks, configs, secrets
/// and volumes (data is gone). Idempotent: a second call removes nothing.
pub async fn teardown(
    docker: &Docker,
    run: &str,
    timeout: std::time::Duration,
) -> Result<RemoveReport, EngineError> {
    remove_by_label(
        docker,
        &format!("{RUN_LABEL}={run}"),
        &RemoveOptions {
            volumes: true,
            timeout,
        },
    )
    .await
}
