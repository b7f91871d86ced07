//! Waiting until a deployed stack has converged: every service runs its desired tasks (healthy,
//! where it has a healthcheck), jobs completed, rolling updates settled; or explaining why not.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::models::{Service, ServiceUpdateStatusStateEnum, Task, TaskState};
use bollard::query_parameters::{ListServicesOptions, ListTasksOptions};

use super::docker::{EngineError, NAMESPACE_LABEL, is_not_found};

mod diagnose;
mod service_state;

use service_state::{ServiceState, evaluate};

/// How to wait for a stack.
#[derive(Clone, Debug)]
pub struct ConvergeOptions {
    /// Explicit timeout; wins over the stack's `coop-cloud.<stack>.timeout` label.
    pub timeout: Option<Duration>,
    /// Timeout when neither [`timeout`](Self::timeout) nor the label is set.
    pub default_timeout: Duration,
    /// How often the services and tasks are polled (Docker has no task events).
    pub poll_interval: Duration,
    /// How many log lines of a failing task's container a failure report carries.
    pub log_lines: usize,
    /// How long a task must have been running before it counts (docker/cli similarly waits the
    /// update monitor period before calling a service converged): a process that exits a moment
    /// after it started is `running` for a poll or two, and must not make its service look
    /// converged.
    pub settle: Duration,
}

impl Default for ConvergeOptions {
    fn default() -> Self {
        ConvergeOptions {
            timeout: None,
            default_timeout: Duration::from_secs(300),
            poll_interval: Duration::from_millis(200),
            log_lines: 20,
            settle: Duration::from_secs(3),
        }
    }
}

/// Why a service has not converged, with what the engine says about its most telling task.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ServiceFailure {
    /// The full service name.
    pub service: String,
    /// What is missing (e.g. `0/1 tasks running`, `update rolled back: …`).
    pub reason: String,
    /// The state of the most recent unsuccessful task (e.g. `failed`, `starting`).
    pub task_state: Option<String>,
    /// The task's error (e.g. `task: non-zero exit (127)`).
    pub task_error: Option<String>,
    /// The last healthcheck output of the task's container, if it has a healthcheck.
    pub health: Option<String>,
    /// The last log lines of the task's container.
    pub logs: Vec<String>,
}

impl fmt::Display for ServiceFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "service {}: {}", self.service, self.reason)?;
        if let Some(state) = &self.task_state {
            write!(f, "; last task {state}")?;
        }
        if let Some(err) = &self.task_error {
            write!(f, ": {err}")?;
        }
        if let Some(health) = &self.health {
            write!(f, "\n  last healthcheck output: {}", health.trim())?;
        }
        if !self.logs.is_empty() {
            write!(f, "\n  last log lines:")?;
            for line in &self.logs {
                write!(f, "\n    {line}")?;
            }
        }
        Ok(())
    }
}

/// Why a stack did not converge.
#[derive(Debug, thiserror::Error)]
pub enum ConvergeError {
    /// Talking to the engine failed.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The stack has no services at all (nothing deployed under this name).
    #[error("stack {stack:?} has no services")]
    NoServices {
        /// The stack.
        stack: String,
    },
    /// A service failed in a way that waiting cannot fix (a rollback, a job that will not retry).
    #[error("stack {stack:?} failed to converge: {failure}")]
    Failed {
        /// The stack.
        stack: String,
        /// The failing service.
        failure: Box<ServiceFailure>,
    },
    /// The timeout passed with services still not converged.
    #[error("stack {stack:?} did not converge within {seconds} s:{}", list(.failures))]
    Timeout {
        /// The stack.
        stack: String,
        /// The timeout.
        seconds: u64,
        /// Every service that had not converged.
        failures: Vec<ServiceFailure>,
    },
}

fn list(failures: &[ServiceFailure]) -> String {
    failures.iter().map(|f| format!("\n- {f}")).collect()
}

/// The label holding a stack's converge timeout in seconds (abra's convention).
pub fn timeout_label(stack: &str) -> String {
    format!("coop-cloud.{stack}.timeout")
}

/// Waits until stack `stack` has converged, calling `progress` with a line whenever a service's
/// state changes (e.g. `app_web: 1/2 running`).
///
/// Converged means, for every service of the stack: replicated and global services run their
/// desired number of tasks of the current spec, each up for at least [`ConvergeOptions::settle`]
/// (a task with a healthcheck only counts as running once healthy: Swarm keeps it `starting`
/// until then), jobs completed their current iteration,
/// and the rolling update (if any) finished. A rollback, or a failed task that its restart policy
/// will not retry, fails at once; anything else is retried until the timeout, after which the
/// error names each service still missing, its last task's state and error, and its last logs.
pub async fn wait(
    docker: &Docker,
    stack: &str,
    opts: &ConvergeOptions,
    mut progress: impl FnMut(&str),
) -> Result<(), ConvergeError> {
    let started = Instant::now();
    let mut timeout = opts.timeout;
    let mut last_lines: HashMap<String, String> = HashMap::new();
    let mut settling = Settling::default();
    loop {
        let services = list_services(docker, stack).await?;
        if services.is_empty() {
            return Err(ConvergeError::NoServices {
                stack: stack.to_owned(),
            });
        }
        let timeout = *timeout
            .get_or_insert_with(|| label_timeout(stack, &services).unwrap_or(opts.default_timeout));
        let tasks = match list_tasks(docker, &services).await {
            Ok(tasks) => tasks,
            // A service vanished between the two calls: look again, after the usual pause.
            Err(e) if is_not_found(&e) => {
                tokio::time::sleep(opts.poll_interval).await;
                continue;
            }
            Err(e) => {
                return Err(
                    EngineError::api(format!("listing the tasks of stack {stack}"), e).into(),
                );
            }
        };
        settling.observe(&tasks);
        let states: BTreeMap<&str, (&Service, ServiceState, Vec<&Task>)> = services
            .iter()
            .map(|(name, service)| {
                let id = service.id.as_deref().unwrap_or_default();
                let own: Vec<&Task> = tasks
                    .iter()
                    .filter(|t| t.service_id.as_deref() == Some(id))
                    .collect();
                let state = evaluate(service, &own, |t| settling.settled(t, opts.settle));
                (name.as_str(), (service, state, own))
            })
            .collect();
        for (name, (_, state, _)) in &states {
            if last_lines.get(*name) != Some(&state.summary) {
                progress(&format!("{name}: {}", state.summary));
                last_lines.insert((*name).to_owned(), state.summary.clone());
            }
        }
        if let Some((name, (_, state, own))) =
            states.iter().find(|(_, (_, s, _))| s.fatal.is_some())
        {
            let reason = state.fatal.clone().unwrap_or_default();
            let failure = diagnose::failure(docker, name, reason, own, opts.log_lines).await;
            return Err(ConvergeError::Failed {
                stack: stack.to_owned(),
                failure: Box::new(failure),
            });
        }
        if states.values().all(|(_, s, _)| s.converged) {
            return Ok(());
        }
        if started.elapsed() >= timeout {
            let mut failures = Vec::new();
            for (name, (_, state, own)) in states.iter().filter(|(_, (_, s, _))| !s.converged) {
                failures.push(
                    diagnose::failure(docker, name, state.summary.clone(), own, opts.log_lines)
                        .await,
                );
            }
            return Err(ConvergeError::Timeout {
                stack: stack.to_owned(),
                seconds: timeout.as_secs(),
                failures,
            });
        }
        tokio::time::sleep(opts.poll_interval).await;
    }
}

/// When each running task was first seen running, to tell a task that stays up from one that
/// exits a moment after it started.
#[derive(Default)]
struct Settling {
    first_seen: HashMap<String, Instant>,
}

impl Settling {
    /// Notes the tasks running now; forgets those no longer running.
    fn observe(&mut self, tasks: &[Task]) {
        let now = Instant::now();
        let running: Vec<&str> = tasks
            .iter()
            .filter(|t| t.status.as_ref().and_then(|s| s.state) == Some(TaskState::RUNNING))
            .filter_map(|t| t.id.as_deref())
            .collect();
        self.first_seen
            .retain(|id, _| running.contains(&id.as_str()));
        for id in running {
            self.first_seen.entry(id.to_owned()).or_insert(now);
        }
    }

    /// Whether `task` has been running for `settle`: by the engine's own timestamp of its last
    /// state change (so a stack that was already up converges at once), or else by how long this
    /// wait has seen it running.
    fn settled(&self, task: &Task, settle: Duration) -> bool {
        let engine_age = task
            .status
            .as_ref()
            .and_then(|s| s.timestamp.as_deref())
            .and_then(|ts| chrono::DateTime::parse_from_rfc3339(ts).ok())
            .and_then(|at| (chrono::Utc::now() - at.to_utc()).to_std().ok());
        let seen = task
            .id
            .as_deref()
            .and_then(|id| self.first_seen.get(id))
            .map(Instant::elapsed);
        [engine_age, seen]
            .into_iter()
            .flatten()
            .any(|age| age >= settle)
    }
}

/// The stack's timeout from the `coop-cloud.<stack>.timeout` label of any of its services.
fn label_timeout(stack: &str, services: &BTreeMap<String, Service>) -> Option<Duration> {
    let key = timeout_label(stack);
    services
        .values()
        .filter_map(|s| {
            s.spec
                .as_ref()?
                .labels
                .as_ref()?
                .get(&key)?
                .trim()
                .parse::<u64>()
                .ok()
        })
        .max()
        .map(Duration::from_secs)
}

async fn list_services(
    docker: &Docker,
    stack: &str,
) -> Result<BTreeMap<String, Service>, EngineError> {
    let filters = HashMap::from([(
        "label".to_owned(),
        vec![format!("{NAMESPACE_LABEL}={stack}")],
    )]);
    let services = docker
        .list_services(Some(ListServicesOptions {
            filters: Some(filters),
            status: Some(true),
        }))
        .await
        .map_err(|e| EngineError::api(format!("listing the services of stack {stack}"), e))?;
    Ok(services
        .into_iter()
        .filter_map(|s| Some((s.spec.as_ref()?.name.clone()?, s)))
        .collect())
}

async fn list_tasks(
    docker: &Docker,
    services: &BTreeMap<String, Service>,
) -> Result<Vec<Task>, bollard::errors::Error> {
    let ids: Vec<String> = services.values().filter_map(|s| s.id.clone()).collect();
    let filters = HashMap::from([("service".to_owned(), ids)]);
    docker
        .list_tasks(Some(ListTasksOptions {
            filters: Some(filters),
        }))
        .await
}

/// Whether the update state means "still rolling".
pub(crate) fn is_updating(state: Option<&ServiceUpdateStatusStateEnum>) -> bool {
    matches!(state, Some(ServiceUpdateStatusStateEnum::UPDATING))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn running_since(id: &str, at: chrono::DateTime<chrono::Utc>) -> Task {
        serde_json::from_value(serde_json::json!({
            "ID": id,
            "Status": {"State": "running", "Timestamp": at.to_rfc3339()}
        }))
        .unwrap()
    }

    #[test]
    fn a_task_settles_by_the_engine_timestamp_or_by_being_seen_long_enough() {
        let settle = Duration::from_millis(300);
        let old = running_since("old", chrono::Utc::now() - chrono::Duration::seconds(60));
        // Stamped by an engine whose clock is ahead: only watching it can settle it.
        let fresh = running_since("fresh", chrono::Utc::now() + chrono::Duration::hours(1));
        let mut settling = Settling::default();
        settling.observe(&[old.clone(), fresh.clone()]);
        assert!(settling.settled(&old, settle), "up for a minute already");
        assert!(!settling.settled(&fresh, settle), "just started");
        std::thread::sleep(settle);
        settling.observe(std::slice::from_ref(&fresh));
        assert!(
            settling.settled(&fresh, settle),
            "seen running for the whole window"
        );
        // A task that stopped running is forgotten: seen again, its window starts over.
        settling.observe(&[]);
        let restarted = running_since("fresh", chrono::Utc::now() + chrono::Duration::hours(1));
        settling.observe(std::slice::from_ref(&restarted));
        assert!(!settling.settled(&restarted, settle));
    }
}
