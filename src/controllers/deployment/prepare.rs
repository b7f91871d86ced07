//! Turning a deployment record into the [`StackSpec`] to apply: read the secret files, fetch the
//! recipe at the declared version into a throw-away checkout, configure the app (wildcard
//! overlay and content-derived secret versions included), generate the other secrets once, and
//! convert through the same pipeline as a run's app ([`crate::recipe::deploy`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::target::{
    Deployable, WILDCARD_OVERLAY, content_version, labels, overrides, recipe_name, with_overlay,
};
use crate::recipe::app::{AppParams, MAX_OBJECT_NAME, load, stack_name};
use crate::recipe::deploy::{StackOptions, stack_spec_labelled};
use crate::recipe::secrets::{AppSecret, SecretFile};
use crate::recipe::source::{FetchOptions, fetch};
use crate::runlog::redact::Redactor;
use crate::swarm::StackSpec;

/// Why a deployment could not be prepared (the message goes into its status).
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    /// A secret file named in the record cannot be read.
    #[error("secret file {path}: {message}")]
    SecretFile {
        /// The file.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// Fetching the recipe failed.
    #[error("fetching the recipe: {0}")]
    Fetch(#[from] crate::recipe::source::SourceError),
    /// The app cannot be configured.
    #[error("configuring the app: {0}")]
    App(#[from] crate::recipe::app::AppError),
    /// The generated secrets cannot be kept.
    #[error(transparent)]
    Secrets(#[from] crate::recipe::secrets::SecretError),
    /// The compose files do not convert.
    #[error(transparent)]
    Deploy(#[from] crate::recipe::deploy::DeployError),
    /// A swarm secret name would be too long.
    #[error("secret name {0} is longer than {MAX_OBJECT_NAME} characters")]
    NameTooLong(String),
    /// Filesystem trouble in the deployment's directory.
    #[error("{path}: {message}")]
    Io {
        /// The path.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
}

/// The content of a deployment's secret files, read now.
#[derive(Clone, Debug)]
pub struct SecretContents {
    /// `(file secret, content)` in the record's order.
    pub files: Vec<(super::target::FileSecret, String)>,
    /// SHA-256 over every name and content: part of the prepared spec's cache key.
    pub digest: String,
}

/// Reads every file secret of `spec`. Contents must be UTF-8 text (PEM, tokens).
pub fn read_secret_files<S: Deployable>(spec: &S) -> Result<SecretContents, PrepareError> {
    let mut hasher = Sha256::new();
    let mut files = Vec::new();
    for f in spec.file_secrets() {
        let content = std::fs::read_to_string(&f.path).map_err(|e| PrepareError::SecretFile {
            path: f.path.clone(),
            message: e.to_string(),
        })?;
        hasher.update(f.name.as_bytes());
        hasher.update([0]);
        hasher.update(content.as_bytes());
        hasher.update([0]);
        files.push((f, content));
    }
    Ok(SecretContents {
        files,
        digest: hex::encode(hasher.finalize()),
    })
}

/// A deployment ready to apply.
#[derive(Clone, Debug)]
pub struct Prepared {
    /// The objects to apply.
    pub spec: StackSpec,
    /// The version it deploys.
    pub version: String,
    /// Knows every secret value of the deployment: status messages pass through it.
    pub redactor: Redactor,
}

/// How to prepare.
pub struct PrepareOptions<'a> {
    /// The deployment's own directory (checkouts come and go in it; generated secrets stay).
    pub dir: &'a Path,
    /// Labels every object gets.
    pub instance: &'a str,
    /// The deployment id ([`super::target::deployment_id`]).
    pub id: &'a str,
    /// `endpoint_mode: dnsrr` for services that set none.
    pub force_dnsrr: bool,
    /// Registers every secret value.
    pub redactor: &'a Redactor,
}

/// The file that keeps a deployment's generated secrets (0600), across restarts.
pub fn secrets_file(dir: &Path) -> PathBuf {
    dir.join("secrets.json")
}

/// Fetches the recipe of `spec` at its version and builds its stack spec.
pub async fn prepare<S: Deployable>(
    spec: &S,
    secrets: &SecretContents,
    opts: &PrepareOptions<'_>,
) -> Result<Prepared, PrepareError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |e: std::io::Error| PrepareError::Io {
            path,
            message: e.to_string(),
        }
    };
    std::fs::create_dir_all(opts.dir).map_err(io(opts.dir))?;
    let checkout = opts
        .dir
        .join(format!("checkout-{:016x}", rand::random::<u64>()));
    let built = match fetch(
        spec.git(),
        spec.version(),
        &checkout,
        &FetchOptions::default(),
    )
    .await
    {
        Ok(_) => build(spec, secrets, opts, &checkout),
        Err(e) => Err(e.into()),
    };
    // The spec carries every file's content: the checkout is not needed any more.
    let _ = std::fs::remove_dir_all(&checkout);
    built
}

fn build<S: Deployable>(
    spec: &S,
    secrets: &SecretContents,
    opts: &PrepareOptions<'_>,
    dir: &Path,
) -> Result<Prepared, PrepareError> {
    let versions: BTreeMap<String, String> = secrets
        .files
        .iter()
        .map(|(f, content)| {
            let declared = spec.env().get(&f.version_var).map(String::as_str);
            (
                f.version_var.clone(),
                content_version(declared, content.as_bytes()),
            )
        })
        .collect();
    // The stack never depends on versions: a rotated secret must not move the app.
    let stack = stack_name(spec.domain(), std::iter::empty());
    let recipe = recipe_name(spec.git());
    let mut params = AppParams {
        recipe: recipe.clone(),
        version: spec.version().to_string(),
        domain: spec.domain().to_string(),
        stack: Some(stack.clone()),
        overrides: overrides(spec.env(), spec.wildcard(), &versions),
    };
    let mut app = load(dir, &params)?;
    if spec.wildcard()
        && let Some(files) = with_overlay(&app.compose_files, WILDCARD_OVERLAY)
    {
        params.overrides.insert("COMPOSE_FILE".into(), files);
        app = load(dir, &params)?;
    }
    let file_names: Vec<&str> = secrets.files.iter().map(|(f, _)| f.name.as_str()).collect();
    let file_vars: Vec<&str> = secrets
        .files
        .iter()
        .map(|(f, _)| f.version_var.as_str())
        .collect();
    // Generated secrets: every versioned secret of the recipe not taken from a file.
    let generated: Vec<_> = app
        .secrets
        .iter()
        .filter(|s| {
            let var = format!("SECRET_{}_VERSION", s.name.to_uppercase());
            !file_names.contains(&s.name.as_str()) && !file_vars.contains(&var.as_str())
        })
        .cloned()
        .collect();
    let mut file = SecretFile::open(&secrets_file(opts.dir))?;
    let mut app_secrets: Vec<AppSecret> = file.ensure(&stack, &generated, opts.redactor)?;
    for (f, content) in &secrets.files {
        let swarm_name = format!("{stack}_{}_{}", f.name, versions[&f.version_var]);
        if swarm_name.len() > MAX_OBJECT_NAME {
            return Err(PrepareError::NameTooLong(swarm_name));
        }
        opts.redactor.register(content);
        app_secrets.push(AppSecret {
            swarm_name,
            name: f.name.clone(),
            value: content.clone(),
        });
    }
    let stack_opts = StackOptions {
        instance: opts.instance,
        run: opts.id,
        recipe: &recipe,
        version: spec.version(),
        force_dnsrr: opts.force_dnsrr,
        allow: &[],
    };
    let stack_spec = stack_spec_labelled(
        &app,
        &app_secrets,
        &stack_opts,
        labels(opts.instance, opts.id),
    )?;
    Ok(Prepared {
        spec: stack_spec,
        version: spec.version().to_string(),
        redactor: opts.redactor.clone(),
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::api::AppDeploymentSpec;

    const SAMPLE: &str = "TYPE=app\nDOMAIN=app.example.com\nLETS_ENCRYPT_ENV=production\n\
COMPOSE_FILE=\"compose.yml\"\nSECRET_DB_PASSWORD_VERSION=v1\nSECRET_API_KEY_VERSION=v2 # length=40\n";

    const COMPOSE: &str = r#"
version: "3.8"
services:
  app:
    image: ccci-fixture/nginx:latest
    secrets: [db_password, api_key]
secrets:
  db_password:
    external: true
    name: ${STACK_NAME}_db_password_${SECRET_DB_PASSWORD_VERSION}
  api_key:
    external: true
    name: ${STACK_NAME}_api_key_${SECRET_API_KEY_VERSION}
"#;

    #[test]
    fn file_secrets_are_versioned_by_content_the_rest_generated_once_and_all_redacted() {
        let dir = std::env::temp_dir().join(format!("ccci-prepare-{:016x}", rand::random::<u64>()));
        let recipe = dir.join("recipe");
        std::fs::create_dir_all(&recipe).unwrap();
        std::fs::write(recipe.join(".env.sample"), SAMPLE).unwrap();
        std::fs::write(recipe.join("compose.yml"), COMPOSE).unwrap();
        let password = dir.join("db-password");
        std::fs::write(&password, "correct-horse-battery-staple").unwrap();
        let spec = AppDeploymentSpec {
            git: "https://example.org/app.git".into(),
            version: "1.0.0+1".into(),
            domain: "app.example.org".into(),
            env: BTreeMap::from([("STACK_NAME".to_string(), "someone_else".to_string())]),
            secret_files: BTreeMap::from([(
                "db_password".to_string(),
                password.display().to_string(),
            )]),
            keep_volumes: false,
        };
        let state = dir.join("state");
        let redactor = Redactor::new();
        let opts = PrepareOptions {
            dir: &state,
            instance: "unit",
            id: "app-x",
            force_dnsrr: true,
            redactor: &redactor,
        };
        let contents = read_secret_files(&spec).unwrap();
        let prepared = build(&spec, &contents, &opts, &recipe).unwrap();
        assert_eq!(
            prepared.spec.name, "app_example_org",
            "the record cannot move the stack"
        );
        let names: Vec<&str> = prepared
            .spec
            .secrets
            .iter()
            .filter_map(|s| s.name.as_deref())
            .collect();
        let expected = format!(
            "app_example_org_db_password_{}",
            content_version(Some("v1"), b"correct-horse-battery-staple")
        );
        assert!(names.contains(&expected.as_str()), "{names:?}");
        assert!(names.contains(&"app_example_org_api_key_v2"), "{names:?}");
        assert_eq!(prepared.spec.extra_labels["cc-ci.deployment"], "app-x");
        assert!(!prepared.spec.extra_labels.contains_key("cc-ci.managed"));
        // The generated value is kept (0600) and reused; every value is redacted.
        let file = SecretFile::open(&secrets_file(&state)).unwrap();
        let generated = file.get("app_example_org_api_key_v2").unwrap().to_string();
        assert_eq!(generated.len(), 40);
        let again = build(&spec, &contents, &opts, &recipe).unwrap();
        assert_eq!(again.spec.secrets, prepared.spec.secrets);
        let leak = format!("db said correct-horse-battery-staple, key {generated}");
        let scrubbed = prepared.redactor.redact(&leak);
        assert!(
            !scrubbed.contains("correct-horse") && !scrubbed.contains(&generated),
            "{scrubbed}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
