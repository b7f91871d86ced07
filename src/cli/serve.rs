//! `cc-ci serve`: runs the controller, API and reconcilers. Not yet built.

/// Arguments of `cc-ci serve`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `cc-ci serve`.
pub async fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("cc-ci serve is not built yet")
}
