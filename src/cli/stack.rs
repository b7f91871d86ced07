//! `cc-ci stack`: not yet built.

/// Arguments of `cc-ci stack`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `cc-ci stack`.
pub async fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("cc-ci stack is not built yet")
}
