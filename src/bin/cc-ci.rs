//! The `cc-ci` binary: the controller (`cc-ci serve`) and maintenance commands.

use clap::{Parser, Subcommand};

/// cc-ci: a CI server for Co-op Cloud recipes.
#[derive(Debug, Parser)]
#[command(name = "cc-ci", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the controller: store, reconcilers, HTTP API.
    Serve(cc_ci::cli::serve::Args),
    /// Back up or restore the record store (JSON lines).
    Store(cc_ci::cli::store::Args),
    /// Render, deploy or remove a compose stack with the native swarm engine.
    Stack(cc_ci::cli::stack::Args),
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => cc_ci::cli::serve::run(args).await,
        Command::Store(args) => cc_ci::cli::store::run(args).await,
        Command::Stack(args) => cc_ci::cli::stack::run(args).await,
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
