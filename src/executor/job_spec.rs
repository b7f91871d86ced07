//! The pure half of a test job: its name, environment, mounts, and the Swarm service spec
//! (a `replicated-job` of the runner image), decided from the request without I/O.

use std::collections::{BTreeMap, HashMap};
use std::path::{Component, Path, PathBuf};

use bollard::models::{
    Limit, Mount, MountType, NetworkAttachmentConfig, ServiceSpec, ServiceSpecMode,
    ServiceSpecModeReplicatedJob, TaskSpec, TaskSpecContainerSpec, TaskSpecContainerSpecSecrets,
    TaskSpecPlacement, TaskSpecResources, TaskSpecRestartPolicy,
    TaskSpecRestartPolicyConditionEnum,
};
use sha2::{Digest, Sha256};

use super::TestRequest;
use super::builtin::ProxyTarget;
use super::settings::TestSettings;

/// Label naming the test job an object belongs to (its service name).
pub const JOB_LABEL: &str = "cc-ci.test-job";

/// Where the job sees the suite, the recipe's tests and its results directory.
pub const SUITE_MOUNT: &str = "/suite";
/// See [`SUITE_MOUNT`].
pub const RECIPE_TESTS_MOUNT: &str = "/recipe-tests";
/// See [`SUITE_MOUNT`].
pub const RESULTS_MOUNT: &str = "/results";
/// Where the job sees the proxy's certificate (proxy mode), to verify TLS against.
pub const PROXY_CERT_MOUNT: &str = "/ccci/proxy-cert.pem";

/// How a job in proxy mode reaches the app: by its domain, through the proxy, over TLS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobProxy {
    /// `host:port` of the proxy's TLS entrypoint on the job's network (`CCCI_PROXY_ADDR`).
    pub addr: String,
    /// The proxy's certificate on the host (mounted read-only; never its key). `None`: the
    /// system's CAs.
    pub cert_file: Option<PathBuf>,
    /// The proxy task's address on the job's network, when known: the job's `/etc/hosts` then
    /// maps the app's domain to it, so any client in a test reaches the app through the proxy.
    pub ip: Option<String>,
}

impl JobProxy {
    /// The job's view of `route`: the proxy's tasks on port 443, and its certificate file.
    pub fn of(route: &crate::controllers::deployment::route::ProxyRoute) -> JobProxy {
        JobProxy {
            addr: format!("tasks.{}:443", route.service),
            cert_file: route.cert_file.as_ref().map(PathBuf::from),
            ip: None,
        }
    }
}

/// Everything a job needs besides the request.
#[derive(Clone, Debug)]
pub struct JobPlan {
    /// The service's name.
    pub name: String,
    /// `CCCI_APP_URL`.
    pub app_url: String,
    /// Set in proxy mode.
    pub proxy: Option<JobProxy>,
    /// The suite directory, if the recipe has one.
    pub suite: Option<PathBuf>,
    /// The recipe's own `tests/`, if any.
    pub recipe_tests: Option<PathBuf>,
    /// The results directory (read-write).
    pub results: PathBuf,
    /// The app's swarm secrets, mounted under the names the app sees.
    pub secrets: Vec<TaskSpecContainerSpecSecrets>,
    /// The node the job must run on (the controller's: bind mounts are local paths).
    pub node_id: Option<String>,
}

/// The job's service name: short, unique per run/stage/phase, the same on a retry.
pub fn job_name(request: &TestRequest) -> String {
    let digest = Sha256::digest(format!(
        "{}\0{}\0{}",
        request.run,
        request.stage.as_str(),
        request.phase.as_str()
    ));
    format!(
        "ccci-test-{}-{}",
        &hex::encode(digest)[..12],
        request.phase.as_str()
    )
}

/// `CCCI_APP_URL` in proxy mode: the app's own address, by its domain over TLS.
pub fn proxied_app_url(domain: &str) -> String {
    format!("https://{domain}")
}

/// `CCCI_APP_URL` in direct mode: the `app` service if it faces the proxy, else the first.
pub fn app_url(targets: &[ProxyTarget], stack: &str) -> Option<String> {
    let app = format!("{stack}_app");
    let target = targets
        .iter()
        .find(|t| t.service == app)
        .or(targets.first())?;
    Some(format!("http://tasks.{}:{}", target.service, target.port))
}

/// The suite directory of a recipe: `<root>/<suite_path>` (default `recipes/<recipe>`).
/// `Err` when the suite path is not a plain relative path.
pub fn suite_dir(root: &Path, suite_path: Option<&str>, recipe: &str) -> Result<PathBuf, String> {
    let rel = suite_path
        .map(str::to_string)
        .unwrap_or_else(|| format!("recipes/{recipe}"));
    let plain = !rel.is_empty()
        && Path::new(&rel)
            .components()
            .all(|c| matches!(c, Component::Normal(_)));
    if !plain {
        return Err(format!(
            "the suite path {rel:?} must be relative, without `..`"
        ));
    }
    Ok(root.join(rel))
}

/// The environment of the job: the harness' `CCCI_*` contract, nothing else of the controller.
pub fn env(request: &TestRequest, plan: &JobPlan) -> Vec<String> {
    let mut env = vec![
        format!("CCCI_APP_URL={}", plan.app_url),
        format!("CCCI_APP_DOMAIN={}", request.domain),
        format!("CCCI_STACK={}", request.stack),
        format!("CCCI_RECIPE={}", request.recipe),
        format!("CCCI_STAGE={}", request.stage.as_str()),
        format!("CCCI_PHASE={}", request.phase.as_str()),
        format!("CCCI_VERSION={}", request.version),
        format!(
            "CCCI_PREVIOUS_VERSION={}",
            request.previous_version.as_deref().unwrap_or("")
        ),
        format!("CCCI_RESULTS_DIR={RESULTS_MOUNT}"),
        format!("CCCI_SUITE_DIR={SUITE_MOUNT}"),
        format!("CCCI_RECIPE_TESTS_DIR={RECIPE_TESTS_MOUNT}"),
        "CCCI_SECRETS_DIR=/run/secrets".to_string(),
    ];
    if let Some(proxy) = &plan.proxy {
        env.push(format!("CCCI_PROXY_ADDR={}", proxy.addr));
        if proxy.cert_file.is_some() {
            env.push(format!("CCCI_CA_FILE={PROXY_CERT_MOUNT}"));
        }
    }
    env.sort();
    env
}

fn bind(source: &Path, target: &str, read_only: bool) -> Mount {
    Mount {
        target: Some(target.to_string()),
        source: Some(source.to_string_lossy().into_owned()),
        typ: Some(MountType::BIND),
        read_only: Some(read_only),
        ..Default::default()
    }
}

/// The Swarm service of the job.
pub fn service_spec(request: &TestRequest, plan: &JobPlan, settings: &TestSettings) -> ServiceSpec {
    let mut labels: HashMap<String, String> = request.labels.clone().into_iter().collect();
    labels.insert(JOB_LABEL.into(), plan.name.clone());
    labels.insert(
        "cc-ci.test-step".into(),
        format!("{}:{}", request.stage.as_str(), request.phase.as_str()),
    );
    let mut mounts = vec![bind(&plan.results, RESULTS_MOUNT, false)];
    if let Some(s) = &plan.suite {
        mounts.push(bind(s, SUITE_MOUNT, true));
    }
    if let Some(t) = &plan.recipe_tests {
        mounts.push(bind(t, RECIPE_TESTS_MOUNT, true));
    }
    if let Some(cert) = plan.proxy.as_ref().and_then(|p| p.cert_file.as_ref()) {
        mounts.push(bind(cert, PROXY_CERT_MOUNT, true));
    }
    ServiceSpec {
        name: Some(plan.name.clone()),
        labels: Some(labels.clone()),
        mode: Some(ServiceSpecMode {
            replicated_job: Some(ServiceSpecModeReplicatedJob {
                max_concurrent: Some(1),
                total_completions: Some(1),
            }),
            ..Default::default()
        }),
        task_template: Some(TaskSpec {
            container_spec: Some(TaskSpecContainerSpec {
                image: Some(settings.runner_image.clone()),
                command: Some(vec!["ccci-run".into()]),
                env: Some(env(request, plan)),
                labels: Some(labels),
                mounts: Some(mounts),
                secrets: Some(plan.secrets.clone()),
                hosts: plan
                    .proxy
                    .as_ref()
                    .and_then(|p| p.ip.as_ref())
                    .map(|ip| vec![format!("{ip} {}", request.domain)]),
                capability_drop: Some(vec!["ALL".into()]),
                ..Default::default()
            }),
            resources: Some(TaskSpecResources {
                limits: Some(Limit {
                    nano_cpus: Some((settings.cpus * 1e9) as i64),
                    memory_bytes: Some((settings.memory_mb * 1024 * 1024) as i64),
                    pids: None,
                }),
                ..Default::default()
            }),
            restart_policy: Some(TaskSpecRestartPolicy {
                condition: Some(TaskSpecRestartPolicyConditionEnum::NONE),
                ..Default::default()
            }),
            placement: plan.node_id.as_ref().map(|id| TaskSpecPlacement {
                constraints: Some(vec![format!("node.id=={id}")]),
                ..Default::default()
            }),
            networks: Some(vec![NetworkAttachmentConfig {
                target: Some(settings.network.clone()),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The app's secrets as the job mounts them: each swarm secret of the app's services once,
/// under the file name the app sees (later services cannot shadow an earlier target).
pub fn app_secrets(
    refs: impl IntoIterator<Item = TaskSpecContainerSpecSecrets>,
) -> Vec<TaskSpecContainerSpecSecrets> {
    let mut by_target: BTreeMap<String, TaskSpecContainerSpecSecrets> = BTreeMap::new();
    for r in refs {
        let Some(file) = r.file.as_ref().and_then(|f| f.name.clone()) else {
            continue;
        };
        // Only plain names: a target like `../x` or `/etc/x` is the app's business, not ours.
        if file.is_empty() || file.contains('/') || file.starts_with('.') {
            continue;
        }
        by_target
            .entry(file.clone())
            .or_insert(TaskSpecContainerSpecSecrets {
                file: Some(bollard::models::TaskSpecContainerSpecFile {
                    name: Some(file),
                    uid: Some("0".into()),
                    gid: Some("0".into()),
                    mode: Some(0o444),
                }),
                ..r
            });
    }
    by_target.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::StageKind;
    use crate::api::TestPhase;

    fn request() -> TestRequest {
        TestRequest {
            run: "webapp-pr1-abc".into(),
            labels: BTreeMap::from([("cc-ci.run".into(), "webapp-pr1-abc".into())]),
            recipe: "webapp-pg".into(),
            stage: StageKind::Upgrade,
            phase: TestPhase::Pre,
            stack: "w_ci_test".into(),
            domain: "w.ci.test".into(),
            version: "1.0.0+0.1".into(),
            previous_version: None,
            helper_image: "h".into(),
            run_dir: Some("/state/runs/x".into()),
            checkout: None,
            suite_path: None,
            redactor: Default::default(),
            proxy: None,
        }
    }

    fn plan() -> JobPlan {
        JobPlan {
            name: job_name(&request()),
            app_url: "http://tasks.w_ci_test_app:8000".into(),
            proxy: None,
            suite: Some("/repo/recipes/webapp-pg".into()),
            recipe_tests: None,
            results: "/state/runs/x/results/upgrade/pre".into(),
            secrets: vec![],
            node_id: Some("node1".into()),
        }
    }

    #[test]
    fn the_job_is_a_labelled_one_shot_job_without_docker_or_controller_settings() {
        let spec = service_spec(&request(), &plan(), &TestSettings::default());
        let mode = spec.mode.unwrap().replicated_job.unwrap();
        assert_eq!(mode.total_completions, Some(1));
        let task = spec.task_template.unwrap();
        assert_eq!(
            task.restart_policy.unwrap().condition,
            Some(TaskSpecRestartPolicyConditionEnum::NONE)
        );
        let c = task.container_spec.unwrap();
        assert_eq!(c.labels.unwrap()["cc-ci.run"], "webapp-pr1-abc");
        let mounts = c.mounts.unwrap();
        assert!(
            mounts
                .iter()
                .all(|m| !m.source.as_deref().unwrap().contains("docker.sock"))
        );
        let rw: Vec<_> = mounts
            .iter()
            .filter(|m| m.read_only == Some(false))
            .collect();
        assert_eq!(rw.len(), 1);
        assert_eq!(rw[0].target.as_deref(), Some(RESULTS_MOUNT));
        let env = c.env.unwrap();
        assert!(env.iter().all(|e| e.starts_with("CCCI_")), "{env:?}");
        assert!(env.contains(&"CCCI_PHASE=pre".to_string()));
        assert!(
            task.resources
                .unwrap()
                .limits
                .unwrap()
                .memory_bytes
                .unwrap()
                > 0
        );
        assert_eq!(
            task.placement.unwrap().constraints.unwrap(),
            ["node.id==node1"]
        );
    }

    #[test]
    fn in_proxy_mode_the_job_gets_the_proxy_address_and_its_certificate_but_never_the_key() {
        let route = crate::controllers::deployment::route::ProxyRoute {
            proxy: "traefik".into(),
            service: "proxy_ci_test_app".into(),
            cert_file: Some("/var/lib/cc-ci/tls/wildcard.crt".into()),
        };
        let mut plan = plan();
        plan.app_url = proxied_app_url("w.ci.test");
        plan.proxy = Some(JobProxy::of(&route));
        let spec = service_spec(&request(), &plan, &TestSettings::default());
        let c = spec.task_template.unwrap().container_spec.unwrap();
        let env = c.env.unwrap();
        for want in [
            "CCCI_APP_URL=https://w.ci.test",
            "CCCI_PROXY_ADDR=tasks.proxy_ci_test_app:443",
            "CCCI_CA_FILE=/ccci/proxy-cert.pem",
        ] {
            assert!(env.contains(&want.to_string()), "{want} not in {env:?}");
        }
        let mounts = c.mounts.unwrap();
        let cert = mounts
            .iter()
            .find(|m| m.target.as_deref() == Some(PROXY_CERT_MOUNT))
            .expect("the certificate is mounted");
        assert_eq!(
            cert.source.as_deref(),
            Some("/var/lib/cc-ci/tls/wildcard.crt")
        );
        assert_eq!(cert.read_only, Some(true));
        assert_eq!(mounts.len(), 3, "{mounts:?}");
        assert_eq!(c.hosts, None, "no address known, no hosts entry");

        // With the proxy task's address, every client in the job resolves the domain to it.
        plan.proxy = Some(JobProxy {
            ip: Some("10.0.7.12".into()),
            ..JobProxy::of(&route)
        });
        let spec = service_spec(&request(), &plan, &TestSettings::default());
        let c = spec.task_template.unwrap().container_spec.unwrap();
        assert_eq!(c.hosts.unwrap(), ["10.0.7.12 w.ci.test"]);

        // Without a certificate file: the system's CAs, nothing mounted.
        plan.proxy = Some(JobProxy {
            cert_file: None,
            ..JobProxy::of(&route)
        });
        let spec = service_spec(&request(), &plan, &TestSettings::default());
        let c = spec.task_template.unwrap().container_spec.unwrap();
        assert!(!c.env.unwrap().iter().any(|e| e.starts_with("CCCI_CA_FILE")));
        assert_eq!(c.mounts.unwrap().len(), 2);
    }

    #[test]
    fn names_are_stable_per_step_and_short() {
        let a = job_name(&request());
        assert_eq!(a, job_name(&request()));
        let mut other = request();
        other.phase = TestPhase::Post;
        assert_ne!(a, job_name(&other));
        assert!(a.len() <= 63);
    }

    #[test]
    fn the_suite_path_cannot_leave_the_suites_root() {
        let root = Path::new("/repo");
        assert_eq!(
            suite_dir(root, None, "webapp-pg").unwrap(),
            Path::new("/repo/recipes/webapp-pg")
        );
        for bad in ["../etc", "/etc", "recipes/../../x", ""] {
            assert!(suite_dir(root, Some(bad), "r").is_err(), "{bad}");
        }
    }

    #[test]
    fn secrets_are_mounted_once_under_plain_names() {
        let s = |id: &str, target: &str| TaskSpecContainerSpecSecrets {
            file: Some(bollard::models::TaskSpecContainerSpecFile {
                name: Some(target.into()),
                ..Default::default()
            }),
            secret_id: Some(id.into()),
            secret_name: Some(format!("stack_{target}_v1")),
        };
        let out = app_secrets([
            s("1", "db_password"),
            s("2", "db_password"),
            s("3", "../escape"),
            s("4", "admin_password"),
        ]);
        let ids: Vec<_> = out.iter().map(|s| s.secret_id.clone().unwrap()).collect();
        assert_eq!(ids, ["4", "1"]);
    }

    #[test]
    fn the_app_url_prefers_the_app_service() {
        let t = |s: &str, p| ProxyTarget {
            service: s.into(),
            port: p,
        };
        let targets = [t("st_admin", 81), t("st_app", 8000)];
        assert_eq!(
            app_url(&targets, "st").as_deref(),
            Some("http://tasks.st_app:8000")
        );
        assert_eq!(app_url(&[], "st"), None);
    }
}
