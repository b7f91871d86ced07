//! `ProxyDeployment` and `AppDeployment`: long-lived recipe apps cc-ci keeps deployed.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Condition, FieldError, Kind, Object, Spec};

/// The reverse proxy record (the coop-cloud `traefik` recipe).
pub type ProxyDeployment = Object<ProxyDeploymentSpec>;
/// A long-lived app record (e.g. drone).
pub type AppDeployment = Object<AppDeploymentSpec>;

/// Desired state of the proxy.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProxyDeploymentSpec {
    /// Git URL of the proxy recipe.
    pub git: String,
    /// Recipe version (a release tag) to deploy.
    pub version: String,
    /// The proxy's own domain (its dashboard); app domains are subdomains of the base domain.
    pub domain: String,
    /// Values that override the recipe's `.env.sample`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// Path of the wildcard certificate (PEM) on the controller's host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wildcard_cert_file: Option<String>,
    /// Path of the wildcard certificate's key (PEM) on the controller's host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wildcard_key_file: Option<String>,
    /// Keep the proxy's volumes (and generated secrets) when the record is deleted.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub keep_volumes: bool,
}

impl Spec for ProxyDeploymentSpec {
    type Status = DeploymentStatus;
    const KIND: Kind = Kind::ProxyDeployment;

    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = common_checks(&self.git, &self.version, &self.domain);
        errors.extend(super::validate_env("spec.env", &self.env));
        if self.wildcard_cert_file.is_some() != self.wildcard_key_file.is_some() {
            errors.push(FieldError::new(
                "spec.wildcardKeyFile",
                "wildcardCertFile and wildcardKeyFile must be given together",
            ));
        }
        for (field, path) in [
            ("spec.wildcardCertFile", &self.wildcard_cert_file),
            ("spec.wildcardKeyFile", &self.wildcard_key_file),
        ] {
            if let Some(p) = path {
                check_file_path(field, p, &mut errors);
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

/// Desired state of a long-lived app.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AppDeploymentSpec {
    /// Git URL of the recipe.
    pub git: String,
    /// Recipe version (a release tag) to deploy.
    pub version: String,
    /// The app's domain.
    pub domain: String,
    /// Values that override the recipe's `.env.sample`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// Secret name (as in `SECRET_<NAME>_VERSION`, lowercase) → file holding its value.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub secret_files: BTreeMap<String, String>,
    /// Keep the app's volumes (and generated secrets) when the record is deleted.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub keep_volumes: bool,
}

impl Spec for AppDeploymentSpec {
    type Status = DeploymentStatus;
    const KIND: Kind = Kind::AppDeployment;

    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = common_checks(&self.git, &self.version, &self.domain);
        errors.extend(super::validate_env("spec.env", &self.env));
        for (name, path) in &self.secret_files {
            let field = format!("spec.secretFiles.{name}");
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            {
                errors.push(FieldError::new(
                    field.clone(),
                    "secret names are lowercase letters, digits and '_' (as in SECRET_<NAME>_VERSION)",
                ));
            }
            check_file_path(&field, path, &mut errors);
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

/// A secret file must be an absolute path without `..` (it is read on the controller's host).
fn check_file_path(field: &str, path: &str, errors: &mut Vec<FieldError>) {
    let p = std::path::Path::new(path);
    if !p.is_absolute() || p.components().any(|c| c.as_os_str() == "..") || path.contains('\0') {
        errors.push(FieldError::new(
            field.to_string(),
            format!("{path:?} must be an absolute path without '..'"),
        ));
    }
}

fn common_checks(git: &str, version: &str, domain: &str) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if let Err(e) = super::validate_git_url("spec.git", git) {
        errors.push(e);
    }
    if version.trim().is_empty() {
        errors.push(FieldError::new("spec.version", "must not be empty"));
    }
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if domain.is_empty() || !domain.split('.').all(label_ok) {
        errors.push(FieldError::new(
            "spec.domain",
            format!("{domain:?} is not a valid domain name"),
        ));
    }
    errors
}

/// Rollout phase of a long-lived deployment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum DeploymentPhase {
    /// Not yet deployed.
    #[default]
    Pending,
    /// Deploying or converging.
    Progressing,
    /// Deployed and converged at the desired version.
    Ready,
    /// The last attempt failed; it will be retried.
    Failed,
}

/// Observed state shared by proxy and app deployments.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentStatus {
    /// The `generation` this status was computed for.
    #[serde(default)]
    pub observed_generation: u64,
    /// Rollout phase.
    #[serde(default)]
    pub phase: DeploymentPhase,
    /// The version actually running.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_version: Option<String>,
    /// Services that have all their desired tasks running.
    #[serde(default)]
    pub services_ready: u32,
    /// Services in the stack.
    #[serde(default)]
    pub services_total: u32,
    /// Detail of the last transition or failure.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// Conditions, e.g. `Ready`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(secret: &str, path: &str) -> AppDeploymentSpec {
        AppDeploymentSpec {
            git: "https://example.org/drone.git".into(),
            version: "1.0.0+1".into(),
            domain: "drone.example.org".into(),
            env: BTreeMap::new(),
            secret_files: BTreeMap::from([(secret.to_string(), path.to_string())]),
            keep_volumes: false,
        }
    }

    #[test]
    fn secret_files_must_be_absolute_paths_without_dot_dot() {
        assert!(app("rpc_secret", "/run/secrets/rpc").validate().is_ok());
        for bad in [
            "run/secrets/rpc",
            "/run/secrets/../../etc/shadow",
            "",
            "/a/\0b",
        ] {
            let errors = app("rpc_secret", bad).validate().unwrap_err();
            assert_eq!(errors[0].field, "spec.secretFiles.rpc_secret", "{bad:?}");
        }
    }

    #[test]
    fn secret_names_are_what_a_version_variable_can_name() {
        for bad in ["RPC", "rpc-secret", "", "a b", "x;y"] {
            let errors = app(bad, "/run/s").validate().unwrap_err();
            assert!(errors[0].message.contains("lowercase"), "{bad:?}");
        }
    }

    #[test]
    fn the_wildcard_files_come_in_pairs_and_are_absolute() {
        let mut p = ProxyDeploymentSpec {
            git: "g".into(),
            version: "1".into(),
            domain: "traefik.example.org".into(),
            env: BTreeMap::new(),
            wildcard_cert_file: Some("/c".into()),
            wildcard_key_file: None,
            keep_volumes: false,
        };
        assert!(p.validate().is_err());
        p.wildcard_key_file = Some("key.pem".into());
        let errors = p.validate().unwrap_err();
        assert_eq!(errors[0].field, "spec.wildcardKeyFile");
        p.wildcard_key_file = Some("/k".into());
        assert!(p.validate().is_ok());
    }
}
