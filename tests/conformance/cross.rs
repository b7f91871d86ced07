//! Switching tools on a running stack: cc-ci applying the files onto a stack `docker stack deploy`
//! created, and `docker stack deploy` run onto a stack cc-ci created, must both leave every
//! service as it is (no update, so no task restarts when someone alternates abra and cc-ci).

use std::path::Path;

use bollard::Docker;
use bollard::models::ServiceSpec;
use cc_ci::cli::stack::{SourceArgs, render};
use cc_ci::swarm::apply::{ApplyOptions, apply};
use cc_ci::swarm::docker::NAMESPACE_LABEL;
use cc_ci::swarm::raw_services::list_services_json;
use cc_ci::swarm::service_diff::{json_diff, normalise_service_spec, prune_empty};
use serde_json::Value;

use super::docker_stack_deploy;
use super::engine_state::drop_cc_ci_labels;

/// cc-ci applies the setup (without extra labels, like a plain `cc-ci stack deploy`) onto
/// `stack`, which the CLI deployed: answers what it would have changed (nothing, to pass).
pub async fn cc_ci_onto_docker(docker: &Docker, dir: &Path, stack: &str) -> Vec<String> {
    let source = SourceArgs {
        env_file: Some(dir.join(".env")),
        stack: stack.to_owned(),
        allow: super::allowances(dir),
        ..Default::default()
    };
    let spec = render(&source).expect("cc-ci renders the setup");
    let report = apply(docker, &spec, &ApplyOptions::default())
        .await
        .expect("cc-ci applies onto the CLI's stack");
    let mut problems: Vec<String> = report
        .changes
        .iter()
        .map(|(service, paths)| format!("cc-ci updated {service} ({})", paths.join(", ")))
        .collect();
    problems.extend(
        report
            .created
            .iter()
            .map(|s| format!("cc-ci created {s}, which the CLI had created")),
    );
    problems
}

/// `docker stack deploy` runs onto `stack`, which cc-ci deployed. The CLI always sends an update;
/// the engine then keeps the spec it replaced as `PreviousSpec`: answers every service whose new
/// spec differs from the one cc-ci had put there (cc-ci's own labels aside).
pub async fn docker_onto_cc_ci(docker: &Docker, dir: &Path, stack: &str) -> Vec<String> {
    docker_stack_deploy(dir, stack);
    let filters = std::collections::HashMap::from([(
        "label".to_owned(),
        vec![format!("{NAMESPACE_LABEL}={stack}")],
    )]);
    let mut problems = Vec::new();
    for service in list_services_json(docker, &filters)
        .await
        .expect("listing services")
    {
        let comparable = |key: &str| -> Option<Value> {
            let spec: ServiceSpec = serde_json::from_value(service.get(key)?.clone()).ok()?;
            let mut value = normalise_service_spec(&spec);
            drop_cc_ci_labels(&mut value);
            prune_empty(&mut value);
            Some(value)
        };
        let name = service["Spec"]["Name"].as_str().unwrap_or_default();
        let (Some(previous), Some(now)) = (comparable("PreviousSpec"), comparable("Spec")) else {
            problems.push(format!(
                "{name}: the CLI did not update it (no PreviousSpec)"
            ));
            continue;
        };
        let diff = json_diff(&previous, &now);
        if !diff.is_empty() {
            problems.push(format!(
                "docker stack deploy changed {name} (left: cc-ci, right: CLI):\n{}",
                diff.join("\n")
            ));
        }
    }
    problems
}
