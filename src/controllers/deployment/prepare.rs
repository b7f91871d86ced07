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
use crate::recipe::redact::Redactor;
use crate::recipe::secrets::{AppSecret, SecretFile};
use crate::recipe::source::{FetchOptions, fetch};
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
