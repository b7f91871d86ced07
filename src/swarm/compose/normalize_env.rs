//! A service's `environment` as docker/cli's loader builds it per file: `env_file:` contents
//! (docker's literal `KEY=VALUE` format) then `environment:`, a key without a value (or with an
//! empty one) taking its value from the look-up environment when set there.

use serde_json::{Map, Value};

use super::{Context, NormalizeError, Result, absolute, fail, stringify};
use crate::swarm::compose::units::type_name;

/// Builds the environment map from `env_file:` then `environment:`; a key without a value (or
/// with an empty one) takes its value from the look-up environment when set there.
pub(super) fn resolve_environment(
    svc: &mut Map<String, Value>,
    path: &str,
    ctx: &mut Context<'_>,
) -> Result<()> {
    let mut resolved: Map<String, Value> = Map::new();
    let update = |vars: Vec<(String, Option<String>)>, resolved: &mut Map<String, Value>| {
        for (k, v) in vars {
            let value = match (v.as_deref(), ctx.env.get(&k)) {
                (None | Some(""), Some(from_env)) => Value::String(from_env.clone()),
                (v, _) => v.map_or(Value::Null, |s| Value::String(s.to_string())),
            };
            resolved.insert(k, value);
        }
    };
    if let Some(Value::Array(files)) = svc.get("env_file") {
        let mut vars = Vec::new();
        for f in files {
            let file = absolute(ctx.dir, &stringify(f));
            let text = std::fs::read_to_string(&file).map_err(|e| NormalizeError {
                path: format!("{path}.env_file"),
                message: format!("cannot read {file}: {e}"),
            })?;
            vars.extend(parse_docker_env_file(&text));
        }
        update(vars, &mut resolved);
    }
    let env_path = format!("{path}.environment");
    let vars: Vec<(String, Option<String>)> = match svc.get("environment") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| {
                let s = stringify(item);
                match s.split_once('=') {
                    Some((k, v)) => (k.to_string(), Some(v.to_string())),
                    None => (s, None),
                }
            })
            .collect(),
        Some(Value::Object(map)) => map
            .iter()
            .map(|(k, v)| (k.clone(), (!v.is_null()).then(|| stringify(v))))
            .collect(),
        Some(other) => {
            return fail(
                &env_path,
                format!("expected a map or a list, got {}", type_name(other)),
            );
        }
    };
    update(vars, &mut resolved);
    if svc.contains_key("environment") || svc.contains_key("env_file") {
        svc.insert("environment".into(), Value::Object(resolved));
    }
    Ok(())
}

/// docker/cli's `opts.ParseEnvFile`: literal `KEY=VALUE` lines, `#` comments, no quoting.
fn parse_docker_env_file(text: &str) -> Vec<(String, Option<String>)> {
    text.lines()
        .map(str::trim_start)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| match l.split_once('=') {
            Some((k, v)) => (k.to_string(), Some(v.to_string())),
            None => (l.trim_end().to_string(), None),
        })
        .collect()
}
