//! Stacks built by hand (the way `docker stack deploy` would convert them), for tests that must
//! not depend on compose conversion.

use std::collections::{BTreeMap, HashMap};

use bollard::models::{
    EndpointSpec, EndpointSpecModeEnum, NetworkAttachmentConfig, NetworkCreateRequest, ServiceSpec,
    ServiceSpecMode, ServiceSpecModeReplicated, TaskSpec, TaskSpecContainerSpec,
};
use cc_ci::swarm::StackSpec;

fn namespaced(stack: &str) -> HashMap<String, String> {
    HashMap::from([("com.docker.stack.namespace".to_owned(), stack.to_owned())])
}

/// One nginx service `<stack>_web` on `<stack>_default`, image tag `tag`.
pub fn web_stack(stack: &str, extra_labels: BTreeMap<String, String>, tag: &str) -> StackSpec {
    let image = format!("ccci-fixture/nginx:{tag}");
    let mut labels = namespaced(stack);
    labels.insert("com.docker.stack.image".to_owned(), image.clone());
    StackSpec {
        name: stack.to_owned(),
        networks: vec![NetworkCreateRequest {
            name: format!("{stack}_default"),
            driver: Some("overlay".to_owned()),
            labels: Some(namespaced(stack)),
            ..Default::default()
        }],
        services: vec![ServiceSpec {
            name: Some(format!("{stack}_web")),
            labels: Some(labels),
            task_template: Some(TaskSpec {
                container_spec: Some(TaskSpecContainerSpec {
                    image: Some(image),
                    labels: Some(namespaced(stack)),
                    ..Default::default()
                }),
                networks: Some(vec![NetworkAttachmentConfig {
                    target: Some(format!("{stack}_default")),
                    aliases: Some(vec!["web".to_owned()]),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            mode: Some(ServiceSpecMode {
                replicated: Some(ServiceSpecModeReplicated { replicas: Some(1) }),
                ..Default::default()
            }),
            endpoint_spec: Some(EndpointSpec {
                mode: Some(EndpointSpecModeEnum::DNSRR),
                ..Default::default()
            }),
            ..Default::default()
        }],
        extra_labels,
        ..Default::default()
    }
}
