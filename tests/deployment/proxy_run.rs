//! A full TestRun in proxy mode on the real swarm: the controller (every reconciler) with a
//! stand-in proxy declared; runs wait, visibly, while the proxy is not Ready, then run with the
//! built-in checks going through the proxy by domain over TLS, and the status says `Proxy`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cc_ci::api::{
    Object, ProxyDeploymentSpec, RecipeSpec, RoutingMode, RunPhase, RunSource, StageKind, TestRun,
    TestRunSpec,
};
use cc_ci::controllers::{self, DockerAccess, RunSettings, SwarmDeps};
use cc_ci::executor::builtin::BuiltinChecks;
use cc_ci::metrics::Metrics;
use cc_ci::runlog::RunLogs;
use cc_ci::runtime::RuntimeSettings;
use cc_ci::store::{SledStore, Store};
use tokio_util::sync::CancellationToken;

use super::harness::{standin_proxy, sweep, test_ca, wildcard_cert};
use crate::fixture_repo::FixtureRepo;

const INSTANCE: &str = "test-deploy-f";

async fn wait_run(
    store: &SledStore,
    name: &str,
    what: &str,
    pred: impl Fn(&TestRun) -> bool,
) -> TestRun {
    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        let run = store.get::<TestRunSpec>(name).unwrap().unwrap();
        if pred(&run) {
            return run;
        }
        assert!(
            Instant::now() < deadline,
            "run {name}: not {what}: {}",
            serde_json::to_string_pretty(&run.status).unwrap()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn run_spec() -> TestRunSpec {
    TestRunSpec {
        recipe: "static-site".into(),
        git: None,
        git_ref: "1.1.0+1.1".into(),
        pr: None,
        source: RunSource {
            requester: Some("test".into()),
            ..Default::default()
        },
        stages: Some(vec![StageKind::Install]),
        upgrade_from: None,
        cancel: false,
        keep_on_failure: None,
    }
}

fn run_log(state: &std::path::Path, run: &str) -> String {
    let dir = state.join("runs").join(run).join("logs");
    let mut out = String::new();
    for e in std::fs::read_dir(dir).into_iter().flatten() {
        out.push_str(&std::fs::read_to_string(e.unwrap().path()).unwrap_or_default());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_wait_for_the_proxy_then_reach_their_app_through_it_and_say_proxy() {
    let base = "deploy-f.test";
    sweep("cc-ci.deployment=proxy-standin-f").await;
    sweep(&format!("cc-ci.instance={INSTANCE}")).await;
    let tmp = tempfile::tempdir().unwrap();
    let proxy_repo = FixtureRepo::build("proxy-standin", &tmp.path().join("proxy"));
    let site_repo = FixtureRepo::build("static-site", &tmp.path().join("site"));
    test_ca(tmp.path());
    let (cert, key) = wildcard_cert(tmp.path(), base, "wildcard");

    let store = SledStore::open(&tmp.path().join("store")).unwrap();
    let state = tmp.path().join("state");
    let shutdown = CancellationToken::new();
    let (ready_tx, mut ready_rx) = tokio::sync::watch::channel(false);
    let runs = RunSettings {
        instance: INSTANCE.into(),
        base_domain: base.into(),
        force_dnsrr: true,
        // The built-in checks' helper: bash for the direct check, curl and getent for the proxied.
        helper_image: "ccci-fixture/proxy:latest".into(),
        converge_timeout_seconds: 120,
        ..RunSettings::default()
    };
    let runtime = RuntimeSettings {
        backoff_initial_seconds: 1,
        backoff_max_seconds: 2,
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
            docker: DockerAccess::Connected(cc_ci::swarm::docker::connect().await.unwrap()),
            logs: RunLogs::new(&state),
            runs,
            executor: Arc::new(BuiltinChecks),
        }),
    ));
    ready_rx.wait_for(|r| *r).await.unwrap();

    let recipe: RecipeSpec =
        serde_json::from_value(serde_json::json!({ "git": site_repo.url() })).unwrap();
    store
        .create(Object::new("static-site", recipe))
        .await
        .unwrap();
    let proxy = standin_proxy(&proxy_repo, base, 18447, 18084, &cert, &key);
    store.create(Object::new("standin-f", proxy)).await.unwrap();
    store
        .create(Object::new("proxied-1", run_spec()))
        .await
        .unwrap();

    // The proxy takes a few seconds to be Ready: the run waits, and says so.
    let waiting = wait_run(&store, "proxied-1", "waiting for the proxy", |r| {
        r.status
            .message
            .contains("waiting for ProxyDeployment standin-f")
    })
    .await;
    assert_eq!(waiting.status.phase, RunPhase::Pending);
    let run = wait_run(&store, "proxied-1", "done", |r| {
        r.status.phase.is_terminal() && r.status.torn_down
    })
    .await;
    let log = run_log(&state, "proxied-1");
    assert_eq!(
        run.status.phase,
        RunPhase::Succeeded,
        "{}\n{log}",
        serde_json::to_string_pretty(&run.status).unwrap()
    );
    assert_eq!(
        run.status.app.as_ref().unwrap().routing,
        Some(RoutingMode::Proxy)
    );
    assert!(
        log.contains("waiting for ProxyDeployment standin-f"),
        "{log}"
    );
    assert!(log.contains("through ProxyDeployment standin-f"), "{log}");
    assert!(log.contains("answered 200 through the proxy"), "{log}");

    // The proxy breaks (a version that does not exist): the next run waits until it is back.
    let mut p = store
        .get::<ProxyDeploymentSpec>("standin-f")
        .unwrap()
        .unwrap();
    p.spec.version = "9.9.9+missing".into();
    store.replace(p).await.unwrap();
    store
        .create(Object::new("proxied-2", run_spec()))
        .await
        .unwrap();
    let waiting = wait_run(&store, "proxied-2", "waiting for the failed proxy", |r| {
        r.status
            .message
            .contains("waiting for ProxyDeployment standin-f")
            && r.status.message.contains("Failed")
    })
    .await;
    assert_eq!(waiting.status.phase, RunPhase::Pending);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        store
            .get::<TestRunSpec>("proxied-2")
            .unwrap()
            .unwrap()
            .status
            .phase,
        RunPhase::Pending
    );
    let mut p = store
        .get::<ProxyDeploymentSpec>("standin-f")
        .unwrap()
        .unwrap();
    p.spec.version = "1.0.0+0.1".into();
    store.replace(p).await.unwrap();
    let run = wait_run(&store, "proxied-2", "done", |r| {
        r.status.phase.is_terminal() && r.status.torn_down
    })
    .await;
    assert_eq!(
        run.status.phase,
        RunPhase::Succeeded,
        "{}",
        run_log(&state, "proxied-2")
    );
    assert_eq!(
        run.status.app.as_ref().unwrap().routing,
        Some(RoutingMode::Proxy)
    );

    store
        .delete::<ProxyDeploymentSpec>("standin-f")
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(90);
    while store
        .get::<ProxyDeploymentSpec>("standin-f")
        .unwrap()
        .is_some()
    {
        assert!(
            Instant::now() < deadline,
            "the proxy record was never removed"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    shutdown.cancel();
    handle.await.unwrap().unwrap();
    sweep(&format!("cc-ci.instance={INSTANCE}")).await;
}
