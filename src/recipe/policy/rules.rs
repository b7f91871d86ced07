//! The policy's rules, one function per part of the compose: keys Swarm drops (read from the
//! files as written), services of the merged model, and top-level objects.

use std::collections::BTreeMap;

use serde_json::Value;

use super::{BindTarget, Input, PROXY_NETWORK, Rule, Violation};

/// Label prefixes that decide who owns (and removes) an object.
const RESERVED_LABELS: [&str; 2] = ["cc-ci.", "com.docker.stack."];

/// Service keys that share a namespace with the host or another container.
const NAMESPACE_KEYS: [&str; 6] = [
    "network_mode",
    "pid",
    "ipc",
    "userns_mode",
    "uts",
    "cgroupns_mode",
];

fn violation(key: String, rule: Rule, value: &str, allowance: Option<String>) -> Violation {
    Violation {
        key,
        rule,
        value: value.to_string(),
        allowances: allowance.into_iter().collect(),
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Bool(b) => *b,
        Value::String(s) => matches!(s.to_ascii_lowercase().as_str(), "true" | "yes" | "on" | "1"),
        Value::Number(n) => n.as_i64() != Some(0),
        _ => false,
    }
}

fn items(v: &Value) -> Vec<&Value> {
    match v {
        Value::Array(a) => a.iter().collect(),
        Value::Null => Vec::new(),
        other => vec![other],
    }
}

/// Keys the loader drops with a warning (Swarm has no such setting) but which state what the
/// recipe wants: refused on the file as written, so an ignored request is not a silent pass.
pub fn raw_service_keys(tree: &Value, out: &mut Vec<Violation>) {
    let Some(Value::Object(services)) = tree.get("services") else {
        return;
    };
    for (name, svc) in services {
        let Value::Object(svc) = svc else { continue };
        let key = |k: &str| format!("services.{name}.{k}");
        if svc.get("privileged").is_some_and(truthy) {
            out.push(violation(
                key("privileged"),
                Rule::Privileged,
                "true",
                Some("privileged".into()),
            ));
        }
        for opt in svc.get("security_opt").map(items).unwrap_or_default() {
            let v = text(opt);
            out.push(violation(
                key("security_opt"),
                Rule::SecurityOption,
                &v,
                Some(format!("security_opt:{v}")),
            ));
        }
        for ns in NAMESPACE_KEYS {
            let Some(v) = svc.get(ns).map(text) else {
                continue;
            };
            let shared = v == "host" || v.starts_with("container:") || v.starts_with("service:");
            if shared {
                out.push(violation(
                    key(ns),
                    Rule::HostNamespace,
                    &v,
                    Some(format!("{ns}:{v}")),
                ));
            }
        }
        if let Some(v) = svc.get("cgroup_parent").map(text).filter(|v| !v.is_empty()) {
            out.push(violation(
                key("cgroup_parent"),
                Rule::CgroupParent,
                &v,
                Some(format!("cgroup_parent:{v}")),
            ));
        }
        for dev in svc.get("devices").map(items).unwrap_or_default() {
            let host = match dev {
                Value::Object(m) => m.get("source").map(text).unwrap_or_default(),
                other => text(other)
                    .split(':')
                    .next()
                    .unwrap_or_default()
                    .to_string(),
            };
            out.push(violation(
                key("devices"),
                Rule::Device,
                &host,
                Some(format!("devices:{host}")),
            ));
        }
    }
}

fn reserved_labels(labels: &BTreeMap<String, String>, key: &str, out: &mut Vec<Violation>) {
    for label in labels.keys() {
        if RESERVED_LABELS.iter().any(|p| label.starts_with(p)) {
            out.push(violation(key.to_string(), Rule::ReservedLabel, label, None));
        }
    }
}

/// Capabilities, sysctls, mounts, ports and labels of every service of the merged model.
pub fn services(input: &Input<'_>, out: &mut Vec<Violation>) {
    for (name, svc) in &input.compose.services {
        let key = |k: &str| format!("services.{name}.{k}");
        for cap in &svc.cap_add {
            let cap = cap.trim().to_ascii_uppercase();
            let bare = cap.strip_prefix("CAP_").unwrap_or(&cap).to_string();
            out.push(Violation {
                key: key("cap_add"),
                rule: Rule::Capability,
                value: bare.clone(),
                allowances: vec![format!("cap_add:{bare}"), format!("cap_add:CAP_{bare}")],
            });
        }
        for sysctl in svc.sysctls.keys() {
            out.push(violation(
                key("sysctls"),
                Rule::Sysctl,
                sysctl,
                Some(format!("sysctls:{sysctl}")),
            ));
        }
        for (i, vol) in svc.volumes.iter().enumerate() {
            if vol.kind != "bind" {
                continue;
            }
            let source = vol.source.clone().unwrap_or_default();
            let vkey = format!("services.{name}.volumes[{i}].source");
            match input.binds.get(&source) {
                Some(BindTarget::Checkout) if vol.read_only => {}
                Some(BindTarget::Checkout) => {
                    out.push(violation(vkey, Rule::WritableCheckoutBind, &source, None));
                }
                Some(BindTarget::Host(real)) => {
                    let real = real.to_string_lossy().into_owned();
                    let mut allowances = vec![format!("bind:{source}")];
                    if real != source {
                        allowances.push(format!("bind:{real}"));
                    }
                    out.push(Violation {
                        key: vkey,
                        rule: Rule::HostBind,
                        value: source,
                        allowances,
                    });
                }
                None => out.push(violation(
                    vkey,
                    Rule::HostBind,
                    &source,
                    Some(format!("bind:{source}")),
                )),
            }
        }
        for port in &svc.ports {
            if let Some(published) = port.published {
                let value = match port.protocol.as_deref() {
                    None | Some("") | Some("tcp") => published.to_string(),
                    Some(p) => format!("{published}/{p}"),
                };
                out.push(violation(
                    key("ports"),
                    Rule::HostPort,
                    &value,
                    Some(format!("ports:{value}")),
                ));
            }
        }
        reserved_labels(&svc.labels, &key("labels"), out);
        reserved_labels(&svc.deploy.labels, &key("deploy.labels"), out);
    }
}

/// Whether an object named `name` belongs to the stack (`<stack>_…`).
fn owned(stack: &str, name: &str) -> bool {
    !stack.is_empty()
        && name
            .strip_prefix(stack)
            .is_some_and(|rest| rest.starts_with('_') && rest.len() > 1)
}

fn foreign(
    section: &str,
    key: &str,
    name: Option<&String>,
    external: bool,
    input: &Input<'_>,
    out: &mut Vec<Violation>,
) {
    // Without `name` a non-external object is namespaced `<stack>_<key>` by the conversion;
    // an external one is looked up by its key.
    let name = match name {
        Some(n) => n.as_str(),
        None if external => key,
        None => return,
    };
    let proxy = section == "networks" && external && name == PROXY_NETWORK;
    if !proxy && !owned(input.stack, name) {
        out.push(foreign_violation(section, key, name));
    }
}

fn foreign_violation(section: &str, key: &str, name: &str) -> Violation {
    violation(
        format!("{section}.{key}.name"),
        Rule::ForeignObject,
        name,
        Some(format!("external:{name}")),
    )
}

/// Top-level networks, volumes, secrets and configs: owned names, drivers, labels.
pub fn objects(input: &Input<'_>, out: &mut Vec<Violation>) {
    let c = input.compose;
    for (key, net) in &c.networks {
        foreign("networks", key, net.name.as_ref(), net.external, input, out);
        reserved_labels(&net.labels, &format!("networks.{key}.labels"), out);
    }
    for (key, vol) in &c.volumes {
        foreign("volumes", key, vol.name.as_ref(), vol.external, input, out);
        reserved_labels(&vol.labels, &format!("volumes.{key}.labels"), out);
        if let Some(driver) = vol
            .driver
            .as_deref()
            .filter(|d| !d.is_empty() && *d != "local")
        {
            out.push(violation(
                format!("volumes.{key}.driver"),
                Rule::VolumeDriver,
                driver,
                Some(format!("driver:{driver}")),
            ));
        }
        for (opt, value) in vol.driver_opts.iter().flatten() {
            if opt == "device" {
                out.push(violation(
                    format!("volumes.{key}.driver_opts.device"),
                    Rule::VolumeDevice,
                    value,
                    Some(format!("driver_opts:{value}")),
                ));
            }
        }
    }
    for (section, objects) in [("secrets", &c.secrets), ("configs", &c.configs)] {
        for (key, obj) in objects {
            foreign(section, key, obj.name.as_ref(), obj.external, input, out);
            reserved_labels(&obj.labels, &format!("{section}.{key}.labels"), out);
        }
    }
}
