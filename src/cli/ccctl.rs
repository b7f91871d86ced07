//! `ccctl`: kubectl-style client of the cc-ci API (`get`, `describe`, `apply`, `delete`,
//! `logs`, `run`, `version`). Arguments are parsed in two phases (clap's raw arguments, then a validated
//! [`args::Config`]); see `docs/ccctl.md` for the commands, output formats and exit codes.

pub mod apply;
pub mod args;
pub mod artifacts;
pub mod client;
pub mod columns;
pub mod describe;
pub mod get;
pub mod interleave;
pub mod logs;
pub mod run;
pub mod sse;
pub mod table;
pub mod watch;

use std::process::ExitCode;

use clap::Parser;

use crate::api::Kind;
use args::{Command, Config, RawArgs};
use client::{ApiError, Client};

/// Exit code: success.
pub const EXIT_OK: u8 = 0;
/// Exit code: an error from the server, the network or the input (kubectl's `1`).
pub const EXIT_ERROR: u8 = 1;
/// Exit code: the command line could not be parsed (clap's usage code).
pub const EXIT_USAGE: u8 = 2;
/// Exit code: a named record does not exist (and nothing else failed).
pub const EXIT_NOT_FOUND: u8 = 3;

/// The lowercase kind used in messages, e.g. `testrun/foo created`.
pub fn kind_label(kind: Kind) -> String {
    kind.name().to_ascii_lowercase()
}

/// A named thing that does not exist, found out by ccctl itself (a Recipe a run needs, a log
/// stream): exit code 3 like the server's NotFound.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct NotFound(pub String);

/// Errors already printed by a command that handles several items; carries the exit code.
#[derive(Debug, thiserror::Error)]
#[error("{failed} of the requested operations failed")]
pub struct Reported {
    /// How many items failed.
    pub failed: usize,
    /// The exit code to use.
    pub code: u8,
}

/// Collects per-item failures of multi-item commands (apply, delete): each is printed at once,
/// and the exit code is `3` when every failure was NotFound, else `1`.
#[derive(Debug, Default)]
pub struct Failures {
    failed: usize,
    code: u8,
}

impl Failures {
    /// Prints `error: CONTEXT: ERROR` and remembers the failure.
    pub fn report(&mut self, err: &anyhow::Error, context: &str) {
        eprintln!("error: {context}: {err:#}");
        let code = exit_code_of(err);
        self.code = if self.failed == 0 {
            code
        } else {
            self.code.min(code)
        };
        self.failed += 1;
    }

    /// `Ok` when nothing failed, else a [`Reported`] error.
    pub fn into_result(self) -> anyhow::Result<()> {
        if self.failed == 0 {
            Ok(())
        } else {
            Err(Reported {
                failed: self.failed,
                code: self.code,
            }
            .into())
        }
    }
}

/// The exit code an error maps to.
pub fn exit_code_of(err: &anyhow::Error) -> u8 {
    if let Some(r) = err.downcast_ref::<Reported>() {
        return r.code;
    }
    if err.chain().any(|e| {
        e.downcast_ref::<ApiError>()
            .is_some_and(ApiError::is_not_found)
            || e.is::<NotFound>()
    }) {
        EXIT_NOT_FOUND
    } else {
        EXIT_ERROR
    }
}

/// Whether `err` is a write to a closed pipe (`ccctl get -w | head`), however it was wrapped:
/// that ends the command normally.
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    use std::io::ErrorKind::BrokenPipe;
    err.chain().any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == BrokenPipe)
            || e.downcast_ref::<serde_json::Error>()
                .is_some_and(|j| j.io_error_kind() == Some(BrokenPipe))
    })
}

/// Runs `ccctl` with the process arguments; returns the exit code.
pub async fn main() -> anyhow::Result<ExitCode> {
    let raw = match RawArgs::try_parse() {
        Ok(raw) => raw,
        Err(e) => {
            let _ = e.print();
            return Ok(ExitCode::from(if e.use_stderr() {
                EXIT_USAGE
            } else {
                EXIT_OK
            }));
        }
    };
    let result = match raw.into_config() {
        Ok(config) => run(config).await,
        Err(e) => Err(e),
    };
    Ok(ExitCode::from(match result {
        Ok(()) => EXIT_OK,
        Err(e) if is_broken_pipe(&e) => EXIT_OK,
        Err(e) => {
            if e.downcast_ref::<Reported>().is_none() {
                if e.downcast_ref::<ApiError>().is_some() {
                    eprintln!("{e}");
                } else {
                    eprintln!("error: {e:#}");
                }
            }
            exit_code_of(&e)
        }
    }))
}

macro_rules! for_kind {
    ($kind:expr, $func:ident ( $($arg:expr),* )) => {
        match $kind {
            Kind::Recipe => $func::<columns::RecipeRow>($($arg),*).await,
            Kind::TestRun => $func::<columns::RunRow>($($arg),*).await,
            Kind::ProxyDeployment | Kind::AppDeployment => {
                $func::<columns::DeploymentRow>($($arg),*).await
            }
        }
    };
}

/// Runs a validated command.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let client = Client::new(&config)?;
    match config.command {
        Command::Get {
            kind,
            name,
            output,
            selector,
            watch,
            ignore_not_found,
        } => {
            let req = get::GetRequest {
                kind,
                name: name.as_deref(),
                output,
                selector: selector.as_deref(),
                ignore_not_found,
            };
            use get::get;
            use watch::watch as watch_fn;
            if watch {
                for_kind!(kind, watch_fn(&client, &req))
            } else {
                for_kind!(kind, get(&client, &req))
            }
        }
        Command::Describe { kind, name } => {
            let obj = client.get_value(kind, &name).await?;
            print!("{}", describe::render(kind, &obj, chrono::Utc::now()));
            Ok(())
        }
        Command::Apply { files } => apply::apply(&client, &files).await,
        Command::Delete {
            targets,
            files,
            ignore_not_found,
        } => apply::delete(&client, targets, &files, ignore_not_found).await,
        Command::Logs {
            run,
            stream,
            follow,
        } => {
            let req = logs::LogsRequest {
                run: &run,
                stream: stream.as_deref(),
                follow,
            };
            logs::logs(&client, &req).await
        }
        Command::Artifacts(req) => artifacts::artifacts(&client, &req).await,
        Command::Run(req) => run::run(&client, &req).await,
        Command::Version { client_only } => {
            println!("Client Version: {}", env!("CARGO_PKG_VERSION"));
            if !client_only {
                let v = client.server_version().await?;
                let server = v["version"]
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or(v.to_string());
                println!("Server Version: {server}");
                println!("Server: {}", client.base());
            }
            Ok(())
        }
    }
}
