//! Proxy mode as far as it is built: with the stand-in proxy Ready, the routing decision taken
//! from the records says `Proxy`, and the built-in check reaches an app by its domain through the
//! proxy with TLS verified against the wildcard certificate — and fails for an unrouted domain or
//! a certificate it was not given.

use std::collections::BTreeMap;
use std::time::Duration;

use cc_ci::api::TestPhase;
use cc_ci::api::{Object, ProxyDeploymentSpec, RoutingMode, StageKind};
use cc_ci::controllers::deployment::route::{Route, route};
use cc_ci::executor::TestRequest;
use cc_ci::executor::proxied::check_through_proxy;
use cc_ci::store::{LabelSelector, Store};

use super::harness::{Deployments, docker_cli, standin_proxy, sweep, test_ca, wildcard_cert};
use crate::fixture_repo::FixtureRepo;

fn request(domain: &str) -> TestRequest {
    TestRequest {
        run: "deploy-d-run".into(),
        labels: BTreeMap::from([("ccci-test".to_string(), "deploy-d".to_string())]),
        recipe: "web".into(),
        stage: StageKind::Install,
        phase: TestPhase::Check,
        stack: "deploy-d-web".into(),
        domain: domain.into(),
        version: "1".into(),
        previous_version: None,
        helper_image: "ccci/base:bookworm".into(),
        run_dir: None,
        checkout: None,
        suite_path: None,
        redactor: Default::default(),
        proxy: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_builtin_check_reaches_the_app_by_domain_through_a_ready_proxy_over_verified_tls() {
    let (name, base) = ("standin-d", "deploy-d.test");
    sweep(&format!("cc-ci.deployment=proxy-{name}")).await;
    sweep("ccci-test=deploy-d").await;
    let tmp = tempfile::tempdir().unwrap();
    let repo = FixtureRepo::build("proxy-standin", &tmp.path().join("repo"));
    test_ca(tmp.path());
    let (cert, key) = wildcard_cert(tmp.path(), base, "wildcard");
    let other = tempfile::tempdir().unwrap();
    test_ca(other.path());
    let (other_cert, _) = wildcard_cert(other.path(), base, "other");

    let d = Deployments::start("test-deploy-d", Duration::from_secs(2)).await;
    let all = || {
        d.store
            .list::<ProxyDeploymentSpec>(&LabelSelector::everything())
            .unwrap()
    };
    let spec = standin_proxy(&repo, base, 18446, 18083, &cert, &key);
    d.store.create(Object::new(name, spec)).await.unwrap();
    let Route::Wait(why) = route(&all()) else {
        panic!("a proxy that is not Ready yet must make runs wait")
    };
    assert!(why.contains(name), "{why}");
    d.wait_ready(name, "1.0.0+0.1").await;
    let Route::Proxy(via) = route(&all()) else {
        panic!("a Ready proxy routes runs")
    };
    assert_eq!(via.service, "proxy_deploy-d_test_app");

    docker_cli(&[
        "service",
        "create",
        "--detach",
        "--quiet",
        "--name",
        "deploy-d-web",
        "--label",
        "ccci-test=deploy-d",
        "--network",
        "proxy",
        "--endpoint-mode",
        "dnsrr",
        "--label",
        "traefik.enable=true",
        "--label",
        "traefik.http.routers.deploy-d-web.rule=Host(`web.deploy-d.test`)",
        "--label",
        "traefik.http.services.deploy-d-web.loadbalancer.server.port=80",
        "ccci-fixture/nginx:latest",
    ]);
    let docker = cc_ci::swarm::docker::connect().await.unwrap();
    let helper = "ccci-fixture/proxy:latest"; // bash, curl, getent
    let mut lines = Vec::new();
    let mut log = |l: &str| lines.push(l.to_string());
    let mut report = Default::default();
    for _ in 0..20 {
        report = check_through_proxy(
            &docker,
            &request("web.deploy-d.test"),
            &via,
            helper,
            &mut log,
        )
        .await
        .unwrap();
        if report.passed() {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    assert!(
        report.passed(),
        "{:?}\n{}",
        report.failing,
        lines.join("\n")
    );
    assert_eq!(report.counts.passed, 1);
    assert_eq!(report.routing, Some(RoutingMode::Proxy));

    // A hostile router rule must not reach the proxy's configuration: it is ignored, and
    // routing of the other apps keeps working.
    docker_cli(&[
        "service",
        "create",
        "--detach",
        "--quiet",
        "--name",
        "deploy-d-evil",
        "--label",
        "ccci-test=deploy-d",
        "--network",
        "proxy",
        "--endpoint-mode",
        "dnsrr",
        "--label",
        "traefik.enable=true",
        "--label",
        "traefik.http.routers.evil.rule=Host(`evil.deploy-d.test\"; } server { listen 80; location / { return 200; } #`)",
        "--label",
        "traefik.http.services.evil.loadbalancer.server.port=80",
        "ccci-fixture/nginx:latest",
    ]);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let still = check_through_proxy(
        &docker,
        &request("web.deploy-d.test"),
        &via,
        helper,
        &mut log,
    )
    .await
    .unwrap();
    assert!(still.passed(), "{:?}", still.failing);
    let evil = check_through_proxy(
        &docker,
        &request("evil.deploy-d.test"),
        &via,
        helper,
        &mut log,
    )
    .await
    .unwrap();
    assert!(!evil.passed(), "the hostile rule must not be routed");

    let unrouted = check_through_proxy(
        &docker,
        &request("nothing.deploy-d.test"),
        &via,
        helper,
        &mut log,
    )
    .await
    .unwrap();
    assert!(!unrouted.passed());
    assert!(
        unrouted.failing[0].contains("no route"),
        "{:?}",
        unrouted.failing
    );

    let mut wrong = via.clone();
    wrong.cert_file = Some(other_cert.display().to_string());
    let untrusted = check_through_proxy(
        &docker,
        &request("web.deploy-d.test"),
        &wrong,
        helper,
        &mut log,
    )
    .await
    .unwrap();
    assert!(
        !untrusted.passed(),
        "TLS must be verified against the given certificate"
    );

    d.store.delete::<ProxyDeploymentSpec>(name).await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    while d.proxy(name).is_some() {
        assert!(
            std::time::Instant::now() < deadline,
            "the proxy record was never removed"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    d.stop().await;
    sweep("ccci-test=deploy-d").await;
}
