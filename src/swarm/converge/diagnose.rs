//! Explaining a service that did not converge: its most telling task's state and error, the last
//! healthcheck output and the last log lines of that task's container.

use bollard::Docker;
use bollard::models::{Task, TaskState};
use bollard::query_parameters::LogsOptions;
use futures::StreamExt;

use super::ServiceFailure;

/// How long reading one container's state or logs may take.
const READ_LIMIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Builds the failure report for service `name`. Best effort: whatever cannot be read (a container
/// already removed, logs unavailable) is simply left out.
pub(crate) async fn failure(
    docker: &Docker,
    name: &str,
    reason: String,
    tasks: &[&Task],
    log_lines: usize,
) -> ServiceFailure {
    let mut failure = ServiceFailure {
        service: name.to_owned(),
        reason,
        ..Default::default()
    };
    let Some(task) = most_telling(tasks) else {
        return failure;
    };
    let status = task.status.clone().unwrap_or_default();
    failure.task_state = status.state.map(|s| s.to_string());
    failure.task_error = status
        .err
        .clone()
        .or_else(|| status.message.clone().filter(|m| !m.is_empty()));
    let Some(container) = status
        .container_status
        .and_then(|c| c.container_id)
        .filter(|c| !c.is_empty())
    else {
        return failure;
    };
    // Best effort and bounded: a diagnosis must never hold back the failure it explains.
    let inspected = tokio::time::timeout(READ_LIMIT, docker.inspect_container(&container, None));
    if let Ok(Ok(inspect)) = inspected.await {
        failure.health = inspect
            .state
            .and_then(|s| s.health)
            .and_then(|h| h.log)
            .and_then(|log| log.last().and_then(|entry| entry.output.clone()))
            .filter(|out| !out.trim().is_empty());
    }
    failure.logs = tokio::time::timeout(READ_LIMIT, last_log_lines(docker, &container, log_lines))
        .await
        .unwrap_or_default();
    failure
}

/// The task that explains most: the newest one that failed, else the newest one not running.
fn most_telling<'a>(tasks: &[&'a Task]) -> Option<&'a Task> {
    let newest = |candidates: Vec<&'a Task>| {
        candidates.into_iter().max_by_key(|t| {
            t.status
                .as_ref()
                .and_then(|s| s.timestamp.clone())
                .unwrap_or_default()
        })
    };
    let state = |t: &Task| t.status.as_ref().and_then(|s| s.state);
    let failed: Vec<&Task> = tasks
        .iter()
        .copied()
        .filter(|t| matches!(state(t), Some(TaskState::FAILED | TaskState::REJECTED)))
        .collect();
    newest(failed).or_else(|| {
        newest(
            tasks
                .iter()
                .copied()
                .filter(|t| state(t) != Some(TaskState::RUNNING))
                .collect(),
        )
    })
}

async fn last_log_lines(docker: &Docker, container: &str, lines: usize) -> Vec<String> {
    let options = LogsOptions {
        stdout: true,
        stderr: true,
        tail: lines.to_string(),
        ..Default::default()
    };
    let mut stream = docker.logs(container, Some(options));
    let mut text = String::new();
    while let Some(Ok(chunk)) = stream.next().await {
        text.push_str(&chunk.to_string());
    }
    let all: Vec<String> = text.lines().map(str::to_owned).collect();
    all[all.len().saturating_sub(lines)..].to_vec()
}
