//! The typed compose model: everything Co-op Cloud recipes use, in the *long* form.
//!
//! Short forms (`"80:80"`, `"data:/var/lib"`, `- FOO=bar`, `external: true`, …) are turned into
//! these long forms by [`super::normalize`] before deserialization, the way docker/cli's loader
//! transforms them, so every field here has exactly one shape.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::units::{ByteSize, GoDuration};

/// A whole (merged) compose file.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ComposeFile {
    /// The `version:` key; accepted and ignored.
    pub version: Option<serde_json::Value>,
    /// Services by name.
    pub services: BTreeMap<String, Service>,
    /// Top-level networks by name.
    pub networks: BTreeMap<String, Network>,
    /// Top-level named volumes by name.
    pub volumes: BTreeMap<String, Volume>,
    /// Top-level secrets by name.
    pub secrets: BTreeMap<String, FileObject>,
    /// Top-level configs by name.
    pub configs: BTreeMap<String, FileObject>,
}

/// One service.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Service {
    /// Image reference, used verbatim (no digest resolution).
    pub image: Option<String>,
    /// Arguments (`Args`), already split like a shell would.
    pub command: Option<Vec<String>>,
    /// Entrypoint (`Command`), already split like a shell would.
    pub entrypoint: Option<Vec<String>>,
    /// Environment; `None` means "declared without a value" (`- FOO`).
    pub environment: BTreeMap<String, Option<String>>,
    /// `env_file:` paths (their contents are already merged into `environment`).
    pub env_file: Vec<String>,
    /// Secrets the service mounts.
    pub secrets: Vec<FileReference>,
    /// Configs the service mounts.
    pub configs: Vec<FileReference>,
    /// Mounts.
    pub volumes: Vec<ServiceVolume>,
    /// Networks to attach to (empty: the stack's `default` network); `- name` / `name:` (null)
    /// reads as an attachment without options.
    #[serde(deserialize_with = "null_values_as_default")]
    pub networks: BTreeMap<String, ServiceNetwork>,
    /// Published ports.
    pub ports: Vec<Port>,
    /// Healthcheck.
    pub healthcheck: Option<Healthcheck>,
    /// Swarm deploy settings.
    pub deploy: Deploy,
    /// Container labels.
    pub labels: BTreeMap<String, String>,
    /// `user:`.
    pub user: Option<String>,
    /// `working_dir:`.
    pub working_dir: Option<String>,
    /// `hostname:`.
    pub hostname: Option<String>,
    /// `stop_grace_period:`.
    pub stop_grace_period: Option<GoDuration>,
    /// `stop_signal:`.
    pub stop_signal: Option<String>,
    /// `extra_hosts:` as `host:ip` strings.
    pub extra_hosts: Vec<String>,
    /// Capabilities to add.
    pub cap_add: Vec<String>,
    /// Capabilities to drop.
    pub cap_drop: Vec<String>,
    /// Kernel parameters.
    pub sysctls: BTreeMap<String, String>,
    /// Resource limits by name.
    pub ulimits: BTreeMap<String, Ulimit>,
    /// Log driver.
    pub logging: Option<Logging>,
    /// Allocate a TTY.
    pub tty: bool,
    /// Keep stdin open.
    pub stdin_open: bool,
    /// Run an init process.
    pub init: Option<bool>,
    /// Read-only root filesystem.
    pub read_only: bool,
    /// DNS servers.
    pub dns: Vec<String>,
    /// DNS search domains.
    pub dns_search: Vec<String>,
    /// Isolation technology (Windows).
    pub isolation: Option<String>,
    /// Legacy `restart:` (used only when `deploy.restart_policy` is absent, like docker/cli).
    pub restart: Option<String>,
    /// `depends_on:`; ignored by Swarm, accepted silently like docker/cli.
    pub depends_on: Option<serde_json::Value>,
}

/// A map whose `null` values read as the value type's default.
fn null_values_as_default<'de, D, T>(d: D) -> Result<BTreeMap<String, T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    let map = Option::<BTreeMap<String, Option<T>>>::deserialize(d)?.unwrap_or_default();
    Ok(map
        .into_iter()
        .map(|(k, v)| (k, v.unwrap_or_default()))
        .collect())
}

/// A secret or config mount of a service (long form).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FileReference {
    /// The top-level secret/config name.
    pub source: String,
    /// File name or path inside the container.
    pub target: Option<String>,
    /// Owner uid (default `"0"`).
    pub uid: Option<String>,
    /// Owner gid (default `"0"`).
    pub gid: Option<String>,
    /// File mode (default `0o444`).
    pub mode: Option<u32>,
}

/// A mount of a service (long form).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ServiceVolume {
    /// `volume`, `bind`, `tmpfs`, `npipe` or `cluster`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Volume name or host path (absolute after loading).
    pub source: Option<String>,
    /// Path in the container.
    pub target: String,
    /// Mount read-only.
    pub read_only: bool,
    /// Consistency (macOS only).
    pub consistency: Option<String>,
    /// Bind options.
    pub bind: Option<BindOptions>,
    /// Volume options.
    pub volume: Option<VolumeOptions>,
    /// Tmpfs options.
    pub tmpfs: Option<TmpfsOptions>,
}

/// `bind:` options of a mount.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BindOptions {
    /// Mount propagation (`rprivate`, `shared`, …).
    pub propagation: Option<String>,
}

/// `volume:` options of a mount.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct VolumeOptions {
    /// Do not copy image data into a new volume.
    pub nocopy: bool,
}

/// `tmpfs:` options of a mount.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TmpfsOptions {
    /// Size in bytes.
    pub size: Option<ByteSize>,
}

/// A service's attachment to one network.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ServiceNetwork {
    /// Extra DNS aliases.
    pub aliases: Option<Vec<String>>,
    /// Static IPv4 (not used by Swarm).
    pub ipv4_address: Option<String>,
    /// Static IPv6 (not used by Swarm).
    pub ipv6_address: Option<String>,
    /// Driver options of the attachment.
    pub driver_opts: Option<BTreeMap<String, String>>,
}

/// A published port (long form).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct Port {
    /// `ingress` or `host`; unset means the daemon's default (ingress).
    pub mode: Option<String>,
    /// Container port.
    pub target: u32,
    /// Published port (0 or unset: the daemon picks one).
    pub published: Option<u32>,
    /// `tcp`, `udp` or `sctp`; unset means tcp.
    pub protocol: Option<String>,
}

/// A healthcheck.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Healthcheck {
    /// The test (`["CMD-SHELL", "…"]` for the string form).
    pub test: Option<Vec<String>>,
    /// Time between checks.
    pub interval: Option<GoDuration>,
    /// Time before a check is considered hung.
    pub timeout: Option<GoDuration>,
    /// Consecutive failures before unhealthy.
    pub retries: Option<u64>,
    /// Grace period.
    pub start_period: Option<GoDuration>,
    /// Time between checks during the start period.
    pub start_interval: Option<GoDuration>,
    /// Disable the image's healthcheck.
    pub disable: bool,
}

/// `deploy:` settings.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Deploy {
    /// `replicated` (default), `global`, `replicated-job` or `global-job`.
    pub mode: Option<String>,
    /// Replicas (or completions for jobs).
    pub replicas: Option<u64>,
    /// Service labels.
    pub labels: BTreeMap<String, String>,
    /// Resources.
    pub resources: Resources,
    /// Restart policy.
    pub restart_policy: Option<RestartPolicy>,
    /// Update behaviour.
    pub update_config: Option<UpdateConfig>,
    /// Rollback behaviour.
    pub rollback_config: Option<UpdateConfig>,
    /// Placement.
    pub placement: Placement,
    /// `vip` or `dnsrr`.
    pub endpoint_mode: Option<String>,
}

/// `deploy.resources`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Resources {
    /// Limits.
    pub limits: Option<ResourceSpec>,
    /// Reservations.
    pub reservations: Option<ResourceSpec>,
}

/// Limits or reservations.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ResourceSpec {
    /// CPUs as a decimal string (`"0.5"`).
    pub cpus: Option<String>,
    /// Memory in bytes.
    pub memory: Option<ByteSize>,
    /// Max pids (limits only).
    pub pids: Option<i64>,
    /// Generic resources (reservations only), kept verbatim.
    pub generic_resources: Option<Vec<GenericResource>>,
}

/// A generic resource reservation.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct GenericResource {
    /// A discrete resource.
    pub discrete_resource_spec: Option<DiscreteResource>,
}

/// A discrete generic resource (`kind` = `value`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DiscreteResource {
    /// Resource kind.
    pub kind: String,
    /// Amount.
    pub value: i64,
}

/// `deploy.restart_policy`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RestartPolicy {
    /// `none`, `on-failure` or `any`.
    pub condition: Option<String>,
    /// Delay between restarts.
    pub delay: Option<GoDuration>,
    /// Max attempts.
    pub max_attempts: Option<u64>,
    /// Window to decide if a restart succeeded.
    pub window: Option<GoDuration>,
}

/// `deploy.update_config` / `deploy.rollback_config`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct UpdateConfig {
    /// Tasks updated at once (default 1 when the section exists, like docker/cli).
    pub parallelism: Option<u64>,
    /// Delay between groups.
    pub delay: Option<GoDuration>,
    /// `continue`, `pause` or `rollback`.
    pub failure_action: Option<String>,
    /// Monitoring period after each task update.
    pub monitor: Option<GoDuration>,
    /// Tolerated failure ratio.
    pub max_failure_ratio: Option<f64>,
    /// `stop-first` or `start-first`.
    pub order: Option<String>,
}

/// `deploy.placement`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Placement {
    /// Constraints such as `node.role == manager`.
    pub constraints: Vec<String>,
    /// Spread preferences.
    pub preferences: Vec<PlacementPreference>,
    /// Max replicas per node (0: unlimited).
    pub max_replicas_per_node: Option<u64>,
}

/// A placement preference.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PlacementPreference {
    /// Spread descriptor (`node.labels.zone`).
    pub spread: String,
}

/// A ulimit: a single value or a soft/hard pair.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Ulimit {
    /// Both soft and hard (the short form).
    pub single: Option<i64>,
    /// Soft limit.
    pub soft: Option<i64>,
    /// Hard limit.
    pub hard: Option<i64>,
}

/// `logging:`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Logging {
    /// Driver name.
    pub driver: Option<String>,
    /// Driver options.
    pub options: BTreeMap<String, String>,
}

/// A top-level network.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Network {
    /// Explicit (not namespaced) name; for external networks the name to look up.
    pub name: Option<String>,
    /// Driver (default `overlay`).
    pub driver: Option<String>,
    /// Driver options.
    pub driver_opts: BTreeMap<String, String>,
    /// IPAM settings.
    pub ipam: Option<Ipam>,
    /// Managed outside the stack.
    pub external: bool,
    /// No outside connectivity.
    pub internal: bool,
    /// Standalone containers may attach.
    pub attachable: bool,
    /// Network labels.
    pub labels: BTreeMap<String, String>,
}

/// Network IPAM settings.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Ipam {
    /// IPAM driver.
    pub driver: Option<String>,
    /// Pools.
    pub config: Vec<IpamPool>,
}

/// One IPAM pool.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct IpamPool {
    /// Subnet in CIDR form.
    pub subnet: Option<String>,
}

/// A top-level named volume.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Volume {
    /// Explicit (not namespaced) name.
    pub name: Option<String>,
    /// Volume driver.
    pub driver: Option<String>,
    /// Driver options.
    pub driver_opts: Option<BTreeMap<String, String>>,
    /// Managed outside the stack.
    pub external: bool,
    /// Volume labels.
    pub labels: BTreeMap<String, String>,
}

/// A top-level secret or config.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FileObject {
    /// Explicit (not namespaced) name, e.g. `${STACK_NAME}_db_password_${SECRET_DB_PASSWORD_VERSION}`.
    pub name: Option<String>,
    /// File with the contents (absolute after loading).
    pub file: Option<String>,
    /// Managed outside the stack.
    pub external: bool,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Secret driver (secrets only).
    pub driver: Option<String>,
    /// Secret driver options.
    pub driver_opts: Option<BTreeMap<String, String>>,
    /// `golang` for Swarm templating.
    pub template_driver: Option<String>,
}
