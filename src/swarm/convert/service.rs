//! One compose service → one `ServiceSpec`, field by field as docker/cli's
//! `convert.Service` builds it (Go `omitempty` zero values are left out here as `None`).

use std::collections::{BTreeMap, HashMap};
use std::str::FromStr;

use bollard::models::{
    EndpointPortConfig, EndpointSpec, EndpointSpecModeEnum, HealthConfig, NetworkAttachmentConfig,
    ResourcesUlimits, ServiceSpec, ServiceSpecMode, ServiceSpecModeReplicated,
    ServiceSpecModeReplicatedJob, TaskSpec, TaskSpecContainerSpec, TaskSpecContainerSpecConfigs,
    TaskSpecContainerSpecDnsConfig, TaskSpecContainerSpecFile, TaskSpecContainerSpecFile1,
    TaskSpecContainerSpecPrivileges, TaskSpecContainerSpecSecrets, TaskSpecLogDriver,
    TaskSpecPlacement, TaskSpecPlacementPreferences, TaskSpecPlacementSpread,
};

use super::task::{mounts, resources, restart_policy, rollback_config, update_config};
use super::{ConvertError, ConvertOptions, LABEL_IMAGE, Namespace};
use crate::swarm::compose::{ComposeFile, FileReference, Healthcheck, Port, Service};

/// Parses an engine enum from its wire string, naming the compose field on failure.
pub(super) fn parse_enum<T: FromStr<Err = String>>(field: &str, value: &str) -> Result<T, String> {
    T::from_str(value).map_err(|_| format!("invalid {field} {value:?}"))
}

fn nonzero(n: i64) -> Option<i64> {
    (n != 0).then_some(n)
}

fn non_empty<T>(v: Vec<T>) -> Option<Vec<T>> {
    (!v.is_empty()).then_some(v)
}

/// Converts service `name`.
pub(crate) fn service(
    ns: &Namespace<'_>,
    name: &str,
    svc: &Service,
    compose: &ComposeFile,
    opts: &ConvertOptions,
    warnings: &mut Vec<String>,
) -> Result<ServiceSpec, ConvertError> {
    let err = |message: String| ConvertError::Service {
        service: name.to_string(),
        message,
    };
    let image = svc.image.clone().unwrap_or_default();
    if image.is_empty() {
        warnings.push(format!("service {name}: no image set"));
    }
    let secrets = secret_refs(ns, svc, compose).map_err(err)?;
    let configs = config_refs(ns, svc, compose).map_err(err)?;
    let mut labels = ns.labels(&svc.deploy.labels);
    labels.insert(LABEL_IMAGE.to_string(), image.clone());
    let (cap_add, cap_drop) = effective_caps(&svc.cap_add, &svc.cap_drop);
    let dns = svc
        .dns
        .iter()
        .filter(|ip| ip.parse::<std::net::IpAddr>().is_ok())
        .cloned()
        .collect::<Vec<_>>();
    let dns_config = (!svc.dns.is_empty() || !svc.dns_search.is_empty()).then(|| {
        TaskSpecContainerSpecDnsConfig {
            nameservers: non_empty(dns),
            search: non_empty(svc.dns_search.clone()),
            options: None,
        }
    });
    let container = TaskSpecContainerSpec {
        image: Some(image),
        labels: Some(ns.labels(&svc.labels)),
        command: svc.entrypoint.clone().and_then(non_empty),
        args: svc.command.clone().and_then(non_empty),
        hostname: svc.hostname.clone().filter(|h| !h.is_empty()),
        env: non_empty(environment(&svc.environment)),
        dir: svc.working_dir.clone().filter(|d| !d.is_empty()),
        user: svc.user.clone().filter(|u| !u.is_empty()),
        privileges: Some(TaskSpecContainerSpecPrivileges::default()),
        tty: svc.tty.then_some(true),
        open_stdin: svc.stdin_open.then_some(true),
        read_only: svc.read_only.then_some(true),
        mounts: non_empty(mounts(ns, svc, compose).map_err(err)?),
        stop_signal: svc.stop_signal.clone().filter(|s| !s.is_empty()),
        stop_grace_period: svc.stop_grace_period.map(|d| d.0),
        health_check: healthcheck(svc.healthcheck.as_ref()).map_err(err)?,
        hosts: non_empty(extra_hosts(&svc.extra_hosts)),
        dns_config,
        secrets: non_empty(secrets),
        configs: non_empty(configs),
        isolation: match svc.isolation.as_deref() {
            None | Some("") => None,
            Some(i) => Some(parse_enum("isolation", i).map_err(err)?),
        },
        init: svc.init,
        sysctls: (!svc.sysctls.is_empty()).then(|| svc.sysctls.clone().into_iter().collect()),
        capability_add: non_empty(cap_add),
        capability_drop: non_empty(cap_drop),
        ulimits: non_empty(ulimits(svc)),
        ..Default::default()
    };
    let placement = &svc.deploy.placement;
    let task = TaskSpec {
        container_spec: Some(container),
        resources: Some(resources(&svc.deploy.resources).map_err(err)?),
        restart_policy: restart_policy(svc).map_err(err)?,
        placement: Some(TaskSpecPlacement {
            constraints: non_empty(placement.constraints.clone()),
            preferences: non_empty(
                placement
                    .preferences
                    .iter()
                    .map(|p| TaskSpecPlacementPreferences {
                        spread: Some(TaskSpecPlacementSpread {
                            spread_descriptor: Some(p.spread.clone()),
                        }),
                    })
                    .collect(),
            ),
            max_replicas: placement
                .max_replicas_per_node
                .filter(|n| *n > 0)
                .map(|n| n as i64),
            platforms: None,
        }),
        networks: Some(networks(ns, name, svc, compose).map_err(err)?),
        log_driver: svc.logging.as_ref().map(|l| TaskSpecLogDriver {
            name: l.driver.clone(),
            options: (!l.options.is_empty()).then(|| l.options.clone().into_iter().collect()),
        }),
        ..Default::default()
    };
    Ok(ServiceSpec {
        name: Some(ns.scope(name)),
        labels: Some(labels),
        task_template: Some(task),
        mode: Some(mode(svc).map_err(err)?),
        update_config: svc
            .deploy
            .update_config
            .as_ref()
            .map(update_config)
            .transpose()
            .map_err(err)?,
        rollback_config: svc
            .deploy
            .rollback_config
            .as_ref()
            .map(rollback_config)
            .transpose()
            .map_err(err)?,
        networks: None,
        endpoint_spec: Some(endpoint(svc, opts).map_err(err)?),
    })
}

/// `KEY=value` (or bare `KEY` for declared-without-value), sorted like docker/cli.
fn environment(env: &BTreeMap<String, Option<String>>) -> Vec<String> {
    let mut out: Vec<String> = env
        .iter()
        .map(|(k, v)| match v {
            Some(v) => format!("{k}={v}"),
            None => k.clone(),
        })
        .collect();
    out.sort();
    out
}

/// `host:ip` → `ip host` (SwarmKit's hosts-file notation), order kept.
fn extra_hosts(hosts: &[String]) -> Vec<String> {
    hosts
        .iter()
        .filter_map(|h| h.split_once(':').map(|(host, ip)| format!("{ip} {host}")))
        .collect()
}

fn normalize_cap(c: &str) -> String {
    let c = c.trim().to_ascii_uppercase();
    if c == "ALL" || c == "RESET" || c.starts_with("CAP_") {
        c
    } else {
        format!("CAP_{c}")
    }
}

/// docker/cli's `opts.EffectiveCapAddCapDrop`: normalized, deduplicated, sorted; adding wins.
fn effective_caps(add: &[String], drop: &[String]) -> (Vec<String>, Vec<String>) {
    let mut add: std::collections::BTreeSet<String> =
        add.iter().map(|c| normalize_cap(c)).collect();
    let mut drop: std::collections::BTreeSet<String> =
        drop.iter().map(|c| normalize_cap(c)).collect();
    if add.contains("ALL") {
        add = ["ALL".to_string()].into();
    }
    if drop.contains("ALL") {
        drop = ["ALL".to_string()].into();
    }
    let drop = drop
        .into_iter()
        .filter(|c| !add.contains(c) && c != "RESET")
        .collect();
    let add = add.into_iter().filter(|c| c != "RESET").collect();
    (add, drop)
}

fn ulimits(svc: &Service) -> Vec<ResourcesUlimits> {
    svc.ulimits
        .iter()
        .map(|(name, u)| {
            let (soft, hard) = match u.single.filter(|s| *s != 0) {
                Some(s) => (s, s),
                None => (u.soft.unwrap_or(0), u.hard.unwrap_or(0)),
            };
            ResourcesUlimits {
                name: Some(name.clone()),
                soft: Some(soft),
                hard: Some(hard),
            }
        })
        .collect()
}

fn healthcheck(hc: Option<&Healthcheck>) -> Result<Option<HealthConfig>, String> {
    let Some(hc) = hc else { return Ok(None) };
    if hc.disable {
        if hc.test.as_ref().is_some_and(|t| !t.is_empty()) {
            return Err("test and disable can't be set at the same time".to_string());
        }
        return Ok(Some(HealthConfig {
            test: Some(vec!["NONE".to_string()]),
            ..Default::default()
        }));
    }
    let d = |v: Option<crate::swarm::compose::units::GoDuration>| v.and_then(|d| nonzero(d.0));
    Ok(Some(HealthConfig {
        test: hc.test.clone().and_then(non_empty),
        interval: d(hc.interval),
        timeout: d(hc.timeout),
        retries: hc.retries.and_then(|r| nonzero(r as i64)),
        start_period: d(hc.start_period),
        start_interval: d(hc.start_interval),
    }))
}

fn mode(svc: &Service) -> Result<ServiceSpecMode, String> {
    let replicas = svc.deploy.replicas.map(|r| r as i64);
    let no_replicas = || {
        if replicas.is_some() {
            Err("replicas can only be used with replicated or replicated-job mode".to_string())
        } else {
            Ok(())
        }
    };
    Ok(match svc.deploy.mode.as_deref().unwrap_or("") {
        "global-job" => {
            no_replicas()?;
            ServiceSpecMode {
                global_job: Some(HashMap::new()),
                ..Default::default()
            }
        }
        "global" => {
            no_replicas()?;
            ServiceSpecMode {
                global: Some(HashMap::new()),
                ..Default::default()
            }
        }
        "replicated-job" => ServiceSpecMode {
            replicated_job: Some(ServiceSpecModeReplicatedJob {
                max_concurrent: replicas,
                total_completions: replicas,
            }),
            ..Default::default()
        },
        "replicated" | "" => ServiceSpecMode {
            replicated: Some(ServiceSpecModeReplicated { replicas }),
            ..Default::default()
        },
        other => return Err(format!("unknown mode: {other}")),
    })
}

fn endpoint(svc: &Service, opts: &ConvertOptions) -> Result<EndpointSpec, String> {
    let mut ports = svc
        .ports
        .iter()
        .map(port)
        .collect::<Result<Vec<_>, String>>()?;
    // docker/cli sorts by published port only (`sort.Slice`, an insertion sort — so stable — up
    // to 12 ports): ports sharing a published port (unpublished ones, or tcp and udp) keep their
    // compose order.
    ports.sort_by_key(|p| p.published_port.unwrap_or(0));
    let explicit = svc
        .deploy
        .endpoint_mode
        .as_deref()
        .map(str::to_ascii_lowercase)
        .filter(|m| !m.is_empty());
    let ingress = svc
        .ports
        .iter()
        .any(|p| p.mode.as_deref().unwrap_or("ingress") != "host");
    let mode = match explicit {
        Some(m) => Some(parse_enum::<EndpointSpecModeEnum>("endpoint_mode", &m)?),
        None if opts.force_dnsrr && !ingress => Some(EndpointSpecModeEnum::DNSRR),
        None => None,
    };
    Ok(EndpointSpec {
        mode,
        ports: non_empty(ports),
    })
}

fn port(p: &Port) -> Result<EndpointPortConfig, String> {
    Ok(EndpointPortConfig {
        name: None,
        protocol: match p.protocol.as_deref() {
            None | Some("") => None,
            Some(proto) => Some(parse_enum("port protocol", proto)?),
        },
        target_port: Some(i64::from(p.target)),
        published_port: p.published.filter(|n| *n != 0).map(i64::from),
        publish_mode: match p.mode.as_deref() {
            None | Some("") => None,
            Some(m) => Some(parse_enum("port mode", m)?),
        },
    })
}

/// Network attachments sorted by target; the service's own name is an alias on user-defined
/// networks.
fn networks(
    ns: &Namespace<'_>,
    name: &str,
    svc: &Service,
    compose: &ComposeFile,
) -> Result<Vec<NetworkAttachmentConfig>, String> {
    let default = BTreeMap::from([("default".to_string(), Default::default())]);
    let attached = if svc.networks.is_empty() {
        &default
    } else {
        &svc.networks
    };
    let mut out = Vec::new();
    for (net, cfg) in attached {
        let declared = compose.networks.get(net);
        if declared.is_none() && net != "default" {
            return Err(format!("undefined network {net:?}"));
        }
        let target = declared
            .and_then(|n| n.name.clone())
            .unwrap_or_else(|| ns.scope(net));
        let mut aliases = cfg.aliases.clone().unwrap_or_default();
        if !matches!(target.as_str(), "default" | "bridge" | "host" | "none")
            && !target.starts_with("container:")
        {
            aliases.push(name.to_string());
        }
        out.push(NetworkAttachmentConfig {
            target: Some(target),
            aliases: non_empty(aliases),
            driver_opts: cfg.driver_opts.clone().map(|o| o.into_iter().collect()),
        });
    }
    out.sort_by(|a, b| a.target.cmp(&b.target));
    Ok(out)
}

struct FileTarget {
    object: String,
    name: String,
    uid: String,
    gid: String,
    mode: u32,
}

fn file_target(
    ns: &Namespace<'_>,
    kind: &str,
    r: &FileReference,
    declared: Option<&crate::swarm::compose::FileObject>,
) -> Result<FileTarget, String> {
    let obj = declared.ok_or_else(|| format!("undefined {kind} {:?}", r.source))?;
    Ok(FileTarget {
        object: obj.name.clone().unwrap_or_else(|| ns.scope(&r.source)),
        name: r
            .target
            .clone()
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| r.source.clone()),
        uid: r
            .uid
            .clone()
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| "0".into()),
        gid: r
            .gid
            .clone()
            .filter(|g| !g.is_empty())
            .unwrap_or_else(|| "0".into()),
        mode: r.mode.unwrap_or(0o444),
    })
}

fn secret_refs(
    ns: &Namespace<'_>,
    svc: &Service,
    compose: &ComposeFile,
) -> Result<Vec<TaskSpecContainerSpecSecrets>, String> {
    let mut seen = std::collections::BTreeSet::new();
    let mut out = Vec::new();
    for r in &svc.secrets {
        let t = file_target(ns, "secret", r, compose.secrets.get(&r.source))?;
        if !seen.insert(t.name.clone()) {
            return Err(format!(
                "duplicate secret target for {} not allowed",
                t.object
            ));
        }
        out.push(TaskSpecContainerSpecSecrets {
            file: Some(TaskSpecContainerSpecFile {
                name: Some(t.name),
                uid: Some(t.uid),
                gid: Some(t.gid),
                mode: Some(t.mode),
            }),
            secret_id: None,
            secret_name: Some(t.object),
        });
    }
    out.sort_by(|a, b| a.secret_name.cmp(&b.secret_name));
    Ok(out)
}

fn config_refs(
    ns: &Namespace<'_>,
    svc: &Service,
    compose: &ComposeFile,
) -> Result<Vec<TaskSpecContainerSpecConfigs>, String> {
    let mut seen = std::collections::BTreeSet::new();
    let mut out = Vec::new();
    for r in &svc.configs {
        let t = file_target(ns, "config", r, compose.configs.get(&r.source))?;
        if !seen.insert(t.name.clone()) {
            return Err(format!(
                "duplicate config target for {} not allowed",
                t.object
            ));
        }
        out.push(TaskSpecContainerSpecConfigs {
            file: Some(TaskSpecContainerSpecFile1 {
                name: Some(t.name),
                uid: Some(t.uid),
                gid: Some(t.gid),
                mode: Some(t.mode),
            }),
            runtime: None,
            config_id: None,
            config_name: Some(t.object),
        });
    }
    out.sort_by(|a, b| a.config_name.cmp(&b.config_name));
    Ok(out)
}
