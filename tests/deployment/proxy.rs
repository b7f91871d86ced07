//! The stand-in proxy as a `ProxyDeployment`: Ready, routing by host over TLS, drift healed,
//! certificate rotated, removed alone; and the cost of an unchanged re-check.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cc_ci::api::{DeploymentPhase, Object, ProxyDeploymentSpec};
use cc_ci::controllers::deployment::{self, Context};
use cc_ci::store::{SledStore, Store};

use super::harness::{
    Deployments, STANDIN_V1, docker_cli, fingerprint, https_get, labelled, served_fingerprint,
    settings, standin_proxy, sweep, test_ca, wildcard_cert,
};
use crate::fixture_repo::FixtureRepo;

const V1: &str = STANDIN_V1;
const V2: &str = "1.1.0+0.2";

fn service_field(service: &str, format: &str) -> Option<String> {
    let out = std::process::Command::new("docker")
        .args(["service", "inspect", "-f", format, service])
        .output()
        .unwrap();
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Makes a hand change, then waits until the proxy is back in shape and Ready after a status
/// write made since the change; returns the time from the change to Ready again.
async fn heal(
    d: &Deployments,
    name: &str,
    service: &str,
    change: &[&str],
    back: impl Fn() -> bool,
) -> Duration {
    let before = d.proxy(name).unwrap().metadata.resource_version;
    let t = Instant::now();
    docker_cli(change);
    d.wait_proxy(name, Duration::from_secs(90), "healed", |p| {
        p.metadata.resource_version != before && p.status.phase == DeploymentPhase::Ready && back()
    })
    .await;
    let took = t.elapsed();
    eprintln!(
        "BENCH proxy drift {:?} on {service}: Ready again after {took:?}",
        change[1]
    );
    took
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_becomes_ready_routes_by_host_over_tls_and_undoes_hand_changes() {
    let (name, base, https, http) = ("standin-a", "deploy-a.test", 18443, 18080);
    let id = format!("cc-ci.deployment=proxy-{name}");
    sweep(&id).await;
    sweep("ccci-test=deploy-a").await;
    let tmp = tempfile::tempdir().unwrap();
    let repo = FixtureRepo::build("proxy-standin", &tmp.path().join("repo"));
    let ca = test_ca(tmp.path());
    let (cert, key) = wildcard_cert(tmp.path(), base, "wildcard");
    let other = tempfile::tempdir().unwrap();
    let other_ca = test_ca(other.path());

    let d = Deployments::start("test-deploy-a", Duration::from_secs(2)).await;
    let spec = standin_proxy(&repo, base, https, http, &cert, &key);
    d.store.create(Object::new(name, spec)).await.unwrap();
    let p = d.wait_ready(name, V1).await;
    assert_eq!((p.status.services_ready, p.status.services_total), (1, 1));
    let service = "proxy_deploy-a_test_app";
    // Its objects carry the deployment's label and never a run's.
    let objects = labelled(&id);
    assert!(
        objects.contains(&format!("service {service}")),
        "{objects:?}"
    );
    let secrets: Vec<_> = objects
        .iter()
        .filter(|o| o.starts_with("secret "))
        .collect();
    assert_eq!(secrets.len(), 2, "{objects:?}");
    assert!(
        secrets.iter().any(|s| s.contains("_ssl_cert_v1-")),
        "{secrets:?}"
    );
    let labels = service_field(service, "{{json .Spec.Labels}}").unwrap();
    assert!(
        !labels.contains("cc-ci.managed") && !labels.contains("cc-ci.run"),
        "{labels}"
    );

    // An app on the proxy network with Traefik labels is reached by its domain over TLS.
    docker_cli(&[
        "service",
        "create",
        "--detach",
        "--quiet",
        "--name",
        "deploy-a-web",
        "--label",
        "ccci-test=deploy-a",
        "--network",
        "proxy",
        "--endpoint-mode",
        "dnsrr",
        "--label",
        "traefik.enable=true",
        "--label",
        "traefik.http.routers.deploy-a-web.rule=Host(`web.deploy-a.test`)",
        "--label",
        "traefik.http.services.deploy-a-web.loadbalancer.server.port=80",
        "ccci-fixture/nginx:latest",
    ]);
    let deadline = Instant::now() + Duration::from_secs(60);
    let body = loop {
        if let Some((200, body)) = https_get("web.deploy-a.test", https, "/", &ca) {
            break body;
        }
        assert!(
            Instant::now() < deadline,
            "web.deploy-a.test never answered 200 through the proxy"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert!(!body.trim().is_empty());
    assert_eq!(
        served_fingerprint("web.deploy-a.test", https),
        fingerprint(&cert)
    );
    assert_eq!(
        https_get("nothing.deploy-a.test", https, "/", &ca).map(|r| r.0),
        Some(404),
        "an unknown host is not routed"
    );
    assert_eq!(
        https_get("web.deploy-a.test", https, "/", &other_ca),
        None,
        "TLS verification against another CA must fail"
    );

    // Hand changes are undone at the next re-check.
    let replicas =
        || service_field(service, "{{.Spec.Mode.Replicated.Replicas}}").as_deref() == Some("1");
    heal(
        &d,
        name,
        service,
        &["service", "scale", "--detach", &format!("{service}=0")],
        replicas,
    )
    .await;
    let image = || {
        service_field(service, "{{.Spec.TaskTemplate.ContainerSpec.Image}}")
            .is_some_and(|i| i.starts_with("ccci-fixture/proxy:1.0"))
    };
    heal(
        &d,
        name,
        service,
        &[
            "service",
            "update",
            "--detach",
            "--quiet",
            "--image",
            "ccci-fixture/nginx:latest",
            service,
        ],
        image,
    )
    .await;
    let exists = || service_field(service, "{{.ID}}").is_some();
    heal(&d, name, service, &["service", "rm", service], exists).await;
    assert_eq!(
        https_get("web.deploy-a.test", https, "/", &ca).map(|r| r.0),
        Some(200),
        "routing works again after the proxy was put back"
    );

    d.store.delete::<ProxyDeploymentSpec>(name).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(90);
    while d.proxy(name).is_some() {
        assert!(
            Instant::now() < deadline,
            "the proxy record was never removed"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    d.stop().await;
    sweep("ccci-test=deploy-a").await;
    assert_eq!(labelled(&id), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replaced_certificate_files_roll_out_a_new_secret_a_new_version_upgrades_and_deleting_removes_only_the_proxy()
 {
    let (name, base, https, http) = ("standin-b", "deploy-b.test", 18444, 18081);
    let id = format!("cc-ci.deployment=proxy-{name}");
    sweep(&id).await;
    sweep("ccci-test=deploy-b").await;
    let tmp = tempfile::tempdir().unwrap();
    let repo = FixtureRepo::build("proxy-standin", &tmp.path().join("repo"));
    test_ca(tmp.path());
    let (cert, key) = wildcard_cert(tmp.path(), base, "wildcard");
    let d = Deployments::start("test-deploy-b", Duration::from_secs(2)).await;
    let spec = standin_proxy(&repo, base, https, http, &cert, &key);
    d.store.create(Object::new(name, spec)).await.unwrap();
    d.wait_ready(name, V1).await;
    let secrets = |all: Vec<String>| -> Vec<String> {
        all.into_iter()
            .filter(|o| o.starts_with("secret "))
            .collect()
    };
    let old = secrets(labelled(&id));
    assert_eq!(old.len(), 2, "{old:?}");
    assert_eq!(
        served_fingerprint("proxy.deploy-b.test", https),
        fingerprint(&cert)
    );

    // Rotation: new files at the same paths.
    let (new_cert, new_key) = wildcard_cert(tmp.path(), base, "rotated");
    std::fs::copy(&new_key, &key).unwrap();
    std::fs::copy(&new_cert, &cert).unwrap();
    let want = fingerprint(&new_cert);
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let now = secrets(labelled(&id));
        let served = served_fingerprint("proxy.deploy-b.test", https);
        if served == want && now.len() == 2 && now.iter().all(|s| !old.contains(s)) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "rotation did not finish: secrets {now:?} (old {old:?}), served {served}, want {want}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let p = d.wait_ready(name, V1).await;
    assert!(p.status.message.contains("updated"), "{}", p.status.message);

    // A changed record is rolled out as an upgrade in place.
    let mut record = d.proxy(name).unwrap();
    record.spec.version = V2.into();
    d.store.replace(record).await.unwrap();
    let p = d.wait_ready(name, V2).await;
    assert_eq!((p.status.services_ready, p.status.services_total), (1, 1));
    let image = service_field(
        "proxy_deploy-b_test_app",
        "{{.Spec.TaskTemplate.ContainerSpec.Image}}",
    );
    assert!(
        image
            .as_deref()
            .is_some_and(|i| i.starts_with("ccci-fixture/proxy:1.1")),
        "{image:?}"
    );
    assert_eq!(
        served_fingerprint("proxy.deploy-b.test", https),
        want,
        "the rotated certificate stays"
    );

    // Something that is not the proxy's: a run's service, carrying run labels.
    docker_cli(&[
        "service",
        "create",
        "--detach",
        "--quiet",
        "--name",
        "deploy-b-run-app",
        "--label",
        "ccci-test=deploy-b",
        "--label",
        "cc-ci.managed=true",
        "--label",
        "cc-ci.run=deploy-b-run",
        "--network",
        "proxy",
        "--endpoint-mode",
        "dnsrr",
        "ccci-fixture/nginx:latest",
    ]);
    d.store.delete::<ProxyDeploymentSpec>(name).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(90);
    while d.proxy(name).is_some() {
        assert!(
            Instant::now() < deadline,
            "the proxy record was never removed"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        labelled(&id),
        Vec::<String>::new(),
        "every object of the proxy is gone"
    );
    assert_eq!(
        labelled("ccci-test=deploy-b"),
        vec!["service deploy-b-run-app".to_string()],
        "the run's service is untouched"
    );
    assert!(!docker_cli(&["network", "ls", "-q", "--filter", "name=^proxy$"]).is_empty());
    d.stop().await;
    sweep("ccci-test=deploy-b").await;
}

/// Calls the reconcile directly (no controller running) on the stored record.
async fn reconcile_once(ctx: &Arc<Context<SledStore>>, store: &SledStore, name: &str) -> Duration {
    let obj = Arc::new(store.get::<ProxyDeploymentSpec>(name).unwrap().unwrap());
    let t = Instant::now();
    deployment::reconcile::<ProxyDeploymentSpec, _>(obj, ctx.clone())
        .await
        .unwrap();
    t.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unchanged_proxy_recheck_updates_nothing() {
    let (name, base, https, http) = ("standin-c", "deploy-c.test", 18445, 18082);
    let id = format!("cc-ci.deployment=proxy-{name}");
    sweep(&id).await;
    let tmp = tempfile::tempdir().unwrap();
    let repo = FixtureRepo::build("proxy-standin", &tmp.path().join("repo"));
    test_ca(tmp.path());
    let (cert, key) = wildcard_cert(tmp.path(), base, "wildcard");
    let store = SledStore::open(&tmp.path().join("store")).unwrap();
    let docker = cc_ci::swarm::docker::connect().await.unwrap();
    let ctx = Arc::new(Context::new(
        store.clone(),
        docker,
        settings(
            "test-deploy-c",
            &tmp.path().join("state"),
            Duration::from_secs(30),
        ),
    ));
    let spec = standin_proxy(&repo, base, https, http, &cert, &key);
    store.create(Object::new(name, spec)).await.unwrap();
    reconcile_once(&ctx, &store, name).await; // adds the finalizer
    let first = reconcile_once(&ctx, &store, name).await; // prepares, deploys, converges
    let p = store.get::<ProxyDeploymentSpec>(name).unwrap().unwrap();
    assert_eq!(p.status.phase, DeploymentPhase::Ready, "{:?}", p.status);
    let service = "proxy_deploy-c_test_app";
    let index = || service_field(service, "{{.Version.Index}}").unwrap();
    let (index_before, rv_before) = (index(), p.metadata.resource_version.clone());
    let mut times: Vec<Duration> = Vec::new();
    for _ in 0..10 {
        times.push(reconcile_once(&ctx, &store, name).await);
    }
    assert_eq!(
        index(),
        index_before,
        "an unchanged re-check updated the service"
    );
    let p = store.get::<ProxyDeploymentSpec>(name).unwrap().unwrap();
    assert_eq!(
        p.metadata.resource_version, rv_before,
        "an unchanged re-check wrote the status"
    );
    times.sort();
    let median = times[times.len() / 2];
    eprintln!(
        "BENCH proxy unchanged re-check: first deploy {first:?}; re-check median {median:?}, min {:?}, max {:?} (n={})",
        times[0],
        times[times.len() - 1],
        times.len()
    );
    // The goal is 200 ms; a loaded test machine gets slack, the benchmark records the figure.
    assert!(
        median < Duration::from_secs(2),
        "re-check median {median:?}"
    );

    store.delete::<ProxyDeploymentSpec>(name).await.unwrap();
    reconcile_once(&ctx, &store, name).await; // the finalizer removes it
    assert!(store.get::<ProxyDeploymentSpec>(name).unwrap().is_none());
    assert_eq!(labelled(&id), Vec::<String>::new());
}
