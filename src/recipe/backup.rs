//! What to back up and restore for an app, read from backup-bot-two's service labels (the pure
//! part: no Docker here).
//!
//! Labels (on the service, i.e. compose `deploy.labels`), as backup-bot-two reads them:
//! - `backupbot.backup=true` — the service takes part (any other value: it does not);
//! - `backupbot.backup.volumes.<volume>=false` — leave that volume out (all the service's
//!   named volumes are included by default);
//! - `backupbot.backup.volumes.<volume>.path=a,b` — only these paths, relative to the
//!   volume's root (default: the whole volume);
//! - `backupbot.backup.pre-hook`, `backupbot.backup.post-hook`,
//!   `backupbot.restore.pre-hook`, `backupbot.restore.post-hook` — shell commands run inside
//!   the service's running container (`sh -c`) before/after backup and restore.
//!
//! Volume names in labels are the compose names (`postgres`), not the stack-prefixed ones.

use std::collections::BTreeMap;

use crate::swarm::compose::ComposeFile;

/// A service as the planner needs it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServiceLabels {
    /// Compose service name, e.g. `db`.
    pub service: String,
    /// The service's labels (`deploy.labels`).
    pub labels: BTreeMap<String, String>,
    /// Compose names of the named volumes it mounts, with their mount targets.
    pub volumes: Vec<(String, String)>,
}

/// One volume to archive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VolumeBackup {
    /// Compose volume name.
    pub volume: String,
    /// Where the service mounts it.
    pub target: String,
    /// Paths relative to the volume root; empty = the whole volume.
    pub paths: Vec<String>,
}

/// Backup and restore of one service.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServiceBackup {
    /// Compose service name.
    pub service: String,
    /// Volumes to archive.
    pub volumes: Vec<VolumeBackup>,
    /// Run in the container before archiving.
    pub backup_pre_hook: Option<String>,
    /// Run in the container after archiving.
    pub backup_post_hook: Option<String>,
    /// Run in the container before restoring files.
    pub restore_pre_hook: Option<String>,
    /// Run in the container after restoring files.
    pub restore_post_hook: Option<String>,
}

/// What the backup-restore stage does for an app.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BackupPlan {
    /// No service has `backupbot.backup=true`: the stage is `NotApplicable`.
    NotApplicable,
    /// The services taking part, sorted by name.
    Services(Vec<ServiceBackup>),
}

/// A label that cannot be followed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BackupLabelError {
    /// A volume label names a volume the service does not mount.
    #[error("service {service}: label {label} names volume {volume:?}, which it does not mount")]
    UnknownVolume {
        /// The service.
        service: String,
        /// The label.
        label: String,
        /// The volume named.
        volume: String,
    },
    /// A path label is absolute or climbs out of the volume.
    #[error("service {service}: label {label} has path {path:?} outside the volume")]
    BadPath {
        /// The service.
        service: String,
        /// The label.
        label: String,
        /// The path.
        path: String,
    },
}

const VOLUMES_PREFIX: &str = "backupbot.backup.volumes.";

fn hook(labels: &BTreeMap<String, String>, key: &str) -> Option<String> {
    labels
        .get(key)
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

fn truthy(v: &str) -> bool {
    v.trim().eq_ignore_ascii_case("true")
}

/// Reads the backup plan of an app's services.
///
/// A participating service with no volumes left but with a backup hook is kept (its hook
/// may write elsewhere); one with neither contributes nothing and is dropped.
pub fn plan(services: &[ServiceLabels]) -> Result<BackupPlan, BackupLabelError> {
    let mut out = Vec::new();
    for svc in services {
        if !svc
            .labels
            .get("backupbot.backup")
            .is_some_and(|v| truthy(v))
        {
            continue;
        }
        let mut excluded = Vec::new();
        let mut paths: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for (key, value) in &svc.labels {
            let Some(rest) = key.strip_prefix(VOLUMES_PREFIX) else {
                continue;
            };
            let (volume, is_path) = match rest.strip_suffix(".path") {
                Some(v) => (v, true),
                None => (rest, false),
            };
            if !svc.volumes.iter().any(|(v, _)| v == volume) {
                return Err(BackupLabelError::UnknownVolume {
                    service: svc.service.clone(),
                    label: key.clone(),
                    volume: volume.to_string(),
                });
            }
            if !is_path {
                if !truthy(value) {
                    excluded.push(volume);
                }
                continue;
            }
            for p in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                let clean = p.trim_start_matches("./");
                if clean.starts_with('/') || clean.split('/').any(|c| c == "..") {
                    return Err(BackupLabelError::BadPath {
                        service: svc.service.clone(),
                        label: key.clone(),
                        path: p.to_string(),
                    });
                }
                paths.entry(volume).or_default().push(clean.to_string());
            }
        }
        let volumes: Vec<VolumeBackup> = svc
            .volumes
            .iter()
            .filter(|(v, _)| !excluded.contains(&v.as_str()))
            .map(|(v, target)| VolumeBackup {
                volume: v.clone(),
                target: target.clone(),
                paths: paths.remove(v.as_str()).unwrap_or_default(),
            })
            .collect();
        let backup = ServiceBackup {
            service: svc.service.clone(),
            volumes,
            backup_pre_hook: hook(&svc.labels, "backupbot.backup.pre-hook"),
            backup_post_hook: hook(&svc.labels, "backupbot.backup.post-hook"),
            restore_pre_hook: hook(&svc.labels, "backupbot.restore.pre-hook"),
            restore_post_hook: hook(&svc.labels, "backupbot.restore.post-hook"),
        };
        if !backup.volumes.is_empty() || backup.backup_pre_hook.is_some() {
            out.push(backup);
        }
    }
    out.sort_by(|a, b| a.service.cmp(&b.service));
    Ok(if out.is_empty() {
        BackupPlan::NotApplicable
    } else {
        BackupPlan::Services(out)
    })
}

/// The services of a compose model as the planner needs them: `deploy.labels` and the named
/// volumes each mounts (bind mounts and tmpfs are not backed up).
pub fn services_from_compose(compose: &ComposeFile) -> Vec<ServiceLabels> {
    compose
        .services
        .iter()
        .map(|(name, svc)| ServiceLabels {
            service: name.clone(),
            labels: svc.deploy.labels.clone(),
            volumes: svc
                .volumes
                .iter()
                .filter(|v| v.kind == "volume")
                .filter_map(|v| Some((v.source.clone()?, v.target.clone())))
                .collect(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc(name: &str, labels: &[(&str, &str)], volumes: &[(&str, &str)]) -> ServiceLabels {
        ServiceLabels {
            service: name.into(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            volumes: volumes
                .iter()
                .map(|(v, t)| (v.to_string(), t.to_string()))
                .collect(),
        }
    }

    #[test]
    fn a_database_with_hooks_and_a_dump_path() {
        let services = [
            svc("app", &[("traefik.enable", "true")], &[]),
            svc(
                "db",
                &[
                    ("backupbot.backup", "true"),
                    ("backupbot.backup.pre-hook", "/pg_backup.sh backup"),
                    ("backupbot.backup.volumes.postgres.path", "backup.sql"),
                    ("backupbot.restore.post-hook", "/pg_backup.sh restore"),
                ],
                &[("postgres", "/var/lib/postgresql/data")],
            ),
        ];
        let BackupPlan::Services(plan) = plan(&services).unwrap() else {
            panic!("expected a plan");
        };
        assert_eq!(
            plan,
            vec![ServiceBackup {
                service: "db".into(),
                volumes: vec![VolumeBackup {
                    volume: "postgres".into(),
                    target: "/var/lib/postgresql/data".into(),
                    paths: vec!["backup.sql".into()],
                }],
                backup_pre_hook: Some("/pg_backup.sh backup".into()),
                backup_post_hook: None,
                restore_pre_hook: None,
                restore_post_hook: Some("/pg_backup.sh restore".into()),
            }]
        );
    }

    #[test]
    fn volumes_are_included_by_default_and_can_be_left_out() {
        let services = [svc(
            "app",
            &[
                ("backupbot.backup", "True"),
                ("backupbot.backup.volumes.cache", "false"),
                ("backupbot.backup.volumes.uploads.path", "a, ./b/c,"),
            ],
            &[("content", "/srv"), ("cache", "/cache"), ("uploads", "/up")],
        )];
        let BackupPlan::Services(plan) = plan(&services).unwrap() else {
            panic!("expected a plan");
        };
        let vols: Vec<(&str, &[String])> = plan[0]
            .volumes
            .iter()
            .map(|v| (v.volume.as_str(), v.paths.as_slice()))
            .collect();
        assert_eq!(
            vols,
            [
                ("content", &[][..]),
                ("uploads", &["a".to_string(), "b/c".to_string()][..])
            ]
        );
    }

    #[test]
    fn without_backupbot_labels_the_stage_does_not_apply() {
        let cases = [
            vec![svc("app", &[("traefik.enable", "true")], &[("data", "/d")])],
            vec![svc(
                "app",
                &[("backupbot.backup", "false")],
                &[("data", "/d")],
            )],
            vec![svc("app", &[("backupbot.backup", "")], &[("data", "/d")])],
            // Participating but with nothing to archive and no hook.
            vec![svc("app", &[("backupbot.backup", "true")], &[])],
            vec![],
        ];
        for services in cases {
            assert_eq!(
                plan(&services).unwrap(),
                BackupPlan::NotApplicable,
                "{services:?}"
            );
        }
    }

    #[test]
    fn labels_naming_unknown_volumes_or_escaping_paths_are_errors() {
        let unknown = [svc(
            "app",
            &[
                ("backupbot.backup", "true"),
                ("backupbot.backup.volumes.nope", "true"),
            ],
            &[("data", "/d")],
        )];
        assert!(matches!(
            plan(&unknown),
            Err(BackupLabelError::UnknownVolume { .. })
        ));
        for bad in ["/etc/passwd", "../other", "a/../../b"] {
            let services = [svc(
                "app",
                &[
                    ("backupbot.backup", "true"),
                    ("backupbot.backup.volumes.data.path", bad),
                ],
                &[("data", "/d")],
            )];
            assert!(
                matches!(plan(&services), Err(BackupLabelError::BadPath { .. })),
                "{bad}"
            );
        }
    }
}
