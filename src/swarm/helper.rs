//! Short-lived helper containers (the one primitive behind the built-in HTTP checks and the
//! backup/restore volume copies): a plain container from the helper image, labelled like the
//! run so the janitor can sweep it if the controller dies before removing it, and removed
//! (forcefully) once used.

use std::collections::BTreeMap;

use bollard::Docker;
use bollard::models::{ContainerCreateBody, HostConfig, Mount};
use bollard::query_parameters::{
    CreateContainerOptions, LogsOptions, RemoveContainerOptions, WaitContainerOptions,
};
use futures::StreamExt;

use super::docker::status_code;

/// Docker refused or failed while handling a helper.
#[derive(Debug, thiserror::Error)]
#[error("{action}: {source}")]
pub struct HelperError {
    /// What was being done, e.g. `creating the check container for tasks.app`.
    pub action: String,
    /// Docker's error.
    #[source]
    pub source: bollard::errors::Error,
}

fn err(action: impl Into<String>) -> impl FnOnce(bollard::errors::Error) -> HelperError {
    let action = action.into();
    move |source| HelperError { action, source }
}

/// What a helper container is made of.
#[derive(Clone, Debug, Default)]
pub struct HelperSpec {
    /// The image (the `[runs] helper_image`).
    pub image: String,
    /// Its command.
    pub cmd: Vec<String>,
    /// `KEY=value` environment entries.
    pub env: Vec<String>,
    /// Labels: the run's (`cc-ci.managed`, `cc-ci.instance`, `cc-ci.run`).
    pub labels: BTreeMap<String, String>,
    /// A network to attach it to.
    pub network: Option<String>,
    /// Volumes or binds to mount.
    pub mounts: Vec<Mount>,
}

/// A created helper container. Remove it with [`Helper::remove`].
#[derive(Debug)]
pub struct Helper {
    id: String,
}

impl Helper {
    /// Creates (does not start) a helper; `what` names it in errors.
    pub async fn create(
        docker: &Docker,
        spec: HelperSpec,
        what: &str,
    ) -> Result<Helper, HelperError> {
        let body = ContainerCreateBody {
            image: Some(spec.image),
            cmd: Some(spec.cmd),
            env: (!spec.env.is_empty()).then_some(spec.env),
            labels: Some(spec.labels.into_iter().collect()),
            host_config: Some(HostConfig {
                network_mode: spec.network,
                mounts: (!spec.mounts.is_empty()).then_some(spec.mounts),
                ..Default::default()
            }),
            ..Default::default()
        };
        let created = docker
            .create_container(None::<CreateContainerOptions>, body)
            .await
            .map_err(err(format!("creating {what}")))?;
        Ok(Helper { id: created.id })
    }

    /// The container's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Starts the helper, waits for it to exit and returns its exit code and output (stdout
    /// and stderr, trimmed).
    pub async fn run(&self, docker: &Docker) -> Result<(i64, String), HelperError> {
        docker
            .start_container(&self.id, None)
            .await
            .map_err(err("starting the helper container"))?;
        let mut wait = docker.wait_container(&self.id, None::<WaitContainerOptions>);
        let code = match wait.next().await {
            Some(Ok(r)) => r.status_code,
            Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => code,
            Some(Err(e)) => return Err(err("waiting for the helper container")(e)),
            None => -1,
        };
        let mut out = String::new();
        let mut logs = docker.logs(
            &self.id,
            Some(LogsOptions {
                stdout: true,
                stderr: true,
                ..Default::default()
            }),
        );
        while let Some(chunk) = logs.next().await {
            let chunk = chunk.map_err(err("reading the helper container's output"))?;
            out.push_str(&String::from_utf8_lossy(&chunk.into_bytes()));
        }
        Ok((code, out.trim().to_string()))
    }

    /// Removes the helper (forcefully); a helper already gone is fine, other failures are
    /// logged (the janitor sweeps what is left).
    pub async fn remove(self, docker: &Docker) {
        let opts = RemoveContainerOptions {
            force: true,
            ..Default::default()
        };
        if let Err(e) = docker.remove_container(&self.id, Some(opts)).await
            && status_code(&e) != Some(404)
        {
            tracing::warn!(container = %self.id, error = %e, "could not remove a helper container");
        }
    }
}

/// Creates `spec`, runs it to its end and removes it: its exit code and output.
pub async fn run_once(
    docker: &Docker,
    spec: HelperSpec,
    what: &str,
) -> Result<(i64, String), HelperError> {
    let helper = Helper::create(docker, spec, what).await?;
    let outcome = helper.run(docker).await;
    helper.remove(docker).await;
    outcome
}
