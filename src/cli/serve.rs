//! `cc-ci serve`: opens the store, applies manifests, serves the HTTP API, runs the controllers,
//! and shuts everything down gracefully on SIGTERM/SIGINT.

pub mod manifests;
pub mod prune;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, LogFormat};
use crate::controllers::DockerAccess;
use crate::http::{AppState, WriteAuth};
use crate::metrics::Metrics;
use crate::runlog::RunLogs;
use crate::store::SledStore;

/// Arguments of `cc-ci serve`. Flags override the configuration file; everything has a default.
#[derive(Debug, Default, clap::Args)]
pub struct Args {
    /// Configuration file (TOML); its keys are listed in docs/operations.md.
    #[arg(long, value_name = "FILE", env = "CCCI_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8080; port 0 picks a free one].
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// State directory: store, token, logs, artifacts [default: ./.cc-ci].
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// API token file [default: <state-dir>/api-token, generated (0600) when missing].
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// Apply every *.yaml, *.yml and *.json manifest in DIR at start.
    #[arg(long, value_name = "DIR")]
    pub manifests: Option<PathBuf>,
    /// Log format [default: human].
    #[arg(long, value_enum)]
    pub log_format: Option<LogFormat>,
    /// Accept writes without a token (local experiments only).
    #[arg(long)]
    pub insecure_no_auth: bool,
    /// Keep and serve records but execute no TestRun and touch no Docker ([runs] enabled = false).
    #[arg(long)]
    pub no_runs: bool,
    /// Gitea base URL (`[forge] url`): poll enrolled recipes for `!testme`, report on PRs.
    #[arg(long, value_name = "URL")]
    pub forge_url: Option<String>,
    /// File holding the Gitea bot's token (`[forge] token_file`).
    #[arg(long, value_name = "FILE")]
    pub forge_token_file: Option<PathBuf>,
    /// Organisation whose members may trigger runs (`[forge] org`).
    #[arg(long, value_name = "ORG")]
    pub forge_org: Option<String>,
    /// A login that may trigger runs whatever its membership; repeatable (`[forge] allowlist`).
    #[arg(long = "forge-allow", value_name = "LOGIN")]
    pub forge_allow: Vec<String>,
    /// File holding the webhook secret; serves `POST /hook` (`[forge] webhook_secret_file`).
    #[arg(long, value_name = "FILE")]
    pub forge_webhook_secret_file: Option<PathBuf>,
    /// Base URL of this server for run links on pull requests (`[forge] public_url`).
    #[arg(long, value_name = "URL")]
    pub public_url: Option<String>,
    /// Seconds between two polls of a recipe (`[forge] poll_interval_seconds`) [default: 15].
    #[arg(long, value_name = "SECONDS")]
    pub forge_poll_interval: Option<f64>,
}

impl Args {
    /// The configuration file (if any) with these flags applied on top.
    pub fn resolve(&self) -> anyhow::Result<Config> {
        let mut config = match &self.config {
            Some(path) => Config::load(path)?,
            None => Config::default(),
        };
        if let Some(v) = &self.listen {
            config.listen = v.clone();
        }
        if let Some(v) = &self.state_dir {
            config.state_dir = v.clone();
        }
        if self.no_runs {
            config.runs.enabled = false;
        }
        if let Some(v) = &self.token_file {
            config.token_file = Some(v.clone());
        }
        if let Some(v) = &self.manifests {
            config.manifests = Some(v.clone());
        }
        if let Some(v) = self.log_format {
            config.log_format = v;
        }
        config.insecure_no_auth |= self.insecure_no_auth;
        self.apply_forge(&mut config);
        Ok(config)
    }
}

impl Args {
    /// The `--forge-*` flags and `--public-url` over `[forge]` (any of them enables it).
    fn apply_forge(&self, config: &mut Config) {
        let any = self.forge_url.is_some()
            || self.forge_token_file.is_some()
            || self.forge_org.is_some()
            || !self.forge_allow.is_empty()
            || self.forge_webhook_secret_file.is_some()
            || self.public_url.is_some()
            || self.forge_poll_interval.is_some();
        if !any {
            return;
        }
        let f = config.forge.get_or_insert_with(Default::default);
        if let Some(v) = &self.forge_url {
            f.url = v.clone();
        }
        if let Some(v) = &self.forge_token_file {
            f.token_file = Some(v.clone());
        }
        if let Some(v) = &self.forge_org {
            f.org = Some(v.clone());
        }
        f.allowlist.extend(self.forge_allow.iter().cloned());
        if let Some(v) = &self.forge_webhook_secret_file {
            f.webhook_secret_file = Some(v.clone());
        }
        if let Some(v) = &self.public_url {
            f.public_url = v.clone();
        }
        if let Some(v) = self.forge_poll_interval {
            f.poll_interval_seconds = v;
        }
    }
}

/// Runs `cc-ci serve` until SIGTERM or SIGINT.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let config = args.resolve()?;
    crate::telemetry::init(config.log_format);
    let shutdown = CancellationToken::new();
    let signals = tokio::spawn(cancel_on_signal(shutdown.clone()));
    let result = serve(config, shutdown).await;
    signals.abort();
    result
}

/// The engine and files the TestRun controller and the janitor work with. A Docker daemon
/// that cannot be reached now does not stop the server: swarm work retries until it answers.
async fn swarm_deps(config: &Config) -> crate::controllers::SwarmDeps {
    crate::controllers::SwarmDeps {
        docker: docker_access().await,
        logs: RunLogs::new(&config.state_dir),
        runs: config.runs.clone(),
        executor: Arc::new(crate::executor::job::JobExecutor::new(config.tests.clone())),
    }
}

/// Serves with `config` until `shutdown` is cancelled.
pub async fn serve(mut config: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    config.state_dir = absolute_state_dir(&config.state_dir)?;
    // Bind mounts need absolute paths: `./recipes` (the default) is resolved against the
    // directory cc-ci starts in, like the state directory.
    config.tests.suites_root =
        std::path::absolute(&config.tests.suites_root).with_context(|| {
            format!(
                "cannot resolve the suites directory {}",
                config.tests.suites_root.display()
            )
        })?;
    crate::api::set_source_settings(config.sources.clone());
    let store_dir = config.store_dir();
    let store = tokio::task::spawn_blocking(move || SledStore::open(&store_dir)).await??;
    let auth = write_auth(&config)?;
    let metrics = Arc::new(Metrics::new());
    let mut state = AppState::new(store.clone(), metrics.clone(), auth)
        .with_run_logs(RunLogs::new(&config.state_dir));
    state.shutdown = shutdown.clone();
    state.body_limit = config.max_body_bytes;
    let ready = state.ready.clone();

    let listener = TcpListener::bind(&config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr()?;
    write_atomically(&config.listen_addr_file(), addr.to_string().as_bytes())?;
    tracing::info!(%addr, state_dir = %config.state_dir.display(), "listening");
    // forge: the intake the poller and `POST /hook` share
    let forge = match &config.forge {
        Some(f) => Some((
            crate::forge::intake(store.clone(), f, &config.state_dir)?,
            f.clone(),
        )),
        None => None,
    };
    let mut app = crate::http::router(state);
    if let Some((intake, f)) = &forge
        && let Some(path) = &f.webhook_secret_file
    {
        let secret = crate::forge::read_secret(path)?;
        app = app.merge(crate::http::hook::router(
            intake.clone(),
            secret.into_bytes(),
        ));
    }
    let (stop, http_settings) = (shutdown.clone(), config.http.clone());
    let server = tokio::spawn(async move {
        crate::http::server::serve(listener, app, &http_settings, stop).await
    });

    if let Some(dir) = &config.manifests {
        if let Err(e) = manifests::apply_dir(&store, dir).await {
            shutdown.cancel();
            let _ = server.await;
            return Err(e);
        }
        // Records rendered from Nix and since removed from the declaration.
        if let Err(e) = prune::prune_undeclared(&store, dir).await {
            shutdown.cancel();
            let _ = server.await;
            return Err(e);
        }
    }

    // controllers: started here
    let (controllers_ready, mut controllers_ready_rx) = watch::channel(false);
    let swarm = if config.runs.enabled {
        Some(swarm_deps(&config).await)
    } else {
        tracing::info!("[runs] enabled = false: TestRuns are kept but not executed");
        None
    };
    let retention = tokio::spawn(crate::controllers::retention::run(
        store.clone(),
        RunLogs::new(&config.state_dir),
        config.retention.clone(),
        shutdown.clone(),
    ));
    let controllers = tokio::spawn(crate::controllers::run(
        store.clone(),
        metrics.clone(),
        config.runtime.clone(),
        shutdown.clone(),
        controllers_ready,
        Some(RunLogs::new(&config.state_dir)),
        swarm,
    ));

    let forge = forge.map(|(intake, f)| {
        tokio::spawn(crate::forge::run(
            intake,
            f,
            config.runtime.clone(),
            metrics.clone(),
            shutdown.clone(),
        ))
    });

    tokio::select! {
        listed = controllers_ready_rx.wait_for(|r| *r) => {
            if listed.is_ok() {
                ready.store(true, Ordering::Release);
                tracing::info!("ready");
            } else {
                tracing::error!("the controllers stopped before they were ready; shutting down");
                shutdown.cancel();
            }
        }
        () = shutdown.cancelled() => {}
    }
    shutdown.cancelled().await;
    tracing::info!("shutting down");
    let served = server.await;
    let controlled = controllers.await;
    if let Some(forge) = forge {
        let _ = forge.await;
    }
    let _ = retention.await;
    served?.context("the HTTP server failed")?;
    controlled?.context("the controllers failed")?;
    drop(store);
    tracing::info!("stopped");
    Ok(())
}

/// Creates the state directory and answers its absolute path. Everything under it (run
/// workspaces handed to `git` and Docker from other working directories) must not depend on
/// the directory `cc-ci serve` was started in.
pub fn absolute_state_dir(dir: &Path) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create the state directory {}", dir.display()))?;
    std::fs::canonicalize(dir)
        .with_context(|| format!("cannot resolve the state directory {}", dir.display()))
}

/// Docker for the swarm-dependent controllers. When the daemon cannot be reached now, the
/// server still starts: they connect later, retrying until it answers.
async fn docker_access() -> DockerAccess {
    match crate::swarm::docker::connect().await {
        Ok(docker) => DockerAccess::Connected(docker),
        Err(e) => {
            tracing::warn!(error = %e, "Docker is not reachable now; swarm work retries later");
            DockerAccess::Later
        }
    }
}

/// The write authorisation from the configuration: the token file's content, generating the
/// default token file when it is missing.
fn write_auth(config: &Config) -> anyhow::Result<WriteAuth> {
    if config.insecure_no_auth {
        tracing::warn!("--insecure-no-auth: the API accepts writes from anyone who can reach it");
        return Ok(WriteAuth::Disabled);
    }
    let path = config.token_file();
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let auth = WriteAuth::token(&text);
            if matches!(auth, WriteAuth::Unconfigured) {
                tracing::warn!(file = %path.display(), "the API token file is empty: writes are refused");
            }
            Ok(auth)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let token = generate_token();
            write_secret(&path, &token)?;
            tracing::info!(file = %path.display(), "generated an API token for writes");
            Ok(WriteAuth::token(&token))
        }
        Err(e) => Err(e).with_context(|| format!("cannot read the token file {}", path.display())),
    }
}

fn generate_token() -> String {
    let bytes: [u8; 32] = rand::random();
    hex::encode(bytes)
}

fn write_secret(path: &Path, token: &str) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .with_context(|| format!("cannot create the token file {}", path.display()))?;
    writeln!(file, "{token}")?;
    file.sync_all()?;
    Ok(())
}

/// Writes `bytes` to `path` through a temporary file, so readers never see a partial content.
fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

async fn cancel_on_signal(shutdown: CancellationToken) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    shutdown.cancel();
}
