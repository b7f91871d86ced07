//! The built-in check in proxy mode: the app answers `https://<domain>/` **through the proxy**,
//! asked from a helper container on the `proxy` network that resolves the domain to the proxy's
//! tasks (`tasks.<proxy service>`, like the test job's host-resolver rules) and verifies TLS
//! against the proxy's wildcard certificate. The helper image needs `bash`, `curl` and `getent`.

use super::builtin::run_helper;
use super::{ExecError, StepLog, TestReport, TestRequest};
use crate::api::RoutingMode;
use crate::controllers::deployment::route::ProxyRoute;

/// The helper's script: resolve the proxy's task address (retrying while DNS catches up), then
/// `curl` the app's domain pinned to it, TLS verified against `$CA_PEM` (or the system's CAs).
/// Prints the HTTP status code, or curl's error; exit 2: the proxy does not resolve.
const SCRIPT: &str = r#"
for i in $(seq 1 30); do
  addr=$(getent hosts "$PROXY_HOST" | awk 'NR==1 {print $1}')
  [ -n "$addr" ] && break
  sleep 0.5
done
[ -n "$addr" ] || { echo "cannot resolve $PROXY_HOST (is the proxy on the proxy network?)"; exit 2; }
ca=()
if [ -n "${CA_PEM:-}" ]; then printf '%s\n' "$CA_PEM" >/tmp/ca.pem; ca=(--cacert /tmp/ca.pem); fi
for i in $(seq 1 20); do
  code=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 15 "${ca[@]}" \
    --resolve "$APP_DOMAIN:443:$addr" "https://$APP_DOMAIN/" 2>/tmp/err) && { echo "HTTP $code"; exit 0; }
  rc=$?
  # TLS verification failures are final; connection trouble is retried.
  case $rc in 35|51|58|59|60|77|83|90|91) cat /tmp/err; exit 3;; esac
  sleep 0.5
done
cat /tmp/err
exit 4
"#;

/// Judges the proxy's answer: the app answers when the status is below 500 and not 404 (a
/// proxy answers 404 for a host it has no route for).
pub fn judge_proxied(line: &str) -> Result<u16, String> {
    let code = line
        .strip_prefix("HTTP ")
        .and_then(|c| c.trim().parse::<u16>().ok())
        .ok_or_else(|| format!("no HTTP answer: {line:?}"))?;
    match code {
        404 => Err("the proxy answered 404: it has no route for the app's domain".into()),
        c if c >= 500 || c == 0 => Err(format!("answered {c} through the proxy")),
        c => Ok(c),
    }
}

/// Checks that the app of `request` answers through the proxy of `route`, by its domain over
/// verified TLS, from a helper container of `image`. Reports routing [`RoutingMode::Proxy`].
pub async fn check_through_proxy(
    docker: &bollard::Docker,
    request: &TestRequest,
    route: &ProxyRoute,
    image: &str,
    log: StepLog<'_>,
) -> Result<TestReport, ExecError> {
    let ca = match &route.cert_file {
        Some(path) => Some(std::fs::read_to_string(path).map_err(|e| ExecError {
            action: format!("reading the proxy's certificate {path}"),
            message: e.to_string(),
        })?),
        None => None,
    };
    let name = format!("builtin::https[{}]", request.domain);
    log(&format!(
        "builtin: GET https://{}/ through ProxyDeployment {} (tasks.{}), TLS verified against {}",
        request.domain,
        route.proxy,
        route.service,
        route.cert_file.as_deref().unwrap_or("the system's CAs")
    ));
    let mut env = vec![
        format!("PROXY_HOST=tasks.{}", route.service),
        format!("APP_DOMAIN={}", request.domain),
    ];
    if let Some(pem) = ca {
        env.push(format!("CA_PEM={pem}"));
    }
    let (code, out) = run_helper(
        docker,
        request,
        image,
        SCRIPT,
        env,
        "the proxied check container",
    )
    .await?;
    let outcome = if code == 0 {
        judge_proxied(out.lines().last().unwrap_or_default()).map(|status| {
            log(&format!(
                "builtin: {} answered {status} through the proxy",
                request.domain
            ))
        })
    } else {
        Err(out.lines().last().unwrap_or("the check failed").to_string())
    };
    if let Err(why) = &outcome {
        log(&format!("builtin: {name} failed: {why}"));
    }
    let mut report = TestReport {
        routing: Some(RoutingMode::Proxy),
        ..TestReport::default()
    };
    report.record(&name, outcome);
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_proxy_404_means_no_route() {
        assert_eq!(judge_proxied("HTTP 200"), Ok(200));
        assert_eq!(judge_proxied("HTTP 302"), Ok(302));
        assert!(judge_proxied("HTTP 404").unwrap_err().contains("no route"));
        assert!(judge_proxied("HTTP 502").is_err());
        assert!(judge_proxied("HTTP 000").is_err());
        assert!(judge_proxied("curl: (6) nope").is_err());
    }
}
