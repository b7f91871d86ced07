//! Removing a stack (or every object carrying a label): services → stop their containers and wait
//! until they are gone → networks, configs, secrets, and volumes when asked. Idempotent.

use std::collections::HashMap;
use std::future::Future;
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::models::TaskState;
use bollard::query_parameters::{
    ListConfigsOptions, ListContainersOptions, ListNetworksOptions, ListSecretsOptions,
    ListServicesOptions, ListTasksOptions, ListVolumesOptions, RemoveContainerOptions,
    RemoveVolumeOptions, StopContainerOptions,
};
use futures::future::try_join_all;

use super::docker::{EngineError, NAMESPACE_LABEL, is_not_found, status_code};

/// How to remove a stack.
#[derive(Clone, Debug)]
pub struct RemoveOptions {
    /// Also remove the stack's volumes (after its containers are gone). Data is lost.
    pub volumes: bool,
    /// How long to wait for tasks and containers to go, and for networks/volumes to be free.
    pub timeout: Duration,
}

impl Default for RemoveOptions {
    fn default() -> Self {
        RemoveOptions {
            volumes: false,
            timeout: Duration::from_secs(120),
        }
    }
}

/// What [`remove`] removed, by name.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct RemoveReport {
    /// Services removed.
    pub services: Vec<String>,
    /// Networks removed.
    pub networks: Vec<String>,
    /// Secrets removed.
    pub secrets: Vec<String>,
    /// Configs removed.
    pub configs: Vec<String>,
    /// Volumes removed (only with [`RemoveOptions::volumes`]).
    pub volumes: Vec<String>,
}

impl RemoveReport {
    /// Whether nothing was left to remove.
    pub fn is_empty(&self) -> bool {
        self.services.is_empty()
            && self.networks.is_empty()
            && self.secrets.is_empty()
            && self.configs.is_empty()
            && self.volumes.is_empty()
    }
}

/// How often removal progress is polled.
const POLL: Duration = Duration::from_millis(100);

/// Removes stack `stack` (every object labelled `com.docker.stack.namespace=<stack>`) and waits
/// until its containers are gone. Objects already gone are fine; removing twice is a no-op.
pub async fn remove(
    docker: &Docker,
    stack: &str,
    opts: &RemoveOptions,
) -> Result<RemoveReport, EngineError> {
    remove_by_label(docker, &format!("{NAMESPACE_LABEL}={stack}"), opts).await
}

/// Removes every service, network, secret, config (and volume, when asked) carrying `label`
/// (`key` or `key=value`, as in `docker … ls --filter label=…`), in the same order and with the
/// same waits as [`remove`]. Meant for sweeping leftovers of tests and runs.
pub async fn remove_by_label(
    docker: &Docker,
    label: &str,
    opts: &RemoveOptions,
) -> Result<RemoveReport, EngineError> {
    let deadline = Instant::now() + opts.timeout;
    let filters = || {
        Some(HashMap::from([(
            "label".to_owned(),
            vec![label.to_owned()],
        )]))
    };
    let mut report = RemoveReport::default();

    let services = docker
        .list_services(Some(ListServicesOptions {
            filters: filters(),
            status: None,
        }))
        .await
        .map_err(|e| EngineError::api(format!("listing services labelled {label}"), e))?;
    // Each service's stop grace period in seconds (Swarm's default: 10 s).
    let grace: HashMap<String, i32> = services
        .iter()
        .filter_map(|s| {
            let nanos = s
                .spec
                .as_ref()
                .and_then(|s| s.task_template.as_ref())
                .and_then(|t| t.container_spec.as_ref())
                .and_then(|c| c.stop_grace_period)
                .unwrap_or(10_000_000_000);
            Some((
                s.id.clone()?,
                (nanos / 1_000_000_000).clamp(0, i32::MAX as i64) as i32,
            ))
        })
        .collect();
    try_join_all(services.iter().map(|service| async move {
        let id = service.id.as_deref().unwrap_or_default();
        tolerate_gone(docker.delete_service(id).await, || {
            format!("removing service {id}")
        })
    }))
    .await?;
    report.services = services
        .iter()
        .filter_map(|s| s.spec.as_ref()?.name.clone())
        .collect();
    if !grace.is_empty() {
        stop_containers_and_wait(docker, &grace, deadline, opts.timeout).await?;
    }

    let networks = async {
        let list = docker
            .list_networks(Some(ListNetworksOptions { filters: filters() }))
            .await
            .map_err(|e| EngineError::api(format!("listing networks labelled {label}"), e))?;
        try_join_all(list.iter().map(|n| async move {
            let name = n.name.clone().unwrap_or_default();
            let id = n.id.clone().unwrap_or_else(|| name.clone());
            // Endpoints of removed tasks linger a moment: retry while the network is "in use".
            retry_while_in_use(deadline, opts.timeout, &format!("network {name}"), || {
                docker.remove_network(&id)
            })
            .await?;
            // The node's local copy of an overlay network outlives its removal by a moment; a
            // deploy in that moment would find it "existing" and then fail to use it.
            while docker.inspect_network(&id, None).await.is_ok() {
                if Instant::now() >= deadline {
                    return Err(EngineError::RemoveTimeout {
                        what: format!("network {name}"),
                        seconds: opts.timeout.as_secs(),
                    });
                }
                tokio::time::sleep(POLL / 2).await;
            }
            Ok::<_, EngineError>(name)
        }))
        .await
    };
    let secrets = async {
        let list = docker
            .list_secrets(Some(ListSecretsOptions { filters: filters() }))
            .await
            .map_err(|e| EngineError::api(format!("listing secrets labelled {label}"), e))?;
        try_join_all(list.iter().map(|s| async move {
            let name = s
                .spec
                .as_ref()
                .and_then(|s| s.name.clone())
                .unwrap_or_default();
            let id = s.id.clone().unwrap_or_else(|| name.clone());
            tolerate_gone(docker.delete_secret(&id).await, || {
                format!("removing secret {name}")
            })?;
            Ok::<_, EngineError>(name)
        }))
        .await
    };
    let configs = async {
        let list = docker
            .list_configs(Some(ListConfigsOptions { filters: filters() }))
            .await
            .map_err(|e| EngineError::api(format!("listing configs labelled {label}"), e))?;
        try_join_all(list.iter().map(|c| async move {
            let name = c
                .spec
                .as_ref()
                .and_then(|s| s.name.clone())
                .unwrap_or_default();
            let id = c.id.clone().unwrap_or_else(|| name.clone());
            tolerate_gone(docker.delete_config(&id).await, || {
                format!("removing config {name}")
            })?;
            Ok::<_, EngineError>(name)
        }))
        .await
    };
    let volumes = async {
        if !opts.volumes {
            return Ok(Vec::new());
        }
        let list = docker
            .list_volumes(Some(ListVolumesOptions { filters: filters() }))
            .await
            .map_err(|e| EngineError::api(format!("listing volumes labelled {label}"), e))?;
        try_join_all(
            list.volumes
                .unwrap_or_default()
                .into_iter()
                .map(|v| async move {
                    retry_while_in_use(
                        deadline,
                        opts.timeout,
                        &format!("volume {}", v.name),
                        || docker.remove_volume(&v.name, None::<RemoveVolumeOptions>),
                    )
                    .await?;
                    Ok::<_, EngineError>(v.name)
                }),
        )
        .await
    };
    let (networks, secrets, configs, volumes) =
        tokio::try_join!(networks, secrets, configs, volumes)?;
    report.networks = networks;
    report.secrets = secrets;
    report.configs = configs;
    report.volumes = volumes;
    Ok(report)
}

/// Stops (gracefully, with each service's stop grace period) and removes the containers of the
/// removed services until none is left and no task of theirs could still start one.
///
/// Doing this ourselves instead of waiting for the Swarm agent matters: with an overlay network
/// the agent takes ~6 s to remove a stopped task's container, while a direct stop takes as long
/// as the program needs to exit. Tasks of removed services linger in the store a few seconds
/// more in a terminal state; they hold nothing (no container, port or network endpoint).
async fn stop_containers_and_wait(
    docker: &Docker,
    grace: &HashMap<String, i32>,
    deadline: Instant,
    timeout: Duration,
) -> Result<(), EngineError> {
    let container_filters = HashMap::from([(
        "label".to_owned(),
        vec!["com.docker.swarm.service.id".to_owned()],
    )]);
    loop {
        // Filtering tasks by a removed service is an error, so list them all and filter here.
        let tasks = docker
            .list_tasks(None::<ListTasksOptions>)
            .await
            .map_err(|e| EngineError::api("listing tasks", e))?;
        let starting = tasks
            .iter()
            .filter(|t| {
                t.service_id
                    .as_ref()
                    .is_some_and(|id| grace.contains_key(id))
            })
            .filter(|t| {
                t.status
                    .as_ref()
                    .and_then(|s| s.state)
                    .is_some_and(|s| s < TaskState::RUNNING)
            })
            .count();
        let containers = docker
            .list_containers(Some(ListContainersOptions {
                all: true,
                filters: Some(container_filters.clone()),
                ..Default::default()
            }))
            .await
            .map_err(|e| EngineError::api("listing containers", e))?;
        let left: Vec<(String, i32)> = containers
            .iter()
            .filter_map(|c| {
                let service = c.labels.as_ref()?.get("com.docker.swarm.service.id")?;
                Some((c.id.clone()?, *grace.get(service)?))
            })
            .collect();
        if left.is_empty() && starting == 0 {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(EngineError::RemoveTimeout {
                what: format!(
                    "{} container(s) and {starting} starting task(s)",
                    left.len()
                ),
                seconds: timeout.as_secs(),
            });
        }
        futures::future::join_all(left.iter().map(|(id, grace)| async move {
            // Errors are fine here (already stopping, already gone): the next round looks again.
            let stop = StopContainerOptions {
                t: Some(*grace),
                ..Default::default()
            };
            let _ = docker.stop_container(id, Some(stop)).await;
            let remove = RemoveContainerOptions {
                force: true,
                ..Default::default()
            };
            let _ = docker.remove_container(id, Some(remove)).await;
        }))
        .await;
        if left.is_empty() {
            tokio::time::sleep(POLL).await;
        }
    }
}

fn tolerate_gone(
    result: Result<(), bollard::errors::Error>,
    action: impl FnOnce() -> String,
) -> Result<(), EngineError> {
    match result {
        Err(e) if !is_not_found(&e) => Err(EngineError::api(action(), e)),
        _ => Ok(()),
    }
}

/// Runs `remove` until it succeeds, the object is gone (404), or `deadline` passes; retries while
/// the daemon answers that the object is still in use (409, or "active endpoints").
async fn retry_while_in_use<F, Fut>(
    deadline: Instant,
    timeout: Duration,
    what: &str,
    mut remove: F,
) -> Result<(), EngineError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), bollard::errors::Error>>,
{
    loop {
        match remove().await {
            Ok(()) => return Ok(()),
            Err(e) if is_not_found(&e) => return Ok(()),
            Err(e) if is_in_use(&e) => {
                if Instant::now() >= deadline {
                    return Err(EngineError::RemoveTimeout {
                        what: what.to_owned(),
                        seconds: timeout.as_secs(),
                    });
                }
                tokio::time::sleep(POLL).await;
            }
            Err(e) => return Err(EngineError::api(format!("removing {what}"), e)),
        }
    }
}

fn is_in_use(err: &bollard::errors::Error) -> bool {
    status_code(err) == Some(409)
        || super::docker::server_message(err)
            .is_some_and(|m| m.contains("in use") || m.contains("active endpoints"))
}
