//! The built-in checks every recipe gets: each proxy-facing service of the app (one carrying a
//! `traefik.http.services.<name>.loadbalancer.server.port` label) answers HTTP for the app's
//! domain, asked from a short-lived helper container on the `proxy` network — the way the
//! proxy reaches it. Addresses are `tasks.<service>` (task IPs), which also work on hosts
//! without IPVS.

use std::collections::HashMap;

use bollard::Docker;
use bollard::query_parameters::ListServicesOptions;
use futures::future::BoxFuture;

use super::{ExecError, StepLog, TestExecutor, TestReport, TestRequest};
use crate::api::RoutingMode;
use crate::swarm::docker::NAMESPACE_LABEL;
use crate::swarm::helper::{HelperSpec, run_once};

/// The overlay network the proxy and the apps' proxy-facing services share.
pub const PROXY_NETWORK: &str = "proxy";

/// The built-in checks (see the module docs).
#[derive(Clone, Copy, Debug, Default)]
pub struct BuiltinChecks;

/// A service the proxy would route to: its full name and port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProxyTarget {
    /// `<stack>_<service>`.
    pub service: String,
    /// The port from the traefik label.
    pub port: u16,
}

/// The proxy-facing services among `(service name, labels)`.
pub fn proxy_targets<'a>(
    services: impl IntoIterator<Item = (&'a str, &'a HashMap<String, String>)>,
) -> Vec<ProxyTarget> {
    let mut out = Vec::new();
    for (name, labels) in services {
        let port = labels.iter().find_map(|(k, v)| {
            let rest = k.strip_prefix("traefik.http.services.")?;
            rest.ends_with(".loadbalancer.server.port")
                .then(|| v.trim().parse::<u16>().ok())
                .flatten()
        });
        if let Some(port) = port {
            out.push(ProxyTarget {
                service: name.to_string(),
                port,
            });
        }
    }
    out.sort_by(|a, b| a.service.cmp(&b.service));
    out
}

/// The helper's script: connect (retrying while DNS catches up), send a GET for `/` with the
/// app's Host header, print the status line. Exit 2: no connection; 3: no answer.
const PROBE: &str = r#"
for i in $(seq 1 30); do
  if exec 3<>"/dev/tcp/$PROBE_HOST/$PROBE_PORT" 2>/dev/null; then
    printf 'GET / HTTP/1.1\r\nHost: %s\r\nUser-Agent: cc-ci-check\r\nConnection: close\r\n\r\n' "$PROBE_DOMAIN" >&3
    if IFS= read -r -t 20 line <&3; then printf '%s\n' "${line%$'\r'}"; exit 0; fi
    echo "connected to $PROBE_HOST:$PROBE_PORT but got no answer within 20 s"; exit 3
  fi
  sleep 0.5
done
echo "cannot connect to $PROBE_HOST:$PROBE_PORT (is the service on the $PROBE_NETWORK network?)"
exit 2
"#;

pub(crate) fn exec_err(
    action: impl Into<String>,
) -> impl FnOnce(bollard::errors::Error) -> ExecError {
    let action = action.into();
    move |e| ExecError {
        action,
        message: e.to_string(),
    }
}

/// Judges a status line: the app answers when it is HTTP with a status below 500.
pub fn judge(status_line: &str) -> Result<u16, String> {
    let mut parts = status_line.split_whitespace();
    let proto = parts.next().unwrap_or_default();
    let code = parts.next().and_then(|c| c.parse::<u16>().ok());
    match code {
        Some(code) if proto.starts_with("HTTP/") && code < 500 => Ok(code),
        Some(code) if proto.starts_with("HTTP/") => {
            Err(format!("answered {status_line:?} ({code})"))
        }
        _ => Err(format!("no HTTP answer: {status_line:?}")),
    }
}

async fn probe(
    docker: &Docker,
    request: &TestRequest,
    target: &ProxyTarget,
) -> Result<(i64, String), ExecError> {
    let host = format!("tasks.{}", target.service);
    let env = vec![
        format!("PROBE_HOST={host}"),
        format!("PROBE_PORT={}", target.port),
        format!("PROBE_DOMAIN={}", request.domain),
        format!("PROBE_NETWORK={PROXY_NETWORK}"),
    ];
    run_helper(
        docker,
        request,
        &request.helper_image,
        PROBE,
        env,
        &format!("the check container for {host}"),
    )
    .await
}

/// Runs `script` with `bash -c` in a short-lived helper container of `image` on the `proxy`
/// network, labelled like the step's objects (the one helper primitive,
/// [`crate::swarm::helper`]); returns its exit code and output. The container is removed
/// whatever happens.
pub(crate) async fn run_helper(
    docker: &Docker,
    request: &TestRequest,
    image: &str,
    script: &str,
    env: Vec<String>,
    what: &str,
) -> Result<(i64, String), ExecError> {
    let spec = HelperSpec {
        image: image.to_string(),
        cmd: vec!["bash".into(), "-c".into(), script.into()],
        env,
        labels: request.labels.clone(),
        network: Some(PROXY_NETWORK.into()),
        mounts: Vec::new(),
    };
    run_once(docker, spec, what).await.map_err(|e| ExecError {
        action: e.action,
        message: e.source.to_string(),
    })
}

/// The services of `stack` (by its namespace label).
pub async fn stack_services(
    docker: &Docker,
    stack: &str,
) -> Result<Vec<bollard::models::Service>, ExecError> {
    let filters = HashMap::from([(
        "label".to_string(),
        vec![format!("{NAMESPACE_LABEL}={stack}")],
    )]);
    let services = docker
        .list_services(Some(ListServicesOptions {
            filters: Some(filters),
            status: None,
        }))
        .await
        .map_err(exec_err(format!("listing the services of {stack}")))?;
    Ok(services)
}

/// The proxy-facing services among `services` (a stack's).
pub fn targets_of(services: &[bollard::models::Service]) -> Vec<ProxyTarget> {
    proxy_targets(services.iter().filter_map(|s| {
        let spec = s.spec.as_ref()?;
        Some((spec.name.as_deref()?, spec.labels.as_ref()?))
    }))
}

impl BuiltinChecks {
    /// Runs the HTTP check against every proxy-facing service of the app.
    pub async fn check(
        &self,
        docker: &Docker,
        request: &TestRequest,
        log: StepLog<'_>,
    ) -> Result<TestReport, ExecError> {
        let services = stack_services(docker, &request.stack).await?;
        self.check_targets(docker, request, &targets_of(&services), log)
            .await
    }

    /// Runs the HTTP check against `targets`, the app's proxy-facing services.
    pub async fn check_targets(
        &self,
        docker: &Docker,
        request: &TestRequest,
        targets: &[ProxyTarget],
        log: StepLog<'_>,
    ) -> Result<TestReport, ExecError> {
        let mut report = TestReport::default();
        if targets.is_empty() {
            log(
                "builtin: no service has a traefik loadbalancer port label; the HTTP check does not apply",
            );
            report.counts.skipped += 1;
            return Ok(report);
        }
        report.routing = Some(RoutingMode::Direct);
        for target in targets {
            let name = format!("builtin::http[{}]", target.service);
            log(&format!(
                "builtin: GET http://tasks.{}:{}/ (Host: {})",
                target.service, target.port, request.domain
            ));
            let (code, out) = probe(docker, request, target).await?;
            let outcome = if code == 0 {
                judge(out.lines().last().unwrap_or_default()).map(|status| {
                    log(&format!("builtin: {} answered {status}", target.service));
                })
            } else {
                Err(out.clone())
            };
            if let Err(why) = &outcome {
                log(&format!("builtin: {name} failed: {why}"));
            }
            report.record(&name, outcome);
        }
        report
            .origins
            .insert("builtin".into(), report.counts.clone());
        Ok(report)
    }
}

impl TestExecutor for BuiltinChecks {
    fn run<'a>(
        &'a self,
        docker: &'a Docker,
        request: &'a TestRequest,
        log: StepLog<'a>,
    ) -> BoxFuture<'a, Result<TestReport, ExecError>> {
        Box::pin(self.check(docker, request, log))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_proxy_facing_service_is_the_one_with_a_loadbalancer_port() {
        let web = HashMap::from([
            ("traefik.enable".to_string(), "true".to_string()),
            (
                "traefik.http.services.site_ci.loadbalancer.server.port".to_string(),
                "8080".to_string(),
            ),
        ]);
        let db = HashMap::from([("backupbot.backup".to_string(), "true".to_string())]);
        let bad = HashMap::from([(
            "traefik.http.services.x.loadbalancer.server.port".to_string(),
            "eighty".to_string(),
        )]);
        let targets = proxy_targets([("s_app", &web), ("s_db", &db), ("s_bad", &bad)]);
        assert_eq!(
            targets,
            [ProxyTarget {
                service: "s_app".into(),
                port: 8080
            }]
        );
    }

    #[test]
    fn an_answer_below_500_means_the_app_answers() {
        assert_eq!(judge("HTTP/1.1 200 OK"), Ok(200));
        assert_eq!(judge("HTTP/1.0 404 Not Found"), Ok(404));
        assert!(
            judge("HTTP/1.1 502 Bad Gateway")
                .unwrap_err()
                .contains("502")
        );
        assert!(judge("SSH-2.0-OpenSSH").is_err());
        assert!(judge("").is_err());
    }
}
