//! Value shapes docker/cli's loader accepts in several spellings, turned into one: list-or-map
//! string maps, string-or-list lists, scalars printed like Go's `fmt.Sprint`, and paths joined
//! like `filepath.Join`.

use std::path::{Component, Path, PathBuf};

use serde_json::{Map, Value, json};

use super::{Result, fail};
use crate::swarm::compose::units::type_name;

/// `key: [a=b, c]` or `key: {a: b, c: null}` → a string map (missing values become "").
pub(super) fn to_string_map(obj: &mut Map<String, Value>, key: &str, path: &str) -> Result<()> {
    let Some(v) = obj.get_mut(key) else {
        return Ok(());
    };
    let map: Map<String, Value> = match v {
        Value::Null => Map::new(),
        Value::Array(items) => items
            .iter()
            .map(|i| {
                let s = stringify(i);
                match s.split_once('=') {
                    Some((k, v)) => (k.to_string(), json!(v)),
                    None => (s, json!("")),
                }
            })
            .collect(),
        Value::Object(m) => m
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    json!(if v.is_null() {
                        String::new()
                    } else {
                        stringify(v)
                    }),
                )
            })
            .collect(),
        other => {
            return fail(
                path,
                format!("expected a map or a list, got {}", type_name(other)),
            );
        }
    };
    *v = Value::Object(map);
    Ok(())
}

pub(super) fn string_list(obj: &mut Map<String, Value>, key: &str, path: &str) -> Result<()> {
    match obj.get_mut(key) {
        Some(Value::String(s)) => {
            let s = s.clone();
            obj.insert(key.into(), json!([s]));
        }
        Some(Value::Array(items)) => stringify_items(items),
        Some(Value::Null) => {
            obj.remove(key);
        }
        Some(other) => {
            return fail(
                path,
                format!("invalid type {} for string list", type_name(other)),
            );
        }
        None => {}
    }
    Ok(())
}

pub(super) fn stringify_items(items: &mut [Value]) {
    for item in items.iter_mut() {
        if !item.is_string() {
            *item = Value::String(stringify(item));
        }
    }
}

/// A scalar as Go's `fmt.Sprint` prints it (`true`, `3`, `0.5`).
pub fn stringify(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        Value::Number(n) => match n.as_f64() {
            Some(f) if !n.is_i64() && !n.is_u64() && f.fract() == 0.0 && f.abs() < 1e21 => {
                format!("{}", f as i64)
            }
            _ => n.to_string(),
        },
        other => other.to_string(),
    }
}

pub(super) fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

/// `filepath.Join(dir, p)` (cleaned) unless `p` is absolute.
pub fn absolute(dir: &Path, p: &str) -> String {
    let joined = if Path::new(p).is_absolute() {
        PathBuf::from(p)
    } else {
        dir.join(p)
    };
    let mut out = PathBuf::new();
    for c in joined.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out.to_string_lossy().into_owned()
}
