//! Resolving a service's references by name to the engine's IDs: secret and config IDs (which
//! the engine requires and `docker stack deploy` looks up), and network IDs (which the engine
//! stores in place of the names we send).

use std::collections::{HashMap, HashSet};

use bollard::Docker;
use bollard::models::ServiceSpec;
use bollard::query_parameters::{ListConfigsOptions, ListNetworksOptions, ListSecretsOptions};

use crate::swarm::StackSpec;
use crate::swarm::docker::EngineError;

/// Names and IDs of the engine's networks, secrets and configs at one moment.
#[derive(Debug, Default)]
pub(crate) struct References {
    network_names: HashMap<String, String>,
    secret_ids: HashMap<String, String>,
    config_ids: HashMap<String, String>,
}

impl References {
    /// Reads every network, secret and config (names and IDs only are kept).
    pub(crate) async fn load(docker: &Docker) -> Result<Self, EngineError> {
        let (networks, secrets, configs) = tokio::try_join!(
            async {
                docker
                    .list_networks(None::<ListNetworksOptions>)
                    .await
                    .map_err(|e| EngineError::api("listing networks", e))
            },
            async {
                docker
                    .list_secrets(None::<ListSecretsOptions>)
                    .await
                    .map_err(|e| EngineError::api("listing secrets", e))
            },
            async {
                docker
                    .list_configs(None::<ListConfigsOptions>)
                    .await
                    .map_err(|e| EngineError::api("listing configs", e))
            },
        )?;
        Ok(References {
            network_names: networks
                .into_iter()
                .filter_map(|n| Some((n.id?, n.name?)))
                .collect(),
            secret_ids: secrets
                .into_iter()
                .filter_map(|s| Some((s.spec?.name?, s.id?)))
                .collect(),
            config_ids: configs
                .into_iter()
                .filter_map(|c| Some((c.spec?.name?, c.id?)))
                .collect(),
        })
    }

    /// Checks, before anything is created, that every secret and config a service of `stack`
    /// refers to is either created by the stack or already in the engine (an external one).
    pub(crate) fn check_available(&self, stack: &StackSpec) -> Result<(), EngineError> {
        let own_secrets: HashSet<&str> = stack
            .secrets
            .iter()
            .filter_map(|s| s.name.as_deref())
            .collect();
        let own_configs: HashSet<&str> = stack
            .configs
            .iter()
            .filter_map(|c| c.name.as_deref())
            .collect();
        for spec in &stack.services {
            let service = spec.name.clone().unwrap_or_default();
            let Some(container) = spec
                .task_template
                .as_ref()
                .and_then(|t| t.container_spec.as_ref())
            else {
                continue;
            };
            for secret in container.secrets.iter().flatten() {
                let name = secret.secret_name.as_deref().unwrap_or_default();
                if !own_secrets.contains(name) && !self.secret_ids.contains_key(name) {
                    return Err(EngineError::SecretNotFound {
                        service,
                        name: name.to_owned(),
                    });
                }
            }
            for config in container.configs.iter().flatten() {
                let name = config.config_name.as_deref().unwrap_or_default();
                if !own_configs.contains(name) && !self.config_ids.contains_key(name) {
                    return Err(EngineError::ConfigNotFound {
                        service,
                        name: name.to_owned(),
                    });
                }
            }
        }
        Ok(())
    }

    /// `spec` with every secret and config reference carrying the ID of the object it names.
    pub(crate) fn resolve(&self, spec: &ServiceSpec) -> Result<ServiceSpec, EngineError> {
        let mut spec = spec.clone();
        let service = spec.name.clone().unwrap_or_default();
        let Some(container) = spec
            .task_template
            .as_mut()
            .and_then(|t| t.container_spec.as_mut())
        else {
            return Ok(spec);
        };
        for secret in container.secrets.iter_mut().flatten() {
            let name = secret.secret_name.clone().unwrap_or_default();
            let id = self
                .secret_ids
                .get(&name)
                .ok_or_else(|| EngineError::SecretNotFound {
                    service: service.clone(),
                    name,
                })?;
            secret.secret_id = Some(id.clone());
        }
        for config in container.configs.iter_mut().flatten() {
            let name = config.config_name.clone().unwrap_or_default();
            let id = self
                .config_ids
                .get(&name)
                .ok_or_else(|| EngineError::ConfigNotFound {
                    service: service.clone(),
                    name,
                })?;
            config.config_id = Some(id.clone());
        }
        Ok(spec)
    }

    /// A stored spec with its network attachment targets turned back from IDs into names, so it
    /// compares with the spec we send.
    pub(crate) fn with_network_names(&self, stored: &ServiceSpec) -> ServiceSpec {
        let mut stored = stored.clone();
        let task_networks = stored
            .task_template
            .as_mut()
            .and_then(|t| t.networks.as_mut());
        for attachment in task_networks
            .into_iter()
            .chain(stored.networks.as_mut())
            .flatten()
        {
            if let Some(name) = attachment
                .target
                .as_ref()
                .and_then(|id| self.network_names.get(id))
            {
                attachment.target = Some(name.clone());
            }
        }
        stored
    }
}
