//! Task-level pieces of a service: mounts (`convert/volume.go`), resources, restart policy and
//! update/rollback configs, as docker/cli converts them.

use bollard::models::{
    GenericResourcesInner, GenericResourcesInnerDiscreteResourceSpec, Limit, Mount,
    MountBindOptions, MountTmpfsOptions, MountType, MountVolumeOptions,
    MountVolumeOptionsDriverConfig, ResourceObject, ServiceSpecRollbackConfig,
    ServiceSpecUpdateConfig, TaskSpecResources, TaskSpecRestartPolicy,
    TaskSpecRestartPolicyConditionEnum,
};

use super::Namespace;
use super::service::parse_enum;
use crate::swarm::compose::units::parse_cpus;
use crate::swarm::compose::{ComposeFile, Resources, Service, ServiceVolume, UpdateConfig};

fn nonzero(n: i64) -> Option<i64> {
    (n != 0).then_some(n)
}

/// The service's mounts in compose order.
pub(super) fn mounts(
    ns: &Namespace<'_>,
    svc: &Service,
    compose: &ComposeFile,
) -> Result<Vec<Mount>, String> {
    svc.volumes.iter().map(|v| mount(ns, v, compose)).collect()
}

fn mount(ns: &Namespace<'_>, v: &ServiceVolume, compose: &ComposeFile) -> Result<Mount, String> {
    let kind = if v.kind.is_empty() {
        "volume"
    } else {
        v.kind.as_str()
    };
    let source = v.source.clone().filter(|s| !s.is_empty());
    let mut m = Mount {
        target: Some(v.target.clone()),
        source: source.clone(),
        typ: Some(kind.parse::<MountType>().map_err(|_| {
            "volume type must be volume, bind, tmpfs, npipe, or cluster".to_string()
        })?),
        read_only: v.read_only.then_some(true),
        consistency: v.consistency.clone().filter(|c| !c.is_empty()),
        ..Default::default()
    };
    let incompatible = |opt: &str| format!("{opt} options are incompatible with type {kind}");
    match kind {
        "volume" => {
            if v.tmpfs.is_some() {
                return Err(incompatible("tmpfs"));
            }
            if v.bind.is_some() {
                return Err(incompatible("bind"));
            }
            let Some(source) = source else {
                return Ok(m); // anonymous volume
            };
            let declared = compose
                .volumes
                .get(&source)
                .ok_or_else(|| format!("undefined volume {source:?}"))?;
            m.source = Some(declared.name.clone().unwrap_or_else(|| ns.scope(&source)));
            let mut opts = MountVolumeOptions {
                no_copy: v.volume.as_ref().is_some_and(|o| o.nocopy).then_some(true),
                ..Default::default()
            };
            if !declared.external {
                opts.labels = Some(ns.labels(&declared.labels));
                if declared.driver.as_ref().is_some_and(|d| !d.is_empty())
                    || declared.driver_opts.is_some()
                {
                    opts.driver_config = Some(MountVolumeOptionsDriverConfig {
                        name: declared.driver.clone(),
                        options: declared
                            .driver_opts
                            .as_ref()
                            .map(|o| o.clone().into_iter().collect()),
                    });
                }
            }
            m.volume_options = Some(opts);
        }
        "bind" | "npipe" => {
            if source.is_none() {
                return Err(format!("invalid {kind} source, source cannot be empty"));
            }
            if v.volume.is_some() {
                return Err(incompatible("volume"));
            }
            if v.tmpfs.is_some() {
                return Err(incompatible("tmpfs"));
            }
            if let Some(b) = &v.bind {
                m.bind_options = Some(MountBindOptions {
                    propagation: match b.propagation.as_deref() {
                        None | Some("") => None,
                        Some(p) => Some(parse_enum("bind propagation", p)?),
                    },
                    ..Default::default()
                });
            }
        }
        "tmpfs" => {
            if source.is_some() {
                return Err("invalid tmpfs source, source must be empty".to_string());
            }
            if v.bind.is_some() {
                return Err(incompatible("bind"));
            }
            if v.volume.is_some() {
                return Err(incompatible("volume"));
            }
            if let Some(t) = &v.tmpfs {
                m.tmpfs_options = Some(MountTmpfsOptions {
                    size_bytes: t.size.and_then(|s| nonzero(s.0)),
                    ..Default::default()
                });
            }
        }
        other => return Err(format!("unsupported volume type {other:?}")),
    }
    Ok(m)
}

/// `deploy.resources` (always present, possibly empty, like docker/cli).
pub(super) fn resources(r: &Resources) -> Result<TaskSpecResources, String> {
    let cpus = |c: &Option<String>| -> Result<Option<i64>, String> {
        match c.as_deref() {
            None | Some("") => Ok(None),
            Some(c) => parse_cpus(c).map(nonzero),
        }
    };
    Ok(TaskSpecResources {
        limits: match &r.limits {
            None => None,
            Some(l) => Some(Limit {
                nano_cpus: cpus(&l.cpus)?,
                memory_bytes: l.memory.and_then(|m| nonzero(m.0)),
                pids: l.pids.and_then(nonzero),
            }),
        },
        reservations: match &r.reservations {
            None => None,
            Some(res) => Some(ResourceObject {
                nano_cpus: cpus(&res.cpus)?,
                memory_bytes: res.memory.and_then(|m| nonzero(m.0)),
                generic_resources: res.generic_resources.as_ref().map(|g| {
                    g.iter()
                        .map(|g| GenericResourcesInner {
                            discrete_resource_spec: g.discrete_resource_spec.as_ref().map(|d| {
                                GenericResourcesInnerDiscreteResourceSpec {
                                    kind: Some(d.kind.clone()),
                                    value: Some(d.value),
                                }
                            }),
                            ..Default::default()
                        })
                        .collect()
                }),
            }),
        },
        ..Default::default()
    })
}

/// `deploy.restart_policy`, else the legacy `restart:` (`always`/`unless-stopped` → `any`,
/// `on-failure[:N]`), else none.
pub(super) fn restart_policy(svc: &Service) -> Result<Option<TaskSpecRestartPolicy>, String> {
    if let Some(p) = &svc.deploy.restart_policy {
        return Ok(Some(TaskSpecRestartPolicy {
            condition: match p.condition.as_deref() {
                None | Some("") => None,
                Some(c) => Some(parse_enum("restart_policy.condition", c)?),
            },
            delay: p.delay.map(|d| d.0),
            max_attempts: p.max_attempts.map(|n| n as i64),
            window: p.window.map(|d| d.0),
        }));
    }
    let Some(restart) = svc.restart.as_deref().filter(|r| !r.is_empty()) else {
        return Ok(None);
    };
    let (name, count) = match restart.split_once(':') {
        Some((n, c)) => (
            n,
            c.parse::<i64>()
                .map_err(|_| format!("invalid restart policy: maximum retry count {c:?}"))?,
        ),
        None => (restart, 0),
    };
    if count < 0 {
        return Err("invalid restart policy: maximum retry count cannot be negative".into());
    }
    let condition = match name {
        "no" | "" => return Ok(None),
        "always" | "unless-stopped" => TaskSpecRestartPolicyConditionEnum::ANY,
        "on-failure" => TaskSpecRestartPolicyConditionEnum::ON_FAILURE,
        other => {
            return Err(format!(
                "invalid restart policy: unknown policy '{other}' (must be one of 'no', 'always', 'on-failure', or 'unless-stopped')"
            ));
        }
    };
    Ok(Some(TaskSpecRestartPolicy {
        condition: Some(condition),
        max_attempts: (count > 0).then_some(count),
        ..Default::default()
    }))
}

macro_rules! update_like {
    ($fn:ident, $ty:ident) => {
        /// Update/rollback config; parallelism defaults to 1 when the section is present.
        pub(super) fn $fn(u: &UpdateConfig) -> Result<$ty, String> {
            Ok($ty {
                parallelism: Some(u.parallelism.unwrap_or(1) as i64),
                delay: u.delay.and_then(|d| nonzero(d.0)),
                failure_action: match u.failure_action.as_deref() {
                    None | Some("") => None,
                    Some(a) => Some(parse_enum("failure_action", a)?),
                },
                monitor: u.monitor.and_then(|d| nonzero(d.0)),
                max_failure_ratio: u.max_failure_ratio.filter(|r| *r != 0.0),
                order: match u.order.as_deref() {
                    None | Some("") => None,
                    Some(o) => Some(parse_enum("order", o)?),
                },
            })
        }
    };
}

update_like!(update_config, ServiceSpecUpdateConfig);
update_like!(rollback_config, ServiceSpecRollbackConfig);
