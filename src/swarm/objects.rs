//! Every Docker object carrying some labels, listed into one shape ([`LabelledObject`]): services,
//! plain containers, volumes, secrets, configs and networks, with their labels and creation time.
//! [`super::remove`] removes such lists; the janitor decides which to remove.

use std::collections::HashMap;
use std::fmt;

use bollard::Docker;
use bollard::query_parameters::{
    ListConfigsOptions, ListContainersOptions, ListNetworksOptions, ListSecretsOptions,
    ListServicesOptions, ListVolumesOptions,
};
use chrono::{DateTime, Utc};

use super::docker::EngineError;

/// Label Swarm puts on the containers of a service's tasks.
pub const SERVICE_ID_LABEL: &str = "com.docker.swarm.service.id";

/// The kinds of objects cc-ci creates, in the order they are removed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ObjectKind {
    /// A swarm service (its task containers go with it).
    Service,
    /// A plain container, not a service's task (e.g. a helper copying a volume).
    Container,
    /// A volume.
    Volume,
    /// A swarm secret.
    Secret,
    /// A swarm config.
    Config,
    /// A network.
    Network,
}

impl ObjectKind {
    /// Every kind, in removal order.
    pub const ALL: [ObjectKind; 6] = [
        ObjectKind::Service,
        ObjectKind::Container,
        ObjectKind::Volume,
        ObjectKind::Secret,
        ObjectKind::Config,
        ObjectKind::Network,
    ];

    /// The lower-case name (`service`, `container`, …), also the `kind` label of metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            ObjectKind::Service => "service",
            ObjectKind::Container => "container",
            ObjectKind::Volume => "volume",
            ObjectKind::Secret => "secret",
            ObjectKind::Config => "config",
            ObjectKind::Network => "network",
        }
    }
}

impl fmt::Display for ObjectKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One object as listed: enough to decide about it and to remove it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LabelledObject {
    /// What it is.
    pub kind: ObjectKind,
    /// The id to remove it by (a volume's name: volumes have no id).
    pub id: String,
    /// Its name, for reports and logs (a container's first name, without the `/`).
    pub name: String,
    /// Its labels (a service's, secret's or config's spec labels).
    pub labels: HashMap<String, String>,
    /// When the engine created it, if it said so in a form we read.
    pub created: Option<DateTime<Utc>>,
    /// For a service: the stop grace period of its tasks, in seconds (Swarm's default: 10).
    pub stop_grace_seconds: i32,
}

/// The filter `docker … ls --filter label=A --filter label=B` uses: objects carrying every label.
fn label_filter(labels: &[String]) -> Option<HashMap<String, Vec<String>>> {
    Some(HashMap::from([("label".to_owned(), labels.to_vec())]))
}

fn parse_time(s: Option<&str>) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s?)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// Lists every service, plain container (running or not; a service's task containers are left
/// to their service), volume, secret, config and network carrying **all** of `labels` (each
/// `key` or `key=value`), in [`ObjectKind::ALL`] order.
pub async fn list_labelled(
    docker: &Docker,
    labels: &[String],
) -> Result<Vec<LabelledObject>, EngineError> {
    let what = labels.join(",");
    let mut out = Vec::new();

    let services = docker
        .list_services(Some(ListServicesOptions {
            filters: label_filter(labels),
            status: None,
        }))
        .await
        .map_err(|e| EngineError::api(format!("listing services labelled {what}"), e))?;
    out.extend(services.into_iter().filter_map(|s| {
        let spec = s.spec?;
        let nanos = spec
            .task_template
            .as_ref()
            .and_then(|t| t.container_spec.as_ref())
            .and_then(|c| c.stop_grace_period)
            .unwrap_or(10_000_000_000);
        Some(LabelledObject {
            kind: ObjectKind::Service,
            id: s.id?,
            name: spec.name.unwrap_or_default(),
            labels: spec.labels.unwrap_or_default(),
            created: parse_time(s.created_at.as_deref()),
            stop_grace_seconds: (nanos / 1_000_000_000).clamp(0, i32::MAX as i64) as i32,
        })
    }));

    let containers = docker
        .list_containers(Some(ListContainersOptions {
            all: true,
            filters: label_filter(labels),
            ..Default::default()
        }))
        .await
        .map_err(|e| EngineError::api(format!("listing containers labelled {what}"), e))?;
    out.extend(containers.into_iter().filter_map(|c| {
        let labels = c.labels.unwrap_or_default();
        if labels.contains_key(SERVICE_ID_LABEL) {
            return None;
        }
        let name = c
            .names
            .and_then(|n| n.into_iter().next())
            .map(|n| n.trim_start_matches('/').to_owned())
            .unwrap_or_default();
        Some(LabelledObject {
            kind: ObjectKind::Container,
            id: c.id?,
            name,
            labels,
            created: c.created.and_then(|t| DateTime::from_timestamp(t, 0)),
            stop_grace_seconds: 0,
        })
    }));

    let volumes = docker
        .list_volumes(Some(ListVolumesOptions {
            filters: label_filter(labels),
        }))
        .await
        .map_err(|e| EngineError::api(format!("listing volumes labelled {what}"), e))?;
    out.extend(
        volumes
            .volumes
            .unwrap_or_default()
            .into_iter()
            .map(|v| LabelledObject {
                kind: ObjectKind::Volume,
                id: v.name.clone(),
                name: v.name,
                labels: v.labels,
                created: parse_time(v.created_at.as_deref()),
                stop_grace_seconds: 0,
            }),
    );

    let secrets = docker
        .list_secrets(Some(ListSecretsOptions {
            filters: label_filter(labels),
        }))
        .await
        .map_err(|e| EngineError::api(format!("listing secrets labelled {what}"), e))?;
    out.extend(secrets.into_iter().filter_map(|s| {
        let spec = s.spec.unwrap_or_default();
        Some(LabelledObject {
            kind: ObjectKind::Secret,
            id: s.id?,
            name: spec.name.unwrap_or_default(),
            labels: spec.labels.unwrap_or_default(),
            created: parse_time(s.created_at.as_deref()),
            stop_grace_seconds: 0,
        })
    }));

    let configs = docker
        .list_configs(Some(ListConfigsOptions {
            filters: label_filter(labels),
        }))
        .await
        .map_err(|e| EngineError::api(format!("listing configs labelled {what}"), e))?;
    out.extend(configs.into_iter().filter_map(|c| {
        let spec = c.spec.unwrap_or_default();
        Some(LabelledObject {
            kind: ObjectKind::Config,
            id: c.id?,
            name: spec.name.unwrap_or_default(),
            labels: spec.labels.unwrap_or_default(),
            created: parse_time(c.created_at.as_deref()),
            stop_grace_seconds: 0,
        })
    }));

    let networks = docker
        .list_networks(Some(ListNetworksOptions {
            filters: label_filter(labels),
        }))
        .await
        .map_err(|e| EngineError::api(format!("listing networks labelled {what}"), e))?;
    out.extend(networks.into_iter().map(|n| {
        let name = n.name.unwrap_or_default();
        LabelledObject {
            kind: ObjectKind::Network,
            id: n.id.unwrap_or_else(|| name.clone()),
            name,
            labels: n.labels.unwrap_or_default(),
            created: parse_time(n.created.as_deref()),
            stop_grace_seconds: 0,
        }
    }));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_timestamps_parse_with_nanoseconds_and_offsets() {
        let t = parse_time(Some("2025-03-01T10:20:30.123456789Z")).unwrap();
        assert_eq!(t.timestamp(), 1_740_824_430);
        let t = parse_time(Some("2025-03-01T11:20:30+01:00")).unwrap();
        assert_eq!(t.timestamp(), 1_740_824_430);
        assert_eq!(parse_time(Some("yesterday")), None);
        assert_eq!(parse_time(None), None);
    }

    #[test]
    fn kinds_are_listed_in_removal_order() {
        let mut sorted = ObjectKind::ALL;
        sorted.sort();
        assert_eq!(sorted, ObjectKind::ALL);
        assert_eq!(ObjectKind::ALL.map(ObjectKind::as_str)[0], "service");
    }
}
