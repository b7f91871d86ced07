//! Judging one service from its spec, update status and tasks: converged, still on its way, or
//! failed for good.

use bollard::models::{
    Service, ServiceUpdateStatusStateEnum, Task, TaskSpecRestartPolicyConditionEnum, TaskState,
};

use super::is_updating;

/// Where one service stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ServiceState {
    /// Everything the service should do, it does.
    pub converged: bool,
    /// One line for progress output, e.g. `1/2 running` or `updating`.
    pub summary: String,
    /// Set when waiting cannot help (a rollback, a failed task that will not be retried).
    pub fatal: Option<String>,
}

/// Judges `service` from its own `tasks`. A running task only counts towards convergence once
/// `stable` says it has stayed up long enough: a process that exits a moment after it started is
/// `running` for a poll or two, and must not make the service look converged.
pub(crate) fn evaluate(
    service: &Service,
    tasks: &[&Task],
    stable: impl Fn(&Task) -> bool,
) -> ServiceState {
    let spec = service.spec.clone().unwrap_or_default();
    let mode = spec.mode.clone().unwrap_or_default();
    let update = service.update_status.as_ref();
    let update_state = update.and_then(|u| u.state.as_ref());
    let update_message = update.and_then(|u| u.message.clone()).unwrap_or_default();

    if let Some(state) = update_state {
        use ServiceUpdateStatusStateEnum::*;
        let fatal = match state {
            ROLLBACK_STARTED | ROLLBACK_COMPLETED | ROLLBACK_PAUSED => Some("update rolled back"),
            PAUSED => Some("update paused after a failure"),
            _ => None,
        };
        if let Some(what) = fatal {
            return ServiceState {
                converged: false,
                summary: what.to_owned(),
                fatal: Some(format!("{what}: {update_message}")),
            };
        }
    }

    let restarts = spec
        .task_template
        .as_ref()
        .and_then(|t| t.restart_policy.as_ref())
        .and_then(|r| r.condition.as_ref())
        .is_none_or(|c| *c != TaskSpecRestartPolicyConditionEnum::NONE);
    let template = spec
        .task_template
        .as_ref()
        .and_then(|t| t.container_spec.as_ref())
        .map(|c| serde_json::to_value(c).unwrap_or_default());
    // Tasks of the current spec: after an update, old tasks may still be running for a moment
    // before the orchestrator even marks the update as started.
    let current = |t: &&&Task| {
        let own = t.spec.as_ref().and_then(|s| s.container_spec.as_ref());
        own.map(|c| serde_json::to_value(c).unwrap_or_default()) == template
    };
    let state_of = |t: &Task| t.status.as_ref().and_then(|s| s.state);
    let failed = |t: &&&Task| matches!(state_of(t), Some(TaskState::FAILED | TaskState::REJECTED));

    if let Some(job) = mode
        .replicated_job
        .as_ref()
        .map(|j| j.total_completions.or(j.max_concurrent).unwrap_or(1))
        .or(mode
            .global_job
            .as_ref()
            .map(|_| desired_from_status(service, tasks)))
    {
        let iteration = service
            .job_status
            .as_ref()
            .and_then(|j| j.job_iteration.as_ref())
            .and_then(|v| v.index);
        let this_run: Vec<&&Task> = tasks
            .iter()
            .filter(|t| t.job_iteration.as_ref().and_then(|v| v.index) == iteration)
            .collect();
        let done = this_run
            .iter()
            .filter(|t| state_of(t) == Some(TaskState::COMPLETE))
            .count() as i64;
        let fatal =
            (!restarts && this_run.iter().any(failed)).then(|| "a job task failed".to_owned());
        return ServiceState {
            converged: done >= job,
            summary: format!("{done}/{job} completed"),
            fatal,
        };
    }

    let want = match mode.replicated.as_ref() {
        Some(r) => r.replicas.unwrap_or(1),
        None => desired_from_status(service, tasks),
    };
    let running: Vec<&&Task> = tasks
        .iter()
        .filter(|t| t.desired_state == Some(TaskState::RUNNING))
        .filter(|t| state_of(t) == Some(TaskState::RUNNING))
        .filter(current)
        .collect();
    let settled = running.iter().filter(|t| stable(t)).count() as i64;
    let running = running.len() as i64;
    let updating = is_updating(update_state);
    let fatal = (!restarts && tasks.iter().filter(current).any(|t| failed(&t)))
        .then(|| "a task failed and its restart policy is `none`".to_owned());
    let mut summary = format!("{running}/{want} running");
    if settled < running {
        summary.push_str(&format!(" ({} settling)", running - settled));
    }
    if updating {
        summary.push_str(", updating");
    }
    ServiceState {
        converged: settled == want && !updating,
        summary,
        fatal,
    }
}

/// The number of tasks a global service (or global job) wants: the engine's `ServiceStatus`, or
/// failing that one per node its tasks were scheduled on.
fn desired_from_status(service: &Service, tasks: &[&Task]) -> i64 {
    if let Some(desired) = service
        .service_status
        .as_ref()
        .and_then(|s| s.desired_tasks)
    {
        return desired as i64;
    }
    let mut nodes: Vec<&str> = tasks.iter().filter_map(|t| t.node_id.as_deref()).collect();
    nodes.sort_unstable();
    nodes.dedup();
    nodes.len().max(1) as i64
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn service(value: serde_json::Value) -> Service {
        serde_json::from_value(value).unwrap()
    }

    fn task(value: serde_json::Value) -> Task {
        serde_json::from_value(value).unwrap()
    }

    const IMAGE: &str = "ccci-fixture/nginx:latest";

    fn always(_: &Task) -> bool {
        true
    }

    fn web(replicas: i64) -> Service {
        service(json!({
            "ID": "s1",
            "Spec": {"Name": "st_web", "Mode": {"Replicated": {"Replicas": replicas}},
                     "TaskTemplate": {"ContainerSpec": {"Image": IMAGE}}}
        }))
    }

    fn running_task(image: &str) -> Task {
        task(json!({"ServiceID": "s1", "DesiredState": "running",
                    "Spec": {"ContainerSpec": {"Image": image}}, "Status": {"State": "running"}}))
    }

    #[test]
    fn replicated_service_converges_when_all_replicas_of_the_current_spec_run() {
        let t = running_task(IMAGE);
        assert!(evaluate(&web(1), &[&t], always).converged);
        let state = evaluate(&web(2), &[&t], always);
        assert!(!state.converged);
        assert_eq!(state.summary, "1/2 running");
    }

    #[test]
    fn a_running_task_that_has_not_settled_does_not_count_yet() {
        let t = running_task(IMAGE);
        let state = evaluate(&web(1), &[&t], |_| false);
        assert!(!state.converged);
        assert_eq!(state.summary, "1/1 running (1 settling)");
    }

    #[test]
    fn tasks_of_an_older_spec_do_not_count() {
        let old = running_task("ccci-fixture/nginx:1.24");
        assert!(!evaluate(&web(1), &[&old], always).converged);
    }

    #[test]
    fn a_rollback_is_fatal() {
        let mut s = web(1);
        s.update_status = serde_json::from_value(
            json!({"State": "rollback_completed", "Message": "rollback completed"}),
        )
        .unwrap();
        let t = running_task(IMAGE);
        let state = evaluate(&s, &[&t], always);
        assert!(state.fatal.unwrap().contains("rolled back"));
    }

    #[test]
    fn a_job_converges_when_its_current_iteration_completed() {
        let s = service(json!({
            "ID": "s1", "JobStatus": {"JobIteration": {"Index": 7}},
            "Spec": {"Name": "st_job", "Mode": {"ReplicatedJob": {"MaxConcurrent": 1, "TotalCompletions": 1}},
                     "TaskTemplate": {"ContainerSpec": {"Image": IMAGE}}}
        }));
        let old = task(json!({"JobIteration": {"Index": 6}, "Status": {"State": "complete"}}));
        let now = task(json!({"JobIteration": {"Index": 7}, "Status": {"State": "running"}}));
        assert!(!evaluate(&s, &[&old, &now], always).converged);
        let done = task(json!({"JobIteration": {"Index": 7}, "Status": {"State": "complete"}}));
        assert!(evaluate(&s, &[&old, &done], always).converged);
    }

    #[test]
    fn a_failed_job_task_without_restarts_is_fatal() {
        let s = service(json!({
            "ID": "s1", "JobStatus": {"JobIteration": {"Index": 1}},
            "Spec": {"Name": "st_job", "Mode": {"ReplicatedJob": {}},
                     "TaskTemplate": {"ContainerSpec": {"Image": IMAGE}, "RestartPolicy": {"Condition": "none"}}}
        }));
        let failed = task(
            json!({"JobIteration": {"Index": 1}, "Status": {"State": "failed", "Err": "exit 1"}}),
        );
        assert!(evaluate(&s, &[&failed], always).fatal.is_some());
    }
}
