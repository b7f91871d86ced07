//! Comparing service specs the way the engine stores them: the spec we would send against the one
//! the daemon kept, ignoring what the daemon fills in by itself, plus a readable JSON diff.

use bollard::models::ServiceSpec;
use serde_json::{Map, Value};

/// Whether `desired` (what we would send) and `stored` (what the daemon has) describe the same
/// service, once both are normalised with [`normalise_service_spec`].
pub fn same_service_spec(desired: &ServiceSpec, stored: &ServiceSpec) -> bool {
    normalise_service_spec(desired) == normalise_service_spec(stored)
}

/// `desired` with the stored `TaskTemplate.ForceUpdate` counter kept, as `docker stack deploy`
/// does: a deploy has no `--force`, and resetting the counter would restart every task.
pub fn with_preserved_force_update(desired: &ServiceSpec, stored: &ServiceSpec) -> ServiceSpec {
    let mut desired = desired.clone();
    let force_update = stored.task_template.as_ref().and_then(|t| t.force_update);
    if let Some(task) = desired.task_template.as_mut() {
        task.force_update = force_update;
    }
    desired
}

/// A service spec as JSON without the differences that do not matter: empty values (`null`, `{}`,
/// `[]`, `""`, `false`: the engine's Go types drop them), values the daemon fills in by default
/// (`Runtime: container`, `Isolation: default`, `EndpointSpec.Mode: vip`, update/rollback
/// `FailureAction: pause` and `Order: stop-first`, a port's
/// `Protocol: tcp`, `Replicas: 1` of a replicated service, a zero restart `MaxAttempts` and
/// update/rollback `Parallelism`/`MaxFailureRatio`, which the engine stores as plain numbers) and the deprecated top-level `Networks` (the daemon moves it into the task
/// template).
pub fn normalise_service_spec(spec: &ServiceSpec) -> Value {
    let mut value = serde_json::to_value(spec).unwrap_or(Value::Null);
    if let Some(object) = value.as_object_mut() {
        if let Some(networks) = object.remove("Networks") {
            let task = object
                .entry("TaskTemplate")
                .or_insert_with(|| Value::Object(Map::new()));
            if let Some(task) = task.as_object_mut() {
                task.entry("Networks").or_insert(networks);
            }
        }
    }
    remove_default(&mut value, &["TaskTemplate", "Runtime"], "container");
    remove_default(
        &mut value,
        &["TaskTemplate", "ContainerSpec", "Isolation"],
        "default",
    );
    remove_default(&mut value, &["EndpointSpec", "Mode"], "vip");
    // An update/rollback config sent without them reads back with the engine's defaults.
    for config in ["UpdateConfig", "RollbackConfig"] {
        remove_default(&mut value, &[config, "FailureAction"], "pause");
        remove_default(&mut value, &[config, "Order"], "stop-first");
    }
    if let Some(ports) = value
        .pointer_mut("/EndpointSpec/Ports")
        .and_then(Value::as_array_mut)
    {
        for port in ports {
            remove_default(port, &["Protocol"], "tcp");
        }
    }
    // Fields the engine keeps as plain numbers: "not sent" reads back as 0.
    for path in [
        &["TaskTemplate", "RestartPolicy", "MaxAttempts"][..],
        &["UpdateConfig", "Parallelism"],
        &["UpdateConfig", "MaxFailureRatio"],
        &["RollbackConfig", "Parallelism"],
        &["RollbackConfig", "MaxFailureRatio"],
    ] {
        remove_zero(&mut value, path);
    }
    // A replicated service sent without `Replicas` is stored with the daemon's default, 1.
    if let Some(replicated) = value
        .pointer_mut("/Mode/Replicated")
        .and_then(Value::as_object_mut)
    {
        replicated
            .entry("Replicas")
            .and_modify(|r| {
                if r.is_null() {
                    *r = Value::from(1);
                }
            })
            .or_insert(Value::from(1));
    }
    // `Mode: {Global: {}}` must not prune down to "no mode": mark which mode is set.
    if let Some(mode) = value.get_mut("Mode").and_then(Value::as_object_mut) {
        for kind in mode.values_mut() {
            if kind.as_object().is_some_and(Map::is_empty) {
                *kind = Value::Bool(true);
            }
        }
    }
    prune_empty(&mut value);
    value
}

fn remove_default(value: &mut Value, path: &[&str], default: &str) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut node = value;
    for key in parents {
        match node.get_mut(*key) {
            Some(next) => node = next,
            None => return,
        }
    }
    if let Some(object) = node.as_object_mut() {
        if object.get(*last).and_then(Value::as_str) == Some(default) {
            object.remove(*last);
        }
    }
}

fn remove_zero(value: &mut Value, path: &[&str]) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut node = value;
    for key in parents {
        match node.get_mut(*key) {
            Some(next) => node = next,
            None => return,
        }
    }
    if let Some(object) = node.as_object_mut() {
        if object.get(*last).and_then(Value::as_f64) == Some(0.0) {
            object.remove(*last);
        }
    }
}

/// Removes `null`, `false`, `""`, `{}` and `[]` members of objects, recursively (array items are
/// kept, so positions stay meaningful).
pub fn prune_empty(value: &mut Value) {
    match value {
        Value::Object(object) => {
            for member in object.values_mut() {
                prune_empty(member);
            }
            object.retain(|_, v| !is_empty(v));
        }
        Value::Array(items) => items.iter_mut().for_each(prune_empty),
        _ => {}
    }
}

fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null | Value::Bool(false) => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

/// The differences between two JSON values, one line per differing leaf:
/// `path: left → right` (a missing side is shown as `∅`).
pub fn json_diff(left: &Value, right: &Value) -> Vec<String> {
    let mut out = Vec::new();
    diff_into(left, right, String::new(), &mut out);
    out
}

fn diff_into(left: &Value, right: &Value, path: String, out: &mut Vec<String>) {
    match (left, right) {
        (Value::Object(l), Value::Object(r)) => {
            let mut keys: Vec<&String> = l
                .keys()
                .chain(r.keys().filter(|k| !l.contains_key(*k)))
                .collect();
            keys.sort();
            for key in keys {
                let child = format!("{path}/{key}");
                match (l.get(key), r.get(key)) {
                    (Some(a), Some(b)) => diff_into(a, b, child, out),
                    (Some(a), None) => out.push(format!("{child}: {a} → ∅")),
                    (None, Some(b)) => out.push(format!("{child}: ∅ → {b}")),
                    (None, None) => {}
                }
            }
        }
        (Value::Array(l), Value::Array(r)) if l.len() == r.len() => {
            for (i, (a, b)) in l.iter().zip(r).enumerate() {
                diff_into(a, b, format!("{path}/{i}"), out);
            }
        }
        _ if left != right => out.push(format!(
            "{}: {left} → {right}",
            if path.is_empty() { "/" } else { &path }
        )),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::models::{TaskSpec, TaskSpecContainerSpec};
    use serde_json::json;

    fn spec(value: Value) -> ServiceSpec {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn daemon_defaults_and_empty_values_do_not_count_as_changes() {
        let sent = spec(json!({
            "Name": "s_web",
            "Networks": [{"Target": "s_default", "Aliases": ["web"]}],
            "TaskTemplate": {"ContainerSpec": {"Image": "nginx", "Labels": {}}},
            "EndpointSpec": {"Ports": [{"TargetPort": 80, "PublishedPort": 8080}]}
        }));
        let stored = spec(json!({
            "Name": "s_web",
            "Labels": {},
            "TaskTemplate": {
                "ContainerSpec": {"Image": "nginx", "Isolation": "default"},
                "Runtime": "container",
                "Networks": [{"Target": "s_default", "Aliases": ["web"]}],
                "Resources": {"Limits": {}, "Reservations": {}}
            },
            "EndpointSpec": {"Mode": "vip", "Ports": [{"Protocol": "tcp", "TargetPort": 80, "PublishedPort": 8080}]}
        }));
        assert!(same_service_spec(&sent, &stored));
    }

    #[test]
    fn replicas_left_unset_are_the_daemons_default_of_one() {
        let sent = spec(json!({"Name": "s", "Mode": {"Replicated": {}}}));
        let stored = spec(json!({"Name": "s", "Mode": {"Replicated": {"Replicas": 1}}}));
        assert!(same_service_spec(&sent, &stored));
        let two = spec(json!({"Name": "s", "Mode": {"Replicated": {"Replicas": 2}}}));
        assert!(!same_service_spec(&two, &stored));
        let unset = spec(
            json!({"Name": "s", "TaskTemplate": {"RestartPolicy": {"Condition": "none"}},
                                "RollbackConfig": {"Order": "stop-first"}}),
        );
        let zeros = spec(
            json!({"Name": "s", "TaskTemplate": {"RestartPolicy": {"Condition": "none", "MaxAttempts": 0}},
                                "RollbackConfig": {"Order": "stop-first", "Parallelism": 0, "MaxFailureRatio": 0.0}}),
        );
        assert!(same_service_spec(&unset, &zeros));
        let global = spec(json!({"Name": "s", "Mode": {"Global": {}}}));
        assert!(!same_service_spec(&global, &stored));
    }

    #[test]
    fn update_configs_sent_without_failure_action_or_order_read_back_with_the_defaults() {
        let sent = spec(json!({"Name": "s", "UpdateConfig": {"Delay": 5},
                               "RollbackConfig": {"Parallelism": 2}}));
        let stored = spec(json!({"Name": "s",
            "UpdateConfig": {"Delay": 5, "FailureAction": "pause", "Order": "stop-first"},
            "RollbackConfig": {"Parallelism": 2, "FailureAction": "pause", "Order": "stop-first"}}));
        assert!(same_service_spec(&sent, &stored));
        let rollback = spec(json!({"Name": "s",
            "UpdateConfig": {"Delay": 5, "FailureAction": "rollback", "Order": "stop-first"},
            "RollbackConfig": {"Parallelism": 2}}));
        assert!(!same_service_spec(&rollback, &stored));
        let start_first = spec(
            json!({"Name": "s", "UpdateConfig": {"Delay": 5, "Order": "start-first"},
                                      "RollbackConfig": {"Parallelism": 2}}),
        );
        assert!(!same_service_spec(&start_first, &stored));
    }

    #[test]
    fn a_changed_image_or_env_is_a_change() {
        let stored = spec(
            json!({"Name": "s", "TaskTemplate": {"ContainerSpec": {"Image": "a:1", "Env": ["X=1"]}}}),
        );
        let image = spec(
            json!({"Name": "s", "TaskTemplate": {"ContainerSpec": {"Image": "a:2", "Env": ["X=1"]}}}),
        );
        let env = spec(
            json!({"Name": "s", "TaskTemplate": {"ContainerSpec": {"Image": "a:1", "Env": ["X=2"]}}}),
        );
        assert!(!same_service_spec(&image, &stored));
        assert!(!same_service_spec(&env, &stored));
        let diff = json_diff(
            &normalise_service_spec(&stored),
            &normalise_service_spec(&image),
        );
        assert_eq!(
            diff,
            vec![r#"/TaskTemplate/ContainerSpec/Image: "a:1" → "a:2""#]
        );
    }

    #[test]
    fn the_stored_force_update_counter_is_kept() {
        let desired = ServiceSpec {
            task_template: Some(TaskSpec {
                container_spec: Some(TaskSpecContainerSpec::default()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let stored = ServiceSpec {
            task_template: Some(TaskSpec {
                force_update: Some(3),
                ..Default::default()
            }),
            ..Default::default()
        };
        let kept = with_preserved_force_update(&desired, &stored);
        assert_eq!(kept.task_template.unwrap().force_update, Some(3));
    }
}
