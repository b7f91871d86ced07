//! The native swarm engine: Co-op Cloud recipe compose files → Docker Swarm objects, the way
//! `docker stack deploy` creates them.
//!
//! Pipeline: [`env`] files → [`compose`] loading, overlays and interpolation → [`convert`] into a
//! [`StackSpec`] → [`apply`] / [`remove`] / [`converge`] against the Docker Engine API (bollard).

pub mod compose;
pub mod convert;
pub mod env;

use std::collections::BTreeMap;

use bollard::models::{
    ConfigSpec, NetworkCreateRequest, SecretSpec, ServiceSpec, VolumeCreateRequest,
};

/// Everything `docker stack deploy` would create for one stack, fully converted and namespaced.
///
/// This is the contract between conversion (pure, no Docker) and apply (talks to Docker).
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct StackSpec {
    /// The stack (namespace) name.
    pub name: String,
    /// Networks to create (namespaced), excluding external ones.
    pub networks: Vec<NetworkCreateRequest>,
    /// External networks that must already exist.
    pub external_networks: Vec<String>,
    /// Secrets to create (namespaced or with their explicit `name:`), excluding external ones.
    pub secrets: Vec<SecretSpec>,
    /// Configs to create, excluding external ones.
    pub configs: Vec<ConfigSpec>,
    /// Named volumes the stack declares (Swarm creates them lazily; listed for removal and labels).
    pub volumes: Vec<VolumeCreateRequest>,
    /// Services, namespaced, with `com.docker.stack.namespace`/`com.docker.stack.image` labels.
    pub services: Vec<ServiceSpec>,
    /// Warnings collected while loading and converting (unknown keys, ignored options).
    pub warnings: Vec<String>,
    /// Extra labels put on every object (e.g. `cc-ci.managed`, `cc-ci.run`).
    pub extra_labels: BTreeMap<String, String>,
}

pub mod apply;
pub mod converge;
pub mod docker;
pub mod helper;
pub mod objects;
pub mod raw_services;
pub mod remove;
pub mod service_diff;
