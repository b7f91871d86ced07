//! Variable interpolation exactly like docker/cli's `compose/template` and
//! `compose/interpolation`: `$V`, `${V}`, `${V:-d}`, `${V-d}`, `${V:?msg}`, `${V?msg}`, `$$`.
//!
//! Faithful quirks (kept on purpose, they decide what `docker stack deploy` creates):
//! - defaults are not interpolated again, so `${A:-${B}}` does not nest: the braced form ends at
//!   the first `}` (the default is the literal `${B` and a `}` follows);
//! - the unbraced form also takes a modifier: `$A-x` is `${A-x}`;
//! - modifiers are tried in the order `:-`, `-`, `:?`, `?`, so a `?` message containing `-`
//!   acts as a `-` default;
//! - only string values are interpolated (never keys); a value that changed is cast to the
//!   type docker/cli expects at known paths (`deploy.replicas` → int, `read_only` → bool, …);
//! - an unset variable without a default becomes the empty string (reported as a warning).

use std::collections::BTreeSet;
use std::sync::LazyLock;

use regex::Regex;
use serde_json::Value;

static PATTERN: LazyLock<Regex> = LazyLock::new(|| {
    let subst = r"[_a-z][_a-z0-9]*(?::?[-?][^}]*)?";
    Regex::new(&format!(
        r"\$(?i:(?P<escaped>\$)|(?P<named>{subst})|\{{(?P<braced>{subst})\}}|(?P<invalid>))"
    ))
    .expect("static pattern")
});

/// Why a string could not be interpolated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplateError {
    /// A `$` not followed by a valid name (escape it as `$$`).
    Invalid,
    /// `${V:?msg}` / `${V?msg}` with `V` missing (or empty for `:?`).
    Required {
        /// The variable.
        name: String,
        /// The message after `?`.
        message: String,
    },
}

/// Substitutes variables in `template`, recording unset variables in `missing`.
pub fn substitute(
    template: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    missing: &mut BTreeSet<String>,
) -> Result<String, TemplateError> {
    let mut out = String::with_capacity(template.len());
    let mut last = 0;
    for caps in PATTERN.captures_iter(template) {
        let whole = caps.get(0).expect("group 0");
        out.push_str(&template[last..whole.start()]);
        last = whole.end();
        if caps.name("escaped").is_some() {
            out.push('$');
            continue;
        }
        let Some(sub) = caps.name("named").or(caps.name("braced")) else {
            return Err(TemplateError::Invalid);
        };
        out.push_str(&resolve(sub.as_str(), lookup, missing)?);
    }
    out.push_str(&template[last..]);
    Ok(out)
}

fn resolve(
    sub: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    missing: &mut BTreeSet<String>,
) -> Result<String, TemplateError> {
    if let Some((name, default)) = sub.split_once(":-") {
        return Ok(lookup(name)
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| default.to_string()));
    }
    if let Some((name, default)) = sub.split_once('-') {
        return Ok(lookup(name).unwrap_or_else(|| default.to_string()));
    }
    for (sep, non_empty) in [(":?", true), ("?", false)] {
        if let Some((name, message)) = sub.split_once(sep) {
            return match lookup(name) {
                Some(v) if !non_empty || !v.is_empty() => Ok(v),
                _ => Err(TemplateError::Required {
                    name: name.to_string(),
                    message: message.to_string(),
                }),
            };
        }
    }
    match lookup(sub) {
        Some(v) => Ok(v),
        None => {
            missing.insert(sub.to_string());
            Ok(String::new())
        }
    }
}

/// Which type a path's interpolated value is cast to.
#[derive(Clone, Copy)]
enum Cast {
    Int,
    Float,
    Bool,
}

/// docker/cli's `interpolateTypeCastMapping`; `*` is any key, `[]` any list item.
const CASTS: &[(&str, Cast)] = &[
    ("services.*.configs.[].mode", Cast::Int),
    ("services.*.secrets.[].mode", Cast::Int),
    ("services.*.healthcheck.retries", Cast::Int),
    ("services.*.healthcheck.disable", Cast::Bool),
    ("services.*.deploy.replicas", Cast::Int),
    ("services.*.deploy.update_config.parallelism", Cast::Int),
    (
        "services.*.deploy.update_config.max_failure_ratio",
        Cast::Float,
    ),
    ("services.*.deploy.rollback_config.parallelism", Cast::Int),
    (
        "services.*.deploy.rollback_config.max_failure_ratio",
        Cast::Float,
    ),
    ("services.*.deploy.restart_policy.max_attempts", Cast::Int),
    (
        "services.*.deploy.placement.max_replicas_per_node",
        Cast::Int,
    ),
    ("services.*.ports.[].target", Cast::Int),
    ("services.*.ports.[].published", Cast::Int),
    ("services.*.ulimits.*", Cast::Int),
    ("services.*.ulimits.*.hard", Cast::Int),
    ("services.*.ulimits.*.soft", Cast::Int),
    ("services.*.privileged", Cast::Bool),
    ("services.*.read_only", Cast::Bool),
    ("services.*.stdin_open", Cast::Bool),
    ("services.*.tty", Cast::Bool),
    ("services.*.init", Cast::Bool),
    ("services.*.volumes.[].read_only", Cast::Bool),
    ("services.*.volumes.[].volume.nocopy", Cast::Bool),
    ("networks.*.external", Cast::Bool),
    ("networks.*.internal", Cast::Bool),
    ("networks.*.attachable", Cast::Bool),
    ("volumes.*.external", Cast::Bool),
    ("secrets.*.external", Cast::Bool),
    ("configs.*.external", Cast::Bool),
];

fn cast_for(path: &[String]) -> Option<Cast> {
    CASTS.iter().find_map(|(pattern, cast)| {
        let parts: Vec<&str> = pattern.split('.').collect();
        (parts.len() == path.len()
            && parts
                .iter()
                .zip(path)
                .all(|(p, k)| *p == "*" || *p == k.as_str()))
        .then_some(*cast)
    })
}

fn apply_cast(cast: Cast, s: &str) -> Result<Value, String> {
    match cast {
        Cast::Int => s
            .parse::<i64>()
            .map(Value::from)
            .map_err(|_| format!("failed to cast to expected type: invalid integer {s:?}")),
        Cast::Float => s
            .parse::<f64>()
            .map(Value::from)
            .map_err(|_| format!("failed to cast to expected type: invalid number {s:?}")),
        Cast::Bool => match s.to_ascii_lowercase().as_str() {
            "y" | "yes" | "true" | "on" => Ok(Value::Bool(true)),
            "n" | "no" | "false" | "off" => Ok(Value::Bool(false)),
            _ => Err(format!(
                "failed to cast to expected type: invalid boolean: {s}"
            )),
        },
    }
}

/// Where interpolation failed: the dotted key path and a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterpolationError {
    /// Dotted path such as `services.app.environment.DB` (list items as `[0]`).
    pub path: String,
    /// What went wrong.
    pub message: String,
}

/// Interpolates every string of `value` in place. `missing` collects unset variables with the
/// first path that used them.
pub fn interpolate_tree(
    value: &mut Value,
    lookup: &dyn Fn(&str) -> Option<String>,
    missing: &mut Vec<(String, String)>,
) -> Result<(), InterpolationError> {
    walk(value, &mut Vec::new(), &mut String::new(), lookup, missing)
}

fn walk(
    value: &mut Value,
    path: &mut Vec<String>,
    shown: &mut String,
    lookup: &dyn Fn(&str) -> Option<String>,
    missing: &mut Vec<(String, String)>,
) -> Result<(), InterpolationError> {
    match value {
        Value::String(s) => {
            let mut unset = BTreeSet::new();
            let new = substitute(s, lookup, &mut unset).map_err(|e| InterpolationError {
                path: shown.clone(),
                message: match e {
                    TemplateError::Invalid => format!(
                        "invalid interpolation format {s:?}; you may need to escape any $ with another $"
                    ),
                    TemplateError::Required { name, message } => {
                        format!("required variable {name} is missing a value: {message}")
                    }
                },
            })?;
            for name in unset {
                if !missing.iter().any(|(n, _)| *n == name) {
                    missing.push((name, shown.clone()));
                }
            }
            if new != *s {
                *value = match cast_for(path) {
                    Some(cast) => apply_cast(cast, &new).map_err(|message| InterpolationError {
                        path: shown.clone(),
                        message,
                    })?,
                    None => Value::String(new),
                };
            }
        }
        Value::Object(map) => {
            for (key, elem) in map.iter_mut() {
                let len = shown.len();
                if !shown.is_empty() {
                    shown.push('.');
                }
                shown.push_str(key);
                path.push(key.clone());
                walk(elem, path, shown, lookup, missing)?;
                path.pop();
                shown.truncate(len);
            }
        }
        Value::Array(items) => {
            for (i, elem) in items.iter_mut().enumerate() {
                let len = shown.len();
                shown.push_str(&format!("[{i}]"));
                path.push("[]".to_string());
                walk(elem, path, shown, lookup, missing)?;
                path.pop();
                shown.truncate(len);
            }
        }
        _ => {}
    }
    Ok(())
}

/// The dotted paths of mapping keys that look like they expect interpolation (`$V`, `${V}`).
/// Compose leaves keys alone, so `coop-cloud.${STACK_NAME}.timeout: "60"` in a `labels` map
/// stays literal in `docker stack deploy` too; the list form `- "KEY=VALUE"` interpolates.
pub fn keys_with_variables(value: &Value) -> Vec<String> {
    let mut found = Vec::new();
    collect_variable_keys(value, "", &mut found);
    found
}

fn collect_variable_keys(value: &Value, shown: &str, found: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, elem) in map {
                let here = if shown.is_empty() {
                    key.clone()
                } else {
                    format!("{shown}.{key}")
                };
                if PATTERN
                    .captures_iter(key)
                    .any(|c| c.name("named").is_some() || c.name("braced").is_some())
                {
                    found.push(here.clone());
                }
                collect_variable_keys(elem, &here, found);
            }
        }
        Value::Array(items) => {
            for (i, elem) in items.iter().enumerate() {
                collect_variable_keys(elem, &format!("{shown}[{i}]"), found);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
#[path = "interpolate_tests.rs"]
mod tests;
