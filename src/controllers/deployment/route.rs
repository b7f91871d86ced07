//! Which routing mode a test run gets, decided from the `ProxyDeployment` records (pure):
//! no proxy declared → `Direct` (development machines, CI); a proxy declared and Ready at its
//! current generation → through it, by domain, over TLS; declared but not Ready → the run waits,
//! with a message saying why (DESIGN.md §7, routing modes).

use crate::api::{DeploymentPhase, ProxyDeployment};
use crate::recipe::app::stack_name;

/// Where a run's tests reach its app through the proxy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProxyRoute {
    /// The proxy record's name.
    pub proxy: String,
    /// The proxy's swarm service (`<stack>_app`); tests resolve app domains to its tasks.
    pub service: String,
    /// The wildcard certificate file tests verify TLS against (`None`: the system's CAs).
    pub cert_file: Option<String>,
}

/// The routing decision for a run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    /// No proxy is declared: tests go straight to the app's proxy-facing service.
    Direct,
    /// A proxy is declared but not Ready: the run waits; the message says why.
    Wait(String),
    /// Through the Ready proxy.
    Proxy(ProxyRoute),
}

/// The route for runs given every `ProxyDeployment` (the first by name that is not being
/// deleted counts; a deployment being deleted is not waited for).
pub fn route(proxies: &[ProxyDeployment]) -> Route {
    let mut live: Vec<&ProxyDeployment> = proxies.iter().filter(|p| !p.is_deleting()).collect();
    live.sort_by(|a, b| a.name().cmp(b.name()));
    let Some(p) = live.first() else {
        return Route::Direct;
    };
    let current = p.status.observed_generation == p.metadata.generation;
    if p.status.phase == DeploymentPhase::Ready && current {
        return Route::Proxy(ProxyRoute {
            proxy: p.name().to_string(),
            service: format!("{}_app", stack_name(&p.spec.domain, std::iter::empty())),
            cert_file: p.spec.wildcard_cert_file.clone(),
        });
    }
    let why = if p.status.message.is_empty() {
        format!("{:?}", p.status.phase)
    } else {
        format!("{:?}: {}", p.status.phase, p.status.message)
    };
    let stale = if current {
        ""
    } else {
        " (its last change is not rolled out yet)"
    };
    Route::Wait(format!(
        "waiting for ProxyDeployment {} to be Ready{stale}: {why}",
        p.name()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{Object, ProxyDeploymentSpec};

    fn proxy(
        name: &str,
        phase: DeploymentPhase,
        generation: u64,
        observed: u64,
    ) -> ProxyDeployment {
        let mut p = Object::new(
            name,
            ProxyDeploymentSpec {
                git: "g".into(),
                version: "1".into(),
                domain: "traefik.ci.example.org".into(),
                env: Default::default(),
                wildcard_cert_file: Some("/run/secrets/cert".into()),
                wildcard_key_file: Some("/run/secrets/key".into()),
                keep_volumes: false,
            },
        );
        p.metadata.generation = generation;
        p.status.phase = phase;
        p.status.observed_generation = observed;
        p.status.message = "version 1: 0/1 services ready".into();
        p
    }

    #[test]
    fn without_a_proxy_runs_go_direct() {
        assert_eq!(route(&[]), Route::Direct);
    }

    #[test]
    fn a_ready_proxy_routes_through_its_service_with_its_certificate() {
        let r = route(&[proxy("traefik", DeploymentPhase::Ready, 2, 2)]);
        assert_eq!(
            r,
            Route::Proxy(ProxyRoute {
                proxy: "traefik".into(),
                service: "traefik_ci_example_org_app".into(),
                cert_file: Some("/run/secrets/cert".into()),
            })
        );
    }

    #[test]
    fn a_proxy_not_ready_or_not_rolled_out_makes_runs_wait_and_says_why() {
        let Route::Wait(why) = route(&[proxy("traefik", DeploymentPhase::Failed, 1, 1)]) else {
            panic!("must wait")
        };
        assert!(why.contains("traefik") && why.contains("Failed"), "{why}");
        let Route::Wait(why) = route(&[proxy("traefik", DeploymentPhase::Ready, 3, 2)]) else {
            panic!("a Ready status of an older generation must not count")
        };
        assert!(why.contains("not rolled out"), "{why}");
    }

    #[test]
    fn a_proxy_being_deleted_is_not_waited_for() {
        let mut p = proxy("traefik", DeploymentPhase::Ready, 1, 1);
        p.metadata.deletion_timestamp = Some(chrono::Utc::now());
        assert_eq!(route(&[p]), Route::Direct);
    }
}
