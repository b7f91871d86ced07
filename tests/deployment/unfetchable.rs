//! A deployment whose version cannot be fetched: `Failed` at once, and left alone until the next
//! re-check — its own status writes must not wake its reconciler (that made a retry loop in
//! which the record spent nearly all its time `Progressing`, so runs rarely saw it `Failed`).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use cc_ci::api::{DeploymentPhase, Object, ProxyDeploymentSpec};
use cc_ci::store::Store;

use super::harness::Deployments;
use crate::fixture_repo::FixtureRepo;

/// Reconciles of the ProxyDeployment controller so far, whatever their result.
fn reconciles(d: &Deployments) -> u64 {
    ["success", "requeue", "error"]
        .iter()
        .map(|r| {
            d.metrics
                .reconcile_total
                .with_label_values(&["proxydeployment", r])
                .get()
        })
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_that_cannot_be_fetched_stays_failed_and_untouched_until_the_recheck() {
    let d = Deployments::start("test-deploy-u", Duration::from_secs(30)).await;
    let tmp = tempfile::tempdir().unwrap();
    let repo = FixtureRepo::build("proxy-standin", &tmp.path().join("proxy"));
    let spec = ProxyDeploymentSpec {
        git: repo.url(),
        version: "9.9.9+missing".into(),
        domain: "proxy.deploy-u.test".into(),
        env: BTreeMap::new(),
        wildcard_cert_file: None,
        wildcard_key_file: None,
        keep_volumes: false,
    };
    d.store.create(Object::new("broken", spec)).await.unwrap();
    let failed = d
        .wait_proxy("broken", Duration::from_secs(60), "Failed", |p| {
            p.status.phase == DeploymentPhase::Failed
        })
        .await;
    assert!(
        failed.status.message.contains("9.9.9+missing"),
        "{}",
        failed.status.message
    );

    // Well inside the 30 s re-check: no reconcile, no write, never `Progressing` again.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = reconciles(&d);
    let rv = d.proxy("broken").unwrap().metadata.resource_version;
    let until = Instant::now() + Duration::from_secs(4);
    let (mut samples, mut not_failed) = (0, 0);
    let mut seen = Vec::new();
    while Instant::now() < until {
        let p = d.proxy("broken").unwrap();
        samples += 1;
        if p.status.phase != DeploymentPhase::Failed {
            not_failed += 1;
            if seen.len() < 3 {
                seen.push(format!("{:?}: {}", p.status.phase, p.status.message));
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let after = reconciles(&d);
    let rv_after = d.proxy("broken").unwrap().metadata.resource_version;
    assert_eq!(
        (not_failed, after - before),
        (0, 0),
        "(samples not Failed of {samples}, reconciles in 4 s); not Failed: {seen:?}"
    );
    assert_eq!(rv_after, rv, "the failed deployment's record was rewritten");

    d.store
        .delete::<ProxyDeploymentSpec>("broken")
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while d.proxy("broken").is_some() {
        assert!(Instant::now() < deadline, "the record was never removed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    d.stop().await;
}
