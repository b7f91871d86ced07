//! The no-op reconcile pass benchmark: N records through cache → scheduler → runner.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures::{StreamExt, stream};
use tokio_util::sync::CancellationToken;

use cc_ci::api::{Object, Recipe, RecipeSpec, StageKind};
use cc_ci::runtime::{Action, Controller, RuntimeSettings};
use cc_ci::store::WatchEvent;

/// Feeds a full list of `n` Recipe records to a [`Controller`] whose reconcile only returns
/// [`Action::await_change`], and returns the wall time until all `n` were reconciled (the
/// issue's target: 10,000 records in at most 2 s). Call it inside a tokio runtime.
pub async fn noop_pass(n: usize) -> Duration {
    let events = std::iter::once(WatchEvent::Init)
        .chain((0..n).map(|i| WatchEvent::InitApply(record(i))))
        .chain(std::iter::once(WatchEvent::InitDone))
        .map(Ok);
    // Keep the watch open, as a store's would be.
    let events = stream::iter(events).chain(stream::pending());
    let settings = RuntimeSettings {
        resync_seconds: 0,
        ..RuntimeSettings::default()
    };
    let shutdown = CancellationToken::new();
    let ctx = Arc::new((AtomicUsize::new(0), n, shutdown.clone()));
    let started = Instant::now();
    if n == 0 {
        return started.elapsed();
    }
    Controller::new("bench", events)
        .settings(settings)
        .run(
            |_obj, ctx: Arc<(AtomicUsize, usize, CancellationToken)>| async move {
                if ctx.0.fetch_add(1, Ordering::SeqCst) + 1 == ctx.1 {
                    ctx.2.cancel();
                }
                Ok::<_, Infallible>(Action::await_change())
            },
            ctx,
            shutdown,
        )
        .await;
    started.elapsed()
}

fn record(i: usize) -> Recipe {
    Object::new(
        format!("recipe-{i:05}"),
        RecipeSpec {
            git: format!("https://git.example.org/coop-cloud/recipe-{i}.git"),
            forge_repo: Some(format!("coop-cloud/recipe-{i}")),
            default_branch: "main".into(),
            suite_path: None,
            env: Default::default(),
            stages: StageKind::ALL.to_vec(),
            timeouts: Default::default(),
            allow: vec![],
            suspended: false,
        },
    )
}
