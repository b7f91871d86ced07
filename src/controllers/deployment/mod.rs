//! The `ProxyDeployment` and `AppDeployment` reconcilers: one mechanism keeping long-lived recipe
//! apps (the traefik proxy, drone, …) deployed at their declared version, healing drift.
//!
//! # A reconcile
//! 1. Read the secret files the record names (the wildcard certificate and key of a proxy,
//!    `secretFiles` of an app).
//! 2. Prepare the stack ([`prepare`]) — fetch the recipe at `spec.version`, configure the app,
//!    convert — unless the spec prepared for this generation and these file contents is cached.
//! 3. Apply it with the same engine a run's app uses ([`crate::recipe::deploy::deploy`]): only
//!    services whose spec differs are updated, so an unchanged deployment costs a few reads.
//! 4. Wait until the stack converges, then remove secrets and configs of this deployment that the
//!    stack no longer uses (a rotated certificate's old version), and report `Ready`.
//! 5. Requeue after [`DeploymentSettings::recheck`]: a service removed, scaled or given another
//!    image by hand is put back at the next re-check. A failed attempt is retried then too: the
//!    reconciler's own status writes do not wake it ([`watched`]), and a retry of a generation
//!    that failed keeps the status `Failed` instead of announcing `Progressing` again.
//!
//! A changed record (version, env) is a new generation: prepared again and rolled out as an
//! update in place (volumes and generated secrets kept). Deleting the record runs the finalizer:
//! every object labelled with this deployment is removed, volumes too unless `keepVolumes`.
//!
//! # What it never touches
//! Objects carry [`target::DEPLOYMENT_LABEL`] = `proxy-<name>`/`app-<name>` and never
//! `cc-ci.managed`/`cc-ci.run`, so a run's teardown and the janitor leave them alone, and a
//! deployment removes only objects carrying its own label.

pub mod prepare;
pub mod route;
mod status;
pub mod target;
pub mod watched;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bollard::Docker;
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

use self::prepare::{PrepareOptions, Prepared, read_secret_files};
use self::status::{Outcome, announces_preparing, next_status};
use self::target::{DEPLOYMENT_LABEL, Deployable, deployment_id};
use self::watched::Watched;
use super::Started;
use crate::api::Object;
use crate::metrics::Metrics;
use crate::runlog::redact::Redactor;
use crate::runtime::finalizer::{Event, FinalizerError, finalizer};
use crate::runtime::{Action, Controller, RuntimeSettings};
use crate::store::{Store, StoreError};
use crate::swarm::converge::{ConvergeError, ConvergeOptions};
use crate::swarm::remove::{RemoveOptions, remove_by_label};

/// How the deployment reconcilers work.
#[derive(Clone, Debug)]
pub struct DeploymentSettings {
    /// Value of [`target::DEPLOYMENT_INSTANCE_LABEL`].
    pub instance: String,
    /// Where each deployment keeps its generated secrets: `<state_dir>/deployments/<id>/`.
    pub state_dir: PathBuf,
    /// `endpoint_mode: dnsrr` for services that set none (hosts without IPVS).
    pub force_dnsrr: bool,
    /// Converge timeout when the app has no `coop-cloud.<stack>.timeout` label.
    pub converge_timeout: Duration,
    /// How often a deployment is checked for drift.
    pub recheck: Duration,
    /// How long removing a deployment may wait for its tasks to go.
    pub remove_timeout: Duration,
}

impl DeploymentSettings {
    /// Settings following the `[runs]` settings (instance, dnsrr, converge timeout) with a
    /// 30-second drift re-check.
    pub fn from_runs(runs: &super::RunSettings, state_dir: PathBuf) -> DeploymentSettings {
        DeploymentSettings {
            instance: runs.instance.clone(),
            state_dir,
            force_dnsrr: runs.force_dnsrr,
            converge_timeout: runs.converge_timeout(),
            recheck: Duration::from_secs(30),
            remove_timeout: Duration::from_secs(120),
        }
    }
}

/// What the reconcile works with.
pub struct Context<St> {
    /// The record store.
    pub store: St,
    /// The Docker engine.
    pub docker: Docker,
    /// Settings.
    pub settings: DeploymentSettings,
    /// Prepared stacks by deployment id, with the key they were prepared for.
    prepared: Mutex<HashMap<String, (String, Arc<Prepared>)>>,
}

impl<St: Store> Context<St> {
    /// A context for [`reconcile`] (what [`start`] builds; tests and benchmarks call
    /// [`reconcile`] directly with it).
    pub fn new(store: St, docker: Docker, settings: DeploymentSettings) -> Context<St> {
        Context {
            store,
            docker,
            settings,
            prepared: Mutex::new(HashMap::new()),
        }
    }
}

/// Why a reconcile failed (retried with backoff).
#[derive(Debug, thiserror::Error)]
pub enum DeploymentError {
    /// Reading or writing the record failed.
    #[error("{name}: {source}")]
    Store {
        /// The record.
        name: String,
        /// What the store said.
        #[source]
        source: StoreError,
    },
    /// Removing the deployment failed; the finalizer stays and removal is retried.
    #[error("removing {id}: {message}")]
    Remove {
        /// The deployment.
        id: String,
        /// What went wrong.
        message: String,
    },
}

/// Starts the reconciler of deployment kind `S` until `shutdown`.
pub fn start<S: Deployable, St: Store>(
    store: &St,
    docker: Docker,
    settings: DeploymentSettings,
    runtime: RuntimeSettings,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) -> Started {
    // Only what a reconcile acts on is cached: its own status writes must not wake it.
    let controller = Controller::for_store_projected(S::CONTROLLER, store, Watched::of::<S>)
        .settings(runtime)
        .metrics(metrics);
    let ready = vec![controller.cache().ready_signal()];
    let ctx = Arc::new(Context::new(store.clone(), docker, settings));
    let task = tokio::spawn(controller.run(reconcile_stored::<S, St>, ctx, shutdown));
    Started {
        name: S::CONTROLLER,
        ready,
        tasks: vec![task],
    }
}

/// Reconciles the stored record behind `watched` (the controller caches only [`Watched`]).
async fn reconcile_stored<S: Deployable, St: Store>(
    watched: Arc<Watched>,
    ctx: Arc<Context<St>>,
) -> Result<Action, FinalizerError<DeploymentError>> {
    match ctx.store.get::<S>(&watched.name) {
        Ok(Some(obj)) => reconcile(Arc::new(obj), ctx).await,
        Ok(None) => Ok(Action::await_change()),
        Err(source) => Err(FinalizerError::ApplyFailed(DeploymentError::Store {
            name: watched.name.clone(),
            source,
        })),
    }
}

/// Reconciles one deployment record (see the module docs).
pub async fn reconcile<S: Deployable, St: Store>(
    obj: Arc<Object<S>>,
    ctx: Arc<Context<St>>,
) -> Result<Action, FinalizerError<DeploymentError>> {
    finalizer(&ctx.store, S::FINALIZER, obj, |event| async {
        match event {
            Event::Apply(obj) => apply(&obj, &ctx).await,
            Event::Cleanup(obj) => cleanup(&obj, &ctx).await,
        }
    })
    .await
}

fn dir_of<St>(ctx: &Context<St>, id: &str) -> PathBuf {
    ctx.settings.state_dir.join("deployments").join(id)
}

async fn apply<S: Deployable, St: Store>(
    obj: &Object<S>,
    ctx: &Context<St>,
) -> Result<Action, DeploymentError> {
    let started = Instant::now();
    let id = deployment_id::<S>(obj.name());
    let outcome = match deploy(obj, ctx, &id).await {
        Ok(outcome) => outcome,
        Err(message) => Outcome::Failed {
            version: None,
            message,
            ready: 0,
            total: 0,
        },
    };
    let failed = matches!(outcome, Outcome::Failed { .. });
    tracing::debug!(deployment = %id, elapsed_ms = started.elapsed().as_millis() as u64, failed, "re-checked");
    write_status(obj, ctx, &outcome).await?;
    Ok(Action::requeue(ctx.settings.recheck))
}

/// Prepares (or takes the cached spec), applies and waits; `Err` is a message for the status.
async fn deploy<S: Deployable, St: Store>(
    obj: &Object<S>,
    ctx: &Context<St>,
    id: &str,
) -> Result<Outcome, String> {
    let secrets = read_secret_files(&obj.spec).map_err(|e| e.to_string())?;
    let key = format!(
        "{}/{}/{}",
        obj.metadata.uid, obj.metadata.generation, secrets.digest
    );
    let cached = ctx
        .prepared
        .lock()
        .await
        .get(id)
        .filter(|(k, _)| *k == key)
        .map(|(_, p)| p.clone());
    let prepared = match cached {
        Some(p) => p,
        None => {
            if announces_preparing(&obj.status, obj.metadata.generation, obj.spec.version()) {
                let progressing = Outcome::Progressing {
                    message: format!("preparing version {}", obj.spec.version()),
                };
                let _ = write_status(obj, ctx, &progressing).await;
            }
            let redactor = Redactor::new();
            let dir = dir_of(ctx, id);
            let opts = PrepareOptions {
                dir: &dir,
                instance: &ctx.settings.instance,
                id,
                force_dnsrr: ctx.settings.force_dnsrr,
                redactor: &redactor,
            };
            let p = prepare::prepare(&obj.spec, &secrets, &opts)
                .await
                .map_err(|e| redactor.redact(&e.to_string()))?;
            let p = Arc::new(p);
            ctx.prepared
                .lock()
                .await
                .insert(id.to_string(), (key, p.clone()));
            p
        }
    };
    let total = prepared.spec.services.len() as u32;
    // Converge failures quote container logs: scrub every secret value first.
    let fail = |message: String, ready: u32| Outcome::Failed {
        version: Some(prepared.version.clone()),
        message: prepared.redactor.redact(&message),
        ready,
        total,
    };
    let report = match crate::recipe::deploy::deploy(&ctx.docker, &prepared.spec).await {
        Ok(r) => r,
        Err(e) => return Ok(fail(format!("deploying: {e}"), 0)),
    };
    let healed = status::describe_changes(&report);
    if let Some(h) = &healed {
        tracing::info!(deployment = %id, "{h}");
        let progressing = Outcome::Progressing {
            message: format!("version {}: {h}", prepared.version),
        };
        let _ = write_status(obj, ctx, &progressing).await;
    }
    let opts = ConvergeOptions {
        default_timeout: ctx.settings.converge_timeout,
        ..ConvergeOptions::default()
    };
    let stack = prepared.spec.name.clone();
    if let Err(e) = crate::swarm::converge::wait(
        &ctx.docker,
        &stack,
        &opts,
        |line| tracing::info!(deployment = %id, "{line}"),
    )
    .await
    {
        let ready = match &e {
            ConvergeError::Timeout { failures, .. } => total.saturating_sub(failures.len() as u32),
            ConvergeError::Failed { .. } => total.saturating_sub(1),
            _ => 0,
        };
        return Ok(fail(e.to_string(), ready));
    }
    status::remove_unused(&ctx.docker, id, &prepared.spec).await;
    Ok(Outcome::Ready {
        version: prepared.version.clone(),
        services: total,
        healed,
    })
}

async fn write_status<S: Deployable, St: Store>(
    obj: &Object<S>,
    ctx: &Context<St>,
    outcome: &Outcome,
) -> Result<(), DeploymentError> {
    let err = |source| DeploymentError::Store {
        name: obj.name().to_string(),
        source,
    };
    for _ in 0..5 {
        let Some(mut fresh) = ctx.store.get::<S>(obj.name()).map_err(err)? else {
            return Ok(());
        };
        let Some(status) = next_status(&fresh.status, fresh.metadata.generation, outcome) else {
            return Ok(());
        };
        fresh.status = status;
        match ctx.store.replace_status(fresh).await {
            Ok(_) => return Ok(()),
            Err(StoreError::Conflict { .. }) => continue,
            Err(StoreError::NotFound { .. }) => return Ok(()),
            Err(e) => return Err(err(e)),
        }
    }
    Err(err(StoreError::Backend(
        "status write kept conflicting".into(),
    )))
}

/// Deletion: removes every object of this deployment (volumes unless `keepVolumes`).
async fn cleanup<S: Deployable, St: Store>(
    obj: &Object<S>,
    ctx: &Context<St>,
) -> Result<Action, DeploymentError> {
    let id = deployment_id::<S>(obj.name());
    let keep = obj.spec.keep_volumes();
    let removed = remove_by_label(
        &ctx.docker,
        &format!("{DEPLOYMENT_LABEL}={id}"),
        &RemoveOptions {
            volumes: !keep,
            timeout: ctx.settings.remove_timeout,
        },
    )
    .await
    .map_err(|e| DeploymentError::Remove {
        id: id.clone(),
        message: e.to_string(),
    })?;
    tracing::info!(deployment = %id, services = removed.services.len(), keep_volumes = keep, "removed");
    ctx.prepared.lock().await.remove(&id);
    if !keep {
        let dir = dir_of(ctx, &id);
        if let Err(e) = std::fs::remove_dir_all(&dir)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            return Err(DeploymentError::Remove {
                id,
                message: format!("{}: {e}", dir.display()),
            });
        }
    }
    Ok(Action::await_change())
}
