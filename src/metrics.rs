//! Prometheus metrics: controller-runtime-style `ccci_` series and domain metrics.
//!
//! The registry is not global: [`Metrics::new`] makes one, the program shares it as
//! `Arc<Metrics>`, and `/metrics` serves [`Metrics::encode`]. No metric is labelled by run name
//! (that would grow without bound); labels are controller names, phases and kinds only.

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

use crate::api::{Kind, RunPhase};

/// Every metric cc-ci exports, registered in one registry.
#[derive(Clone, Debug)]
pub struct Metrics {
    /// The registry `/metrics` encodes.
    pub registry: Registry,
    /// `ccci_reconcile_total{controller,result}`: reconciles by outcome
    /// (`success` = await change, `requeue`, `error`).
    pub reconcile_total: IntCounterVec,
    /// `ccci_reconcile_errors_total{controller}`: failed reconciles.
    pub reconcile_errors_total: IntCounterVec,
    /// `ccci_reconcile_time_seconds{controller}`: how long reconciles take.
    pub reconcile_time_seconds: HistogramVec,
    /// `ccci_workqueue_depth{name}`: keys waiting in a controller's scheduler.
    pub workqueue_depth: IntGaugeVec,
    /// `ccci_workqueue_adds_total{name}`: keys added to a scheduler (not counting merges).
    pub workqueue_adds_total: IntCounterVec,
    /// `ccci_workqueue_retries_total{name}`: keys rescheduled after an error.
    pub workqueue_retries_total: IntCounterVec,
    /// `ccci_active_workers{controller}`: reconciles running now.
    pub active_workers: IntGaugeVec,
    /// `ccci_testruns{phase}`: TestRun records per phase.
    pub testruns: IntGaugeVec,
    /// `ccci_records{kind}`: records per kind.
    pub records: IntGaugeVec,
    /// `ccci_stage_duration_seconds{stage,result}`: how long finished stages took.
    pub stage_duration_seconds: HistogramVec,
    /// `ccci_store_size_bytes`: size of the store on disk.
    pub store_size_bytes: IntGauge,
    /// `ccci_janitor_reaped_total{kind}`: swarm objects the janitor removed, per kind
    /// (`service`, `container`, `volume`, `secret`, `config`, `network`).
    pub janitor_reaped_total: IntCounterVec,
    /// `ccci_janitor_sweeps_total{result}`: janitor sweeps, `ok` or `error` (Docker unreachable,
    /// the store unreadable, or some object could not be removed).
    pub janitor_sweeps_total: IntCounterVec,
}

fn counter(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let m = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
    registry
        .register(Box::new(m.clone()))
        .expect("unique metric");
    m
}

fn gauge(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let m = IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric");
    registry
        .register(Box::new(m.clone()))
        .expect("unique metric");
    m
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> Self {
        let registry = Registry::new();
        let reconcile_time_seconds = HistogramVec::new(
            HistogramOpts::new(
                "ccci_reconcile_time_seconds",
                "Time taken by reconciles, per controller.",
            )
            .buckets(vec![
                0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
            ]),
            &["controller"],
        )
        .expect("valid metric");
        registry
            .register(Box::new(reconcile_time_seconds.clone()))
            .expect("unique metric");
        let stage_duration_seconds = HistogramVec::new(
            HistogramOpts::new(
                "ccci_stage_duration_seconds",
                "Wall time of finished TestRun stages, per stage and result.",
            )
            .buckets(vec![
                1.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0,
            ]),
            &["stage", "result"],
        )
        .expect("valid metric");
        registry
            .register(Box::new(stage_duration_seconds.clone()))
            .expect("unique metric");
        let store_size_bytes =
            IntGauge::new("ccci_store_size_bytes", "Size of the record store on disk.")
                .expect("valid metric");
        registry
            .register(Box::new(store_size_bytes.clone()))
            .expect("unique metric");
        let metrics = Self {
            reconcile_total: counter(
                &registry,
                "ccci_reconcile_total",
                "Reconciles per controller and result (success, requeue, error).",
                &["controller", "result"],
            ),
            reconcile_errors_total: counter(
                &registry,
                "ccci_reconcile_errors_total",
                "Failed reconciles per controller.",
                &["controller"],
            ),
            reconcile_time_seconds,
            workqueue_depth: gauge(
                &registry,
                "ccci_workqueue_depth",
                "Keys waiting in a controller's work queue.",
                &["name"],
            ),
            workqueue_adds_total: counter(
                &registry,
                "ccci_workqueue_adds_total",
                "Keys added to a controller's work queue.",
                &["name"],
            ),
            workqueue_retries_total: counter(
                &registry,
                "ccci_workqueue_retries_total",
                "Keys requeued after a failed reconcile.",
                &["name"],
            ),
            active_workers: gauge(
                &registry,
                "ccci_active_workers",
                "Reconciles running now, per controller.",
                &["controller"],
            ),
            testruns: gauge(
                &registry,
                "ccci_testruns",
                "TestRuns per phase.",
                &["phase"],
            ),
            records: gauge(&registry, "ccci_records", "Records per kind.", &["kind"]),
            stage_duration_seconds,
            store_size_bytes,
            janitor_reaped_total: counter(
                &registry,
                "ccci_janitor_reaped_total",
                "Swarm objects removed by the janitor, per kind.",
                &["kind"],
            ),
            janitor_sweeps_total: counter(
                &registry,
                "ccci_janitor_sweeps_total",
                "Janitor sweeps per result (ok, error).",
                &["result"],
            ),
            registry,
        };
        // Zero series exist from the start, so a rate over them is defined before the first reap.
        for kind in crate::swarm::objects::ObjectKind::ALL {
            metrics
                .janitor_reaped_total
                .with_label_values(&[kind.as_str()]);
        }
        for result in ["ok", "error"] {
            metrics.janitor_sweeps_total.with_label_values(&[result]);
        }
        metrics
    }

    /// Sets `ccci_store_size_bytes` (the store's owner calls this).
    pub fn set_store_size_bytes(&self, bytes: u64) {
        self.store_size_bytes
            .set(i64::try_from(bytes).unwrap_or(i64::MAX));
    }

    /// Sets `ccci_records{kind}`.
    pub fn set_records(&self, kind: Kind, count: usize) {
        self.records
            .with_label_values(&[kind.name()])
            .set(i64::try_from(count).unwrap_or(i64::MAX));
    }

    /// Sets `ccci_testruns{phase}` for every phase (phases absent from `counts` read 0).
    pub fn set_testruns(&self, counts: impl Fn(RunPhase) -> usize) {
        for phase in RunPhase::ALL {
            self.testruns
                .with_label_values(&[phase.as_str()])
                .set(i64::try_from(counts(phase)).unwrap_or(i64::MAX));
        }
    }

    /// Observes a finished stage in `ccci_stage_duration_seconds`.
    pub fn observe_stage(
        &self,
        stage: crate::api::StageKind,
        result: crate::api::StagePhase,
        seconds: f64,
    ) {
        self.stage_duration_seconds
            .with_label_values(&[stage.as_str(), &format!("{result:?}")])
            .observe(seconds);
    }

    /// The Prometheus text exposition of all metrics.
    pub fn encode(&self) -> String {
        let mut buf = Vec::new();
        // Encoding into a Vec cannot fail for the text format.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_controller_and_domain_series_under_the_ccci_prefix() {
        let m = Metrics::new();
        m.reconcile_total
            .with_label_values(&["recipe-status", "success"])
            .inc();
        m.set_store_size_bytes(4096);
        m.set_records(Kind::TestRun, 3);
        m.set_testruns(|p| usize::from(p == RunPhase::Running));
        let text = m.encode();
        assert!(
            text.contains(r#"ccci_reconcile_total{controller="recipe-status",result="success"} 1"#),
            "{text}"
        );
        assert!(text.contains("ccci_store_size_bytes 4096"), "{text}");
        assert!(text.contains(r#"ccci_records{kind="TestRun"} 3"#), "{text}");
        assert!(
            text.contains(r#"ccci_testruns{phase="Running"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"ccci_testruns{phase="Failed"} 0"#),
            "{text}"
        );
    }
}
