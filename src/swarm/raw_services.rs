//! Listing services from the engine's own JSON, because bollard's model reads the container
//! spec's healthcheck under `HealthCheck` while the engine writes `Healthcheck`: through bollard,
//! every stored healthcheck is silently lost (and a compared spec would always differ).

use std::collections::HashMap;

use bollard::Docker;
use bollard::models::Service;
use serde_json::Value;

use super::docker::EngineError;

/// Why the raw listing failed.
#[derive(Debug, thiserror::Error)]
#[error("listing services from the engine's JSON: {0}")]
pub struct RawError(String);

/// The services matching `filters` (the engine's `filters` query), healthchecks included.
pub async fn list_services(
    docker: &Docker,
    filters: &HashMap<String, Vec<String>>,
) -> Result<Vec<Service>, EngineError> {
    list_services_json(docker, filters)
        .await?
        .into_iter()
        .map(serde_json::from_value)
        .collect::<Result<_, _>>()
        .map_err(|e| EngineError::Raw {
            message: format!("decoding services: {e}"),
        })
}

/// The services matching `filters` as the engine's JSON — with `PreviousSpec`, which bollard's
/// model lacks — where each container spec's `Healthcheck` is renamed `HealthCheck`, so `Spec`
/// and `PreviousSpec` decode as bollard's `ServiceSpec`.
pub async fn list_services_json(
    docker: &Docker,
    filters: &HashMap<String, Vec<String>>,
) -> Result<Vec<Value>, EngineError> {
    let body = get(docker, filters)
        .await
        .map_err(|e| EngineError::Raw { message: e.0 })?;
    let mut services: Vec<Value> = serde_json::from_str(&body).map_err(|e| EngineError::Raw {
        message: format!("decoding services: {e}"),
    })?;
    for service in &mut services {
        for pointer in [
            "/Spec/TaskTemplate/ContainerSpec",
            "/PreviousSpec/TaskTemplate/ContainerSpec",
        ] {
            if let Some(container) = service.pointer_mut(pointer).and_then(Value::as_object_mut)
                && let Some(health) = container.remove("Healthcheck")
            {
                container.insert("HealthCheck".to_owned(), health);
            }
        }
    }
    Ok(services)
}

async fn get(docker: &Docker, filters: &HashMap<String, Vec<String>>) -> Result<String, RawError> {
    let host = std::env::var("DOCKER_HOST").unwrap_or_default();
    let mut builder = reqwest::Client::builder();
    let base = if let Some(rest) = host.strip_prefix("tcp://") {
        format!("http://{rest}")
    } else {
        let socket = host
            .strip_prefix("unix://")
            .filter(|s| !s.is_empty())
            .unwrap_or("/var/run/docker.sock")
            .to_owned();
        builder = builder.unix_socket(std::path::PathBuf::from(socket));
        "http://localhost".to_owned()
    };
    let client = builder.build().map_err(|e| RawError(e.to_string()))?;
    let version = docker.client_version();
    let filters = serde_json::to_string(filters).map_err(|e| RawError(e.to_string()))?;
    let url = format!(
        "{base}/v{}.{}/services",
        version.major_version, version.minor_version
    );
    let url =
        reqwest::Url::parse_with_params(&url, &[("filters", filters.as_str()), ("status", "true")])
            .map_err(|e| RawError(e.to_string()))?;
    let response = client
        .get(url)
        .send()
        .await
        .map_err(|e| RawError(e.to_string()))?;
    let status = response.status();
    let text = response.text().await.map_err(|e| RawError(e.to_string()))?;
    if !status.is_success() {
        return Err(RawError(format!("{status}: {}", text.trim())));
    }
    Ok(text)
}
