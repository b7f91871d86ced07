//! A TestRun controller in the test process on a real sled store and the real local swarm,
//! with a test executor that seeds and verifies app data through the app's own container, and
//! helpers to wait for runs and list what an instance left in Swarm.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cc_ci::api::{Object, RecipeSpec, RunSource, StageKind, TestRun, TestRunSpec};
use cc_ci::controllers::{self, RunSettings, SwarmDeps};
use cc_ci::executor::TestPhase;
use cc_ci::executor::builtin::BuiltinChecks;
use cc_ci::executor::{ExecError, StepLog, TestExecutor, TestReport, TestRequest};
use cc_ci::metrics::Metrics;
use cc_ci::runlog::RunLogs;
use cc_ci::runtime::RuntimeSettings;
use cc_ci::store::{SledStore, Store};
use futures::future::BoxFuture;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Runs `docker <args>` and returns trimmed stdout; panics on failure.
pub fn docker_cli(args: &[&str]) -> String {
    let out = Command::new("docker")
        .args(args)
        .output()
        .expect("docker runs");
    assert!(
        out.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Every swarm object and container labelled with `instance`.
pub fn leftovers(instance: &str) -> Vec<String> {
    labelled(&format!("cc-ci.instance={instance}"))
}

/// Every swarm object and container carrying `label` (`key=value`), as `<kind> <id>`.
pub fn labelled(label: &str) -> Vec<String> {
    let label = format!("label={label}");
    let mut out = Vec::new();
    for kind in ["service", "secret", "config", "network", "volume"] {
        let names = docker_cli(&[kind, "ls", "-q", "--filter", &label]);
        out.extend(names.lines().map(|n| format!("{kind} {n}")));
    }
    let containers = docker_cli(&["ps", "-aq", "--filter", &label]);
    out.extend(containers.lines().map(|n| format!("container {n}")));
    out
}

/// Removes whatever an earlier, killed run of a test left for `instance`.
pub async fn sweep(instance: &str) {
    let docker = cc_ci::swarm::docker::connect().await.unwrap();
    cc_ci::swarm::remove::remove_by_label(
        &docker,
        &format!("cc-ci.instance={instance}"),
        &cc_ci::swarm::remove::RemoveOptions {
            volumes: true,
            timeout: Duration::from_secs(120),
        },
    )
    .await
    .unwrap();
    for id in docker_cli(&[
        "ps",
        "-aq",
        "--filter",
        &format!("label=cc-ci.instance={instance}"),
    ])
    .lines()
    {
        let _ = Command::new("docker").args(["rm", "-f", id]).output();
    }
}

/// The `[runs]` settings of the tests: their own instance, dnsrr (no IPVS here), short timeouts.
pub fn settings(instance: &str) -> RunSettings {
    RunSettings {
        instance: instance.to_string(),
        base_domain: "ci.test".into(),
        force_dnsrr: true,
        converge_timeout_seconds: 120,
        stage_timeout_seconds: 600,
        run_timeout_seconds: 1200,
        ..RunSettings::default()
    }
}

/// A controller (every reconciler) running in this process.
pub struct Controller {
    /// The store.
    pub store: SledStore,
    /// The state directory (run logs).
    pub state_dir: PathBuf,
    shutdown: CancellationToken,
    handle: Option<JoinHandle<Result<(), controllers::RunError>>>,
    _tmp: tempfile::TempDir,
}

impl Controller {
    /// Starts the controllers on a fresh store with `settings` and `executor`.
    pub async fn start(settings: RunSettings, executor: Arc<dyn TestExecutor>) -> Controller {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(
                std::env::var("CCCI_TEST_LOG").unwrap_or_else(|_| "cc_ci=warn".to_string()),
            )
            .with_test_writer()
            .try_init();
        let tmp = tempfile::tempdir().unwrap();
        let store = SledStore::open(&tmp.path().join("store")).unwrap();
        let state_dir = tmp.path().join("state");
        let docker = cc_ci::swarm::docker::connect().await.unwrap();
        let shutdown = CancellationToken::new();
        let (ready_tx, mut ready_rx) = tokio::sync::watch::channel(false);
        let runtime = RuntimeSettings {
            backoff_initial_seconds: 1,
            backoff_max_seconds: 4,
            backoff_jitter: false,
            ..RuntimeSettings::default()
        };
        let handle = tokio::spawn(controllers::run(
            store.clone(),
            Arc::new(Metrics::new()),
            runtime,
            shutdown.clone(),
            ready_tx,
            None,
            Some(SwarmDeps {
                docker: cc_ci::controllers::DockerAccess::Connected(docker),
                logs: RunLogs::new(&state_dir),
                runs: settings,
                executor,
            }),
        ));
        ready_rx.wait_for(|r| *r).await.unwrap();
        Controller {
            store,
            state_dir,
            shutdown,
            handle: Some(handle),
            _tmp: tmp,
        }
    }

    /// Enrolls a recipe.
    pub async fn recipe(&self, name: &str, git: &str, env: &[(&str, &str)]) {
        let spec = RecipeSpec {
            git: git.to_string(),
            forge_repo: None,
            default_branch: "main".into(),
            suite_path: None,
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            stages: StageKind::ALL.to_vec(),
            timeouts: Default::default(),
            allow: vec![],
            suspended: false,
        };
        self.store.create(Object::new(name, spec)).await.unwrap();
    }

    /// Creates a run.
    pub async fn run(&self, spec: RunSpec<'_>) -> String {
        let run = TestRunSpec {
            recipe: spec.recipe.into(),
            git: None,
            git_ref: spec.git_ref.into(),
            pr: spec.pr,
            source: RunSource {
                requester: Some("test".into()),
                ..Default::default()
            },
            stages: spec.stages.map(|s| s.to_vec()),
            upgrade_from: spec.upgrade_from.map(str::to_string),
            cancel: false,
            keep_on_failure: None,
        };
        self.store
            .create(Object::new(spec.name, run))
            .await
            .unwrap();
        spec.name.to_string()
    }

    /// The run now.
    pub fn get(&self, name: &str) -> Option<TestRun> {
        self.store.get::<TestRunSpec>(name).unwrap()
    }

    /// Waits until the run is terminal (and torn down), or panics after `limit`.
    pub async fn wait_done(&self, name: &str, limit: Duration) -> TestRun {
        let deadline = Instant::now() + limit;
        loop {
            let run = self.get(name).expect("the run exists");
            if run.status.phase.is_terminal() && run.status.torn_down {
                return run;
            }
            assert!(
                Instant::now() < deadline,
                "run {name} not done within {limit:?}: {}",
                serde_json::to_string_pretty(&run.status).unwrap()
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// The text of every log stream of a run.
    pub fn logs(&self, name: &str) -> String {
        let dir = self.state_dir.join("runs").join(name).join("logs");
        let mut out = String::new();
        if let Ok(entries) = std::fs::read_dir(&dir) {
            let mut paths: Vec<_> = entries.map(|e| e.unwrap().path()).collect();
            paths.sort();
            for p in paths {
                out.push_str(&format!("--- {}\n", p.display()));
                out.push_str(&std::fs::read_to_string(&p).unwrap());
            }
        }
        out
    }

    /// The run's directory.
    pub fn run_dir(&self, name: &str) -> PathBuf {
        self.state_dir.join("runs").join(name)
    }

    /// Stops the controllers (in-flight reconciles get their grace period).
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(h) = self.handle.take() {
            h.await.unwrap().unwrap();
        }
    }
}

/// What a test run is made of.
pub struct RunSpec<'a> {
    /// Run name.
    pub name: &'a str,
    /// Recipe name.
    pub recipe: &'a str,
    /// Git ref.
    pub git_ref: &'a str,
    /// Pull request.
    pub pr: Option<u64>,
    /// Stages (None: the recipe's).
    pub stages: Option<&'a [StageKind]>,
    /// Upgrade starting point.
    pub upgrade_from: Option<&'a str>,
}

/// The test executor: the built-in checks, plus data seeded and verified through the app's
/// container (`docker exec`), the way the recipes' own tests will do it over HTTP:
/// - upgrade `pre` writes `before-upgrade`, `post` reads it back;
/// - backup-restore `pre` writes `before-backup`, `mutate` deletes the data, `post` reads both
///   markers back (the one from before the upgrade too, when the upgrade ran).
#[derive(Clone, Copy, Debug, Default)]
pub struct DataChecks;

fn app_container(stack: &str) -> Result<String, String> {
    let filter = format!("label=com.docker.swarm.service.name={stack}_app");
    let out = Command::new("docker")
        .args([
            "ps",
            "-q",
            "--filter",
            &filter,
            "--filter",
            "status=running",
        ])
        .output()
        .map_err(|e| e.to_string())?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .map(str::to_string)
        .ok_or_else(|| format!("no running container of {stack}_app"))
}

fn exec(stack: &str, cmd: &[&str]) -> Result<String, String> {
    let id = app_container(stack)?;
    let out = Command::new("docker")
        .arg("exec")
        .arg(&id)
        .args(cmd)
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!(
            "{cmd:?} exited {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The data operations of one fixture recipe.
trait AppData {
    fn write(&self, stack: &str, marker: &str) -> Result<(), String>;
    fn has(&self, stack: &str, marker: &str) -> Result<bool, String>;
    fn wipe(&self, stack: &str) -> Result<(), String>;
}

/// static-site: marker files in the content volume, over the app's own HTTP (PUT/DELETE).
struct SiteData;

impl AppData for SiteData {
    fn write(&self, stack: &str, marker: &str) -> Result<(), String> {
        let url = format!("http://127.0.0.1/markers/{marker}.txt");
        let code = exec(
            stack,
            &[
                "curl",
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "-X",
                "PUT",
                "--data",
                marker,
                &url,
            ],
        )?;
        (code == "201" || code == "204")
            .then_some(())
            .ok_or(format!("PUT {url}: {code}"))
    }
    fn has(&self, stack: &str, marker: &str) -> Result<bool, String> {
        let url = format!("http://127.0.0.1/markers/{marker}.txt");
        let code = exec(
            stack,
            &["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", &url],
        )?;
        Ok(code == "200")
    }
    fn wipe(&self, stack: &str) -> Result<(), String> {
        for m in ["before-upgrade", "before-backup"] {
            let url = format!("http://127.0.0.1/markers/{m}.txt");
            exec(
                stack,
                &["curl", "-s", "-o", "/dev/null", "-X", "DELETE", &url],
            )?;
        }
        Ok(())
    }
}

/// webapp-pg: notes in PostgreSQL through the web app's API.
struct NotesData;

const PY_POST: &str = "import sys, urllib.request as u\nu.urlopen(u.Request('http://127.0.0.1:8000/notes', data=sys.argv[1].encode(), method='POST'))";
const PY_GET: &str =
    "import urllib.request as u\nprint(u.urlopen('http://127.0.0.1:8000/notes').read().decode())";
const PY_DELETE: &str = "import urllib.request as u\nu.urlopen(u.Request('http://127.0.0.1:8000/notes', method='DELETE'))";

impl AppData for NotesData {
    fn write(&self, stack: &str, marker: &str) -> Result<(), String> {
        exec(stack, &["python3", "-c", PY_POST, marker]).map(|_| ())
    }
    fn has(&self, stack: &str, marker: &str) -> Result<bool, String> {
        let notes: Vec<String> = serde_json::from_str(&exec(stack, &["python3", "-c", PY_GET])?)
            .map_err(|e| e.to_string())?;
        Ok(notes.iter().any(|n| n == marker))
    }
    fn wipe(&self, stack: &str) -> Result<(), String> {
        exec(stack, &["python3", "-c", PY_DELETE]).map(|_| ())
    }
}

fn data_for(recipe: &str) -> Option<Box<dyn AppData + Send>> {
    match recipe {
        r if r.starts_with("static-site") => Some(Box::new(SiteData)),
        r if r.starts_with("webapp-pg") => Some(Box::new(NotesData)),
        _ => None,
    }
}

fn data_tests(req: &TestRequest, report: &mut TestReport, log: &mut (dyn FnMut(&str) + Send)) {
    let Some(data) = data_for(&req.recipe) else {
        return;
    };
    let stack = req.stack.as_str();
    let mut check = |name: &str, outcome: Result<(), String>| {
        log(&format!("data: {name}: {outcome:?}"));
        report.record(name, outcome);
    };
    let present = |marker: &str| match data.has(stack, marker) {
        Ok(true) => Ok(()),
        Ok(false) => Err(format!("{marker} is missing")),
        Err(e) => Err(e),
    };
    match (req.stage, req.phase) {
        (StageKind::Upgrade, TestPhase::Pre) => check(
            "data::seed_before_upgrade",
            data.write(stack, "before-upgrade"),
        ),
        (StageKind::Upgrade, TestPhase::Post) => {
            check("data::kept_by_upgrade", present("before-upgrade"))
        }
        (StageKind::BackupRestore, TestPhase::Pre) => check(
            "data::seed_before_backup",
            data.write(stack, "before-backup"),
        ),
        (StageKind::BackupRestore, TestPhase::Mutate) => {
            let outcome = data
                .wipe(stack)
                .and_then(|()| match data.has(stack, "before-backup") {
                    Ok(false) => Ok(()),
                    Ok(true) => Err("the data survived the wipe".into()),
                    Err(e) => Err(e),
                });
            check("data::wiped_after_backup", outcome)
        }
        (StageKind::BackupRestore, TestPhase::Post) => {
            check("data::restored_marker", present("before-backup"));
            if req.previous_version.is_some() {
                check(
                    "data::restored_marker_from_before_upgrade",
                    present("before-upgrade"),
                );
            }
        }
        _ => {}
    }
}

impl TestExecutor for DataChecks {
    fn run<'a>(
        &'a self,
        docker: &'a bollard::Docker,
        request: &'a TestRequest,
        log: StepLog<'a>,
    ) -> BoxFuture<'a, Result<TestReport, ExecError>> {
        Box::pin(async move {
            let mut report = BuiltinChecks.check(docker, request, &mut *log).await?;
            let req = request.clone();
            let (lines, data) = tokio::task::spawn_blocking(move || {
                let mut lines = Vec::new();
                let mut report = TestReport::default();
                data_tests(&req, &mut report, &mut |l: &str| lines.push(l.to_string()));
                (lines, report)
            })
            .await
            .map_err(|e| ExecError {
                action: "data checks".into(),
                message: e.to_string(),
            })?;
            for l in lines {
                log(&l);
            }
            report.merge(data);
            Ok(report)
        })
    }
}

/// Steps of a finished run as `stage/step: ok (message)` lines, for assertion messages.
pub fn describe(run: &TestRun) -> String {
    serde_json::to_string_pretty(&run.status).unwrap()
}

/// Writes `files` (path → text transform) in a recipe checkout.
pub fn edit(dir: &Path, file: &str, f: impl FnOnce(String) -> String) {
    let path = dir.join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, f(text)).unwrap();
}
