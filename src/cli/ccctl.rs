//! `ccctl`: kubectl-style client of the cc-ci API. Not yet built.

/// Runs `ccctl` with the process arguments; returns the exit code.
pub async fn main() -> anyhow::Result<std::process::ExitCode> {
    anyhow::bail!("ccctl is not built yet")
}
