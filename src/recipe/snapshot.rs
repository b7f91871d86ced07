//! Backing up and restoring a deployed app on the engine, following its [`ServiceBackup`]
//! plan (backup-bot-two's labels): hooks run inside the service's running container, volume
//! paths are copied out of (and back into) the volume through a helper container that is
//! created but never started (the daemon mounts its volumes for the archive API).
//!
//! The caller settles the stack first ([`crate::swarm::converge::wait`]). A hook exec that
//! hits a container being replaced (HTTP 409, or no running container) is retried on the new
//! task. A backup whose archives hold no non-empty regular file is an error, never a success.
//! Limit: the swarm volume is taken to be `<stack>_<volume>` (no `name:` override).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bollard::Docker;
use bollard::exec::{CreateExecOptions, StartExecResults};
use bollard::models::{Mount, MountType};
use bollard::query_parameters::{
    DownloadFromContainerOptions, ListContainersOptions, UploadToContainerOptions,
};
use futures::StreamExt;

use super::backup::ServiceBackup;
use crate::swarm::helper::{Helper, HelperSpec};

/// Where the helper container mounts the volume.
const MOUNT: &str = "/ccci-volume";

/// How often a hook exec is tried against a container being replaced.
const EXEC_ATTEMPTS: usize = 5;

/// Why a backup or restore failed.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// The service has no running container.
    #[error("service {0} has no running container")]
    NoContainer(String),
    /// A hook exited non-zero.
    #[error("hook {hook:?} in service {service} exited with {code}")]
    HookFailed {
        /// The service.
        service: String,
        /// The command.
        hook: String,
        /// Its exit code.
        code: i64,
    },
    /// The archives contain nothing.
    #[error("the backup is empty: no non-empty file in {0}")]
    Empty(String),
    /// Docker refused or failed.
    #[error("{action}: {source}")]
    Docker {
        /// What was being done.
        action: String,
        /// The error.
        source: bollard::errors::Error,
    },
    /// Local files.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

fn docker_err(action: impl Into<String>) -> impl FnOnce(bollard::errors::Error) -> SnapshotError {
    let action = action.into();
    move |source| SnapshotError::Docker { action, source }
}

/// One archive of a backup.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Archive {
    /// Compose service.
    pub service: String,
    /// Compose volume.
    pub volume: String,
    /// Path within the volume (`.` = all of it).
    pub path: String,
    /// The tar file.
    pub file: PathBuf,
    /// Bytes of regular files inside.
    pub content_bytes: u64,
}

/// The id of a running container of `<stack>_<service>`.
pub async fn running_container(
    docker: &Docker,
    stack: &str,
    service: &str,
) -> Result<String, SnapshotError> {
    let full = format!("{stack}_{service}");
    let filters = HashMap::from([
        (
            "label".to_string(),
            vec![format!("com.docker.swarm.service.name={full}")],
        ),
        ("status".to_string(), vec!["running".to_string()]),
    ]);
    let list = docker
        .list_containers(Some(ListContainersOptions {
            filters: Some(filters),
            ..Default::default()
        }))
        .await
        .map_err(docker_err(format!("listing containers of {full}")))?;
    list.into_iter()
        .find_map(|c| c.id)
        .ok_or(SnapshotError::NoContainer(full))
}

/// Runs `sh -c <hook>` in the running container of `service`, passing each output line to
/// `log`; retried on a fresh container when the old one is going away.
pub async fn run_hook(
    docker: &Docker,
    stack: &str,
    service: &str,
    hook: &str,
    log: &mut (dyn FnMut(&str) + Send),
) -> Result<(), SnapshotError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match exec_once(docker, stack, service, hook, log).await {
            Err(SnapshotError::NoContainer(_)) | Err(SnapshotError::Docker { .. })
                if attempt < EXEC_ATTEMPTS =>
            {
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            other => return other,
        }
    }
}

async fn exec_once(
    docker: &Docker,
    stack: &str,
    service: &str,
    hook: &str,
    log: &mut (dyn FnMut(&str) + Send),
) -> Result<(), SnapshotError> {
    let id = running_container(docker, stack, service).await?;
    let exec = docker
        .create_exec(
            &id,
            CreateExecOptions {
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                cmd: Some(vec!["sh", "-c", hook]),
                ..Default::default()
            },
        )
        .await
        .map_err(docker_err(format!("exec in {stack}_{service}")))?;
    if let StartExecResults::Attached { mut output, .. } =
        docker
            .start_exec(&exec.id, None)
            .await
            .map_err(docker_err(format!("starting exec in {stack}_{service}")))?
    {
        while let Some(chunk) = output.next().await {
            let chunk = chunk.map_err(docker_err("reading hook output"))?;
            for line in String::from_utf8_lossy(&chunk.into_bytes()).lines() {
                log(line);
            }
        }
    }
    let inspect = docker
        .inspect_exec(&exec.id)
        .await
        .map_err(docker_err("inspecting exec"))?;
    match inspect.exit_code.unwrap_or(-1) {
        0 => Ok(()),
        code => Err(SnapshotError::HookFailed {
            service: service.to_string(),
            hook: hook.to_string(),
            code,
        }),
    }
}

/// Creates (never starts) a helper container with `<stack>_<volume>` mounted at [`MOUNT`],
/// labelled like the run so the janitor can sweep it if we die before removing it.
async fn helper(
    docker: &Docker,
    stack: &str,
    volume: &str,
    image: &str,
    labels: &std::collections::BTreeMap<String, String>,
    read_only: bool,
) -> Result<Helper, SnapshotError> {
    let spec = HelperSpec {
        image: image.to_string(),
        cmd: vec!["true".to_string()],
        labels: labels.clone(),
        mounts: vec![Mount {
            target: Some(MOUNT.to_string()),
            source: Some(format!("{stack}_{volume}")),
            typ: Some(MountType::VOLUME),
            read_only: Some(read_only),
            ..Default::default()
        }],
        ..Default::default()
    };
    Helper::create(docker, spec, &format!("helper for volume {stack}_{volume}"))
        .await
        .map_err(|e| SnapshotError::Docker {
            action: e.action,
            source: e.source,
        })
}

/// Bytes of regular files in a tar.
fn content_bytes(tar_bytes: &[u8]) -> u64 {
    let mut archive = tar::Archive::new(tar_bytes);
    let Ok(entries) = archive.entries() else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .filter(|e| e.header().entry_type().is_file())
        .map(|e| e.header().size().unwrap_or(0))
        .sum()
}

/// Backs up every service of `plan` into `dest` (created): backup pre-hook, archives of the
/// volume paths, backup post-hook. Fails when no archive holds a non-empty file.
pub async fn backup(
    docker: &Docker,
    stack: &str,
    plan: &[ServiceBackup],
    dest: &Path,
    helper_image: &str,
    labels: &std::collections::BTreeMap<String, String>,
    log: &mut (dyn FnMut(&str) + Send),
) -> Result<Vec<Archive>, SnapshotError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| SnapshotError::Io { path, source }
    };
    tokio::fs::create_dir_all(dest).await.map_err(io(dest))?;
    let mut archives = Vec::new();
    for svc in plan {
        if let Some(hook) = &svc.backup_pre_hook {
            log(&format!("{}: backup pre-hook: {hook}", svc.service));
            run_hook(docker, stack, &svc.service, hook, log).await?;
        }
        for vol in &svc.volumes {
            let helper = helper(docker, stack, &vol.volume, helper_image, labels, true).await?;
            let id = helper.id().to_string();
            let paths = if vol.paths.is_empty() {
                vec![".".to_string()]
            } else {
                vol.paths.clone()
            };
            let mut result = Ok(());
            for (i, path) in paths.iter().enumerate() {
                let source = if path == "." {
                    format!("{MOUNT}/.")
                } else {
                    format!("{MOUNT}/{path}")
                };
                let mut stream = docker.download_from_container(
                    &id,
                    Some(DownloadFromContainerOptions { path: source }),
                );
                let mut bytes = Vec::new();
                while let Some(chunk) = stream.next().await {
                    match chunk {
                        Ok(c) => bytes.extend_from_slice(&c),
                        Err(e) => {
                            result = Err(docker_err(format!(
                                "archiving {path} of volume {}",
                                vol.volume
                            ))(e));
                            break;
                        }
                    }
                }
                if result.is_err() {
                    break;
                }
                let file = dest.join(format!("{}-{}-{i}.tar", svc.service, vol.volume));
                tokio::fs::write(&file, &bytes).await.map_err(io(&file))?;
                let content = content_bytes(&bytes);
                log(&format!(
                    "{}: archived {path} of volume {} ({content} bytes)",
                    svc.service, vol.volume
                ));
                archives.push(Archive {
                    service: svc.service.clone(),
                    volume: vol.volume.clone(),
                    path: path.clone(),
                    file,
                    content_bytes: content,
                });
            }
            helper.remove(docker).await;
            result?;
        }
        if let Some(hook) = &svc.backup_post_hook {
            log(&format!("{}: backup post-hook: {hook}", svc.service));
            run_hook(docker, stack, &svc.service, hook, log).await?;
        }
    }
    if archives.iter().all(|a| a.content_bytes == 0) {
        return Err(SnapshotError::Empty(dest.display().to_string()));
    }
    Ok(archives)
}

/// Restores `archives` (from [`backup`]) following `plan`: restore pre-hook, files copied
/// back into the volumes (ownership kept), restore post-hook, per service.
pub async fn restore(
    docker: &Docker,
    stack: &str,
    plan: &[ServiceBackup],
    archives: &[Archive],
    helper_image: &str,
    labels: &std::collections::BTreeMap<String, String>,
    log: &mut (dyn FnMut(&str) + Send),
) -> Result<(), SnapshotError> {
    for svc in plan {
        if let Some(hook) = &svc.restore_pre_hook {
            log(&format!("{}: restore pre-hook: {hook}", svc.service));
            run_hook(docker, stack, &svc.service, hook, log).await?;
        }
        for vol in &svc.volumes {
            let mine: Vec<&Archive> = archives
                .iter()
                .filter(|a| a.service == svc.service && a.volume == vol.volume)
                .collect();
            if mine.is_empty() {
                continue;
            }
            let helper = helper(docker, stack, &vol.volume, helper_image, labels, false).await?;
            let id = helper.id().to_string();
            let mut result = Ok(());
            for a in mine {
                let bytes = match tokio::fs::read(&a.file).await {
                    Ok(b) => b,
                    Err(source) => {
                        result = Err(SnapshotError::Io {
                            path: a.file.clone(),
                            source,
                        });
                        break;
                    }
                };
                let parent = Path::new(&a.path)
                    .parent()
                    .map(|p| p.to_string_lossy().into_owned())
                    .filter(|p| !p.is_empty());
                let target = match parent {
                    Some(p) if a.path != "." => format!("{MOUNT}/{p}"),
                    _ => MOUNT.to_string(),
                };
                let opts = UploadToContainerOptions {
                    path: target,
                    copy_uidgid: Some("1".to_string()),
                    ..Default::default()
                };
                if let Err(e) = docker
                    .upload_to_container(&id, Some(opts), bollard::body_full(bytes.into()))
                    .await
                {
                    result = Err(docker_err(format!(
                        "restoring {} of volume {}",
                        a.path, a.volume
                    ))(e));
                    break;
                }
                log(&format!(
                    "{}: restored {} of volume {}",
                    svc.service, a.path, a.volume
                ));
            }
            helper.remove(docker).await;
            result?;
        }
        if let Some(hook) = &svc.restore_post_hook {
            log(&format!("{}: restore post-hook: {hook}", svc.service));
            run_hook(docker, stack, &svc.service, hook, log).await?;
        }
    }
    Ok(())
}
