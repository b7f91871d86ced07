//! Per-file normalization of an interpolated compose tree into the long forms of
//! [`super::model`], mirroring docker/cli's loader transforms: short ports/volumes/secrets,
//! list-or-map environment and labels, `external: true`, relative paths, `env_file:` contents
//! and environment look-ups — all done per file, before files are merged, like docker/cli.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Map, Value, json};

use super::shortform::{parse_port, parse_volume, shell_split};
use super::units::type_name;

#[path = "normalize_env.rs"]
mod env;
#[path = "normalize_values.rs"]
mod values;
use env::resolve_environment;
pub use values::{absolute, stringify};
use values::{is_empty, string_list, stringify_items, to_string_map};

/// Service keys `docker stack deploy` refuses.
const FORBIDDEN: &[(&str, &str)] = &[
    ("extends", "Support for `extends` is not implemented yet."),
    (
        "volume_driver",
        "Instead of setting the volume driver on the service, define a volume using the top-level `volumes` option and specify the driver there.",
    ),
    (
        "volumes_from",
        "To share a volume between services, define it using the top-level `volumes` option and reference it from each service that shares it using the service-level `volumes` option.",
    ),
    ("cpu_quota", "Set resource limits using deploy.resources"),
    ("cpu_shares", "Set resource limits using deploy.resources"),
    ("cpuset", "Set resource limits using deploy.resources"),
    ("mem_limit", "Set resource limits using deploy.resources"),
    (
        "memswap_limit",
        "Set resource limits using deploy.resources",
    ),
];

/// Service keys `docker stack deploy` ignores with a warning.
const IGNORED: &[&str] = &[
    "build",
    "cgroupns_mode",
    "cgroup_parent",
    "devices",
    "domainname",
    "external_links",
    "ipc",
    "links",
    "mac_address",
    "network_mode",
    "pid",
    "privileged",
    "security_opt",
    "shm_size",
    "userns_mode",
    "container_name",
    "expose",
];

/// What normalization needs: file name (for messages), working dir, environment, warnings.
pub struct Context<'a> {
    /// The file's name as given (for messages).
    pub file: &'a str,
    /// Absolute working directory (the first compose file's directory).
    pub dir: &'a Path,
    /// Environment used for look-ups.
    pub env: &'a BTreeMap<String, String>,
    /// Warnings collected so far.
    pub warnings: &'a mut Vec<String>,
}

/// A normalization failure at a key path.
#[derive(Debug)]
pub struct NormalizeError {
    /// Dotted key path.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

type Result<T> = std::result::Result<T, NormalizeError>;

fn fail<T>(path: &str, message: impl Into<String>) -> Result<T> {
    Err(NormalizeError {
        path: path.to_string(),
        message: message.into(),
    })
}

/// Normalizes one file's tree in place.
pub fn normalize_file(root: &mut Value, ctx: &mut Context<'_>) -> Result<()> {
    let Value::Object(top) = root else {
        return fail("", "top-level object must be a mapping");
    };
    if let Some(services) = top.get_mut("services") {
        let Value::Object(services) = services else {
            return fail(
                "services",
                format!("must be a mapping, not a {}", type_name(services)),
            );
        };
        for (name, svc) in services.iter_mut() {
            if svc.is_null() {
                *svc = json!({});
            }
            let path = format!("services.{name}");
            let Value::Object(svc) = svc else {
                return fail(
                    &path,
                    format!("must be a mapping, not a {}", type_name(svc)),
                );
            };
            normalize_service(svc, &path, ctx)?;
        }
    }
    for section in ["networks", "volumes", "secrets", "configs"] {
        let Some(entries) = top.get_mut(section) else {
            continue;
        };
        if entries.is_null() {
            *entries = json!({});
        }
        let Value::Object(entries) = entries else {
            return fail(
                section,
                format!("must be a mapping, not a {}", type_name(entries)),
            );
        };
        for (name, entry) in entries.iter_mut() {
            if entry.is_null() {
                *entry = json!({});
            }
            let path = format!("{section}.{name}");
            let Value::Object(entry) = entry else {
                return fail(
                    &path,
                    format!("must be a mapping, not a {}", type_name(entry)),
                );
            };
            normalize_top_level(section, name, entry, &path, ctx)?;
        }
    }
    Ok(())
}

fn normalize_top_level(
    section: &str,
    name: &str,
    entry: &mut Map<String, Value>,
    path: &str,
    ctx: &mut Context<'_>,
) -> Result<()> {
    to_string_map(entry, "labels", &format!("{path}.labels"))?;
    if let Some(Value::Object(opts)) = entry.get_mut("driver_opts") {
        for v in opts.values_mut() {
            *v = Value::String(stringify(v));
        }
    }
    // `external: true` / `external: {name: x}` → `external: true` + `name`.
    let ext_path = format!("{path}.external");
    match entry.remove("external") {
        None | Some(Value::Null) => {}
        Some(Value::Bool(external)) => {
            entry.insert("external".into(), Value::Bool(external));
        }
        Some(Value::Object(ext)) => {
            entry.insert("external".into(), Value::Bool(true));
            if let Some(ext_name) = ext.get("name").filter(|v| !v.is_null()) {
                if entry.contains_key("name") {
                    let kind = &section[..section.len() - 1];
                    return fail(
                        path,
                        format!(
                            "{kind}.external.name and {kind}.name conflict; only use {kind}.name"
                        ),
                    );
                }
                ctx.warnings.push(format!(
                    "{}: {ext_path}.name is deprecated in favor of {path}.name",
                    ctx.file
                ));
                entry.insert("name".into(), Value::String(stringify(ext_name)));
            }
        }
        Some(other) => {
            return fail(
                &ext_path,
                format!("invalid type {} for external", type_name(&other)),
            );
        }
    }
    let external = entry.get("external") == Some(&Value::Bool(true));
    if external && !entry.contains_key("name") {
        entry.insert("name".into(), json!(name));
    }
    if section == "volumes" && external {
        for key in ["driver", "driver_opts", "labels"] {
            if entry.get(key).is_some_and(|v| !is_empty(v)) {
                return fail(
                    path,
                    format!(
                        "conflicting parameters \"external\" and {key:?} specified for volume {name:?}"
                    ),
                );
            }
        }
    }
    if matches!(section, "secrets" | "configs") && !external {
        if let (Some(_), Some(_)) = (entry.get("driver"), entry.get("file")) {
            let kind = &section[..section.len() - 1];
            return fail(
                path,
                format!("{kind}.driver and {kind}.file conflict; only use {kind}.driver"),
            );
        }
        if let Some(Value::String(file)) = entry.get_mut("file") {
            *file = absolute(ctx.dir, file);
        }
    }
    Ok(())
}

fn normalize_service(
    svc: &mut Map<String, Value>,
    path: &str,
    ctx: &mut Context<'_>,
) -> Result<()> {
    let forbidden: Vec<String> = FORBIDDEN
        .iter()
        .filter(|(k, _)| svc.contains_key(*k))
        .map(|(k, why)| format!("{k}: {why}"))
        .collect();
    if !forbidden.is_empty() {
        return fail(
            path,
            format!("contains unsupported options: {}", forbidden.join("; ")),
        );
    }
    for key in IGNORED {
        if svc.remove(*key).is_some() {
            ctx.warnings.push(format!(
                "{}: {path}: ignoring unsupported option {key}",
                ctx.file
            ));
        }
    }
    for key in ["command", "entrypoint"] {
        let p = format!("{path}.{key}");
        match svc.get_mut(key) {
            Some(Value::String(s)) => {
                let words = shell_split(s).map_err(|m| NormalizeError {
                    path: p,
                    message: m,
                })?;
                svc.insert(key.into(), json!(words));
            }
            Some(Value::Array(items)) => stringify_items(items),
            Some(Value::Null) => {
                svc.remove(key);
            }
            Some(other) => {
                return fail(&p, format!("invalid type {} for command", type_name(other)));
            }
            None => {}
        }
    }
    for key in [
        "dns",
        "dns_search",
        "env_file",
        "tmpfs",
        "cap_add",
        "cap_drop",
    ] {
        string_list(svc, key, &format!("{path}.{key}"))?;
    }
    to_string_map(svc, "labels", &format!("{path}.labels"))?;
    to_string_map(svc, "sysctls", &format!("{path}.sysctls"))?;
    if let Some(Value::Object(deploy)) = svc.get_mut("deploy") {
        to_string_map(deploy, "labels", &format!("{path}.deploy.labels"))?;
        if let Some(Value::Object(res)) = deploy.get_mut("resources") {
            for part in ["limits", "reservations"] {
                if let Some(Value::Object(spec)) = res.get_mut(part)
                    && let Some(cpus @ Value::Number(_)) = spec.get_mut("cpus")
                {
                    *cpus = Value::String(stringify(cpus));
                }
            }
        }
    }
    if let Some(Value::Object(logging)) = svc.get_mut("logging") {
        to_string_map(logging, "options", &format!("{path}.logging.options"))?;
    }
    if let Some(hosts) = svc.get_mut("extra_hosts")
        && let Value::Object(map) = hosts
    {
        let mut list: Vec<String> = map
            .iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| format!("{k}:{}", stringify(v)))
            .collect();
        list.sort();
        *hosts = json!(list);
    }
    for key in ["secrets", "configs"] {
        if let Some(Value::Array(items)) = svc.get_mut(key) {
            for item in items.iter_mut() {
                if let Value::String(s) = item {
                    *item = json!({"source": s});
                }
            }
        }
    }
    normalize_ports(svc, path, ctx)?;
    normalize_volumes(svc, path, ctx)?;
    // `- proxy` and `proxy:` stay `null` (not `{}`): an overlay's bare entry leaves the earlier
    // file's aliases alone, one with a body replaces them (see `merge`).
    if let Some(Value::Array(names)) = svc.get("networks") {
        let map: Map<String, Value> = names.iter().map(|n| (stringify(n), Value::Null)).collect();
        svc.insert("networks".into(), Value::Object(map));
    }
    if let Some(Value::Object(hc)) = svc.get_mut("healthcheck")
        && let Some(Value::String(test)) = hc.get("test")
    {
        let test = json!(["CMD-SHELL", test]);
        hc.insert("test".into(), test);
    }
    if let Some(Value::Object(ulimits)) = svc.get_mut("ulimits") {
        for v in ulimits.values_mut() {
            if v.is_number() {
                *v = json!({"single": v});
            }
        }
    }
    resolve_environment(svc, path, ctx)
}

fn normalize_ports(svc: &mut Map<String, Value>, path: &str, ctx: &mut Context<'_>) -> Result<()> {
    let Some(Value::Array(items)) = svc.get_mut("ports") else {
        return Ok(());
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        match item {
            Value::String(_) | Value::Number(_) => {
                let spec = stringify(item);
                let (ports, warning) = parse_port(&spec).map_err(|message| NormalizeError {
                    path: format!("{path}.ports[{i}]"),
                    message,
                })?;
                if let Some(w) = warning {
                    ctx.warnings
                        .push(format!("{}: {path}.ports[{i}]: {w}", ctx.file));
                }
                out.extend(ports);
            }
            Value::Object(m) => {
                let mut m = m.clone();
                // Accept numeric strings for target/published (newer compose writes them so).
                for key in ["target", "published"] {
                    if let Some(Value::String(s)) = m.get(key)
                        && let Ok(n) = s.parse::<u32>()
                    {
                        m.insert(key.into(), json!(n));
                    }
                }
                out.push(Value::Object(m));
            }
            other => {
                return fail(
                    &format!("{path}.ports[{i}]"),
                    format!("invalid type {} for port", type_name(other)),
                );
            }
        }
    }
    *items = out;
    Ok(())
}

fn normalize_volumes(
    svc: &mut Map<String, Value>,
    path: &str,
    ctx: &mut Context<'_>,
) -> Result<()> {
    let Some(Value::Array(items)) = svc.get_mut("volumes") else {
        return Ok(());
    };
    for (i, item) in items.iter_mut().enumerate() {
        let p = format!("{path}.volumes[{i}]");
        if let Value::String(spec) = item {
            *item = parse_volume(spec).map_err(|message| NormalizeError {
                path: p.clone(),
                message,
            })?;
        }
        let Value::Object(m) = item else {
            return fail(
                &p,
                format!("invalid type {} for service volume", type_name(item)),
            );
        };
        if m.get("type").and_then(Value::as_str) != Some("bind") {
            continue;
        }
        let source = match m.get("source") {
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            _ => {
                return fail(
                    &p,
                    "invalid mount config for type \"bind\": field Source must not be empty",
                );
            }
        };
        let expanded = match source.strip_prefix('~') {
            Some(rest) => match ctx.env.get("HOME") {
                Some(home) => format!("{home}{rest}"),
                None => {
                    ctx.warnings.push(format!(
                        "{}: {p}: cannot expand '~', because the environment lacks HOME",
                        ctx.file
                    ));
                    source.clone()
                }
            },
            None => source.clone(),
        };
        m.insert("source".into(), json!(absolute(ctx.dir, &expanded)));
    }
    Ok(())
}
