//! Helpers of the deployment tests: a test CA and wildcard certificates made with `openssl`, the
//! deployment controllers on a fresh store, waiting for a phase, and HTTPS through the proxy.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cc_ci::api::{DeploymentPhase, Object, ProxyDeploymentSpec};
use cc_ci::controllers::deployment::{self, DeploymentSettings};
use cc_ci::metrics::Metrics;
use cc_ci::runtime::RuntimeSettings;
use cc_ci::store::{SledStore, Store};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::fixture_repo::FixtureRepo;
pub use crate::lifecycle::harness::docker_cli;

/// Runs `openssl <args>` in `dir`; panics on failure.
fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl runs");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The stand-in proxy recipe's first version.
pub const STANDIN_V1: &str = "1.0.0+0.1";

/// A `ProxyDeployment` of the stand-in proxy recipe (`tests/fixtures/recipes/proxy-standin`, the
/// traefik recipe's shape) at [`STANDIN_V1`] in wildcard mode for `*.<base>`, with the wildcard
/// certificate and key from files, on host ports `https`/`http` (each test its own).
pub fn standin_proxy(
    repo: &FixtureRepo,
    base: &str,
    https: u16,
    http: u16,
    cert: &Path,
    key: &Path,
) -> ProxyDeploymentSpec {
    ProxyDeploymentSpec {
        git: repo.url(),
        version: STANDIN_V1.into(),
        domain: format!("proxy.{base}"),
        env: BTreeMap::from([
            ("HTTPS_PORT".to_string(), https.to_string()),
            ("HTTP_PORT".to_string(), http.to_string()),
        ]),
        wildcard_cert_file: Some(cert.display().to_string()),
        wildcard_key_file: Some(key.display().to_string()),
        keep_volumes: false,
    }
}

/// A test CA (`ca.pem`) in `dir`, made once per test: nothing private is committed.
pub fn test_ca(dir: &Path) -> PathBuf {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=cc-ci test CA",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
        ],
    );
    dir.join("ca.pem")
}

/// A certificate for `*.<base>` (and `<base>`) signed by the CA in `dir`, written to
/// `<stem>.crt`/`<stem>.key`; returns both paths.
pub fn wildcard_cert(dir: &Path, base: &str, stem: &str) -> (PathBuf, PathBuf) {
    let (key, csr, crt, ext) = (
        format!("{stem}.key"),
        format!("{stem}.csr"),
        format!("{stem}.crt"),
        format!("{stem}.ext"),
    );
    std::fs::write(
        dir.join(&ext),
        format!("subjectAltName=DNS:*.{base},DNS:{base}\n"),
    )
    .unwrap();
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            &format!("/CN=*.{base}"),
            "-keyout",
            &key,
            "-out",
            &csr,
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            &ext,
            "-out",
            &crt,
        ],
    );
    (dir.join(crt), dir.join(key))
}

/// The SHA-256 fingerprint of a PEM certificate file.
pub fn fingerprint(cert: &Path) -> String {
    let out = Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
        .arg(cert)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// `curl` of `https://<host>:<port><path>` resolved to 127.0.0.1, verifying TLS against `ca`:
/// `(status code, body)`, or `None` when the request fails (TLS verification included).
pub fn https_get(host: &str, port: u16, path: &str, ca: &Path) -> Option<(u16, String)> {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "5", "--cacert"])
        .arg(ca)
        .args([
            "--resolve",
            &format!("{host}:{port}:127.0.0.1"),
            "-w",
            "\n%{http_code}",
            &format!("https://{host}:{port}{path}"),
        ])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n')?;
    Some((code.trim().parse().ok()?, body.to_string()))
}

/// The fingerprint of the certificate served on 127.0.0.1:`port` for `host`.
pub fn served_fingerprint(host: &str, port: u16) -> String {
    let script = format!(
        "echo | openssl s_client -connect 127.0.0.1:{port} -servername {host} 2>/dev/null \
         | openssl x509 -noout -fingerprint -sha256"
    );
    let out = Command::new("sh").args(["-c", &script]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The deployment controllers on a fresh sled store, re-checking every `recheck`.
pub struct Deployments {
    /// The store.
    pub store: SledStore,
    /// The controllers' metrics (`ccci_reconcile_total` counts their reconciles).
    pub metrics: Arc<Metrics>,
    shutdown: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
    _tmp: tempfile::TempDir,
}

/// The settings of the tests: their own instance, dnsrr (no IPVS here).
pub fn settings(instance: &str, state_dir: &Path, recheck: Duration) -> DeploymentSettings {
    DeploymentSettings {
        instance: instance.to_string(),
        state_dir: state_dir.to_path_buf(),
        force_dnsrr: true,
        converge_timeout: Duration::from_secs(90),
        recheck,
        remove_timeout: Duration::from_secs(60),
    }
}

impl Deployments {
    /// Starts both controllers.
    pub async fn start(instance: &str, recheck: Duration) -> Deployments {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(
                std::env::var("CCCI_TEST_LOG").unwrap_or_else(|_| "cc_ci=warn".to_string()),
            )
            .with_test_writer()
            .try_init();
        let tmp = tempfile::tempdir().unwrap();
        let store = SledStore::open(&tmp.path().join("store")).unwrap();
        let settings = settings(instance, &tmp.path().join("state"), recheck);
        let docker = cc_ci::swarm::docker::connect().await.unwrap();
        let shutdown = CancellationToken::new();
        let runtime = RuntimeSettings {
            backoff_initial_seconds: 1,
            backoff_max_seconds: 2,
            backoff_jitter: false,
            ..RuntimeSettings::default()
        };
        let metrics = Arc::new(Metrics::new());
        let proxy = deployment::start::<ProxyDeploymentSpec, _>(
            &store,
            docker.clone(),
            settings.clone(),
            runtime.clone(),
            metrics.clone(),
            shutdown.clone(),
        );
        let app = deployment::start::<cc_ci::api::AppDeploymentSpec, _>(
            &store,
            docker,
            settings.clone(),
            runtime,
            metrics.clone(),
            shutdown.clone(),
        );
        let mut tasks = proxy.tasks;
        tasks.extend(app.tasks);
        Deployments {
            store,
            metrics,
            shutdown,
            tasks,
            _tmp: tmp,
        }
    }

    /// The proxy record now.
    pub fn proxy(&self, name: &str) -> Option<Object<ProxyDeploymentSpec>> {
        self.store.get::<ProxyDeploymentSpec>(name).unwrap()
    }

    /// Waits until `pred` holds for the proxy record, or panics after `limit` with its status.
    pub async fn wait_proxy(
        &self,
        name: &str,
        limit: Duration,
        what: &str,
        pred: impl Fn(&Object<ProxyDeploymentSpec>) -> bool,
    ) -> Object<ProxyDeploymentSpec> {
        let deadline = Instant::now() + limit;
        loop {
            let p = self.proxy(name).expect("the proxy record exists");
            if pred(&p) {
                return p;
            }
            assert!(
                Instant::now() < deadline,
                "proxy {name}: not {what} within {limit:?}: {}",
                serde_json::to_string_pretty(&p.status).unwrap()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until the proxy is Ready at `version`.
    pub async fn wait_ready(&self, name: &str, version: &str) -> Object<ProxyDeploymentSpec> {
        self.wait_proxy(name, Duration::from_secs(120), "Ready", |p| {
            p.status.phase == DeploymentPhase::Ready
                && p.status.observed_version.as_deref() == Some(version)
                && p.status.observed_generation == p.metadata.generation
        })
        .await
    }

    /// Stops the controllers.
    pub async fn stop(self) {
        self.shutdown.cancel();
        for t in self.tasks {
            t.await.unwrap();
        }
    }
}

/// Every swarm object labelled `label` (`key=value`), as `<kind> <name>`.
pub fn labelled(label: &str) -> Vec<String> {
    let filter = format!("label={label}");
    let mut out = Vec::new();
    for kind in ["service", "secret", "config", "network", "volume"] {
        let names = docker_cli(&[kind, "ls", "--filter", &filter, "--format", "{{.Name}}"]);
        out.extend(names.lines().map(|n| format!("{kind} {n}")));
    }
    out.sort();
    out
}

/// Removes every object labelled `label` (leftovers of a killed earlier run of a test).
pub async fn sweep(label: &str) {
    let docker = cc_ci::swarm::docker::connect().await.unwrap();
    cc_ci::swarm::remove::remove_by_label(
        &docker,
        label,
        &cc_ci::swarm::remove::RemoveOptions {
            volumes: true,
            timeout: Duration::from_secs(60),
        },
    )
    .await
    .unwrap();
}
