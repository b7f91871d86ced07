//! The janitor: removes swarm objects of this instance that no live run owns (the run's record is
//! gone, or finished and torn down), or that outlived the TTL; at start-up and every period.
//!
//! # What it looks at
//! Only objects labelled `cc-ci.managed=true` **and** `cc-ci.instance=<[runs] instance>`: services,
//! plain containers (helpers; a service's task containers go with their service), volumes,
//! secrets, configs and networks. Another instance's objects are never touched.
//!
//! # What it removes
//! An object is reaped when
//! - it has no `cc-ci.run` label, or
//! - no TestRun of that name exists, or
//! - its TestRun is terminal **and** `status.tornDown` (a leftover teardown missed), or
//! - it was created longer than `ttl_seconds` ago, whatever its run says.
//!
//! A run that is Pending/Running, or terminal but not yet torn down (its reconciler is tearing it
//! down right now), is left alone unless its objects are older than the TTL.
//!
//! # Guarantees
//! - Swarm objects are listed **before** the store is read: a run created between the two reads
//!   is found in the store and its objects are kept. (Objects created after the listing are not
//!   seen by this sweep at all.)
//! - Removal follows [`crate::swarm::remove::remove_objects`]: services (and their containers,
//!   waited for), helper containers, then volumes, secrets, configs, networks. Objects already
//!   gone are fine; one that fails is reported and the rest still removed; the next sweep retries.
//! - Metrics are never labelled by run name: `ccci_janitor_reaped_total{kind}` and
//!   `ccci_janitor_sweeps_total{result}`.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use bollard::Docker;
use chrono::{DateTime, Utc};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::{RunSettings, Started};
use crate::api::TestRunSpec;
use crate::metrics::Metrics;
use crate::recipe::deploy::{INSTANCE_LABEL, MANAGED_LABEL, RUN_LABEL};
use crate::store::{LabelSelector, Store, StoreError};
use crate::swarm::docker::EngineError;
use crate::swarm::objects::{LabelledObject, ObjectKind, list_labelled};
use crate::swarm::remove::{RemoveFailure, RemoveOptions, remove_objects};

/// The janitor's name in logs and in [`Started`].
pub const NAME: &str = "janitor";

/// How long one sweep waits for containers to go and for volumes/networks to be free.
pub const REMOVE_TIMEOUT: Duration = Duration::from_secs(60);

/// Why an object is reaped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum ReapReason {
    /// It carries no `cc-ci.run` label.
    NoRun,
    /// No TestRun of its run's name exists.
    RunGone,
    /// Its TestRun is terminal and torn down.
    RunFinished,
    /// It is older than the TTL.
    Expired,
}

impl ReapReason {
    /// A short name for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            ReapReason::NoRun => "no run label",
            ReapReason::RunGone => "run gone",
            ReapReason::RunFinished => "run finished and torn down",
            ReapReason::Expired => "older than the TTL",
        }
    }
}

/// What the store says about a run, as far as the janitor cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunState {
    /// Pending, Running, or terminal with teardown not yet done: its reconciler owns its objects.
    Live,
    /// Terminal and torn down: whatever is left of it is a leftover.
    Finished,
}

/// One object a sweep removed.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Reaped {
    /// Its kind.
    pub kind: ObjectKind,
    /// Its name.
    pub name: String,
    /// Its `cc-ci.run` label, if any.
    pub run: Option<String>,
    /// Why it was removed.
    pub reason: ReapReason,
}

/// What one sweep did.
#[derive(Debug, Default)]
pub struct SweepReport {
    /// Objects removed (or found gone while removing them).
    pub reaped: Vec<Reaped>,
    /// Objects it meant to remove but could not; the next sweep tries again.
    pub failed: Vec<RemoveFailure>,
    /// Objects of this instance it left alone (their run is live and they are within the TTL).
    pub kept: usize,
}

impl SweepReport {
    /// How many objects of `kind` were reaped.
    pub fn reaped_of(&self, kind: ObjectKind) -> usize {
        self.reaped.iter().filter(|r| r.kind == kind).count()
    }
}

/// Why a sweep could not run at all.
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    /// Docker could not be reached, or refused a listing.
    #[error("janitor: {0}")]
    Docker(#[from] EngineError),
    /// The TestRun records could not be read.
    #[error("janitor: reading TestRuns: {0}")]
    Store(#[from] StoreError),
}

/// Decides, for each listed object, whether to reap it and why (`None`: keep it).
///
/// `runs` holds every TestRun that exists, by name. An object is expired when `created + ttl <=
/// now`; one without a readable creation time never expires.
pub fn decide(
    object: &LabelledObject,
    runs: &HashMap<String, RunState>,
    ttl: Duration,
    now: DateTime<Utc>,
) -> Option<ReapReason> {
    let ttl = chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::MAX);
    let expired = object
        .created
        .and_then(|c| c.checked_add_signed(ttl))
        .is_some_and(|limit| limit <= now);
    let by_run = match object.labels.get(RUN_LABEL) {
        None => Some(ReapReason::NoRun),
        Some(run) => match runs.get(run) {
            None => Some(ReapReason::RunGone),
            Some(RunState::Finished) => Some(ReapReason::RunFinished),
            Some(RunState::Live) => None,
        },
    };
    by_run.or(expired.then_some(ReapReason::Expired))
}

/// One sweep: lists this instance's objects, then reads the TestRuns, then removes what
/// [`decide`] says, in removal order. `docker` is negotiated afresh (the daemon may have been
/// down or upgraded since the last sweep).
pub async fn sweep<S: Store>(
    docker: &Docker,
    store: &S,
    settings: &RunSettings,
    now: DateTime<Utc>,
) -> Result<SweepReport, SweepError> {
    let docker = docker
        .clone()
        .negotiate_version()
        .await
        .map_err(|source| EngineError::Connect { source })?;
    let labels = [
        format!("{MANAGED_LABEL}=true"),
        format!("{INSTANCE_LABEL}={}", settings.instance),
    ];
    // Listed first, read second: see the module's guarantees.
    let objects = list_labelled(&docker, &labels).await?;
    // One record decoded at a time: a long run history must not be held whole for a sweep.
    let runs: HashMap<String, RunState> = store
        .list_map::<TestRunSpec, _>(&LabelSelector::everything(), |r| {
            let state = if r.status.phase.is_terminal() && r.status.torn_down {
                RunState::Finished
            } else {
                RunState::Live
            };
            (r.metadata.name, state)
        })?
        .into_iter()
        .collect();

    let mut doomed = Vec::new();
    let mut reasons = Vec::new();
    let mut kept = 0;
    for object in objects {
        // Belt and braces: the engine filtered on these labels already.
        if object.labels.get(INSTANCE_LABEL) != Some(&settings.instance) {
            continue;
        }
        match decide(&object, &runs, settings.ttl(), now) {
            Some(reason) => {
                reasons.push(reason);
                doomed.push(object);
            }
            None => kept += 1,
        }
    }
    if doomed.is_empty() {
        return Ok(SweepReport {
            kept,
            ..Default::default()
        });
    }
    let opts = RemoveOptions {
        volumes: true,
        timeout: REMOVE_TIMEOUT,
    };
    let outcome = remove_objects(&docker, &doomed, &opts).await;
    let failed_ids: HashSet<(ObjectKind, &str)> = outcome
        .failed
        .iter()
        .map(|f| (f.kind, f.id.as_str()))
        .collect();
    let reaped = doomed
        .iter()
        .zip(reasons)
        .filter(|(o, _)| !failed_ids.contains(&(o.kind, o.id.as_str())))
        .map(|(o, reason)| Reaped {
            kind: o.kind,
            name: o.name.clone(),
            run: o.labels.get(RUN_LABEL).cloned(),
            reason,
        })
        .collect();
    Ok(SweepReport {
        reaped,
        failed: outcome.failed,
        kept,
    })
}

/// Counts one sweep's outcome in `metrics` and logs it.
pub fn record(metrics: &Metrics, result: &Result<SweepReport, SweepError>) {
    match result {
        Ok(report) => {
            for r in &report.reaped {
                metrics
                    .janitor_reaped_total
                    .with_label_values(&[r.kind.as_str()])
                    .inc();
                tracing::info!(kind = %r.kind, name = %r.name, run = r.run.as_deref().unwrap_or(""),
                    reason = r.reason.as_str(), "janitor removed");
            }
            for f in &report.failed {
                tracing::warn!(kind = %f.kind, name = %f.name, error = %f.error,
                    "janitor could not remove; retrying at the next sweep");
            }
            let result = if report.failed.is_empty() {
                "ok"
            } else {
                "error"
            };
            metrics
                .janitor_sweeps_total
                .with_label_values(&[result])
                .inc();
            tracing::debug!(
                reaped = report.reaped.len(),
                failed = report.failed.len(),
                kept = report.kept,
                "janitor sweep done"
            );
        }
        Err(e) => {
            metrics
                .janitor_sweeps_total
                .with_label_values(&["error"])
                .inc();
            tracing::warn!(error = %e, "janitor sweep failed; retrying at the next period");
        }
    }
}

/// Starts the janitor: a task that sweeps once now and then every
/// [`RunSettings::janitor_period`] (never again when that is `None`), recording each sweep with
/// [`record`], until `shutdown` is cancelled. Without a `docker` client (the daemon was
/// unreachable at start-up) each sweep first tries to connect; a failure counts as a failed
/// sweep and is retried at the next period. A sweep in progress at shutdown is dropped (removal
/// is idempotent; the next start finishes it). It has no readiness signal: it never delays
/// `/readyz`.
pub fn start<S: Store>(
    mut docker: Option<Docker>,
    store: S,
    metrics: Arc<Metrics>,
    settings: RunSettings,
    shutdown: CancellationToken,
) -> Started {
    let task: JoinHandle<()> = tokio::spawn(async move {
        let period = settings.janitor_period();
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                result = connect_and_sweep(&mut docker, &store, &settings) => record(&metrics, &result),
            }
            let Some(period) = period else {
                return;
            };
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(period) => {}
            }
        }
    });
    Started {
        name: NAME,
        ready: Vec::new(),
        tasks: vec![task],
    }
}

async fn connect_and_sweep<S: Store>(
    docker: &mut Option<Docker>,
    store: &S,
    settings: &RunSettings,
) -> Result<SweepReport, SweepError> {
    let client = match docker {
        Some(d) => d.clone(),
        None => {
            let d = crate::swarm::docker::connect().await?;
            tracing::info!("janitor: Docker is reachable now");
            docker.insert(d).clone()
        }
    };
    sweep(&client, store, settings, Utc::now()).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(run: Option<&str>, age: Duration, now: DateTime<Utc>) -> LabelledObject {
        let mut labels = HashMap::from([
            (MANAGED_LABEL.to_owned(), "true".to_owned()),
            (INSTANCE_LABEL.to_owned(), "unit".to_owned()),
        ]);
        if let Some(run) = run {
            labels.insert(RUN_LABEL.to_owned(), run.to_owned());
        }
        LabelledObject {
            kind: ObjectKind::Volume,
            id: "v".into(),
            name: "v".into(),
            labels,
            created: Some(now - chrono::Duration::from_std(age).unwrap()),
            stop_grace_seconds: 0,
        }
    }

    #[test]
    fn live_runs_are_kept_until_the_ttl_and_everything_else_is_reaped() {
        let now = Utc::now();
        let ttl = Duration::from_secs(60);
        let young = Duration::from_secs(10);
        let old = Duration::from_secs(61);
        let runs = HashMap::from([
            ("live".to_owned(), RunState::Live),
            ("done".to_owned(), RunState::Finished),
        ]);
        let d = |run, age| decide(&object(run, age, now), &runs, ttl, now);
        assert_eq!(d(Some("live"), young), None);
        assert_eq!(d(Some("live"), old), Some(ReapReason::Expired));
        assert_eq!(d(Some("done"), young), Some(ReapReason::RunFinished));
        assert_eq!(d(Some("gone"), young), Some(ReapReason::RunGone));
        assert_eq!(d(None, young), Some(ReapReason::NoRun));
        // Exactly at the TTL counts as expired.
        assert_eq!(d(Some("live"), ttl), Some(ReapReason::Expired));
    }

    #[test]
    fn an_object_without_a_creation_time_never_expires() {
        let now = Utc::now();
        let mut o = object(Some("live"), Duration::ZERO, now);
        o.created = None;
        let runs = HashMap::from([("live".to_owned(), RunState::Live)]);
        assert_eq!(decide(&o, &runs, Duration::ZERO, now), None);
        // A huge TTL does not overflow into "expired".
        let o = object(Some("live"), Duration::from_secs(5), now);
        assert_eq!(decide(&o, &runs, Duration::MAX, now), None);
    }
}
