//! A deployment's status from the outcome of a reconcile (pure), what an apply changed in words,
//! and the removal of objects the deployment no longer uses.

use std::collections::HashSet;

use bollard::Docker;
use bollard::query_parameters::{ListConfigsOptions, ListSecretsOptions};

use super::target::DEPLOYMENT_LABEL;
use crate::api::{ConditionStatus, DeploymentPhase, DeploymentStatus, set_condition};
use crate::swarm::StackSpec;
use crate::swarm::apply::ApplyReport;

/// What a reconcile found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Work in progress (preparing a version, rolling out a change).
    Progressing {
        /// What is happening.
        message: String,
    },
    /// Converged at `version`.
    Ready {
        /// The version running.
        version: String,
        /// Services in the stack (all ready).
        services: u32,
        /// What this reconcile changed, if anything ([`describe_changes`]).
        healed: Option<String>,
    },
    /// The attempt failed; retried at the next re-check.
    Failed {
        /// The version attempted, when it got that far.
        version: Option<String>,
        /// Why.
        message: String,
        /// Services that were ready.
        ready: u32,
        /// Services in the stack.
        total: u32,
    },
}

/// Whether preparing `version` (nothing prepared is cached for this generation) is announced as
/// `Progressing` first: not when that version already runs (a re-check after a restart), and
/// not when the last attempt at this generation failed — the retry keeps `Failed`, so the
/// phase does not flap at every re-check and readers (runs waiting for the proxy) see why.
pub fn announces_preparing(current: &DeploymentStatus, generation: u64, version: &str) -> bool {
    let running = current.observed_version.as_deref() == Some(version);
    let failed_here =
        current.phase == DeploymentPhase::Failed && current.observed_generation == generation;
    !running && !failed_here
}

/// The status after `outcome`, or `None` when it would not change (an unchanged re-check writes
/// nothing). A Ready deployment keeps its message (the last change it made) until the next change.
pub fn next_status(
    current: &DeploymentStatus,
    generation: u64,
    outcome: &Outcome,
) -> Option<DeploymentStatus> {
    let mut next = current.clone();
    next.observed_generation = generation;
    match outcome {
        Outcome::Progressing { message } => {
            next.phase = DeploymentPhase::Progressing;
            next.message = message.clone();
            set_condition(
                &mut next.conditions,
                "Ready",
                ConditionStatus::False,
                "Progressing",
                message,
            );
        }
        Outcome::Ready {
            version,
            services,
            healed,
        } => {
            let steady = current.phase == DeploymentPhase::Ready
                && current.observed_version.as_deref() == Some(version)
                && current.services_total == *services;
            next.phase = DeploymentPhase::Ready;
            next.observed_version = Some(version.clone());
            next.services_ready = *services;
            next.services_total = *services;
            let ready = format!("version {version}: {services}/{services} services ready");
            next.message = match healed {
                Some(h) => format!("{ready} ({h})"),
                None if steady => current.message.clone(),
                None => ready.clone(),
            };
            set_condition(
                &mut next.conditions,
                "Ready",
                ConditionStatus::True,
                "Converged",
                &ready,
            );
        }
        Outcome::Failed {
            version,
            message,
            ready,
            total,
        } => {
            next.phase = DeploymentPhase::Failed;
            next.message = match version {
                Some(v) => format!("version {v}: {message}"),
                None => message.clone(),
            };
            next.services_ready = *ready;
            next.services_total = *total;
            set_condition(
                &mut next.conditions,
                "Ready",
                ConditionStatus::False,
                "Failed",
                &next.message.clone(),
            );
        }
    }
    (next != *current).then_some(next)
}

/// What an apply changed, in words (`None`: nothing): e.g. `updated x_app
/// (/TaskTemplate/ContainerSpec/Image); created x_db`.
pub fn describe_changes(report: &ApplyReport) -> Option<String> {
    let mut parts = Vec::new();
    if !report.created.is_empty() {
        parts.push(format!("created {}", report.created.join(", ")));
    }
    for name in &report.updated {
        match report.changes.get(name) {
            Some(paths) if !paths.is_empty() => {
                parts.push(format!("updated {name} ({})", paths.join(", ")))
            }
            _ => parts.push(format!("updated {name}")),
        }
    }
    if !report.pruned.is_empty() {
        parts.push(format!("removed {}", report.pruned.join(", ")));
    }
    (!parts.is_empty()).then(|| parts.join("; "))
}

/// Removes secrets and configs labelled with deployment `id` that `spec` no longer has (the old
/// version of a rotated certificate, configs of an earlier version). One still used by a service
/// is refused by the engine and stays until a later re-check; nothing else is touched.
pub async fn remove_unused(docker: &Docker, id: &str, spec: &StackSpec) {
    let filters = Some(std::collections::HashMap::from([(
        "label".to_string(),
        vec![format!("{DEPLOYMENT_LABEL}={id}")],
    )]));
    let wanted_secrets: HashSet<&str> = spec
        .secrets
        .iter()
        .filter_map(|s| s.name.as_deref())
        .collect();
    let wanted_configs: HashSet<&str> = spec
        .configs
        .iter()
        .filter_map(|c| c.name.as_deref())
        .collect();
    if let Ok(secrets) = docker
        .list_secrets(Some(ListSecretsOptions {
            filters: filters.clone(),
        }))
        .await
    {
        for s in secrets {
            let name = s.spec.and_then(|sp| sp.name).unwrap_or_default();
            if !wanted_secrets.contains(name.as_str())
                && let Some(id_) = s.id
            {
                match docker.delete_secret(&id_).await {
                    Ok(()) => {
                        tracing::info!(deployment = %id, secret = %name, "removed unused secret")
                    }
                    Err(e) => {
                        tracing::debug!(deployment = %id, secret = %name, error = %e, "secret not removed yet")
                    }
                }
            }
        }
    }
    if let Ok(configs) = docker
        .list_configs(Some(ListConfigsOptions { filters }))
        .await
    {
        for c in configs {
            let name = c.spec.and_then(|sp| sp.name).unwrap_or_default();
            if !wanted_configs.contains(name.as_str())
                && let Some(id_) = c.id
            {
                let _ = docker.delete_config(&id_).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ready(healed: Option<&str>) -> Outcome {
        Outcome::Ready {
            version: "1.0.0+0.1".into(),
            services: 1,
            healed: healed.map(str::to_string),
        }
    }

    #[test]
    fn an_unchanged_recheck_writes_nothing_and_keeps_the_last_change() {
        let first = next_status(
            &DeploymentStatus::default(),
            1,
            &ready(Some("created p_app")),
        )
        .expect("first deploy changes the status");
        assert_eq!(first.phase, DeploymentPhase::Ready);
        assert_eq!(first.observed_version.as_deref(), Some("1.0.0+0.1"));
        assert_eq!((first.services_ready, first.services_total), (1, 1));
        assert!(first.message.contains("created p_app"), "{}", first.message);
        assert_eq!(next_status(&first, 1, &ready(None)), None);
        // A new generation is recorded even when nothing else changes.
        let later = next_status(&first, 2, &ready(None)).expect("generation moved");
        assert_eq!(later.observed_generation, 2);
        assert_eq!(later.message, first.message);
    }

    #[test]
    fn failure_and_recovery_move_the_ready_condition() {
        let ok = next_status(&DeploymentStatus::default(), 1, &ready(None)).unwrap();
        let failed = next_status(
            &ok,
            1,
            &Outcome::Failed {
                version: Some("1.0.0+0.1".into()),
                message: "did not converge".into(),
                ready: 0,
                total: 1,
            },
        )
        .unwrap();
        assert_eq!(failed.phase, DeploymentPhase::Failed);
        assert_eq!(failed.observed_version.as_deref(), Some("1.0.0+0.1"));
        assert_eq!(failed.conditions[0].status, ConditionStatus::False);
        assert_eq!(failed.conditions[0].reason, "Failed");
        let back = next_status(&failed, 1, &ready(Some("updated p_app (/Mode)"))).unwrap();
        assert_eq!(back.phase, DeploymentPhase::Ready);
        assert_eq!(back.conditions[0].status, ConditionStatus::True);
        assert!(
            back.message.ends_with("(updated p_app (/Mode))"),
            "{}",
            back.message
        );
    }

    #[test]
    fn a_retry_of_a_failed_generation_keeps_failed_and_a_new_generation_is_announced() {
        let fresh = DeploymentStatus::default();
        assert!(announces_preparing(&fresh, 1, "9.9.9+missing"));
        let progressing = next_status(
            &fresh,
            1,
            &Outcome::Progressing {
                message: "preparing version 9.9.9+missing".into(),
            },
        )
        .unwrap();
        let failed = next_status(
            &progressing,
            1,
            &Outcome::Failed {
                version: None,
                message: "ref \"9.9.9+missing\" not found".into(),
                ready: 0,
                total: 0,
            },
        )
        .unwrap();
        assert!(!announces_preparing(&failed, 1, "9.9.9+missing"));
        assert!(announces_preparing(&failed, 2, "1.0.0+0.1"), "a new spec");
        let running = next_status(&fresh, 1, &ready(None)).unwrap();
        assert!(!announces_preparing(&running, 1, "1.0.0+0.1"));
        assert!(announces_preparing(&running, 2, "1.1.0+0.2"));
    }

    #[test]
    fn changes_are_described_by_path_never_by_value() {
        let report = ApplyReport {
            created: vec!["s_db".into()],
            updated: vec!["s_app".into()],
            pruned: vec!["s_old".into()],
            changes: [(
                "s_app".to_string(),
                vec!["/TaskTemplate/ContainerSpec/Image".to_string()],
            )]
            .into_iter()
            .collect(),
            ..ApplyReport::default()
        };
        assert_eq!(
            describe_changes(&report).as_deref(),
            Some("created s_db; updated s_app (/TaskTemplate/ContainerSpec/Image); removed s_old")
        );
        assert_eq!(describe_changes(&ApplyReport::default()), None);
    }
}
