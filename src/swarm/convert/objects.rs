//! Stack-level objects: networks (`convert.Networks` + the CLI's default driver), secrets and
//! configs (`convert.Secrets`/`convert.Configs`), and declared named volumes.

use std::collections::BTreeSet;
use std::path::Path;

use base64::Engine as _;
use bollard::models::{
    ConfigSpec, Driver, Ipam, IpamConfig, NetworkCreateRequest, SecretSpec, VolumeCreateRequest,
};

use super::{ConvertError, Namespace};
use crate::swarm::compose::{ComposeFile, FileObject};

/// The driver `docker stack deploy` uses for networks that name none.
pub const DEFAULT_NETWORK_DRIVER: &str = "overlay";

/// Networks to create (sorted by name) and external network names (sorted).
pub(crate) fn networks(
    ns: &Namespace<'_>,
    compose: &ComposeFile,
) -> (Vec<NetworkCreateRequest>, Vec<String>) {
    let used: BTreeSet<&str> = compose
        .services
        .values()
        .flat_map(|s| {
            if s.networks.is_empty() {
                vec!["default"]
            } else {
                s.networks.keys().map(String::as_str).collect()
            }
        })
        .collect();
    let mut created = Vec::new();
    let mut external = BTreeSet::new();
    for internal in used {
        let nw = compose.networks.get(internal).cloned().unwrap_or_default();
        if nw.external {
            external.insert(nw.name.clone().unwrap_or_else(|| internal.to_string()));
            continue;
        }
        let ipam = nw
            .ipam
            .as_ref()
            .filter(|i| i.driver.is_some() || !i.config.is_empty())
            .map(|i| Ipam {
                driver: i.driver.clone(),
                config: (!i.config.is_empty()).then(|| {
                    i.config
                        .iter()
                        .map(|p| IpamConfig {
                            subnet: p.subnet.clone(),
                            ..Default::default()
                        })
                        .collect()
                }),
                options: None,
            });
        created.push(NetworkCreateRequest {
            name: nw.name.clone().unwrap_or_else(|| ns.scope(internal)),
            driver: Some(
                nw.driver
                    .clone()
                    .filter(|d| !d.is_empty())
                    .unwrap_or_else(|| DEFAULT_NETWORK_DRIVER.to_string()),
            ),
            internal: nw.internal.then_some(true),
            attachable: nw.attachable.then_some(true),
            options: (!nw.driver_opts.is_empty())
                .then(|| nw.driver_opts.clone().into_iter().collect()),
            labels: Some(ns.labels(&nw.labels)),
            ipam,
            ..Default::default()
        });
    }
    created.sort_by(|a, b| a.name.cmp(&b.name));
    (created, external.into_iter().collect())
}

struct FileObjectSpec {
    name: String,
    labels: std::collections::HashMap<String, String>,
    data: String,
}

fn file_object(
    ns: &Namespace<'_>,
    kind: &'static str,
    name: &str,
    obj: &FileObject,
    base_dir: &Path,
    read: bool,
) -> Result<FileObjectSpec, ConvertError> {
    let data = if read {
        let file = obj.file.as_deref().ok_or_else(|| ConvertError::Object {
            kind,
            name: name.to_string(),
            message: "neither file nor external is set".to_string(),
        })?;
        let path = base_dir.join(file);
        let bytes = std::fs::read(&path).map_err(|source| ConvertError::ReadFile {
            kind,
            name: name.to_string(),
            path: path.display().to_string(),
            source,
        })?;
        base64::engine::general_purpose::STANDARD.encode(bytes)
    } else {
        String::new()
    };
    Ok(FileObjectSpec {
        name: obj.name.clone().unwrap_or_else(|| ns.scope(name)),
        labels: ns.labels(&obj.labels),
        data,
    })
}

fn templating(obj: &FileObject) -> Option<Driver> {
    obj.template_driver
        .as_ref()
        .filter(|d| !d.is_empty())
        .map(|d| Driver {
            name: d.clone(),
            options: None,
        })
}

/// Secrets to create (non-external), sorted by name; data is base64 as the Engine API wants.
pub(crate) fn secrets(
    ns: &Namespace<'_>,
    compose: &ComposeFile,
    base_dir: &Path,
) -> Result<Vec<SecretSpec>, ConvertError> {
    let mut out = Vec::new();
    for (name, secret) in compose.secrets.iter().filter(|(_, s)| !s.external) {
        let driver = secret.driver.as_ref().filter(|d| !d.is_empty());
        let obj = file_object(ns, "secret", name, secret, base_dir, driver.is_none())?;
        out.push(SecretSpec {
            name: Some(obj.name),
            labels: Some(obj.labels),
            data: Some(obj.data),
            driver: driver.map(|d| Driver {
                name: d.clone(),
                options: secret
                    .driver_opts
                    .as_ref()
                    .map(|o| o.clone().into_iter().collect()),
            }),
            templating: templating(secret),
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// Configs to create (non-external), sorted by name.
pub(crate) fn configs(
    ns: &Namespace<'_>,
    compose: &ComposeFile,
    base_dir: &Path,
) -> Result<Vec<ConfigSpec>, ConvertError> {
    let mut out = Vec::new();
    for (name, config) in compose.configs.iter().filter(|(_, c)| !c.external) {
        let obj = file_object(ns, "config", name, config, base_dir, true)?;
        out.push(ConfigSpec {
            name: Some(obj.name),
            labels: Some(obj.labels),
            data: Some(obj.data),
            templating: templating(config),
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// Declared non-external named volumes, sorted by name, labelled like their mounts.
pub(crate) fn volumes(ns: &Namespace<'_>, compose: &ComposeFile) -> Vec<VolumeCreateRequest> {
    let mut out: Vec<VolumeCreateRequest> = compose
        .volumes
        .iter()
        .filter(|(_, v)| !v.external)
        .map(|(name, v)| VolumeCreateRequest {
            name: Some(v.name.clone().unwrap_or_else(|| ns.scope(name))),
            driver: v.driver.clone().filter(|d| !d.is_empty()),
            driver_opts: v
                .driver_opts
                .as_ref()
                .map(|o| o.clone().into_iter().collect()),
            labels: Some(ns.labels(&v.labels)),
            ..Default::default()
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}
