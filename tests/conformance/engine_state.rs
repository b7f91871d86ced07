//! Reading back what the engine holds for a stack, normalised so two stacks deployed from the same
//! files compare equal: stack names become `<stack>`, IDs, versions, timestamps and allocated
//! values are dropped, network IDs in attachments become names.

use std::collections::HashMap;

use bollard::Docker;
use bollard::query_parameters::{ListConfigsOptions, ListNetworksOptions, ListSecretsOptions};
use cc_ci::swarm::docker::NAMESPACE_LABEL;
use serde_json::{Map, Value, json};

use super::CC_CI_LABELS;

/// `{services, networks, secrets, configs}` of `stack`, each keyed by normalised name.
pub async fn read(docker: &Docker, stack: &str) -> Value {
    let filters = || {
        Some(HashMap::from([(
            "label".to_owned(),
            vec![format!("{NAMESPACE_LABEL}={stack}")],
        )]))
    };
    let all_networks = docker
        .list_networks(None::<ListNetworksOptions>)
        .await
        .unwrap();
    let network_names: HashMap<String, String> = all_networks
        .iter()
        .filter_map(|n| Some((n.id.clone()?, n.name.clone()?)))
        .collect();

    let mut services = Map::new();
    // The engine's JSON, not bollard's list: bollard's model loses healthchecks.
    for service in cc_ci::swarm::raw_services::list_services(docker, &filters().unwrap())
        .await
        .unwrap()
    {
        let mut spec = serde_json::to_value(service.spec.unwrap_or_default()).unwrap();
        for pointer in ["/TaskTemplate/Networks", "/Networks"] {
            for attachment in spec
                .pointer_mut(pointer)
                .and_then(Value::as_array_mut)
                .into_iter()
                .flatten()
            {
                if let Some(target) = attachment.get_mut("Target") {
                    if let Some(name) = target.as_str().and_then(|id| network_names.get(id)) {
                        *target = json!(name);
                    }
                }
            }
        }
        for (list, id) in [("Secrets", "SecretID"), ("Configs", "ConfigID")] {
            let pointer = format!("/TaskTemplate/ContainerSpec/{list}");
            for reference in spec
                .pointer_mut(&pointer)
                .and_then(Value::as_array_mut)
                .into_iter()
                .flatten()
            {
                reference.as_object_mut().map(|r| r.remove(id));
            }
        }
        let name = spec["Name"].as_str().unwrap_or_default().to_owned();
        services.insert(name, spec);
    }

    let mut networks = Map::new();
    for network in docker
        .list_networks(Some(ListNetworksOptions { filters: filters() }))
        .await
        .unwrap()
    {
        let mut value = serde_json::to_value(&network).unwrap();
        let object = value.as_object_mut().unwrap();
        for volatile in [
            "Id",
            "Created",
            "Containers",
            "Peers",
            "ConfigFrom",
            "ConfigOnly",
        ] {
            object.remove(volatile);
        }
        // The engine allocates subnets and VXLAN IDs per network.
        if let Some(ipam) = object.get_mut("IPAM").and_then(Value::as_object_mut) {
            ipam.remove("Config");
        }
        if let Some(options) = object.get_mut("Options").and_then(Value::as_object_mut) {
            options.remove("com.docker.network.driver.overlay.vxlanid_list");
        }
        networks.insert(network.name.unwrap_or_default(), value);
    }

    let mut secrets = Map::new();
    for secret in docker
        .list_secrets(Some(ListSecretsOptions { filters: filters() }))
        .await
        .unwrap()
    {
        let spec = serde_json::to_value(secret.spec.unwrap_or_default()).unwrap();
        secrets.insert(spec["Name"].as_str().unwrap_or_default().to_owned(), spec);
    }
    let mut configs = Map::new();
    for config in docker
        .list_configs(Some(ListConfigsOptions { filters: filters() }))
        .await
        .unwrap()
    {
        let spec = serde_json::to_value(config.spec.unwrap_or_default()).unwrap();
        configs.insert(spec["Name"].as_str().unwrap_or_default().to_owned(), spec);
    }

    let mut state = json!({
        "services": services, "networks": networks, "secrets": secrets, "configs": configs,
    });
    drop_cc_ci_labels(&mut state);
    drop_label_only_volume_options(&mut state);
    replace_stack_name(state, stack)
}

/// Removes cc-ci's own labels from every `Labels` map (an accepted difference).
pub fn drop_cc_ci_labels(value: &mut Value) {
    match value {
        Value::Object(object) => {
            for (key, member) in object.iter_mut() {
                if key == "Labels" {
                    if let Some(labels) = member.as_object_mut() {
                        labels.retain(|k, _| !CC_CI_LABELS.contains(&k.as_str()));
                    }
                }
                drop_cc_ci_labels(member);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(drop_cc_ci_labels),
        _ => {}
    }
}

/// Removes a mount's `VolumeOptions` left holding only an empty `Labels` map once cc-ci's labels
/// are gone: cc-ci labels anonymous volumes too (so they can be swept), the CLI sends no options
/// for them (part of the accepted label difference).
fn drop_label_only_volume_options(state: &mut Value) {
    let services = state
        .get_mut("services")
        .and_then(Value::as_object_mut)
        .into_iter()
        .flat_map(|s| s.values_mut());
    for service in services {
        let mounts = service
            .pointer_mut("/TaskTemplate/ContainerSpec/Mounts")
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten();
        for mount in mounts.filter_map(Value::as_object_mut) {
            if mount.get("VolumeOptions") == Some(&json!({"Labels": {}})) {
                mount.remove("VolumeOptions");
            }
        }
    }
}

/// Every occurrence of the stack name, in keys and strings, becomes `<stack>`.
fn replace_stack_name(value: Value, stack: &str) -> Value {
    match value {
        Value::String(s) => Value::String(s.replace(stack, "<stack>")),
        Value::Array(items) => Value::Array(
            items
                .into_iter()
                .map(|v| replace_stack_name(v, stack))
                .collect(),
        ),
        Value::Object(object) => Value::Object(
            object
                .into_iter()
                .map(|(k, v)| (k.replace(stack, "<stack>"), replace_stack_name(v, stack)))
                .collect(),
        ),
        other => other,
    }
}
