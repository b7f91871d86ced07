//! Deploying a run's app on the native swarm engine and tearing down everything a run owns.
//!
//! A deploy is the one compose → stack pipeline ([`super::pipeline`]: confined load, abra's
//! additions to the `app` service, the compose policy, conversion, the run's generated
//! secrets), every object labelled `cc-ci.managed=true` and `cc-ci.run=<run>`, then apply. Converging is the caller's next step
//! ([`crate::swarm::converge::wait`]), so that it can be recorded as a step of its own. An
//! upgrade is the same call with the new version's [`App`] and the same stack: volumes and
//! existing secrets are kept, new secrets are created, services are updated in place.

use std::collections::BTreeMap;

use bollard::Docker;

use super::app::App;
use super::pipeline::{self, RecipeApp, StackError, StackSource};
use super::policy::{Allowances, PolicyError};
use super::secrets::AppSecret;
use crate::swarm::StackSpec;
use crate::swarm::apply::{ApplyOptions, ApplyReport, apply};
use crate::swarm::compose::ComposeError;
use crate::swarm::convert::ConvertError;
use crate::swarm::docker::EngineError;
use crate::swarm::remove::{RemoveOptions, RemoveReport, remove_by_labels};

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
    /// The compose asks for something the Recipe does not allow (see [`super::policy`]).
    #[error(transparent)]
    Policy(#[from] PolicyError),
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
    /// The Recipe's `allow` list (compose policy exceptions).
    pub allow: &'a [String],
}

impl From<StackError> for DeployError {
    fn from(e: StackError) -> DeployError {
        match e {
            StackError::Compose(e) => DeployError::Compose(e),
            StackError::Policy(e) => DeployError::Policy(e),
            StackError::Convert(e) => DeployError::Convert(e),
        }
    }
}

fn source<'a>(
    app: &'a App,
    env: &'a BTreeMap<String, String>,
    allow: &'a Allowances,
    secrets: &'a [AppSecret],
    opts: &StackOptions<'a>,
) -> StackSource<'a> {
    StackSource {
        dir: &app.dir,
        files: &app.compose_files,
        env,
        stack: &app.stack,
        labels: run_labels(opts.instance, opts.run),
        force_dnsrr: opts.force_dnsrr,
        allow,
        app: Some(RecipeApp {
            env: &app.env,
            recipe: opts.recipe,
            version: opts.version,
        }),
        secrets,
    }
}

/// The compose policy's verdict on `app` (loads its compose, confined; converts nothing): what
/// a `policy` step runs before anything of a run is deployed. [`stack_spec`] checks it again.
pub fn check_policy(app: &App, opts: &StackOptions<'_>) -> Result<(), DeployError> {
    let env = app.env.to_map();
    let allow = Allowances::new(opts.allow);
    pipeline::load_checked(&source(app, &env, &allow, &[], opts))?;
    Ok(())
}

/// The stack spec of `app` through the one pipeline ([`super::pipeline`]): compose loaded
/// (confined to the checkout) with abra's additions, the compose policy with the Recipe's
/// allowances, conversion, the generated `secrets` added, every object labelled for the run.
/// Warnings are in the spec's `warnings`.
pub fn stack_spec(
    app: &App,
    secrets: &[AppSecret],
    opts: &StackOptions<'_>,
) -> Result<StackSpec, DeployError> {
    let env = app.env.to_map();
    let allow = Allowances::new(opts.allow);
    Ok(pipeline::build(&source(app, &env, &allow, secrets, opts))?)
}

/// Like [`stack_spec`] for an app the operator declares (`ProxyDeployment`, `AppDeployment`):
/// every object labelled with `labels` instead of a run's (they must never look like a run's;
/// `opts.instance` and `opts.run` are then unused), and the compose policy for pull requests
/// replaced by [`Allowances::operator`] (confinement to the checkout still applies).
pub fn stack_spec_labelled(
    app: &App,
    secrets: &[AppSecret],
    opts: &StackOptions<'_>,
    labels: BTreeMap<String, String>,
) -> Result<StackSpec, DeployError> {
    let env = app.env.to_map();
    let allow = Allowances::operator();
    let mut src = source(app, &env, &allow, secrets, opts);
    src.labels = labels;
    Ok(pipeline::build(&src)?)
}

/// Applies a run's stack (create, or update in place). Idempotent.
pub async fn deploy(docker: &Docker, spec: &StackSpec) -> Result<ApplyReport, DeployError> {
    Ok(apply(docker, spec, &ApplyOptions { prune: true }).await?)
}

/// Removes every swarm object of run `run` of controller instance `instance` (both labels must
/// match: another instance's run of the same name is left alone) — services first, then
/// networks, configs, secrets and volumes (data is gone). Idempotent: a second call removes
/// nothing.
pub async fn teardown(
    docker: &Docker,
    instance: &str,
    run: &str,
    timeout: std::time::Duration,
) -> Result<RemoveReport, EngineError> {
    remove_by_labels(
        docker,
        &[
            format!("{RUN_LABEL}={run}"),
            format!("{INSTANCE_LABEL}={instance}"),
        ],
        &RemoveOptions {
            volumes: true,
            timeout,
        },
    )
    .await
}
