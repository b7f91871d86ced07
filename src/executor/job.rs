//! [`JobExecutor`]: a test step as a Swarm `replicated-job` of the runner image (DESIGN.md
//! §7). The built-in HTTP checks run first; then the job runs pytest over the suite
//! (`recipes/<recipe>/` of cc-ci's repository) and the recipe repository's own `tests/`
//! against the live app. The job's output streams into the step's log (which the run's
//! redactor scrubs), its JUnit XML becomes the step's counts and failing tests, and its
//! results directory is kept as the step's artifacts.
//!
//! The job gets no Docker socket, no infra secrets and no API token — recipe test code from a
//! pull request is untrusted: its environment is the harness' `CCCI_*` contract alone, its
//! mounts are the suite and the recipe's tests (read-only) and its results directory, its
//! secrets are the app's own, and it runs as an unprivileged user with every capability
//! dropped, under CPU, memory and time limits.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use bollard::Docker;
use bollard::models::TaskState;
use bollard::query_parameters::{ListTasksOptions, LogsOptions};
use futures::StreamExt;
use futures::future::BoxFuture;
use futures::stream::BoxStream;

use super::artifacts;
use super::builtin::{BuiltinChecks, exec_err};
use super::job_lookup as lookup;
use super::job_spec::{self, JOB_LABEL, JobPlan};
use super::job_verdict::{judge, overheads};
use super::settings::TestSettings;
use super::{Broken, ExecError, StepLog, TestExecutor, TestReport, TestRequest};
use crate::swarm::remove::{RemoveOptions, remove_by_label};

/// How often the job's task is looked at.
const POLL: Duration = Duration::from_millis(100);

/// How long the log stream may lag behind the task's end.
const LOG_DRAIN: Duration = Duration::from_secs(5);

/// Log lines kept to explain a job that ended without results.
const TAIL_LINES: usize = 20;

/// Runs test steps as Swarm jobs (see the module docs).
#[derive(Clone, Debug, Default)]
pub struct JobExecutor {
    /// The `[tests]` settings.
    pub settings: TestSettings,
}

/// How the job's task ended.
#[derive(Debug)]
enum Ended {
    /// The container exited with this code.
    Exited(i64),
    /// Over the time limit: killed.
    TimedOut,
}

impl JobExecutor {
    /// An executor with `settings`.
    pub fn new(settings: TestSettings) -> JobExecutor {
        JobExecutor { settings }
    }

    /// The built-in checks, then the suite's job.
    pub async fn execute(
        &self,
        docker: &Docker,
        request: &TestRequest,
        log: StepLog<'_>,
    ) -> Result<TestReport, ExecError> {
        let app = lookup::AppServices::lookup(docker, &request.stack).await?;
        let mut report = BuiltinChecks
            .check_targets(docker, request, &app.targets, log)
            .await?;
        if !self.settings.jobs {
            return Ok(report);
        }
        let Some(run_dir) = request.run_dir.clone() else {
            return Ok(report);
        };
        let suite = job_spec::suite_dir(
            &self.settings.suites_root,
            request.suite_path.as_deref(),
            &request.recipe,
        )
        .map_err(|message| ExecError {
            action: "finding the suite".into(),
            message,
        })?;
        let suite = suite.is_dir().then_some(suite);
        let recipe_tests = match request.checkout.as_deref().map(recipe_tests_dir) {
            Some(Ok(t)) => t,
            Some(Err(why)) => {
                log(&format!("tests: the recipe's tests/ are not used: {why}"));
                None
            }
            None => None,
        };
        if suite.is_none() && recipe_tests.is_none() {
            log(&format!(
                "tests: no suite at {}/{} and no tests/ in the recipe: the built-in check alone",
                self.settings.suites_root.display(),
                request
                    .suite_path
                    .clone()
                    .unwrap_or_else(|| format!("recipes/{}", request.recipe))
            ));
            return Ok(report);
        }
        let (app_url, proxy) = match &request.proxy {
            Some(route) => {
                let mut proxy = job_spec::JobProxy::of(route);
                proxy.ip = lookup::proxy_ip(docker, &route.service, &self.settings.network).await;
                log(&format!(
                    "tests: proxy mode: {} through ProxyDeployment {} ({}), TLS verified against {}",
                    job_spec::proxied_app_url(&request.domain),
                    route.proxy,
                    proxy.addr,
                    route.cert_file.as_deref().unwrap_or("the system's CAs")
                ));
                match &proxy.ip {
                    Some(ip) => log(&format!(
                        "tests: the job's /etc/hosts maps {} to the proxy's task {ip}",
                        request.domain
                    )),
                    None => log(&format!(
                        "tests: the proxy's task address is not known here: only the harness' http and page fixtures reach {} through it",
                        request.domain
                    )),
                }
                (job_spec::proxied_app_url(&request.domain), Some(proxy))
            }
            None => {
                let Some(url) = job_spec::app_url(&app.targets, &request.stack) else {
                    log("tests: the app has no proxy-facing service: the suite cannot reach it");
                    return Ok(report);
                };
                (url, None)
            }
        };
        let stage = request.stage.as_str();
        let phase = request.phase.as_str();
        let results = run_dir.join("results").join(stage).join(phase);
        fresh_dir(&results).map_err(|e| ExecError {
            action: format!("preparing {}", results.display()),
            message: e.to_string(),
        })?;
        let plan = JobPlan {
            name: job_spec::job_name(request),
            app_url,
            proxy,
            suite,
            recipe_tests,
            results: results.clone(),
            secrets: app.secrets,
            node_id: docker
                .info()
                .await
                .ok()
                .and_then(|i| i.swarm?.node_id)
                .filter(|n| !n.is_empty()),
        };
        let outcome = self.run_job(docker, request, &plan, log).await;
        // Copying and redacting up to 64 MiB per file is blocking work: off the async workers.
        let (kept, skipped) = {
            let (from, root) = (results.clone(), artifacts::root(&run_dir));
            let (prefix, redactor) = (
                artifacts::step_prefix(stage, phase),
                request.redactor.clone(),
            );
            tokio::task::spawn_blocking(move || {
                let mut skipped = Vec::new();
                let kept = artifacts::collect(&from, &root, &prefix, &redactor, &mut skipped);
                let _ = std::fs::remove_dir_all(&from);
                (kept, skipped)
            })
            .await
            .map_err(|e| ExecError {
                action: "keeping the step's artifacts".into(),
                message: e.to_string(),
            })?
        };
        for s in &skipped {
            log(&format!("tests: artifact not kept: {s}"));
        }
        let (ended, tail, created) = outcome?;
        let junit_path = run_dir
            .join("artifacts")
            .join(artifacts::step_prefix(stage, phase))
            .join("junit.xml");
        let mut suite_report = match ended {
            Ended::TimedOut => TestReport {
                broken: Some(Broken::TimedOut(format!(
                    "the test job ran over its limit of {} s and was killed",
                    self.settings.step_timeout_seconds
                ))),
                ..TestReport::default()
            },
            Ended::Exited(code) => judge(code, &junit_path, &tail, stage, phase, log),
        };
        if let Ok(kept) = kept {
            suite_report.artifacts = kept;
        }
        overheads(created, &junit_path, log);
        finish_job(docker, &job_spec::job_name(request)).await?;
        report.merge(suite_report);
        Ok(report)
    }

    /// Creates the job, streams its output, waits for its end (or kills it at the limit) and
    /// removes it. Returns how it ended, its last log lines and when it was created.
    async fn run_job(
        &self,
        docker: &Docker,
        request: &TestRequest,
        plan: &JobPlan,
        log: StepLog<'_>,
    ) -> Result<(Ended, VecDeque<String>, SystemTime), ExecError> {
        let label = format!("{JOB_LABEL}={}", plan.name);
        let remove_opts = RemoveOptions {
            volumes: false,
            timeout: Duration::from_secs(60),
        };
        // A retried step: whatever its last attempt left goes first.
        remove_by_label(docker, &label, &remove_opts)
            .await
            .map_err(|e| ExecError {
                action: "removing an earlier test job".into(),
                message: e.to_string(),
            })?;
        let spec = job_spec::service_spec(request, plan, &self.settings);
        let created = SystemTime::now();
        let started = Instant::now();
        docker
            .create_service(spec, None)
            .await
            .map_err(exec_err(format!("creating the test job {}", plan.name)))?;
        log(&format!(
            "tests: job {} ({}) for {}:{}",
            plan.name,
            self.settings.runner_image,
            request.stage.as_str(),
            request.phase.as_str()
        ));
        let watched = watch(
            docker,
            &plan.name,
            started + self.settings.step_timeout(),
            log,
        )
        .await;
        // A job over its limit (or one that could not be watched) is killed, and waited for
        // until its container is gone: nothing of it may keep running. A finished one is
        // removed after its results are read (`finish_job`).
        if !matches!(watched, Ok((Ended::Exited(_), _))) {
            let removed = remove_by_label(docker, &label, &remove_opts).await;
            let (ended, tail) = watched?;
            log(&format!(
                "tests: killed the job after {} s (its time limit)",
                self.settings.step_timeout_seconds
            ));
            removed.map_err(|e| ExecError {
                action: format!("removing the test job {}", plan.name),
                message: e.to_string(),
            })?;
            return Ok((ended, tail, created));
        }
        let (ended, tail) = watched?;
        Ok((ended, tail, created))
    }
}

impl TestExecutor for JobExecutor {
    fn run<'a>(
        &'a self,
        docker: &'a Docker,
        request: &'a TestRequest,
        log: StepLog<'a>,
    ) -> BoxFuture<'a, Result<TestReport, ExecError>> {
        Box::pin(self.execute(docker, request, log))
    }
}

/// Removes a finished job (after its results are read) and waits until its container is gone:
/// an exited container left behind would outlive the run.
async fn finish_job(docker: &Docker, service: &str) -> Result<(), ExecError> {
    let opts = RemoveOptions {
        volumes: false,
        timeout: Duration::from_secs(60),
    };
    remove_by_label(docker, &format!("{JOB_LABEL}={service}"), &opts)
        .await
        .map(|_| ())
        .map_err(|e| ExecError {
            action: format!("removing the test job {service}"),
            message: e.to_string(),
        })
}

/// The recipe's `tests/` in its checkout, when it is a real directory of the checkout (a
/// symlink could point the bind mount anywhere on the host).
pub fn recipe_tests_dir(checkout: &Path) -> Result<Option<PathBuf>, String> {
    let dir = checkout.join("tests");
    match std::fs::symlink_metadata(&dir) {
        Err(_) => Ok(None),
        Ok(m) if m.file_type().is_symlink() => Err("tests is a symlink".into()),
        Ok(m) if !m.is_dir() => Ok(None),
        Ok(_) => Ok(Some(dir)),
    }
}

fn fresh_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    match std::fs::remove_dir_all(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    std::fs::create_dir_all(dir)?;
    // The job runs as an unprivileged user of its own.
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o777))
}

type LogStream = BoxStream<'static, Result<bollard::container::LogOutput, bollard::errors::Error>>;

/// Follows the job until its task ends or `deadline` passes, streaming its output to `log`.
async fn watch(
    docker: &Docker,
    service: &str,
    deadline: Instant,
    log: StepLog<'_>,
) -> Result<(Ended, VecDeque<String>), ExecError> {
    let mut tail = VecDeque::new();
    let mut logs: Option<LogStream> = None;
    let mut partial = String::new();
    let mut ended: Option<(Ended, Instant)> = None;
    let mut container: Option<String> = None;
    let emit = |text: &str, tail: &mut VecDeque<String>, log: &mut dyn FnMut(&str)| {
        log(&format!("| {text}"));
        tail.push_back(text.to_string());
        if tail.len() > TAIL_LINES {
            tail.pop_front();
        }
    };
    loop {
        if let Some((_, at)) = &ended
            && (logs.is_none() || at.elapsed() > LOG_DRAIN)
        {
            break;
        }
        tokio::select! {
            chunk = async { logs.as_mut().expect("guarded").next().await }, if logs.is_some() => {
                match chunk {
                    Some(Ok(out)) => {
                        partial.push_str(&String::from_utf8_lossy(&out.into_bytes()));
                        while let Some(i) = partial.find('\n') {
                            let line: String = partial.drain(..=i).collect();
                            emit(line.trim_end(), &mut tail, log);
                        }
                    }
                    _ => {
                        logs = None;
                        // The followed log ends when the container exits: its exit code is
                        // known now, well before Swarm reports the task complete.
                        if ended.is_none() && let Some(id) = &container {
                            ended = exited(docker, id).await.map(|code| (Ended::Exited(code), Instant::now()));
                        }
                    }
                }
            }
            () = tokio::time::sleep(POLL), if ended.is_none() => {
                if Instant::now() >= deadline {
                    ended = Some((Ended::TimedOut, Instant::now()));
                    logs = None;
                    continue;
                }
                let task = task_of(docker, service).await?;
                let Some(status) = task.and_then(|t| t.status) else { continue };
                if container.is_none() {
                    container = status.container_status.as_ref().and_then(|c| c.container_id.clone());
                }
                if logs.is_none() && let Some(id) = &container {
                    logs = Some(docker.logs(id, Some(LogsOptions {
                        follow: true, stdout: true, stderr: true, ..Default::default()
                    })).boxed());
                }
                match status.state {
                    Some(TaskState::COMPLETE | TaskState::FAILED) if container.is_some() => {
                        let code = status.container_status.and_then(|c| c.exit_code).unwrap_or(-1);
                        ended = Some((Ended::Exited(code), Instant::now()));
                    }
                    Some(TaskState::REJECTED | TaskState::FAILED | TaskState::ORPHANED | TaskState::SHUTDOWN) => {
                        return Err(ExecError {
                            action: format!("running the test job {service}"),
                            message: status.err.or(status.message).unwrap_or_else(|| "the task failed to start".into()),
                        });
                    }
                    _ => {}
                }
            }
        }
    }
    if !partial.trim().is_empty() {
        emit(partial.trim_end(), &mut tail, log);
    }
    Ok((ended.expect("the loop ends once the job ended").0, tail))
}

/// The exit code of container `id` once it has exited (`None` while it is created but not
/// started, runs, or cannot be inspected: the task's state decides then).
async fn exited(docker: &Docker, id: &str) -> Option<i64> {
    use bollard::models::ContainerStateStatusEnum::{DEAD, EXITED};
    let state = docker.inspect_container(id, None).await.ok()?.state?;
    match state.status {
        Some(EXITED | DEAD) => state.exit_code,
        _ => None,
    }
}

async fn task_of(
    docker: &Docker,
    service: &str,
) -> Result<Option<bollard::models::Task>, ExecError> {
    let filters = HashMap::from([("service".to_string(), vec![service.to_string()])]);
    let tasks = docker
        .list_tasks(Some(ListTasksOptions {
            filters: Some(filters),
        }))
        .await
        .map_err(exec_err(format!("watching the test job {service}")))?;
    Ok(tasks.into_iter().max_by_key(|t| t.created_at.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recipe_tests_symlink_is_refused_so_the_host_is_never_mounted() {
        let tmp = tempfile::tempdir().unwrap();
        let checkout = tmp.path().join("checkout");
        std::fs::create_dir_all(&checkout).unwrap();
        assert_eq!(recipe_tests_dir(&checkout).unwrap(), None);
        std::os::unix::fs::symlink("/", checkout.join("tests")).unwrap();
        assert!(recipe_tests_dir(&checkout).is_err());
        std::fs::remove_file(checkout.join("tests")).unwrap();
        std::fs::write(checkout.join("tests"), "a file").unwrap();
        assert_eq!(recipe_tests_dir(&checkout).unwrap(), None);
        std::fs::remove_file(checkout.join("tests")).unwrap();
        std::fs::create_dir(checkout.join("tests")).unwrap();
        assert_eq!(
            recipe_tests_dir(&checkout).unwrap(),
            Some(checkout.join("tests"))
        );
    }
}
