//! What a long-lived deployment deploys, decided without I/O: the [`Deployable`] view of the
//! `ProxyDeployment` and `AppDeployment` specs, their swarm labels, the env overrides
//! (wildcard mode after the traefik recipe's conventions), and content-derived versions of the
//! secrets that come from files (so a changed file is a new swarm secret).

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use crate::api::{AppDeploymentSpec, DeploymentStatus, ProxyDeploymentSpec, Spec};

/// Label naming the deployment an object belongs to: `proxy-<name>` or `app-<name>`. Objects
/// of long-lived deployments never carry `cc-ci.managed`/`cc-ci.run`, so neither a run's
/// teardown nor the janitor ever touches them, and a deployment only ever removes its own.
pub const DEPLOYMENT_LABEL: &str = "cc-ci.deployment";

/// Label naming the controller instance that deployed an object.
pub const DEPLOYMENT_INSTANCE_LABEL: &str = "cc-ci.deployment.instance";

/// The traefik recipe's wildcard overlay.
pub const WILDCARD_OVERLAY: &str = "compose.wildcard.yml";

/// A secret whose value is the content of a file on the controller's host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileSecret {
    /// The compose secret name, e.g. `ssl_cert`; the swarm secret is `<stack>_<name>_<version>`.
    pub name: String,
    /// The env variable holding its version, e.g. `SECRET_WILDCARD_CERT_VERSION`.
    pub version_var: String,
    /// The file.
    pub path: String,
}

/// What the shared reconciler needs of a deployment's spec.
pub trait Deployable: Spec<Status = DeploymentStatus> {
    /// `proxy` or `app`: the prefix of [`deployment_id`], and the controller's name stem.
    const PREFIX: &'static str;
    /// The controller's name (its `controller` metric label).
    const CONTROLLER: &'static str;
    /// The finalizer guaranteeing removal on delete.
    const FINALIZER: &'static str;
    /// Git URL of the recipe.
    fn git(&self) -> &str;
    /// The version (tag) to deploy.
    fn version(&self) -> &str;
    /// The app's domain.
    fn domain(&self) -> &str;
    /// The record's env overrides.
    fn env(&self) -> &BTreeMap<String, String>;
    /// Secrets taken from files.
    fn file_secrets(&self) -> Vec<FileSecret>;
    /// Whether the traefik recipe's wildcard mode is on.
    fn wildcard(&self) -> bool;
    /// Whether deleting the record keeps volumes.
    fn keep_volumes(&self) -> bool;
}

impl Deployable for ProxyDeploymentSpec {
    const PREFIX: &'static str = "proxy";
    const CONTROLLER: &'static str = "proxydeployment";
    const FINALIZER: &'static str = "cc-ci/proxydeployment-remove";
    fn git(&self) -> &str {
        &self.git
    }
    fn version(&self) -> &str {
        &self.version
    }
    fn domain(&self) -> &str {
        &self.domain
    }
    fn env(&self) -> &BTreeMap<String, String> {
        &self.env
    }
    /// In wildcard mode the certificate and key, as the traefik recipe's `ssl_cert`/`ssl_key`.
    fn file_secrets(&self) -> Vec<FileSecret> {
        match (&self.wildcard_cert_file, &self.wildcard_key_file) {
            (Some(cert), Some(key)) => vec![
                FileSecret {
                    name: "ssl_cert".into(),
                    version_var: "SECRET_WILDCARD_CERT_VERSION".into(),
                    path: cert.clone(),
                },
                FileSecret {
                    name: "ssl_key".into(),
                    version_var: "SECRET_WILDCARD_KEY_VERSION".into(),
                    path: key.clone(),
                },
            ],
            _ => Vec::new(),
        }
    }
    fn wildcard(&self) -> bool {
        self.wildcard_cert_file.is_some() && self.wildcard_key_file.is_some()
    }
    fn keep_volumes(&self) -> bool {
        self.keep_volumes
    }
}

impl Deployable for AppDeploymentSpec {
    const PREFIX: &'static str = "app";
    const CONTROLLER: &'static str = "appdeployment";
    const FINALIZER: &'static str = "cc-ci/appdeployment-remove";
    fn git(&self) -> &str {
        &self.git
    }
    fn version(&self) -> &str {
        &self.version
    }
    fn domain(&self) -> &str {
        &self.domain
    }
    fn env(&self) -> &BTreeMap<String, String> {
        &self.env
    }
    /// Each `secretFiles` entry, versioned by `SECRET_<NAME>_VERSION` like abra's secrets.
    fn file_secrets(&self) -> Vec<FileSecret> {
        self.secret_files
            .iter()
            .map(|(name, path)| FileSecret {
                name: name.clone(),
                version_var: format!("SECRET_{}_VERSION", name.to_uppercase()),
                path: path.clone(),
            })
            .collect()
    }
    fn wildcard(&self) -> bool {
        false
    }
    fn keep_volumes(&self) -> bool {
        self.keep_volumes
    }
}

/// `proxy-<name>` / `app-<name>`: the value of [`DEPLOYMENT_LABEL`].
pub fn deployment_id<S: Deployable>(name: &str) -> String {
    format!("{}-{name}", S::PREFIX)
}

/// The labels on every swarm object of deployment `id`.
pub fn labels(instance: &str, id: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (DEPLOYMENT_LABEL.to_string(), id.to_string()),
        (DEPLOYMENT_INSTANCE_LABEL.to_string(), instance.to_string()),
    ])
}

/// The recipe's name from its git URL: the last path segment without `.git`
/// (`https://git.coopcloud.tech/coop-cloud/traefik.git` → `traefik`).
pub fn recipe_name(git: &str) -> String {
    let last = git
        .trim_end_matches('/')
        .rsplit(['/', ':'])
        .next()
        .unwrap_or_default();
    let name = last.strip_suffix(".git").unwrap_or(last);
    if name.is_empty() {
        "recipe".to_string()
    } else {
        name.to_string()
    }
}

/// The version of a file-backed secret: the declared one (`v1` when none) plus 8 hex characters
/// of the content's SHA-256, so new content is a new swarm secret (swarm secrets are immutable)
/// and unchanged content keeps its name.
pub fn content_version(declared: Option<&str>, content: &[u8]) -> String {
    let hash = hex::encode(Sha256::digest(content));
    let declared = declared.filter(|d| !d.is_empty()).unwrap_or("v1");
    format!("{declared}-{}", &hash[..8])
}

/// The env overrides of a deployment: the record's env, then for wildcard mode
/// `WILDCARDS_ENABLED=1` and an empty `LETS_ENCRYPT_ENV` (no ACME), then each file secret's
/// version variable (`versions`, by variable). `DOMAIN` and `STACK_NAME` are never taken from
/// the record's env.
pub fn overrides(
    env: &BTreeMap<String, String>,
    wildcard: bool,
    versions: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = env
        .iter()
        .filter(|(k, _)| k.as_str() != "DOMAIN" && k.as_str() != "STACK_NAME")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if wildcard {
        out.insert("WILDCARDS_ENABLED".into(), "1".into());
        out.insert("LETS_ENCRYPT_ENV".into(), String::new());
    }
    out.extend(versions.iter().map(|(k, v)| (k.clone(), v.clone())));
    out
}

/// `COMPOSE_FILE` with `overlay` appended unless already enabled (`None`: nothing to change).
pub fn with_overlay(enabled: &[String], overlay: &str) -> Option<String> {
    if enabled.iter().any(|f| f == overlay) {
        return None;
    }
    let mut files = enabled.to_vec();
    files.push(overlay.to_string());
    Some(files.join(":"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recipe_names_come_from_the_url() {
        assert_eq!(
            recipe_name("https://git.coopcloud.tech/coop-cloud/traefik.git"),
            "traefik"
        );
        assert_eq!(recipe_name("file:///tmp/x/proxy-standin/"), "proxy-standin");
        assert_eq!(recipe_name("git@host:org/drone.git"), "drone");
        assert_eq!(recipe_name(""), "recipe");
    }

    #[test]
    fn content_versions_change_with_the_content_only() {
        let a = content_version(Some("v2"), b"cert one");
        assert!(a.starts_with("v2-") && a.len() == 11, "{a}");
        assert_eq!(a, content_version(Some("v2"), b"cert one"));
        assert_ne!(a, content_version(Some("v2"), b"cert two"));
        assert!(content_version(None, b"x").starts_with("v1-"));
        assert!(content_version(Some(""), b"x").starts_with("v1-"));
    }

    #[test]
    fn wildcard_mode_sets_the_traefik_conventions_and_the_record_cannot_move_the_domain() {
        let env = BTreeMap::from([
            ("LETS_ENCRYPT_ENV".to_string(), "production".to_string()),
            ("DOMAIN".to_string(), "evil.example".to_string()),
            ("STACK_NAME".to_string(), "other_stack".to_string()),
            ("HTTPS_PORT".to_string(), "8443".to_string()),
        ]);
        let versions = BTreeMap::from([(
            "SECRET_WILDCARD_CERT_VERSION".to_string(),
            "v1-00000000".to_string(),
        )]);
        let out = overrides(&env, true, &versions);
        assert_eq!(out["WILDCARDS_ENABLED"], "1");
        assert_eq!(out["LETS_ENCRYPT_ENV"], "");
        assert_eq!(out["HTTPS_PORT"], "8443");
        assert_eq!(out["SECRET_WILDCARD_CERT_VERSION"], "v1-00000000");
        assert!(!out.contains_key("DOMAIN") && !out.contains_key("STACK_NAME"));
        let plain = overrides(&env, false, &BTreeMap::new());
        assert_eq!(plain["LETS_ENCRYPT_ENV"], "production");
        assert!(!plain.contains_key("WILDCARDS_ENABLED"));
    }

    #[test]
    fn the_wildcard_overlay_is_appended_once() {
        let files = vec!["compose.yml".to_string()];
        assert_eq!(
            with_overlay(&files, WILDCARD_OVERLAY).as_deref(),
            Some("compose.yml:compose.wildcard.yml")
        );
        let both = vec!["compose.yml".to_string(), WILDCARD_OVERLAY.to_string()];
        assert_eq!(with_overlay(&both, WILDCARD_OVERLAY), None);
    }

    #[test]
    fn file_secrets_follow_each_kind_s_convention() {
        let proxy = ProxyDeploymentSpec {
            git: "g".into(),
            version: "1".into(),
            domain: "p.example".into(),
            env: BTreeMap::new(),
            wildcard_cert_file: Some("/c".into()),
            wildcard_key_file: Some("/k".into()),
            keep_volumes: false,
        };
        let names: Vec<_> = proxy
            .file_secrets()
            .into_iter()
            .map(|f| (f.name, f.version_var))
            .collect();
        assert_eq!(
            names,
            [
                ("ssl_cert".into(), "SECRET_WILDCARD_CERT_VERSION".into()),
                ("ssl_key".into(), "SECRET_WILDCARD_KEY_VERSION".into())
            ]
        );
        assert!(proxy.wildcard());
        let app = AppDeploymentSpec {
            git: "g".into(),
            version: "1".into(),
            domain: "a.example".into(),
            env: BTreeMap::new(),
            secret_files: BTreeMap::from([("rpc_secret".into(), "/s".into())]),
            keep_volumes: true,
        };
        assert_eq!(
            app.file_secrets()[0].version_var,
            "SECRET_RPC_SECRET_VERSION"
        );
        assert!(!app.wildcard());
        assert_eq!(deployment_id::<AppDeploymentSpec>("drone"), "app-drone");
    }
}
