//! `cc-ci store`: not yet built.

/// Arguments of `cc-ci store`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `cc-ci store`.
pub async fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("cc-ci store is not built yet")
}
