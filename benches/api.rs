//! API benchmarks (HTTP server engineer): call `api::run().await` from `main` in `bench.rs`
//! (`mod api;`). Each measurement runs against a real `cc-ci serve` built with the bench profile.

use std::path::Path;

/// Runs the API benchmarks in a temporary directory and prints one line per measurement.
pub async fn run() -> Vec<String> {
    let dir = tempfile::tempdir().expect("temporary directory");
    cc_ci::http::bench::run_all(Path::new(env!("CARGO_BIN_EXE_cc-ci")), dir.path())
        .await
        .expect("API benchmarks")
}
