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
use crate::recipe::runlog::RunLogs;
use crate::store::SledStore;

/// Arguments of `cc-ci serve`. Flags override the configuration file; everything has a default.
#[derive(Debug, Default, clap::Args)]
pub struct Args {
    /// Configuration file (TOML); see `Config` for its keys.
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
    /// Keep and serve records but execute no TestRun and touch no Docker (`[runs] enabled = false`).
    #[arg(long)]
    pub no_runs: bool,
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
        Ok(config)
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
        executor: Arc::new(crate::executor::builtin::BuiltinChecks),
    }
}

/// Serves with `config` until `shutdown` is cancelled.
pub async fn serve(config: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    std::fs::create_dir_all(&config.state_dir).with_context(|| {
        format!(
            "cannot create the state directory {}",
            config.state_dir.display()
        )
    })?;
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
    let app = crate::http::router(state);
    let stop = shutdown.clone();
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move { stop.cancelled().await })
            .await
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
    let controllers = tokio::spawn(crate::controllers::run(
        store.clone(),
        metrics.clone(),
        config.runtime.clone(),
        shutdown.clone(),
        controllers_ready,
        swarm,
    ));

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
    served?.context("the HTTP server failed")?;
    controlled?.context("the controllers failed")?;
    drop(store);
    tracing::info!("stopped");
    Ok(())
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
