//! The API figures: a real `cc-ci serve` (this build's binary) and `ccctl` in a temporary
//! directory; see `cc_ci::http::bench::run_all`.

use std::path::Path;

use cc_ci::http::bench::{ApiFigures, BenchError};

/// Runs the API benchmarks over `records` TestRuns in a temporary directory.
pub async fn run(records: usize) -> Result<ApiFigures, BenchError> {
    let dir = tempfile::tempdir().map_err(|e| BenchError::Server(e.to_string()))?;
    cc_ci::http::bench::run_all(
        Path::new(env!("CARGO_BIN_EXE_cc-ci")),
        Path::new(env!("CARGO_BIN_EXE_ccctl")),
        dir.path(),
        records,
    )
    .await
}
