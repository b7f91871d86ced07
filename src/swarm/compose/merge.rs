//! Merging normalized compose trees in `COMPOSE_FILE` order the way `docker stack deploy` does
//! (docker/cli `cli/compose/loader/merge.go`: mergo with `WithOverride`, `WithAppendSlice` and
//! per-type transformers). Each rule below was checked against `docker stack deploy` (CLI 28.2)
//! itself; the conformance corpus (`tests/fixtures/stacks/overlay-*`) pins them.
//!
//! Files and services:
//! - services merge by name; a service only in the overlay is taken whole;
//! - top-level `networks`/`volumes`/`secrets`/`configs` entries are replaced whole by name.
//!
//! Inside a service the overlay *mentions* (any entry under `services:`, even `app: {}`):
//! - keyed lists — `ports` by published port (unpublished ports share the key 0), `volumes` by
//!   target, `secrets`/`configs` by source — are rebuilt whenever the base service has the list
//!   (even `[]`): one entry per key (the later one wins, within a file too), overlay entries
//!   replacing base ones, sorted by the key. This happens when the overlay does not touch the
//!   list at all. When the base has no such list, the overlay's list is taken as written;
//! - `command`/`entrypoint` are replaced when the overlay's is non-empty;
//! - `environment`: the overlay's value wins unless it is empty or unset while the base value
//!   is non-empty (a `*string` map in docker/cli);
//! - string maps (`labels`, `deploy.labels`, `sysctls`, `driver_opts`, …) merge key by key, the
//!   overlay winning even with `""`;
//! - `networks` by name: an overlay entry without a body (`- proxy`) changes nothing; one with a
//!   body replaces `aliases` (clearing them when absent) and sets non-empty `ipv4_address` /
//!   `ipv6_address`;
//! - `logging`: a different driver replaces the section; the same (or an unset) driver merges
//!   `options` key by key — but only into options the base already has: when the base logging
//!   has no `options`, the overlay's options are dropped (a quirk of docker/cli's merge);
//! - `ulimits` replace per name;
//! - every other list is appended: `cap_add`, `dns`, `extra_hosts` (duplicates kept),
//!   `placement.constraints`/`preferences`, `healthcheck.test` (two tests become one invalid
//!   list, as with docker; a warning says so), …;
//! - scalars are overridden unless the overlay's value is a zero value (`false`, `0`, `""`, a
//!   zero duration or size) — except the `*uint64` fields `replicas`, `parallelism`,
//!   `max_attempts` and `retries`, where an explicit `0` does override.

use serde_json::{Map, Value};

use super::units::{parse_bytes, parse_duration};

/// Fields docker/cli holds as `*uint64` (merged by its `mergeUint64`): an explicit zero overrides.
const UINT64_POINTERS: &[&str] = &["replicas", "parallelism", "max_attempts", "retries"];

/// Duration fields: `0s` is a zero value and does not override.
const DURATIONS: &[&str] = &[
    "stop_grace_period",
    "interval",
    "timeout",
    "start_period",
    "start_interval",
    "delay",
    "window",
    "monitor",
];

/// String maps: every overlay key wins, an empty value included.
const STRING_MAPS: &[&str] = &["labels", "sysctls", "driver_opts", "options"];

/// The lists docker/cli merges by a key, with how each item's key is read.
const KEYED_LISTS: &[(&str, Key)] = &[
    ("ports", Key::Published),
    ("volumes", Key::Field("target")),
    ("secrets", Key::Field("source")),
    ("configs", Key::Field("source")),
];

/// How the key of a keyed-list item is read.
#[derive(Clone, Copy)]
enum Key {
    /// A port's published port (0 when unpublished).
    Published,
    /// A string field of the item.
    Field(&'static str),
}

/// A key of a keyed-list item, ordered like docker/cli sorts the rebuilt list.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum ItemKey {
    Port(u64),
    Name(String),
}

impl Key {
    fn of(self, item: &Value) -> ItemKey {
        match self {
            Key::Published => ItemKey::Port(match item.get("published") {
                Some(Value::Number(n)) => n.as_u64().unwrap_or(0),
                Some(Value::String(s)) => s.parse().unwrap_or(0),
                _ => 0,
            }),
            Key::Field(name) => ItemKey::Name(
                item.get(name)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
            ),
        }
    }
}

/// Merges the normalized tree `over` (from file `file`) into `base`; answers warnings about
/// merges that produce something the author probably did not mean.
pub fn merge_files(base: &mut Value, over: Value, file: &str) -> Vec<String> {
    let mut warnings = Vec::new();
    let (Value::Object(base), Value::Object(over)) = (base, over) else {
        return warnings;
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
                        (Some(Value::Object(d)), Value::Object(s)) => {
                            let path = format!("services.{name}");
                            merge_service(d, s, &path, file, &mut warnings);
                        }
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
    warnings
}

fn merge_service(
    dst: &mut Map<String, Value>,
    mut src: Map<String, Value>,
    path: &str,
    file: &str,
    warnings: &mut Vec<String>,
) {
    // The keyed lists are rebuilt even when the overlay does not set them.
    for (list, key) in KEYED_LISTS {
        let Some(Value::Array(items)) = dst.get_mut(*list) else {
            continue;
        };
        let over = match src.remove(*list) {
            Some(Value::Array(over)) => over,
            None | Some(Value::Null) => Vec::new(),
            // Not a list: left for the generic merge, so loading reports the wrong shape.
            Some(other) => {
                src.insert((*list).to_owned(), other);
                continue;
            }
        };
        *items = merge_keyed(std::mem::take(items), over, *key);
    }
    if let Some(Value::Object(hc)) = dst.get("healthcheck")
        && hc
            .get("test")
            .and_then(Value::as_array)
            .is_some_and(|t| !t.is_empty())
        && src
            .get("healthcheck")
            .and_then(|h| h.get("test"))
            .and_then(Value::as_array)
            .is_some_and(|t| !t.is_empty())
    {
        warnings.push(format!(
            "{file}: {path}.healthcheck.test: docker stack deploy appends an overlay's test to \
             the earlier file's test (one invalid command results); set the test in one file only"
        ));
    }
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
            "environment" => merge_environment(existing, value),
            "networks" => merge_service_networks(existing, value),
            "logging" => merge_logging(existing, value),
            "ulimits" => {
                if let (Value::Object(d), Value::Object(s)) = (existing, value) {
                    d.extend(s.into_iter().filter(|(_, v)| !v.is_null()));
                }
            }
            _ => merge_value(existing, value, &key),
        }
    }
}

/// One entry per key (later wins), `over` replacing `base`, sorted by key.
fn merge_keyed(base: Vec<Value>, over: Vec<Value>, key: Key) -> Vec<Value> {
    let mut keyed: Vec<(ItemKey, Value)> = Vec::with_capacity(base.len() + over.len());
    for item in base.into_iter().chain(over) {
        let k = key.of(&item);
        match keyed.iter_mut().find(|(existing, _)| *existing == k) {
            Some(slot) => slot.1 = item,
            None => keyed.push((k, item)),
        }
    }
    keyed.sort_by(|a, b| a.0.cmp(&b.0));
    keyed.into_iter().map(|(_, item)| item).collect()
}

/// `environment` (`map[string]*string`): the overlay wins unless its value is empty or unset
/// while the base's is not.
fn merge_environment(existing: &mut Value, value: Value) {
    let (Value::Object(d), Value::Object(s)) = (existing, value) else {
        return;
    };
    let blank = |v: &Value| v.is_null() || v.as_str() == Some("");
    for (name, v) in s {
        match d.get_mut(&name) {
            Some(current) if !blank(current) && blank(&v) => {}
            Some(current) => *current = v,
            None => {
                d.insert(name, v);
            }
        }
    }
}

/// Service `networks` by name (docker/cli's `mergeServiceNetworkConfig`).
fn merge_service_networks(existing: &mut Value, value: Value) {
    let (Value::Object(d), Value::Object(s)) = (existing, value) else {
        return;
    };
    for (name, net) in s {
        match (d.get_mut(&name), net) {
            // `- proxy` / `proxy:` in the overlay: nothing to merge.
            (Some(_), Value::Null) => {}
            (Some(Value::Object(dn)), Value::Object(sn)) => {
                match sn.get("aliases").filter(|a| !a.is_null()) {
                    Some(a) => dn.insert("aliases".into(), a.clone()),
                    None => dn.remove("aliases"),
                };
                for ip in ["ipv4_address", "ipv6_address"] {
                    if let Some(v) = sn.get(ip).filter(|v| !is_zero(ip, v)) {
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

/// `logging` (docker/cli's `mergeLoggingConfig`).
fn merge_logging(existing: &mut Value, value: Value) {
    let driver = |v: &Value| {
        v.get("driver")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let (dd, sd) = (driver(existing), driver(&value));
    if !(dd == sd || dd.is_empty() || sd.is_empty()) {
        *existing = value;
        return;
    }
    let (Value::Object(d), Value::Object(mut s)) = (existing, value) else {
        return;
    };
    if dd.is_empty() && !sd.is_empty() {
        d.insert("driver".into(), Value::String(sd));
    }
    // docker/cli merges into the base's options map; without one the overlay's are lost.
    if let (Some(Value::Object(dopts)), Some(Value::Object(sopts))) =
        (d.get_mut("options"), s.remove("options"))
    {
        dopts.extend(sopts);
    }
}

/// mergo's deep merge with override and appended slices.
fn merge_value(dst: &mut Value, src: Value, key: &str) {
    match (dst, src) {
        (_, Value::Null) => {}
        (Value::Object(d), Value::Object(s)) => {
            let string_map = STRING_MAPS.contains(&key);
            for (k, v) in s {
                match d.get_mut(&k) {
                    Some(slot) if string_map => *slot = v,
                    Some(slot) => merge_value(slot, v, &k),
                    None => {
                        d.insert(k, v);
                    }
                }
            }
        }
        (Value::Array(d), Value::Array(s)) => d.extend(s),
        (dst, src) => {
            if !is_zero(key, &src) || UINT64_POINTERS.contains(&key) {
                *dst = src;
            }
        }
    }
}

/// Whether `v` is the Go zero value of field `key` (which mergo does not copy over a value).
fn is_zero(key: &str, v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) if DURATIONS.contains(&key) => s.is_empty() || parse_duration(s) == Ok(0),
        Value::String(s) if key == "memory" || key == "size" => {
            s.is_empty() || parse_bytes(s) == Ok(0)
        }
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(m) => m.is_empty(),
    }
}

#[cfg(test)]
#[path = "merge_tests.rs"]
mod tests;
