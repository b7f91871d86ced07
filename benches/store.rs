//! Store-level benchmark: acknowledged (durable) write throughput.

use std::path::Path;
use std::time::{Duration, Instant};

use cc_ci::api::{Object, RecipeSpec};
use cc_ci::store::{SledStore, Store};

/// Opens a store in `dir` and creates `total` Recipe records from `writers` concurrent tasks,
/// each awaiting its write's durability. Returns the wall time from the first write to the last
/// acknowledgement (acknowledged writes/s = `total / elapsed`).
pub async fn write_throughput(
    dir: &Path,
    writers: usize,
    total: usize,
) -> Result<Duration, String> {
    let store = SledStore::open(dir).map_err(|e| e.to_string())?;
    let spec: RecipeSpec = serde_json::from_value(serde_json::json!({
        "git": "https://git.coopcloud.tech/coop-cloud/bench.git",
        "forgeRepo": "coop-cloud/bench",
    }))
    .map_err(|e| e.to_string())?;
    let writers = writers.max(1);
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..writers {
        let store = store.clone();
        let spec = spec.clone();
        let count = total / writers + usize::from(w < total % writers);
        tasks.spawn(async move {
            for i in 0..count {
                store
                    .create(Object::new(format!("bench-{w}-{i}"), spec.clone()))
                    .await
                    .map_err(|e| e.to_string())?;
            }
            Ok::<(), String>(())
        });
    }
    while let Some(result) = tasks.join_next().await {
        result.map_err(|e| e.to_string())??;
    }
    Ok(start.elapsed())
}
