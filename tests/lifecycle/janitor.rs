//! The janitor against the real local swarm: real labelled services, helper containers, volumes,
//! secrets, configs and overlay networks of runs in every state, a real `SledStore` for the
//! records; exactly the right objects go, the others (and another instance's) stay.
//!
//! Every object also carries `cc-ci.test=janitor-<test>`, swept before and after each test so a
//! killed earlier run leaves nothing that matters.

use std::collections::BTreeSet;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cc_ci::api::{Object, RunPhase, RunSource, TestRunSpec};
use cc_ci::controllers::RunSettings;
use cc_ci::controllers::janitor::{self, ReapReason};
use cc_ci::metrics::Metrics;
use cc_ci::recipe::deploy::run_labels;
use cc_ci::store::{SledStore, Store};
use cc_ci::swarm::docker::connect;
use cc_ci::swarm::objects::ObjectKind;
use cc_ci::swarm::remove::{RemoveOptions, remove_by_label};
use tokio_util::sync::CancellationToken;

const IMAGE: &str = "ccci/base:bookworm";

use super::harness::docker_cli as docker;

fn docker_stdin(args: &[&str], input: &str) {
    use std::io::Write;
    let mut child = Command::new("docker")
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("docker runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success(), "docker {args:?}");
}

/// One test's objects: its label, instance and name prefix.
struct Sandbox {
    test_label: String,
    instance: String,
    prefix: String,
}

impl Sandbox {
    async fn new(test: &str) -> Sandbox {
        let test_label = format!("cc-ci.test=janitor-{test}");
        let d = connect()
            .await
            .expect("Docker reachable (run scripts/test-env)");
        sweep_test_label(&d, &test_label).await;
        let id = std::process::id();
        Sandbox {
            test_label,
            instance: format!("jan-{test}-{id}"),
            prefix: format!("jan{id}"),
        }
    }

    /// `--label k=v` arguments for an object of `run` (no run label with `None`) in `instance`.
    fn labels(&self, instance: &str, run: Option<&str>, flag: &str) -> Vec<String> {
        let mut labels = run_labels(instance, run.unwrap_or("x"));
        if run.is_none() {
            labels.remove("cc-ci.run");
        }
        let mut out = vec![flag.to_owned(), self.test_label.clone()];
        for (k, v) in labels {
            out.push(flag.to_owned());
            out.push(format!("{k}={v}"));
        }
        out
    }

    /// A full set for `run` in `instance`: an overlay network, a volume, a secret, a config, a
    /// service (running `sleep`, on the network, task containers labelled too) and a never
    /// started helper container mounting the volume. Returns the objects as `kind name`.
    fn full_set(&self, instance: &str, run: &str, tag: &str) -> Vec<String> {
        let n = |kind: &str| format!("{}-{tag}-{kind}", self.prefix);
        let l = |flag: &str| self.labels(instance, Some(run), flag);
        let args = |head: &[&str], labels: Vec<String>, tail: &[&str]| -> Vec<String> {
            head.iter()
                .map(|s| s.to_string())
                .chain(labels)
                .chain(tail.iter().map(|s| s.to_string()))
                .collect()
        };
        let run_cli = |a: Vec<String>| docker(&a.iter().map(String::as_str).collect::<Vec<_>>());
        run_cli(args(
            &["network", "create", "-d", "overlay", "--attachable"],
            l("--label"),
            &[&n("net")],
        ));
        run_cli(args(&["volume", "create"], l("--label"), &[&n("vol")]));
        let secret = args(&["secret", "create"], l("--label"), &[&n("sec"), "-"]);
        docker_stdin(
            &secret.iter().map(String::as_str).collect::<Vec<_>>(),
            "s3cret",
        );
        let config = args(&["config", "create"], l("--label"), &[&n("cfg"), "-"]);
        docker_stdin(
            &config.iter().map(String::as_str).collect::<Vec<_>>(),
            "cfg",
        );
        let mut service = args(
            &[
                "service",
                "create",
                "--detach",
                "--no-resolve-image",
                "--stop-grace-period",
                "1s",
                "--name",
                &n("svc"),
                "--network",
                &n("net"),
            ],
            l("--label"),
            &[],
        );
        service.extend(l("--container-label"));
        service.extend([IMAGE.to_owned(), "sleep".to_owned(), "3600".to_owned()]);
        run_cli(service);
        run_cli(args(
            &["create", "--name", &n("helper")],
            l("--label"),
            &["-v", &format!("{}:/data", n("vol")), IMAGE, "true"],
        ));
        ["net", "vol", "sec", "cfg", "svc", "helper"]
            .iter()
            .zip([
                "network",
                "volume",
                "secret",
                "config",
                "service",
                "container",
            ])
            .map(|(k, kind)| format!("{kind} {}", n(k)))
            .collect()
    }

    /// Every object carrying this test's label, as `kind name` (containers of services aside).
    fn left(&self) -> BTreeSet<String> {
        let filter = format!("label={}", self.test_label);
        let mut out = BTreeSet::new();
        for kind in ["service", "secret", "config", "network", "volume"] {
            let names = docker(&[kind, "ls", "--filter", &filter, "--format", "{{.Name}}"]);
            out.extend(names.lines().map(|n| format!("{kind} {n}")));
        }
        let containers = docker(&[
            "ps",
            "-a",
            "--filter",
            &filter,
            "--filter",
            "label=com.docker.swarm.service.id",
            "--format",
            "{{.Names}}",
        ]);
        let tasks: BTreeSet<&str> = containers.lines().collect();
        let all = docker(&["ps", "-a", "--filter", &filter, "--format", "{{.Names}}"]);
        out.extend(
            all.lines()
                .filter(|n| !tasks.contains(n))
                .map(|n| format!("container {n}")),
        );
        out
    }
}

async fn sweep_test_label(d: &bollard::Docker, label: &str) {
    let opts = RemoveOptions {
        volumes: true,
        timeout: Duration::from_secs(60),
    };
    remove_by_label(d, label, &opts)
        .await
        .expect("sweeping this test's objects");
}

fn record(name: &str) -> Object<TestRunSpec> {
    Object::new(
        name,
        TestRunSpec {
            recipe: "janitor-fixture".into(),
            git: None,
            git_ref: "0123456789abcdef0123456789abcdef01234567".into(),
            pr: None,
            source: RunSource::default(),
            stages: None,
            upgrade_from: None,
            cancel: false,
            keep_on_failure: None,
        },
    )
}

async fn put_run(store: &SledStore, name: &str, phase: RunPhase, torn_down: bool) {
    let mut r = store.create(record(name)).await.unwrap();
    r.status.phase = phase;
    r.status.torn_down = torn_down;
    store.replace_status(r).await.unwrap();
}

fn reaped_total(m: &Metrics, kind: ObjectKind) -> u64 {
    m.janitor_reaped_total
        .with_label_values(&[kind.as_str()])
        .get()
}

fn sweeps(m: &Metrics, result: &str) -> u64 {
    m.janitor_sweeps_total.with_label_values(&[result]).get()
}

fn set(items: impl IntoIterator<Item = String>) -> BTreeSet<String> {
    items.into_iter().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn janitor_reaps_gone_finished_and_expired_runs_and_nothing_else() {
    let sb = Sandbox::new("states").await;
    let d = connect().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open(&dir.path().join("store")).unwrap();
    let me = sb.instance.clone();
    let other = format!("{me}-other");
    let p = &sb.prefix;

    // (b) Running and (d) Succeeded-but-not-torn-down runs: their reconcilers own them.
    let run_b = format!("{p}-running");
    let run_d = format!("{p}-tearing");
    let run_c = format!("{p}-done");
    let run_a = format!("{p}-gone");
    put_run(&store, &run_b, RunPhase::Running, false).await;
    put_run(&store, &run_d, RunPhase::Succeeded, false).await;
    put_run(&store, &run_c, RunPhase::Succeeded, true).await;
    let set_a = sb.full_set(&me, &run_a, "a");
    let set_b = sb.full_set(&me, &run_b, "b");
    let set_c = sb.full_set(&me, &run_c, "c");
    let set_d = sb.full_set(&me, &run_d, "d");
    // Another instance's objects, for a run that has no record here, and expired: never touched.
    let set_other = sb.full_set(&other, &run_a, "o");
    // An object of ours without a run label.
    let orphan = format!("{p}-orphan-cfg");
    let mut args: Vec<String> = vec!["config".into(), "create".into()];
    args.extend(sb.labels(&me, None, "--label"));
    args.extend([orphan.clone(), "-".into()]);
    docker_stdin(&args.iter().map(String::as_str).collect::<Vec<_>>(), "x");
    let created = Instant::now();

    let settings = RunSettings {
        instance: me.clone(),
        ..RunSettings::default()
    };
    let metrics = Metrics::new();
    let result = janitor::sweep(&d, &store, &settings, chrono::Utc::now()).await;
    janitor::record(&metrics, &result);
    let report = result.expect("sweep runs");
    assert!(report.failed.is_empty(), "{:?}", report.failed);

    let expected_reaped = set(set_a
        .iter()
        .chain(&set_c)
        .cloned()
        .chain([format!("config {orphan}")]));
    let reaped = set(report
        .reaped
        .iter()
        .map(|r| format!("{} {}", r.kind, r.name)));
    assert_eq!(reaped, expected_reaped);
    for r in &report.reaped {
        let want = match r.run.as_deref() {
            None => ReapReason::NoRun,
            Some(run) if run == run_a => ReapReason::RunGone,
            Some(run) if run == run_c => ReapReason::RunFinished,
            Some(run) => panic!("reaped an object of run {run}: {r:?}"),
        };
        assert_eq!(r.reason, want, "{r:?}");
    }
    let kept = set(set_b.iter().chain(&set_d).chain(&set_other).cloned());
    assert_eq!(sb.left(), kept, "what is left after the first sweep");
    assert_eq!(report.kept, 12, "b and d: 6 objects each");
    for kind in ObjectKind::ALL {
        let want = if kind == ObjectKind::Config { 3 } else { 2 };
        assert_eq!(reaped_total(&metrics, kind), want, "{kind}");
    }
    assert_eq!((sweeps(&metrics, "ok"), sweeps(&metrics, "error")), (1, 0));

    // (e) With a 3 s TTL, b's and d's objects (now older) expire although their runs are live;
    // a fresh object of b does not, and the other instance's old objects stay.
    let ttl = 3;
    let old_enough = Duration::from_secs(ttl + 2);
    tokio::time::sleep(old_enough.saturating_sub(created.elapsed())).await;
    let fresh = format!("{p}-b-fresh-vol");
    let mut args: Vec<String> = vec!["volume".into(), "create".into()];
    args.extend(sb.labels(&me, Some(&run_b), "--label"));
    args.push(fresh.clone());
    docker(&args.iter().map(String::as_str).collect::<Vec<_>>());

    // This time through `start`, with no period: one sweep at start-up, then the task ends.
    let settings = RunSettings {
        instance: me.clone(),
        ttl_seconds: ttl,
        janitor_period_seconds: 0,
        ..RunSettings::default()
    };
    let metrics = Arc::new(metrics);
    let started = janitor::start(
        Some(d.clone()),
        store.clone(),
        metrics.clone(),
        settings,
        CancellationToken::new(),
    );
    assert!(
        started.ready.is_empty(),
        "the janitor never delays readiness"
    );
    for task in started.tasks {
        tokio::time::timeout(Duration::from_secs(120), task)
            .await
            .expect("the start-up sweep ends")
            .unwrap();
    }
    let kept = set(set_other.iter().cloned().chain([format!("volume {fresh}")]));
    assert_eq!(sb.left(), kept, "what is left after the TTL sweep");
    for kind in ObjectKind::ALL {
        let want = if kind == ObjectKind::Config { 5 } else { 4 };
        assert_eq!(reaped_total(&metrics, kind), want, "{kind}");
    }
    assert_eq!((sweeps(&metrics, "ok"), sweeps(&metrics, "error")), (2, 0));
    let text = metrics.encode();
    assert!(
        text.contains(r#"ccci_janitor_reaped_total{kind="network"} 4"#),
        "{text}"
    );
    assert!(!text.contains(p.as_str()), "no metric names a run: {text}");

    // Cleaning up by label also takes plain containers now.
    sweep_test_label(&d, &sb.test_label).await;
    assert_eq!(sb.left(), BTreeSet::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn janitor_started_periodically_sweeps_again_and_stops_on_shutdown() {
    let sb = Sandbox::new("periodic").await;
    let d = connect().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open(&dir.path().join("store")).unwrap();
    let settings = RunSettings {
        instance: sb.instance.clone(),
        janitor_period_seconds: 1,
        ..RunSettings::default()
    };
    let metrics = Arc::new(Metrics::new());
    let shutdown = CancellationToken::new();
    let started = janitor::start(
        Some(d.clone()),
        store.clone(),
        metrics.clone(),
        settings,
        shutdown.clone(),
    );
    // A run's leftovers appearing after start-up are caught by a later periodic sweep.
    let wait = |n: u64| {
        let metrics = metrics.clone();
        async move {
            let deadline = Instant::now() + Duration::from_secs(60);
            while sweeps(&metrics, "ok") < n {
                assert!(Instant::now() < deadline, "no sweep number {n}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    wait(1).await;
    let mut args: Vec<String> = vec!["volume".into(), "create".into()];
    let run = format!("{}-late", sb.prefix);
    args.extend(sb.labels(&sb.instance, Some(&run), "--label"));
    let vol = format!("{}-late-vol", sb.prefix);
    args.push(vol.clone());
    docker(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let seen = sweeps(&metrics, "ok");
    wait(seen + 1).await;
    assert_eq!(sb.left(), BTreeSet::new(), "the periodic sweep removed it");
    assert_eq!(reaped_total(&metrics, ObjectKind::Volume), 1);

    shutdown.cancel();
    for task in started.tasks {
        tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .expect("the janitor stops on shutdown")
            .unwrap();
    }
    sweep_test_label(&d, &sb.test_label).await;
}

#[tokio::test]
async fn janitor_sweep_without_a_reachable_docker_is_an_error_counted_in_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open(&dir.path().join("store")).unwrap();
    // A socket path that exists but where no daemon listens.
    let missing = dir.path().join("no-docker.sock");
    std::fs::write(&missing, "").unwrap();
    let d = bollard::Docker::connect_with_unix(
        missing.to_str().unwrap(),
        5,
        bollard::API_DEFAULT_VERSION,
    )
    .unwrap();
    let metrics = Metrics::new();
    let result = janitor::sweep(&d, &store, &RunSettings::default(), chrono::Utc::now()).await;
    janitor::record(&metrics, &result);
    let err = result.expect_err("no daemon there");
    assert!(
        matches!(
            err,
            janitor::SweepError::Docker(cc_ci::swarm::docker::EngineError::Connect { .. })
        ),
        "{err}"
    );
    assert_eq!((sweeps(&metrics, "ok"), sweeps(&metrics, "error")), (0, 1));
}
