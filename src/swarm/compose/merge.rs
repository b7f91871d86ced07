//! Merging normalized compose trees in `COMPOSE_FILE` order with docker/cli's rules
//! (`loader/merge.go`, mergo with `WithOverride` + `WithAppendSlice` and special cases):
//!
//! - services merge by name; top-level networks/volumes/secrets/configs entries are replaced
//!   whole by name;
//! - maps (`environment`, `labels`, `deploy.labels`, `sysctls`, `deploy`, …) merge key by key;
//! - `command`/`entrypoint` are replaced when the overlay sets a non-empty one;
//! - `ports` are unioned (identical mappings collapse) and sorted by published port;
//!   `secrets`/`configs` are merged by `source` and sorted by it; `volumes` by `target`;
//! - service `networks` merge by name, an overlay entry replacing `aliases`;
//! - `logging` options merge when the driver is the same (or unset), else the overlay wins;
//! - `ulimits` are replaced per name; other lists (`cap_add`, `dns`, `extra_hosts`,
//!   `placement.constraints`, …) are appended;
//! - scalars override, except that a zero value (`false`, `0`, `""`) does not override a
//!   non-pointer field, as with mergo.
//!
//! Deliberate difference: `healthcheck.test` is replaced (docker/cli appends the two lists,
//! which produces an invalid test).

use serde_json::{Map, Value};

/// Fields docker/cli holds as pointers: an explicit zero in an overlay does override.
const POINTER_FIELDS: &[&str] = &[
    "replicas",
    "init",
    "stop_grace_period",
    "interval",
    "timeout",
    "retries",
    "start_period",
    "start_interval",
    "max_attempts",
    "window",
    "parallelism",
    "delay",
    "mode",
];

/// Merges the normalized tree `over` into `base`.
pub fn merge_files(base: &mut Value, over: Value) {
    let (Value::Object(base), Value::Object(over)) = (base, over) else {
        return;
    };
    for (key, value) in over {
        match key.as_str() {
            "services" => {
                let Value::Object(services) = value else {
                    continue;
                };
                let dst = base
                    .entry("services")
                    .or_insert_with(|| Value::Object(Map::new()));
                if !dst.is_object() {
                    *dst = Value::Object(Map::new());
                }
                let dst = dst.as_object_mut().expect("object");
                for (name, svc) in services {
                    match (dst.get_mut(&name), svc) {
                        (Some(Value::Object(d)), Value::Object(s)) => merge_service(d, s),
                        (_, svc) => {
                            dst.insert(name, svc);
                        }
                    }
                }
            }
            "networks" | "volumes" | "secrets" | "configs" => {
                let Value::Object(entries) = value else {
                    continue;
                };
                let dst = base.entry(key).or_insert_with(|| Value::Object(Map::new()));
                match dst {
                    Value::Object(d) => d.extend(entries),
                    other => *other = Value::Object(entries),
                }
            }
            _ => {
                base.insert(key, value);
            }
        }
    }
}

fn merge_service(dst: &mut Map<String, Value>, src: Map<String, Value>) {
    for (key, value) in src {
        let Some(existing) = dst.get_mut(&key) else {
            dst.insert(key, value);
            continue;
        };
        match key.as_str() {
            "command" | "entrypoint" => {
                if value.as_array().is_some_and(|a| !a.is_empty()) {
                    *existing = value;
                }
            }
            "ports" => merge_list_by(
                existing,
                value,
                |v| v.to_string(),
                |v| {
                    (
                        v.get("published").and_then(Value::as_u64).unwrap_or(0),
                        String::new(),
                    )
                },
            ),
            "secrets" | "configs" => merge_list_by(
                existing,
                value,
                |v| field(v, "source"),
                |v| (0, field(v, "source")),
            ),
            "volumes" => merge_list_by(
                existing,
                value,
                |v| field(v, "target"),
                |v| (0, field(v, "target")),
            ),
            "networks" => merge_service_networks(existing, value),
            "logging" => merge_logging(existing, value),
            "ulimits" => {
                if let (Value::Object(d), Value::Object(s)) = (existing, value) {
                    d.extend(s.into_iter().filter(|(_, v)| !is_zero(v)));
                }
            }
            "healthcheck" => {
                if let (Value::Object(d), Value::Object(mut s)) = (&mut *existing, value) {
                    if let Some(test) = s.remove("test") {
                        d.insert("test".into(), test);
                    }
                    merge_generic(existing, Value::Object(s), &key);
                }
            }
            _ => merge_generic(existing, value, &key),
        }
    }
}

fn field(v: &Value, name: &str) -> String {
    v.get(name)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// Unions two lists keyed by `key`, the overlay replacing equal keys, then sorts stably by `sort`.
fn merge_list_by(
    existing: &mut Value,
    value: Value,
    key: impl Fn(&Value) -> String,
    sort: impl Fn(&Value) -> (u64, String),
) {
    let (Value::Array(d), Value::Array(s)) = (&mut *existing, value) else {
        return;
    };
    for item in s {
        let k = key(&item);
        match d.iter_mut().find(|x| key(x) == k) {
            Some(slot) => *slot = item,
            None => d.push(item),
        }
    }
    d.sort_by_key(|v| sort(v));
}

fn merge_service_networks(existing: &mut Value, value: Value) {
    let (Value::Object(d), Value::Object(s)) = (existing, value) else {
        return;
    };
    for (name, net) in s {
        match (d.get_mut(&name), net) {
            (Some(Value::Object(dn)), Value::Object(sn)) => {
                if sn.values().all(is_zero) {
                    continue;
                }
                match sn.get("aliases") {
                    Some(a) => dn.insert("aliases".into(), a.clone()),
                    None => dn.remove("aliases"),
                };
                for ip in ["ipv4_address", "ipv6_address"] {
                    if let Some(v) = sn.get(ip).filter(|v| !is_zero(v)) {
                        dn.insert(ip.into(), v.clone());
                    }
                }
            }
            (_, net) => {
                d.insert(name, net);
            }
        }
    }
}

fn merge_logging(existing: &mut Value, value: Value) {
    let driver = |v: &Value| field(v, "driver");
    let (dd, sd) = (driver(existing), driver(&value));
    if dd == sd || dd.is_empty() || sd.is_empty() {
        if let (Value::Object(d), Value::Object(mut s)) = (&mut *existing, value) {
            if dd.is_empty() && !sd.is_empty() {
                d.insert("driver".into(), Value::String(sd));
            }
            if let Some(opts) = s.remove("options") {
                let slot = d
                    .entry("options")
                    .or_insert_with(|| Value::Object(Map::new()));
                merge_generic(slot, opts, "options");
            }
        }
    } else {
        *existing = value;
    }
}

fn merge_generic(dst: &mut Value, src: Value, key: &str) {
    match (dst, src) {
        (_, Value::Null) => {}
        (Value::Object(d), Value::Object(s)) => {
            for (k, v) in s {
                match d.get_mut(&k) {
                    Some(slot) => merge_generic(slot, v, &k),
                    None => {
                        d.insert(k, v);
                    }
                }
            }
        }
        (Value::Array(d), Value::Array(s)) => d.extend(s),
        (dst, src) => {
            if !is_zero(&src) || POINTER_FIELDS.contains(&key) {
                *dst = src;
            }
        }
    }
}

fn is_zero(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(m) => m.is_empty(),
    }
}

#[cfg(test)]
#[path = "merge_tests.rs"]
mod tests;
