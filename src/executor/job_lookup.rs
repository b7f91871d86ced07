//! What a test step needs to know from Swarm besides the request: the app's proxy-facing
//! services and swarm secrets (the job mounts them), from one listing, and, in proxy mode, the
//! proxy task's address (the job's `/etc/hosts`).

use std::collections::HashMap;

use bollard::Docker;
use bollard::models::TaskSpecContainerSpecSecrets;
use bollard::query_parameters::ListTasksOptions;

use super::ExecError;
use super::builtin::{ProxyTarget, stack_services, targets_of};
use super::job_spec;

/// The address on `network` of a running task of the proxy's `service`, from its container
/// (on this node; `None` when it is elsewhere or not running).
pub async fn proxy_ip(docker: &Docker, service: &str, network: &str) -> Option<String> {
    let filters = HashMap::from([
        ("service".to_string(), vec![service.to_string()]),
        ("desired-state".to_string(), vec!["running".to_string()]),
    ]);
    let tasks = docker
        .list_tasks(Some(ListTasksOptions {
            filters: Some(filters),
        }))
        .await
        .ok()?;
    for task in tasks {
        let Some(id) = task
            .status
            .and_then(|s| s.container_status)
            .and_then(|c| c.container_id)
        else {
            continue;
        };
        let ip = docker
            .inspect_container(&id, None)
            .await
            .ok()
            .and_then(|c| c.network_settings?.networks?.remove(network)?.ip_address)
            .filter(|ip| !ip.is_empty());
        if ip.is_some() {
            return ip;
        }
    }
    None
}

/// What a test step reads of the app's services, from one listing of them.
pub struct AppServices {
    /// The proxy-facing services (the built-in check's targets, the direct-mode URL).
    pub targets: Vec<ProxyTarget>,
    /// The swarm secrets of the app's services, as the job mounts them.
    pub secrets: Vec<TaskSpecContainerSpecSecrets>,
}

impl AppServices {
    /// Lists the services of `stack` once.
    pub async fn lookup(docker: &Docker, stack: &str) -> Result<AppServices, ExecError> {
        let services = stack_services(docker, stack).await?;
        Ok(AppServices {
            targets: targets_of(&services),
            secrets: job_spec::app_secrets(services.into_iter().flat_map(|s| {
                s.spec
                    .and_then(|s| s.task_template)
                    .and_then(|t| t.container_spec)
                    .and_then(|c| c.secrets)
                    .unwrap_or_default()
            })),
        })
    }
}
