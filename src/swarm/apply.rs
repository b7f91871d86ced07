//! Applying a [`StackSpec`] to the Swarm: networks → secrets → configs → services, creating what is
//! missing and updating a service only when its spec really differs (like `docker stack deploy`).

use std::collections::{BTreeMap, HashMap, HashSet};

use bollard::Docker;
use bollard::models::{ConfigSpec, NetworkCreateRequest, SecretSpec, Service, ServiceSpec};
use bollard::query_parameters::{
    ListNetworksOptions, UpdateConfigOptions, UpdateSecretOptions, UpdateServiceOptions,
};
use futures::future::try_join_all;

use super::StackSpec;
use references::References;

pub mod image;
mod references;
use super::docker::{EngineError, NAMESPACE_LABEL, is_not_found, server_message, status_code};
use super::service_diff::{
    json_diff, normalise_service_spec, same_service_spec, with_preserved_force_update,
};

/// How to apply a stack.
#[derive(Clone, Debug, Default)]
pub struct ApplyOptions {
    /// Remove services of the stack that are no longer in the spec (`docker stack deploy --prune`).
    pub prune: bool,
}

/// What [`apply`] did to the stack's services (by full service name).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ApplyReport {
    /// Services created.
    pub created: Vec<String>,
    /// Services updated because their spec differed.
    pub updated: Vec<String>,
    /// Services left alone because their spec was already in place.
    pub unchanged: Vec<String>,
    /// Services removed because they are no longer in the spec (only with `prune`).
    pub pruned: Vec<String>,
    /// For each updated service, the spec paths that differed (e.g.
    /// `/TaskTemplate/ContainerSpec/Image`); paths only, never values (environment values may
    /// be secret).
    pub changes: BTreeMap<String, Vec<String>>,
}

/// How often an update refused as "out of sequence" (someone else updated the service between our
/// read and our write) is retried with a fresh version.
const UPDATE_ATTEMPTS: usize = 5;

/// Applies `stack` to the Swarm and reports what changed.
///
/// Order: external networks, and the secrets and configs services use without the stack creating
/// them, are checked first (a missing one is an error before anything is created); then missing
/// networks are created, secrets and configs created (or, when they exist, their labels updated:
/// their content is immutable, and a changed content is an error naming the object), then
/// services created or updated concurrently.
/// A service is updated (with its current `version.index`) only when the spec we would send
/// differs from the stored one; an unchanged stack costs a few reads and no writes to services.
/// Images are sent the way docker's client sends them (see [`image::with_sent_image`]).
/// `stack.extra_labels` go on every object (services, their containers and volumes included).
pub async fn apply(
    docker: &Docker,
    stack: &StackSpec,
    opts: &ApplyOptions,
) -> Result<ApplyReport, EngineError> {
    let stack = with_extra_labels(stack);
    // Everything that can be found wrong is checked before anything is created.
    let ((), existing, references) = tokio::try_join!(
        check_external_networks(docker, &stack.external_networks),
        stack_services(docker, &stack.name),
        References::load(docker)
    )?;
    references.check_available(&stack)?;

    create_networks(docker, &stack.name, &stack.networks).await?;
    let created_secrets = try_join_all(stack.secrets.iter().map(|s| apply_secret(docker, s)));
    let created_configs = try_join_all(stack.configs.iter().map(|c| apply_config(docker, c)));
    let (created_secrets, created_configs) = tokio::try_join!(created_secrets, created_configs)?;
    // New secrets and configs have IDs the services must name: look them up again.
    let references = if created_secrets
        .into_iter()
        .chain(created_configs)
        .any(|c| c)
    {
        References::load(docker).await?
    } else {
        references
    };
    let services: Vec<ServiceSpec> = stack
        .services
        .iter()
        .map(|spec| references.resolve(spec))
        .collect::<Result<_, _>>()?;
    let outcomes =
        try_join_all(services.iter().map(|spec| {
            apply_service(docker, &references, spec, existing.get(service_name(spec)))
        }))
        .await?;
    let mut report = ApplyReport::default();
    for (spec, outcome) in stack.services.iter().zip(outcomes) {
        let name = service_name(spec).to_owned();
        match outcome {
            Outcome::Created => report.created.push(name),
            Outcome::Updated(paths) => {
                report.changes.insert(name.clone(), paths);
                report.updated.push(name);
            }
            Outcome::Unchanged => report.unchanged.push(name),
        }
    }
    if opts.prune {
        let wanted: HashSet<&str> = stack.services.iter().map(service_name).collect();
        let stale: Vec<&String> = existing
            .keys()
            .filter(|n| !wanted.contains(n.as_str()))
            .collect();
        try_join_all(stale.iter().map(|name| async move {
            match docker.delete_service(name).await {
                Err(e) if !is_not_found(&e) => {
                    Err(EngineError::api(format!("removing service {name}"), e))
                }
                _ => Ok(()),
            }
        }))
        .await?;
        report.pruned = stale.into_iter().cloned().collect();
    }
    Ok(report)
}

/// A copy of `stack` with its `extra_labels` merged into the labels of every object: networks,
/// secrets, configs, volumes, services, their containers and the volumes their mounts create.
pub fn with_extra_labels(stack: &StackSpec) -> StackSpec {
    let mut stack = stack.clone();
    if stack.extra_labels.is_empty() {
        return stack;
    }
    let extra = stack.extra_labels.clone();
    let merge = |labels: &mut Option<HashMap<String, String>>| {
        let labels = labels.get_or_insert_with(HashMap::new);
        labels.extend(extra.iter().map(|(k, v)| (k.clone(), v.clone())));
    };
    stack.networks.iter_mut().for_each(|n| merge(&mut n.labels));
    stack.secrets.iter_mut().for_each(|s| merge(&mut s.labels));
    stack.configs.iter_mut().for_each(|c| merge(&mut c.labels));
    stack.volumes.iter_mut().for_each(|v| merge(&mut v.labels));
    for service in &mut stack.services {
        merge(&mut service.labels);
        let container = service
            .task_template
            .get_or_insert_with(Default::default)
            .container_spec
            .get_or_insert_with(Default::default);
        merge(&mut container.labels);
        for mount in container.mounts.iter_mut().flatten() {
            if mount.typ == Some(bollard::models::MountType::VOLUME) {
                merge(
                    &mut mount
                        .volume_options
                        .get_or_insert_with(Default::default)
                        .labels,
                );
            }
        }
    }
    stack
}

/// The services of stack `name` that exist now, by name.
pub(crate) async fn stack_services(
    docker: &Docker,
    name: &str,
) -> Result<BTreeMap<String, Service>, EngineError> {
    let filters = HashMap::from([(
        "label".to_owned(),
        vec![format!("{NAMESPACE_LABEL}={name}")],
    )]);
    // Not through bollard: its model loses the stored healthchecks.
    let services = super::raw_services::list_services(docker, &filters).await?;
    Ok(services
        .into_iter()
        .filter_map(|s| Some((s.spec.as_ref()?.name.clone()?, s)))
        .collect())
}

fn service_name(spec: &ServiceSpec) -> &str {
    spec.name.as_deref().unwrap_or_default()
}

async fn check_external_networks(docker: &Docker, names: &[String]) -> Result<(), EngineError> {
    try_join_all(names.iter().map(|name| async move {
        match docker.inspect_network(name, None).await {
            Ok(_) => Ok(()),
            Err(e) if is_not_found(&e) => {
                Err(EngineError::ExternalNetworkMissing { name: name.clone() })
            }
            Err(e) => Err(EngineError::api(format!("inspecting network {name}"), e)),
        }
    }))
    .await
    .map(|_| ())
}

async fn create_networks(
    docker: &Docker,
    stack: &str,
    networks: &[NetworkCreateRequest],
) -> Result<(), EngineError> {
    if networks.is_empty() {
        return Ok(());
    }
    let filters = HashMap::from([(
        "label".to_owned(),
        vec![format!("{NAMESPACE_LABEL}={stack}")],
    )]);
    let existing: HashSet<String> = docker
        .list_networks(Some(ListNetworksOptions {
            filters: Some(filters),
        }))
        .await
        .map_err(|e| EngineError::api(format!("listing the networks of stack {stack}"), e))?
        .into_iter()
        .filter_map(|n| n.name)
        .collect();
    try_join_all(networks.iter().filter(|n| !existing.contains(&n.name)).map(
        |network| async move {
            match docker.create_network(network.clone()).await {
                // Created concurrently by someone else: fine, it is there.
                Err(e) if status_code(&e) == Some(409) => Ok(()),
                Err(e) => Err(EngineError::api(
                    format!("creating network {}", network.name),
                    e,
                )),
                Ok(_) => Ok(()),
            }
        },
    ))
    .await
    .map(|_| ())
}

/// Whether the daemon refused an update because only labels of secrets/configs may change.
fn is_immutable_content(err: &bollard::errors::Error) -> bool {
    server_message(err).is_some_and(|m| m.contains("only updates to Labels are allowed"))
}

/// Creates secret `spec` (answering `true`) or brings the labels of the existing one up to date.
async fn apply_secret(docker: &Docker, spec: &SecretSpec) -> Result<bool, EngineError> {
    let name = spec.name.clone().unwrap_or_default();
    match docker.inspect_secret(&name).await {
        Err(e) if is_not_found(&e) => match docker.create_secret(spec.clone()).await {
            Ok(_) => Ok(true),
            Err(e) => Err(EngineError::api(format!("creating secret {name}"), e)),
        },
        Err(e) => Err(EngineError::api(format!("inspecting secret {name}"), e)),
        Ok(current) => {
            // The daemon never returns a secret's data, so (like docker/cli) send an update with
            // the data: the daemon accepts it when only labels differ and refuses a new content.
            let version = current.version.and_then(|v| v.index).unwrap_or_default();
            let id = current.id.unwrap_or_else(|| name.clone());
            match docker
                .update_secret(
                    &id,
                    spec.clone(),
                    UpdateSecretOptions {
                        version: version as i64,
                    },
                )
                .await
            {
                Ok(()) => Ok(false),
                Err(e) if is_immutable_content(&e) => Err(EngineError::SecretChanged { name }),
                Err(e) => Err(EngineError::api(format!("updating secret {name}"), e)),
            }
        }
    }
}

/// Creates config `spec` (answering `true`), or checks the existing one has the same content and
/// brings its labels up to date.
async fn apply_config(docker: &Docker, spec: &ConfigSpec) -> Result<bool, EngineError> {
    let name = spec.name.clone().unwrap_or_default();
    match docker.inspect_config(&name).await {
        Err(e) if is_not_found(&e) => match docker.create_config(spec.clone()).await {
            Ok(_) => Ok(true),
            Err(e) => Err(EngineError::api(format!("creating config {name}"), e)),
        },
        Err(e) => Err(EngineError::api(format!("inspecting config {name}"), e)),
        Ok(current) => {
            let stored = current.spec.unwrap_or_default();
            if stored.data != spec.data || stored.templating != spec.templating {
                return Err(EngineError::ConfigChanged { name });
            }
            if stored.labels == spec.labels {
                return Ok(false);
            }
            let version = current.version.and_then(|v| v.index).unwrap_or_default();
            let id = current.id.unwrap_or_else(|| name.clone());
            match docker
                .update_config(
                    &id,
                    spec.clone(),
                    UpdateConfigOptions {
                        version: version as i64,
                    },
                )
                .await
            {
                Ok(()) => Ok(false),
                Err(e) if is_immutable_content(&e) => Err(EngineError::ConfigChanged { name }),
                Err(e) => Err(EngineError::api(format!("updating config {name}"), e)),
            }
        }
    }
}

enum Outcome {
    Created,
    /// Updated, with the spec paths that differed.
    Updated(Vec<String>),
    Unchanged,
}

async fn apply_service(
    docker: &Docker,
    references: &References,
    spec: &ServiceSpec,
    existing: Option<&Service>,
) -> Result<Outcome, EngineError> {
    let name = service_name(spec);
    let Some(mut current) = existing.cloned() else {
        return match docker
            .create_service(image::with_sent_image(spec, None), None)
            .await
        {
            Ok(_) => Ok(Outcome::Created),
            Err(e) => Err(EngineError::api(format!("creating service {name}"), e)),
        };
    };
    for attempt in 1..=UPDATE_ATTEMPTS {
        let stored = references.with_network_names(&current.spec.clone().unwrap_or_default());
        let desired =
            with_preserved_force_update(&image::with_sent_image(spec, Some(&stored)), &stored);
        if same_service_spec(&desired, &stored) {
            return Ok(Outcome::Unchanged);
        }
        // Only the paths that differ: values (environment!) may be sensitive.
        let changed: Vec<String> = json_diff(
            &normalise_service_spec(&stored),
            &normalise_service_spec(&desired),
        )
        .into_iter()
        .map(|line| line.split(": ").next().unwrap_or_default().to_owned())
        .collect();
        tracing::debug!(service = name, ?changed, "service spec differs: updating");
        let version = current
            .version
            .as_ref()
            .and_then(|v| v.index)
            .unwrap_or_default();
        let options = UpdateServiceOptions {
            version: version as i32,
            ..Default::default()
        };
        match docker.update_service(name, desired, options, None).await {
            Ok(_) => return Ok(Outcome::Updated(changed)),
            Err(e) if is_out_of_sequence(&e) && attempt < UPDATE_ATTEMPTS => {
                current = docker
                    .inspect_service(name, None)
                    .await
                    .map_err(|e| EngineError::api(format!("inspecting service {name}"), e))?;
            }
            Err(e) => return Err(EngineError::api(format!("updating service {name}"), e)),
        }
    }
    unreachable!("the last attempt returns")
}

fn is_out_of_sequence(err: &bollard::errors::Error) -> bool {
    server_message(err).is_some_and(|m| m.contains("out of sequence"))
}
