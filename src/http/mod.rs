//! The HTTP surface: the records API, watch streams, health and metrics endpoints.
//!
//! [`router`] builds the whole [`axum::Router`]; every record kind gets the same generic handlers
//! (see `records.rs`), routed under `/api/v1/{plural}`. The wire contract is in
//! `docs/api.md` (errors are [`ApiError`] JSON bodies).

pub mod artifacts;
mod auth;
mod decode;
mod error;
pub mod hook;
pub mod logs;
mod observe;
mod ops;
mod records;
pub mod server;
mod watch;

pub use auth::WriteAuth;
pub use decode::{Purpose, decode_object};
pub use error::{ApiError, Details, Reason};
pub use observe::HttpMetrics;
pub use records::{ListParams, list_body};
pub use server::HttpSettings;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::routing::{get, put};
use tokio_util::sync::CancellationToken;

use crate::api::{AppDeploymentSpec, ProxyDeploymentSpec, RecipeSpec, Spec, TestRunSpec};
use crate::metrics::Metrics;
use crate::runlog::RunLogs;
use crate::store::JsonStore;

/// The default request body limit: 1 MiB.
pub const DEFAULT_BODY_LIMIT: usize = 1024 * 1024;

/// Everything the handlers share. Cheap to clone.
#[derive(Clone, Debug)]
pub struct AppState<St> {
    /// The record store.
    pub store: St,
    /// The metrics `/metrics` encodes.
    pub metrics: Arc<Metrics>,
    /// How writes are authorised.
    pub auth: WriteAuth,
    /// `/readyz` answers 200 once this is true.
    pub ready: Arc<AtomicBool>,
    /// Cancelled on shutdown; ends open watch streams so the server can stop.
    pub shutdown: CancellationToken,
    /// Largest accepted request body, in bytes.
    pub body_limit: usize,
    /// The run logs served under `/api/v1/testruns/{name}/logs`; `None` answers those routes
    /// with NotFound (`cc-ci serve` always sets it from its state directory).
    pub run_logs: Option<RunLogs>,
}

impl<St: JsonStore> AppState<St> {
    /// A state with a fresh not-ready flag, a fresh shutdown token and the default body limit.
    pub fn new(store: St, metrics: Arc<Metrics>, auth: WriteAuth) -> Self {
        Self {
            store,
            metrics,
            auth,
            ready: Arc::new(AtomicBool::new(false)),
            shutdown: CancellationToken::new(),
            body_limit: DEFAULT_BODY_LIMIT,
            run_logs: None,
        }
    }

    /// The same state serving the run logs of `logs`.
    pub fn with_run_logs(mut self, logs: RunLogs) -> Self {
        self.run_logs = Some(logs);
        self
    }

    /// Marks the server ready (or not) for `/readyz`.
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Release);
    }
}

fn kind_routes<S: Spec, St: JsonStore>(router: Router<AppState<St>>) -> Router<AppState<St>> {
    let base = format!("/api/v1/{}", S::KIND.plural());
    router
        .route(
            &base,
            get(records::list::<S, St>).post(records::create::<S, St>),
        )
        .route(
            &format!("{base}/{{name}}"),
            get(records::get::<S, St>)
                .put(records::replace::<S, St>)
                .delete(records::delete::<S, St>),
        )
        .route(
            &format!("{base}/{{name}}/status"),
            put(records::replace_status::<S, St>),
        )
}

/// The whole HTTP API: records of every kind, run logs, `/healthz`, `/readyz`, `/metrics`,
/// `/api/v1/version`. Writes are checked against `state.auth`.
pub fn router<St: JsonStore>(state: AppState<St>) -> Router {
    let mut api = Router::new();
    api = kind_routes::<RecipeSpec, St>(api);
    api = kind_routes::<TestRunSpec, St>(api);
    api = kind_routes::<ProxyDeploymentSpec, St>(api);
    api = kind_routes::<AppDeploymentSpec, St>(api);
    api = api
        .route("/api/v1/testruns/{name}/logs", get(logs::list::<St>))
        .route(
            "/api/v1/testruns/{name}/logs/{stream}",
            get(logs::read::<St>),
        )
        .route(
            "/api/v1/testruns/{name}/artifacts",
            get(artifacts::list::<St>),
        )
        .route(
            "/api/v1/testruns/{name}/artifacts/{*path}",
            get(artifacts::read::<St>),
        );
    let api = api.route_layer(axum::middleware::from_fn_with_state(
        state.auth.clone(),
        auth::require_token_for_writes,
    ));
    let http_metrics = HttpMetrics::register(&state.metrics.registry);
    let dashboard = crate::web::router(&state);
    // Probes are answered outside the request trace: a 503 from `/readyz` while starting is
    // expected, not an error to log.
    let probes = Router::new()
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz::<St>))
        .route_layer(axum::middleware::from_fn_with_state(
            http_metrics.clone(),
            observe::record,
        ))
        .method_not_allowed_fallback(ops::method_not_allowed)
        .with_state(state.clone());
    Router::new()
        .merge(api)
        .route("/metrics", get(ops::metrics::<St>))
        .route("/api/v1/version", get(ops::version))
        .route_layer(axum::middleware::from_fn_with_state(
            http_metrics,
            observe::record,
        ))
        .fallback(ops::not_found)
        .method_not_allowed_fallback(ops::method_not_allowed)
        .with_state(state)
        .merge(dashboard)
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .merge(probes)
}

#[cfg(test)]
mod tests;
