//! [`Controller`]: watch → cache → scheduler → runner → `reconcile`, with backoff, resync,
//! extra triggers and graceful shutdown.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::stream::{self, BoxStream, SelectAll};
use futures::{Stream, StreamExt};
use tokio::sync::watch;
use tokio::task::JoinError;
use tokio::time::{Instant, Interval, MissedTickBehavior};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::backoff::Backoff;
use super::reflector::{self, Index, Keyed, Writer};
use super::runner::Runner;
use super::scheduler::Scheduler;
use super::settings::RuntimeSettings;
use crate::api::{Object, Spec};
use crate::metrics::Metrics;
use crate::store::{Store, StoreError, WatchEvent};

/// What a reconcile asks for next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Action {
    requeue_after: Option<Duration>,
}

impl Action {
    /// Reconcile this record again after `after`, even if nothing changes. Preferred for
    /// anything that watches the outside world (Docker has no events we follow).
    pub fn requeue(after: Duration) -> Self {
        Self {
            requeue_after: Some(after),
        }
    }

    /// Reconcile again only when the record (or a watched trigger) changes, or at resync.
    pub fn await_change() -> Self {
        Self {
            requeue_after: None,
        }
    }

    /// The requested requeue delay, if any.
    pub fn requeue_after(&self) -> Option<Duration> {
        self.requeue_after
    }
}

/// A reconciliation loop for records of kind `S`.
///
/// # Flow
/// The watch stream feeds the controller's [`Cache`]; every record that changes is scheduled
/// now. [`Controller::watches`]/[`Controller::triggers`] schedule more keys. The scheduler hands
/// due keys to a bounded runner, which calls `reconcile` with the cached record.
///
/// # Guarantees
/// - Never two reconciles of one key at once; at most `settings.concurrency` in all.
/// - A key's next run is at the earliest of: its requested requeue, a change, a trigger, a
///   resync (every key every `settings.resync_seconds`), or its error backoff.
/// - Errors retry after a per-key exponential backoff (`backoff_initial_seconds` doubling up to
///   `backoff_max_seconds`); a success resets it. A panicking reconcile counts as an error.
/// - A record deleted from the store is not reconciled again; its key and backoff are dropped.
/// - Nothing is reconciled before the cache (and every [`Controller::requires`] cache) has its
///   first full list, so reconcilers never act on a partial view.
/// - On shutdown no new reconcile starts; running ones get `shutdown_grace_seconds` to finish and
///   are aborted after that.
///
/// The cache holds whole records by default; [`Controller::new_projected`] keeps only a
/// projection of each (for a reconciler that reads the record from the store anyway), and the
/// reconcile then receives that projection.
pub struct Controller<S: Spec, V = Object<S>> {
    name: String,
    events: BoxStream<'static, Result<WatchEvent<S>, StoreError>>,
    cache: Index<V>,
    writer: Writer<S, V>,
    triggers: Vec<BoxStream<'static, String>>,
    requires: Vec<watch::Receiver<bool>>,
    settings: RuntimeSettings,
    metrics: Arc<Metrics>,
}

impl<S: Spec> Controller<S> {
    /// A controller named `name` (the `controller` metric label) over a watch stream of `S`.
    pub fn new(
        name: impl Into<String>,
        events: impl Stream<Item = Result<WatchEvent<S>, StoreError>> + Send + 'static,
    ) -> Self {
        Self::new_projected(name, events, |obj| obj)
    }

    /// A controller over `store`'s records of kind `S`, re-listing after watch errors.
    pub fn for_store<St: Store>(name: impl Into<String>, store: &St) -> Self {
        Self::new(name, super::watcher::watch::<S, St>(store.clone()))
    }
}

impl<S: Spec, V: Keyed + PartialEq + Send + Sync + 'static> Controller<S, V> {
    /// Like [`Controller::new`], with a cache of `project(record)` per record. A change is
    /// scheduled only when the projection changes, so it should carry `resourceVersion` when
    /// every write matters.
    pub fn new_projected(
        name: impl Into<String>,
        events: impl Stream<Item = Result<WatchEvent<S>, StoreError>> + Send + 'static,
        project: fn(Object<S>) -> V,
    ) -> Self {
        let (cache, writer) = reflector::projected(project);
        Self {
            name: name.into(),
            events: events.boxed(),
            cache,
            writer,
            triggers: Vec::new(),
            requires: Vec::new(),
            settings: RuntimeSettings::default(),
            metrics: Arc::new(Metrics::new()),
        }
    }

    /// Like [`Controller::for_store`], with a cache of `project(record)` per record.
    pub fn for_store_projected<St: Store>(
        name: impl Into<String>,
        store: &St,
        project: fn(Object<S>) -> V,
    ) -> Self {
        Self::new_projected(name, super::watcher::watch::<S, St>(store.clone()), project)
    }

    /// Uses these settings (default: [`RuntimeSettings::default`]).
    pub fn settings(mut self, settings: RuntimeSettings) -> Self {
        self.settings = settings;
        self
    }

    /// Reports into these metrics (default: a private registry).
    pub fn metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = metrics;
        self
    }

    /// The controller's cache of `S`, for readers outside the reconcile.
    pub fn cache(&self) -> Index<V> {
        self.cache.clone()
    }

    /// Also reconciles every key `keys` yields (now).
    pub fn triggers(mut self, keys: impl Stream<Item = String> + Send + 'static) -> Self {
        self.triggers.push(keys.boxed());
        self
    }

    /// Also reconciles the keys `mapper` gives for each changed record of another kind, e.g.
    /// a TestRun's recipe when the TestRun changes. `changes` usually comes from
    /// [`reflector::reflector`] (whole records, or a projection of each); deleted records are
    /// passed to `mapper` too (their last state).
    pub fn watches<T, I, M>(
        self,
        changes: impl Stream<Item = Result<Arc<T>, StoreError>> + Send + 'static,
        mapper: M,
    ) -> Self
    where
        T: Send + Sync + 'static,
        I: IntoIterator<Item = String>,
        M: Fn(&T) -> I + Send + 'static,
    {
        let name = self.name.clone();
        let keys = changes.flat_map(move |change| {
            let keys: Vec<String> = match change {
                Ok(value) => mapper(&value).into_iter().collect(),
                Err(e) => {
                    tracing::warn!(controller = %name, error = %e, "watch error");
                    Vec::new()
                }
            };
            stream::iter(keys)
        });
        self.triggers(keys)
    }

    /// Reconciles nothing until `cache` has its first full list too (e.g. a reconciler that
    /// reads TestRuns must not roll up an empty TestRun cache).
    pub fn requires<T>(mut self, cache: &Index<T>) -> Self {
        self.requires.push(cache.ready_signal());
        self
    }

    /// Runs until `shutdown` is cancelled, then drains (see the type's guarantees).
    pub async fn run<Ctx, E, F, Fut>(self, reconcile: F, ctx: Arc<Ctx>, shutdown: CancellationToken)
    where
        Ctx: Send + Sync + 'static,
        E: std::fmt::Display + Send + 'static,
        F: Fn(Arc<V>, Arc<Ctx>) -> Fut,
        Fut: Future<Output = Result<Action, E>> + Send + 'static,
    {
        let grace = self.settings.shutdown_grace();
        let mut state = LoopState::new(&self);
        let Controller {
            name,
            events,
            cache,
            writer,
            triggers,
            mut requires,
            ..
        } = self;
        requires.push(cache.ready_signal());
        let mut changes = reflector::reflector(writer, events).boxed();
        let mut changes_open = true;
        let mut triggers: SelectAll<_> = stream::select_all(triggers);
        let mut triggers_open = !triggers.is_empty();
        tracing::info!(controller = %name, "controller started");
        loop {
            let free = state.runner.has_capacity();
            tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                (key, out) = state.runner.next_done() => state.done(key, out, true),
                change = changes.next(), if changes_open => match change {
                    Some(Ok(obj)) if cache.get(obj.key()).is_some() => state.add(obj.key()),
                    Some(Ok(gone)) => state.forget(gone.key()),
                    Some(Err(e)) => tracing::warn!(controller = %name, error = %e, "watch error"),
                    None => {
                        tracing::warn!(controller = %name, "watch stream ended");
                        changes_open = false;
                    }
                },
                key = triggers.next(), if triggers_open => match key {
                    Some(key) => state.add(&key),
                    None => triggers_open = false,
                },
                () = tick(&mut state.resync) => {
                    for key in cache.keys() {
                        state.add(&key);
                    }
                }
                key = async {
                    all_ready(&mut requires).await;
                    state.scheduler.next().await
                }, if free => match cache.get(&key) {
                    Some(obj) => {
                        let task = reconcile(obj, ctx.clone());
                        state.start(key, task);
                    }
                    None => {
                        state.scheduler.finish(&key);
                        state.forget(&key);
                    }
                },
            }
            state.gauges();
        }
        state.drain(grace).await;
        tracing::info!(controller = %name, "controller stopped");
    }
}

/// Waits until every signal is `true` (at once if they are).
async fn all_ready(signals: &mut [watch::Receiver<bool>]) {
    for s in signals {
        // A dropped sender means its cache is gone; nothing to wait for then.
        let _ = s.wait_for(|ready| *ready).await;
    }
}

async fn tick(interval: &mut Option<Interval>) {
    match interval {
        Some(i) => {
            i.tick().await;
        }
        None => std::future::pending().await,
    }
}

type Outcome<E> = (Result<Action, E>, Duration);

/// The moving parts of a running controller.
struct LoopState<E> {
    name: String,
    scheduler: Scheduler<String>,
    runner: Runner<String, Outcome<E>>,
    backoff: Backoff<String>,
    resync: Option<Interval>,
    metrics: Arc<Metrics>,
}

impl<E: std::fmt::Display + Send + 'static> LoopState<E> {
    fn new<S: Spec, V>(c: &Controller<S, V>) -> Self {
        let s = &c.settings;
        let resync = s.resync_period().map(|period| {
            let mut i = tokio::time::interval_at(Instant::now() + period, period);
            i.set_missed_tick_behavior(MissedTickBehavior::Delay);
            i
        });
        Self {
            name: c.name.clone(),
            scheduler: Scheduler::new(),
            runner: Runner::new(s.concurrency),
            backoff: Backoff::new(s.backoff_initial(), s.backoff_max(), s.backoff_jitter),
            resync,
            metrics: c.metrics.clone(),
        }
    }

    /// Schedules `key` now.
    fn add(&mut self, key: &str) {
        self.schedule(key, Duration::ZERO);
    }

    fn schedule(&mut self, key: &str, after: Duration) {
        if self
            .scheduler
            .schedule(key.to_string(), Instant::now() + after)
        {
            self.metrics
                .workqueue_adds_total
                .with_label_values(&[&self.name])
                .inc();
        }
    }

    /// Drops everything known about a key whose record is gone.
    fn forget(&mut self, key: &str) {
        let key = key.to_string();
        self.scheduler.remove(&key);
        self.backoff.reset(&key);
    }

    fn start<Fut>(&mut self, key: String, task: Fut)
    where
        Fut: Future<Output = Result<Action, E>> + Send + 'static,
    {
        let span = tracing::debug_span!("reconcile", controller = %self.name, key = %key);
        let timed = async move {
            let started = Instant::now();
            let result = task.await;
            (result, started.elapsed())
        };
        // The loop only pops keys when the runner has room, and the scheduler never hands out
        // a key twice, so spawning cannot be refused.
        if let Err(e) = self.runner.spawn(key.clone(), timed.instrument(span)) {
            tracing::error!(controller = %self.name, key = %key, error = %e, "reconcile not started");
            self.scheduler.finish(&key);
            self.schedule(&key, Duration::from_secs(1));
        }
    }

    /// Records a finished reconcile and, when `reschedule`, acts on its outcome.
    fn done(&mut self, key: String, out: Result<Outcome<E>, JoinError>, reschedule: bool) {
        let m = &self.metrics;
        let result = match out {
            Ok((result, took)) => {
                m.reconcile_time_seconds
                    .with_label_values(&[&self.name])
                    .observe(took.as_secs_f64());
                result.map_err(|e| e.to_string())
            }
            Err(e) if e.is_panic() => Err("reconcile panicked".to_string()),
            Err(_) => Err("reconcile aborted".to_string()),
        };
        let label = match &result {
            Ok(a) if a.requeue_after.is_some() => "requeue",
            Ok(_) => "success",
            Err(_) => "error",
        };
        m.reconcile_total
            .with_label_values(&[&self.name, label])
            .inc();
        match result {
            Ok(action) => {
                self.backoff.reset(&key);
                if let (Some(after), true) = (action.requeue_after, reschedule) {
                    self.schedule(&key, after);
                }
            }
            Err(message) => {
                m.reconcile_errors_total
                    .with_label_values(&[&self.name])
                    .inc();
                let delay = self.backoff.failed(key.clone());
                tracing::warn!(controller = %self.name, key = %key, error = %message,
                    retry_in = ?delay, "reconcile failed");
                if reschedule {
                    m.workqueue_retries_total
                        .with_label_values(&[&self.name])
                        .inc();
                    self.schedule(&key, delay);
                }
            }
        }
        self.scheduler.finish(&key);
    }

    fn gauges(&self) {
        let depth = i64::try_from(self.scheduler.len()).unwrap_or(i64::MAX);
        let active = i64::try_from(self.runner.len()).unwrap_or(i64::MAX);
        self.metrics
            .workqueue_depth
            .with_label_values(&[&self.name])
            .set(depth);
        self.metrics
            .active_workers
            .with_label_values(&[&self.name])
            .set(active);
    }

    /// Lets running reconciles finish within `grace`, then aborts the rest.
    async fn drain(&mut self, grace: Duration) {
        let deadline = tokio::time::sleep(grace);
        tokio::pin!(deadline);
        let mut aborted = false;
        while !self.runner.is_empty() {
            tokio::select! {
                (key, out) = self.runner.next_done() => self.done(key, out, false),
                () = &mut deadline, if !aborted => {
                    tracing::warn!(controller = %self.name, running = self.runner.len(),
                        "shutdown grace period over; aborting reconciles");
                    self.runner.abort_all();
                    aborted = true;
                }
            }
        }
        self.gauges();
    }
}
