//! What each step of a run does on the engine: fetch the recipe, deploy a version, wait for
//! it to converge, run a test step, remove the app, back up, restore, tear everything down.
//!
//! Each function either finishes the step ([`StepResult`]: passed, or failed because of the
//! recipe) or returns a [`StepError`] (an infrastructure problem: the step is retried).
//! A failure's message says why, in words a recipe maintainer can act on; the driver writes
//! it to the stage's log and status.

use std::collections::BTreeMap;
use std::time::Duration;

use super::plan::StageFacts;
use super::workspace::WorkspaceError;
use crate::api::{AppInfo, StageKind, StagePhase, StepName, TestPhase, TestRunStatus};
use crate::controllers::deployment::route::Route;
use crate::executor::{StepLog, TestRequest};
use crate::recipe::app::{self, App, AppParams};
use crate::recipe::backup::{self, BackupPlan, ServiceBackup};
use crate::recipe::deploy::{self, DeployError, StackOptions};
use crate::recipe::secrets::SecretFile;
use crate::recipe::snapshot::{self, SnapshotError};
use crate::recipe::source::SourceError;
use crate::recipe::version::{head_version, previous_version};
use crate::swarm::compose;
use crate::swarm::converge::{self, ConvergeError, ConvergeOptions};
use crate::swarm::docker::EngineError;

pub use super::step_env::{Prepared, RunEnv, StepError, StepResult};

/// How long removing a run's objects may take.
pub const REMOVE_TIMEOUT: Duration = Duration::from_secs(180);

/// Is an engine error the recipe's fault (the engine refused what the recipe asks for)?
fn recipe_fault(e: &EngineError) -> bool {
    match e {
        EngineError::SecretChanged { .. }
        | EngineError::ConfigChanged { .. }
        | EngineError::SecretNotFound { .. }
        | EngineError::ConfigNotFound { .. }
        | EngineError::ExternalNetworkMissing { .. } => true,
        EngineError::Api { source, .. } => {
            crate::swarm::docker::status_code(source).is_some_and(|c| (400..500).contains(&c))
        }
        _ => false,
    }
}

/// Fetches the recipe at the run's ref and decides the app: commit, versions, domain, stack
/// (in [`StepResult::fetched`]); a failed result when the recipe itself is unusable.
pub async fn fetch(
    env: &RunEnv<'_>,
    attempt: u32,
    log: StepLog<'_>,
) -> Result<StepResult, StepError> {
    let spec = &env.run.spec;
    log(&format!(
        "fetching {} at {}",
        crate::recipe::source::redact_url(&env.url),
        spec.git_ref
    ));
    let head = match env.workspace.head(&env.url, &spec.git_ref, None).await {
        Ok(c) => c,
        Err(WorkspaceError::Source(
            e @ (SourceError::RefNotFound { .. } | SourceError::BadRef(_)),
        )) => {
            return Ok(StepResult::failed(e.to_string()));
        }
        Err(e) => return Err(e.into()),
    };
    let commit = head.head.clone();
    let version = head_version(&head.tags, &commit)
        .map(|v| v.tag().to_string())
        .unwrap_or_else(|| commit.chars().take(7).collect());
    let previous = match previous_version(&head.tags, &commit, spec.upgrade_from.as_deref()) {
        Ok(p) => p.map(|v| v.tag().to_string()),
        Err(e) => return Ok(StepResult::failed(e.to_string())),
    };
    let domain = app::run_domain(
        &spec.recipe,
        spec.pr,
        &commit,
        attempt,
        &env.settings.base_domain,
    );
    let params = AppParams {
        recipe: spec.recipe.clone(),
        version: version.clone(),
        domain: domain.clone(),
        stack: None,
        overrides: env.overrides.clone(),
    };
    let loaded = match app::load(&head.dir, &params) {
        Ok(a) => a,
        Err(e) => {
            return Ok(StepResult::failed(format!(
                "the recipe at {commit} cannot be configured: {e}"
            )));
        }
    };
    // What the checkout says about itself (README metadata, healthchecks), for the dashboard.
    crate::recipe::facts::record(&head.dir, &loaded.compose_files, env.workspace.dir());
    log(&format!(
        "commit {commit}, version {version}, previous version {}, domain {domain}, stack {}",
        previous.as_deref().unwrap_or("none"),
        loaded.stack
    ));
    Ok(StepResult {
        ok: true,
        message: format!("{version} at {commit}"),
        report: None,
        fetched: Some(Prepared {
            commit,
            app: AppInfo {
                stack: loaded.stack,
                domain,
                routing: None,
                version: Some(version),
                previous_version: previous,
            },
        }),
    })
}

fn app_info(status: &TestRunStatus) -> Result<(&AppInfo, &str), StepError> {
    match (&status.app, &status.commit) {
        (Some(a), Some(c)) => Ok((a, c)),
        _ => Err(StepError::NotFetched),
    }
}

/// The app at the head (`previous == false`) or the previous version, loaded from its checkout.
async fn load_app(
    env: &RunEnv<'_>,
    status: &TestRunStatus,
    previous: bool,
) -> Result<Result<(App, String), String>, StepError> {
    let (info, commit) = app_info(status)?;
    let head = env
        .workspace
        .head(&env.url, &env.run.spec.git_ref, Some(commit))
        .await?;
    let (dir, version) = if previous {
        let Some(tag) = info.previous_version.clone() else {
            return Ok(Err("the run has no previous version to deploy".into()));
        };
        (env.workspace.previous(&head, &tag).await?.dir, tag)
    } else {
        (head.dir, info.version.clone().unwrap_or_default())
    };
    let params = AppParams {
        recipe: env.run.spec.recipe.clone(),
        version: version.clone(),
        domain: info.domain.clone(),
        stack: Some(info.stack.clone()),
        overrides: env.overrides.clone(),
    };
    Ok(app::load(&dir, &params)
        .map(|a| (a, version))
        .map_err(|e| e.to_string()))
}

fn backup_plan(app: &App) -> Result<Option<Vec<ServiceBackup>>, String> {
    let loaded = compose::load(&app.dir, &app.compose_files, &app.env.to_map())
        .map_err(|e| e.to_string())?;
    match backup::plan(&backup::services_from_compose(&loaded.compose)) {
        Ok(BackupPlan::Services(s)) => Ok(Some(s)),
        Ok(BackupPlan::NotApplicable) => Ok(None),
        Err(e) => Err(e.to_string()),
    }
}

/// The backup plan of the head's compose: `None` without backupbot labels, `Err(why)` when
/// the head cannot be loaded or its labels are inconsistent.
async fn head_backup_plan(
    env: &RunEnv<'_>,
    status: &TestRunStatus,
) -> Result<Result<Option<Vec<ServiceBackup>>, String>, StepError> {
    Ok(match load_app(env, status, false).await? {
        Ok((app, _)) => backup_plan(&app),
        Err(why) => Err(why),
    })
}

/// What the plan of `stage` depends on. `Ok(Err(why))`: the head cannot be loaded.
pub async fn stage_facts(
    env: &RunEnv<'_>,
    status: &TestRunStatus,
    stage: StageKind,
) -> Result<Result<StageFacts, String>, StepError> {
    let (info, _) = app_info(status)?;
    let has_backup_labels = if stage == StageKind::BackupRestore {
        match head_backup_plan(env, status).await? {
            Ok(plan) => plan.is_some(),
            Err(why) => return Ok(Err(why)),
        }
    } else {
        false
    };
    let app_at_head = status
        .stages
        .iter()
        .any(|s| s.stage == StageKind::Upgrade && s.phase == StagePhase::Passed);
    Ok(Ok(StageFacts {
        previous_version: info.previous_version.clone(),
        has_backup_labels,
        app_at_head,
    }))
}

fn labels(env: &RunEnv<'_>) -> BTreeMap<String, String> {
    deploy::run_labels(&env.settings.instance, env.run.name())
}

async fn converge_step(
    env: &RunEnv<'_>,
    stack: &str,
    log: StepLog<'_>,
) -> Result<StepResult, StepError> {
    let opts = ConvergeOptions {
        timeout: env.converge_seconds.map(Duration::from_secs),
        default_timeout: env.settings.converge_timeout(),
        ..ConvergeOptions::default()
    };
    let started = std::time::Instant::now();
    match converge::wait(env.docker, stack, &opts, |line| log(line)).await {
        Ok(()) => Ok(StepResult::passed(format!(
            "converged in {:.1} s",
            started.elapsed().as_secs_f64()
        ))),
        Err(ConvergeError::Engine(e)) => Err(e.into()),
        Err(e) => Ok(StepResult::failed(e.to_string())),
    }
}

/// Runs `step` of `stage`.
pub async fn execute(
    env: &RunEnv<'_>,
    status: &TestRunStatus,
    stage: StageKind,
    step: StepName,
    log: StepLog<'_>,
) -> Result<StepResult, StepError> {
    let (info, _) = app_info(status)?;
    let stack = info.stack.clone();
    match step {
        StepName::Deploy { previous } => {
            let (app, version) = match load_app(env, status, previous).await? {
                Ok(a) => a,
                Err(why) => return Ok(StepResult::failed(why)),
            };
            log(&format!(
                "deploying {} {version} as stack {stack}",
                env.run.spec.recipe
            ));
            let mut secrets =
                SecretFile::open(&env.workspace.secrets_file()).map_err(StepError::Secrets)?;
            let generated = match secrets.ensure(&stack, &app.secrets, &env.redactor) {
                Ok(g) => g,
                Err(e) => return Ok(StepResult::failed(e.to_string())),
            };
            let opts = StackOptions {
                instance: &env.settings.instance,
                run: env.run.name(),
                recipe: &env.run.spec.recipe,
                version: &version,
                force_dnsrr: env.settings.force_dnsrr,
                allow: &env.allow,
            };
            let spec = match deploy::stack_spec(&app, &generated, &opts) {
                Ok(s) => s,
                Err(e) => return Ok(StepResult::failed(e.to_string())),
            };
            for w in &spec.warnings {
                log(&format!("warning: {w}"));
            }
            match deploy::deploy(env.docker, &spec).await {
                Ok(report) => Ok(StepResult::passed(format!(
                    "{version}: {} created, {} updated, {} unchanged",
                    report.created.len(),
                    report.updated.len(),
                    report.unchanged.len()
                ))),
                Err(DeployError::Engine(e)) if !recipe_fault(&e) => Err(e.into()),
                Err(e) => Ok(StepResult::failed(e.to_string())),
            }
        }
        StepName::Converge { .. } | StepName::Settle | StepName::ConvergeRestored => {
            converge_step(env, &stack, log).await
        }
        StepName::Test(phase) => {
            let request = TestRequest {
                run: env.run.name().to_string(),
                labels: labels(env),
                recipe: env.run.spec.recipe.clone(),
                stage,
                phase,
                stack: stack.clone(),
                domain: info.domain.clone(),
                version: current_version(stage, phase, info),
                previous_version: info.previous_version.clone(),
                helper_image: env.settings.helper_image.clone(),
                run_dir: Some(env.workspace.dir().to_path_buf()),
                checkout: Some(
                    env.workspace
                        .head(&env.url, &env.run.spec.git_ref, status.commit.as_deref())
                        .await?
                        .dir,
                ),
                suite_path: env.suite_path.clone(),
                redactor: env.redactor.clone(),
                proxy: match &env.route {
                    Route::Proxy(via) => Some(via.clone()),
                    Route::Direct | Route::Wait(_) => None,
                },
            };
            let mut report = env.executor.run(env.docker, &request, log).await?;
            match &env.route {
                Route::Direct => {}
                // The proxy went away mid-run: an infrastructure problem, retried.
                Route::Wait(why) => return Err(StepError::ProxyNotReady(why.clone())),
                Route::Proxy(via) => {
                    let proxied = crate::executor::proxied::check_through_proxy(
                        env.docker,
                        &request,
                        via,
                        &env.settings.helper_image,
                        log,
                    )
                    .await?;
                    report.merge(proxied);
                    report.routing = Some(crate::api::RoutingMode::Proxy);
                }
            }
            let c = &report.counts;
            let mut message = format!(
                "{} passed, {} failed, {} skipped",
                c.passed, c.failed, c.skipped
            );
            match &report.broken {
                Some(crate::executor::Broken::Collection(why)) => {
                    message = format!("the tests could not run: {why}");
                }
                Some(crate::executor::Broken::TimedOut(why)) => message = why.clone(),
                None => {
                    if let Some(first) = report.failing.first() {
                        message.push_str(&format!(": {first}"));
                    }
                }
            }
            Ok(StepResult {
                ok: report.passed(),
                message,
                report: Some(report),
                fetched: None,
            })
        }
        StepName::Remove => {
            let removed = deploy::teardown(
                env.docker,
                &env.settings.instance,
                env.run.name(),
                REMOVE_TIMEOUT,
            )
            .await?;
            Ok(StepResult::passed(format!(
                "removed {} services, {} volumes, {} secrets",
                removed.services.len(),
                removed.volumes.len(),
                removed.secrets.len()
            )))
        }
        StepName::Fetch | StepName::Teardown => Err(StepError::NotAStageStep(step)),
        StepName::Backup => {
            let plan = match head_backup_plan(env, status).await? {
                Ok(Some(p)) => p,
                Ok(None) => return Ok(StepResult::failed("the recipe has no backupbot labels")),
                Err(why) => return Ok(StepResult::failed(why)),
            };
            let dest = env.workspace.backup_dir();
            let _ = tokio::fs::remove_dir_all(&dest).await;
            match snapshot::backup(
                env.docker,
                &stack,
                &plan,
                &dest,
                &env.settings.helper_image,
                &labels(env),
                log,
            )
            .await
            {
                Ok(archives) => {
                    env.workspace.save_archives(&archives)?;
                    let bytes: u64 = archives.iter().map(|a| a.content_bytes).sum();
                    Ok(StepResult::passed(format!(
                        "{} archives, {bytes} bytes of files",
                        archives.len()
                    )))
                }
                Err(e) => snapshot_outcome(e),
            }
        }
        StepName::Restore => {
            let plan = match head_backup_plan(env, status).await? {
                Ok(Some(p)) => p,
                Ok(None) => return Ok(StepResult::failed("the recipe has no backupbot labels")),
                Err(why) => return Ok(StepResult::failed(why)),
            };
            let archives = env.workspace.archives()?;
            match snapshot::restore(
                env.docker,
                &stack,
                &plan,
                &archives,
                &env.settings.helper_image,
                &labels(env),
                log,
            )
            .await
            {
                Ok(()) => Ok(StepResult::passed(format!(
                    "restored {} archives",
                    archives.len()
                ))),
                Err(e) => snapshot_outcome(e),
            }
        }
    }
}

fn snapshot_outcome(e: SnapshotError) -> Result<StepResult, StepError> {
    match e {
        SnapshotError::Docker { .. } | SnapshotError::Io { .. } => Err(StepError::Snapshot(e)),
        other => Ok(StepResult::failed(other.to_string())),
    }
}

/// The version deployed when a test step runs: the previous one for the upgrade's `pre`.
fn current_version(stage: StageKind, phase: TestPhase, info: &AppInfo) -> String {
    if stage == StageKind::Upgrade && phase == TestPhase::Pre {
        info.previous_version.clone().unwrap_or_default()
    } else {
        info.version.clone().unwrap_or_default()
    }
}
