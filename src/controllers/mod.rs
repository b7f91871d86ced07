//! Reconcilers: one file per record kind or concern, each built on the [`crate::runtime`], and
//! [`run`], which starts them all for `cc-ci serve`.
//!
//! # Starting the controllers and readiness
//! ```ignore
//! let (ready_tx, ready_rx) = tokio::sync::watch::channel(false);
//! let controllers = tokio::spawn(cc_ci::controllers::run(
//!     store.clone(), metrics.clone(), settings.runtime.clone(), shutdown.clone(), ready_tx,
//!     Some(RunLogs::new(&state_dir)), // where runs recorded their files (facts for levels)
//!     Some(swarm), // Docker access, run logs, [runs] settings, the test executor
//! ));
//! // `/readyz` answers 200 once `*ready_rx.borrow()` is true: every controller's caches have
//! // their first full list. It never turns back to false.
//! shutdown.cancel();          // on SIGTERM
//! controllers.await??;        // returns after in-flight reconciles drained (grace period)
//! ```

pub mod deployment;
pub mod janitor;
pub mod recipe_status;
pub mod retention;
pub mod settings;
pub mod testrun;

pub use settings::RunSettings;

use std::sync::Arc;

use bollard::Docker;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::executor::TestExecutor;
use crate::metrics::Metrics;
use crate::runlog::RunLogs;
use crate::runtime::RuntimeSettings;
use crate::store::Store;

/// A started controller: its tasks and the signals that turn `true` once its caches are listed.
#[derive(Debug)]
pub struct Started {
    /// The controller's name.
    pub name: &'static str,
    /// One signal per cache the controller reads.
    pub ready: Vec<watch::Receiver<bool>>,
    /// Its tasks; they end after `shutdown` is cancelled.
    pub tasks: Vec<JoinHandle<()>>,
}

/// How the swarm-dependent controllers reach Docker.
#[derive(Clone, Debug)]
pub enum DockerAccess {
    /// No swarm work at all: only the controllers that need no swarm start (store-only tests).
    Off,
    /// A client connected at start-up. Users negotiate again when they need to (the daemon may
    /// restart or be upgraded while cc-ci runs).
    Connected(Docker),
    /// The daemon was unreachable at start-up: users connect when they next need it, and keep
    /// retrying until it answers.
    Later,
}

impl DockerAccess {
    /// The client, if there is one yet.
    pub fn client(&self) -> Option<Docker> {
        match self {
            DockerAccess::Connected(d) => Some(d.clone()),
            DockerAccess::Off | DockerAccess::Later => None,
        }
    }
}

/// What the controllers that act on Swarm (the TestRun reconciler, the janitor) work with.
pub struct SwarmDeps {
    /// How to reach the Docker engine.
    pub docker: DockerAccess,
    /// Run logs and run directories under the state dir.
    pub logs: RunLogs,
    /// The `[runs]` settings.
    pub runs: RunSettings,
    /// Runs the test steps ([`crate::executor::job::JobExecutor`] in `cc-ci serve`).
    pub executor: Arc<dyn TestExecutor>,
}

/// Why [`run`] ended with an error.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// A controller task panicked.
    #[error("controller {controller} panicked: {message}")]
    Panicked {
        /// Which controller.
        controller: &'static str,
        /// The panic, as far as it can be told.
        message: String,
    },
}

/// Starts every controller on `store` — [`recipe_status`] always; with `swarm`, the
/// [`testrun`] reconciler and the [`janitor`] (unless its Docker access is
/// [`DockerAccess::Off`]) — and runs them until `shutdown` is cancelled; then lets in-flight
/// reconciles finish (within `settings.shutdown_grace_seconds`) and returns.
///
/// `ready` is set to `true` once every controller's caches have their first full list (the
/// `/readyz` signal); it is never set back to `false`. If `shutdown` comes first it stays `false`.
///
/// `run_logs` is where runs keep their files: the roll-up reads the recipe facts they recorded
/// (levels 6–8) from there, also when no run is executed here; without it, `swarm`'s.
pub async fn run<S: Store>(
    store: S,
    metrics: Arc<Metrics>,
    settings: RuntimeSettings,
    shutdown: CancellationToken,
    ready: watch::Sender<bool>,
    run_logs: Option<RunLogs>,
    swarm: Option<SwarmDeps>,
) -> Result<(), RunError> {
    let mut started = vec![recipe_status::start(
        &store,
        run_logs.or_else(|| swarm.as_ref().map(|s| s.logs.clone())),
        metrics.clone(),
        settings.clone(),
        shutdown.clone(),
    )];
    if let Some(swarm) = swarm
        && !matches!(swarm.docker, DockerAccess::Off)
    {
        let docker = swarm.docker.clone();
        let runs = swarm.runs.clone();
        let swarm_state_dir = swarm.logs.state_dir();
        let deployment_runtime = settings.clone();
        // The TestRun reconciler needs a client now; bollard makes one without contacting the
        // daemon (its calls fail, and steps retry, until the daemon answers).
        let client = docker
            .client()
            .or_else(|| Docker::connect_with_local_defaults().ok());
        match client {
            Some(client) => started.push(testrun::start(
                &store,
                client,
                swarm,
                settings,
                metrics.clone(),
                shutdown.clone(),
            )),
            None => tracing::error!(
                "no Docker client can be made (is DOCKER_HOST valid?); TestRuns will not be executed"
            ),
        }
        // ProxyDeployment and AppDeployment: keep long-lived recipe apps deployed.
        if let Some(client) = docker
            .client()
            .or_else(|| Docker::connect_with_local_defaults().ok())
        {
            let deployments =
                deployment::DeploymentSettings::from_runs(&runs, swarm_state_dir.clone());
            started.push(deployment::start::<crate::api::ProxyDeploymentSpec, S>(
                &store,
                client.clone(),
                deployments.clone(),
                deployment_runtime.clone(),
                metrics.clone(),
                shutdown.clone(),
            ));
            started.push(deployment::start::<crate::api::AppDeploymentSpec, S>(
                &store,
                client,
                deployments,
                deployment_runtime,
                metrics.clone(),
                shutdown.clone(),
            ));
        }
        // janitor: sweeps this instance's objects at start-up and periodically.
        started.push(janitor::start(
            docker.client(),
            store.clone(),
            metrics,
            runs,
            shutdown.clone(),
        ));
    }
    let mut signals: Vec<watch::Receiver<bool>> =
        started.iter().flat_map(|s| s.ready.clone()).collect();
    let readiness = tokio::spawn(async move {
        let all = async {
            for s in &mut signals {
                // A dropped sender means its controller ended; shutdown follows.
                if s.wait_for(|r| *r).await.is_err() {
                    return false;
                }
            }
            true
        };
        tokio::select! {
            () = shutdown.cancelled() => {}
            listed = all => if listed {
                tracing::info!("every controller has listed its records; ready");
                ready.send_replace(true);
            }
        }
    });
    let mut result = Ok(());
    for s in started {
        for task in s.tasks {
            if let Err(e) = task.await {
                tracing::error!(controller = s.name, error = %e, "controller task failed");
                result = Err(RunError::Panicked {
                    controller: s.name,
                    message: e.to_string(),
                });
            }
        }
    }
    readiness.abort();
    result
}
