//! Removing a stack (or every object carrying a label): services → stop their containers and wait
//! until they are gone → plain containers → networks, configs, secrets, and volumes when asked.
//! Idempotent.

use std::collections::HashMap;
use std::future::Future;
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::models::TaskState;
use bollard::query_parameters::{
    ListContainersOptions, ListTasksOptions, RemoveContainerOptions, RemoveVolumeOptions,
    StopContainerOptions,
};
use futures::future::join_all;

use super::docker::{EngineError, NAMESPACE_LABEL, is_not_found, status_code};
use super::objects::{LabelledObject, ObjectKind, SERVICE_ID_LABEL, list_labelled};

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
    /// Plain containers (not services' tasks) removed.
    pub containers: Vec<String>,
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
    /// Adds what another pass removed.
    pub fn merge(&mut self, other: RemoveReport) {
        self.services.extend(other.services);
        self.containers.extend(other.containers);
        self.networks.extend(other.networks);
        self.secrets.extend(other.secrets);
        self.configs.extend(other.configs);
        self.volumes.extend(other.volumes);
    }

    /// Whether nothing was left to remove.
    pub fn is_empty(&self) -> bool {
        self.services.is_empty()
            && self.containers.is_empty()
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

/// Removes every service, plain container, network, secret, config (and volume, when asked)
/// carrying `label` (`key` or `key=value`, as in `docker … ls --filter label=…`), in the same
/// order and with the same waits as [`remove`]. Meant for tearing runs down and sweeping
/// leftovers of tests.
///
/// Every object is attempted even when another fails; the first failure is then the error (the
/// others are logged).
pub async fn remove_by_label(
    docker: &Docker,
    label: &str,
    opts: &RemoveOptions,
) -> Result<RemoveReport, EngineError> {
    remove_by_labels(docker, &[label.to_owned()], opts).await
}

/// Like [`remove_by_label`], for the objects carrying **every** label of `labels`.
pub async fn remove_by_labels(
    docker: &Docker,
    labels: &[String],
    opts: &RemoveOptions,
) -> Result<RemoveReport, EngineError> {
    let label = labels.join(",");
    let objects = list_labelled(docker, labels).await?;
    let mut outcome = remove_objects(docker, &objects, opts).await;
    if !outcome.removed.services.is_empty() {
        // A task that was starting while we listed can have made its named volume (or joined a
        // network) after the list: with the services gone nothing new can appear, so one more
        // pass over what is left finishes the job.
        let left: Vec<LabelledObject> = list_labelled(docker, labels)
            .await?
            .into_iter()
            .filter(|o| opts.volumes || o.kind != ObjectKind::Volume)
            .collect();
        // What failed in the first pass is either gone now or tried again here.
        outcome.failed.retain(|f| f.id.is_empty());
        if !left.is_empty() {
            let again = remove_objects(docker, &left, opts).await;
            outcome.removed.merge(again.removed);
            outcome.failed.extend(again.failed);
        }
    }
    let mut failed = outcome.failed.into_iter();
    match failed.next() {
        None => Ok(outcome.removed),
        Some(first) => {
            for other in failed {
                tracing::warn!(kind = %other.kind, name = %other.name, error = %other.error,
                    "could not remove an object labelled {label}");
            }
            Err(first.error)
        }
    }
}

/// One object [`remove_objects`] could not remove.
#[derive(Debug)]
pub struct RemoveFailure {
    /// Its kind.
    pub kind: ObjectKind,
    /// Its id; empty for the wait of removed services' containers (the services are gone, some
    /// of their containers are not).
    pub id: String,
    /// Its name (for the wait of services' containers: which services).
    pub name: String,
    /// Why.
    pub error: EngineError,
}

/// What [`remove_objects`] did: what it removed, and what it could not.
#[derive(Debug, Default)]
pub struct RemoveOutcome {
    /// Objects removed, or found gone already.
    pub removed: RemoveReport,
    /// Objects that are (or may be) still there.
    pub failed: Vec<RemoveFailure>,
}

/// Removes `objects` in order: services, then (once their containers are stopped and gone)
/// plain containers, then volumes (only with [`RemoveOptions::volumes`]), secrets, configs and
/// networks. Objects already gone count as removed; a failing object is recorded in
/// [`RemoveOutcome::failed`] and the rest is still attempted.
pub async fn remove_objects(
    docker: &Docker,
    objects: &[LabelledObject],
    opts: &RemoveOptions,
) -> RemoveOutcome {
    let deadline = Instant::now() + opts.timeout;
    let of = |kind: ObjectKind| objects.iter().filter(move |o| o.kind == kind);
    let mut outcome = RemoveOutcome::default();

    let deleted = join_all(of(ObjectKind::Service).map(|s| async move {
        let result = tolerate_gone(docker.delete_service(&s.id).await, || {
            format!("removing service {}", s.name)
        });
        (s, result)
    }))
    .await;
    // Each removed service's stop grace period in seconds.
    let mut grace = HashMap::new();
    for (s, result) in deleted {
        match result {
            Ok(()) => {
                grace.insert(s.id.clone(), s.stop_grace_seconds);
                outcome.removed.services.push(s.name.clone());
            }
            Err(error) => outcome.failed.push(failure(s, error)),
        }
    }
    if !grace.is_empty() {
        if let Err(error) = stop_containers_and_wait(docker, &grace, deadline, opts.timeout).await {
            outcome.failed.push(RemoveFailure {
                kind: ObjectKind::Service,
                id: String::new(),
                name: outcome.removed.services.join(","),
                error,
            });
        }
    }

    // Plain containers (helpers) may mount the volumes and sit on the networks: they go next.
    let containers = join_all(of(ObjectKind::Container).map(|c| async move {
        let remove = RemoveContainerOptions {
            force: true,
            ..Default::default()
        };
        let result = tolerate_gone(docker.remove_container(&c.id, Some(remove)).await, || {
            format!("removing container {}", c.name)
        });
        (c, result)
    }))
    .await;
    record(&mut outcome, containers, |r| &mut r.containers);

    let volumes = join_all(
        of(ObjectKind::Volume)
            .filter(|_| opts.volumes)
            .map(|v| async move {
                let result = retry_while_in_use(
                    deadline,
                    opts.timeout,
                    &format!("volume {}", v.name),
                    || docker.remove_volume(&v.id, None::<RemoveVolumeOptions>),
                )
                .await;
                (v, result)
            }),
    );
    let secrets = join_all(of(ObjectKind::Secret).map(|s| async move {
        let result = tolerate_gone(docker.delete_secret(&s.id).await, || {
            format!("removing secret {}", s.name)
        });
        (s, result)
    }));
    let configs = join_all(of(ObjectKind::Config).map(|c| async move {
        let result = tolerate_gone(docker.delete_config(&c.id).await, || {
            format!("removing config {}", c.name)
        });
        (c, result)
    }));
    let networks = join_all(
        of(ObjectKind::Network)
            .map(|n| async move { (n, remove_network(docker, n, deadline, opts.timeout).await) }),
    );
    let (volumes, secrets, configs, networks) = tokio::join!(volumes, secrets, configs, networks);
    record(&mut outcome, volumes, |r| &mut r.volumes);
    record(&mut outcome, secrets, |r| &mut r.secrets);
    record(&mut outcome, configs, |r| &mut r.configs);
    record(&mut outcome, networks, |r| &mut r.networks);
    outcome
}

fn failure(o: &LabelledObject, error: EngineError) -> RemoveFailure {
    RemoveFailure {
        kind: o.kind,
        id: o.id.clone(),
        name: o.name.clone(),
        error,
    }
}

fn record(
    outcome: &mut RemoveOutcome,
    results: Vec<(&LabelledObject, Result<(), EngineError>)>,
    names: impl Fn(&mut RemoveReport) -> &mut Vec<String>,
) {
    for (o, result) in results {
        match result {
            Ok(()) => names(&mut outcome.removed).push(o.name.clone()),
            Err(error) => outcome.failed.push(failure(o, error)),
        }
    }
}

/// Removes a network, retrying while endpoints of removed tasks linger, and waits until the
/// node's local copy is gone too.
async fn remove_network(
    docker: &Docker,
    n: &LabelledObject,
    deadline: Instant,
    timeout: Duration,
) -> Result<(), EngineError> {
    retry_while_in_use(deadline, timeout, &format!("network {}", n.name), || {
        docker.remove_network(&n.id)
    })
    .await?;
    // The node's local copy of an overlay network outlives its removal by a moment; a deploy in
    // that moment would find it "existing" and then fail to use it.
    while docker.inspect_network(&n.id, None).await.is_ok() {
        if Instant::now() >= deadline {
            return Err(EngineError::RemoveTimeout {
                what: format!("network {}", n.name),
                seconds: timeout.as_secs(),
            });
        }
        tokio::time::sleep(POLL / 2).await;
    }
    Ok(())
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
    let container_filters =
        HashMap::from([("label".to_owned(), vec![SERVICE_ID_LABEL.to_owned()])]);
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
                let service = c.labels.as_ref()?.get(SERVICE_ID_LABEL)?;
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
