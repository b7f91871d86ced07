//! `ccctl`'s raw command line (clap) and the validated [`Config`] the commands consume.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand, ValueEnum};

use super::run::RunRequest;
use crate::api::{Kind, StageKind};

/// The default API address: the address `cc-ci serve` listens on by default.
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:8080";

/// The token file `cc-ci serve` writes by default, relative to the working directory.
pub const DEFAULT_TOKEN_FILE: &str = ".cc-ci/api-token";

/// Raw command line, exactly as clap parsed it.
#[derive(Debug, Parser)]
#[command(
    name = "ccctl",
    version,
    about = "kubectl-style client of the cc-ci API",
    after_help = "Exit codes: 0 success, 1 error (server, network, invalid input), 2 usage, 3 not found."
)]
pub struct RawArgs {
    /// Address of the cc-ci API.
    #[arg(long, global = true, env = "CCCTL_SERVER", default_value = DEFAULT_SERVER)]
    pub server: String,
    /// Bearer token for writes (prefer --token-file or CCCTL_TOKEN_FILE: arguments are visible in `ps`).
    #[arg(long, global = true, env = "CCCTL_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// File holding the bearer token for writes [default: ./.cc-ci/api-token if it exists].
    #[arg(long, global = true, env = "CCCTL_TOKEN_FILE")]
    pub token_file: Option<String>,
    /// Timeout of each request, in seconds (not applied to watches).
    #[arg(long, global = true, default_value_t = 30)]
    pub request_timeout: u64,
    /// What to do.
    #[command(subcommand)]
    pub command: RawCommand,
}

/// Output formats of `get`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// The default aligned table.
    #[value(skip)]
    Table,
    /// The table with more columns.
    Wide,
    /// The object (or a List) as JSON.
    Json,
    /// The object (or a List) as YAML.
    Yaml,
    /// `kind/name` per object.
    Name,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum RawCommand {
    /// List records of a kind, or show one.
    Get {
        /// Kind: recipes (rc), testruns (runs, tr), proxydeployments (proxies, pd), appdeployments (apps, ad).
        kind: String,
        /// Show only this record.
        name: Option<String>,
        /// Output format.
        #[arg(short, long, value_enum)]
        output: Option<Output>,
        /// Label selector, e.g. `app=x,tier=y`.
        #[arg(short = 'l', long)]
        selector: Option<String>,
        /// After listing, keep printing changes as they happen.
        #[arg(short, long)]
        watch: bool,
        /// Treat a missing NAME as success with no output.
        #[arg(long)]
        ignore_not_found: bool,
    },
    /// Show one record in detail.
    Describe {
        /// Kind (see `get`).
        kind: String,
        /// The record's name.
        name: String,
    },
    /// Create or update records from manifests.
    Apply {
        /// A YAML (multi-document) or JSON file, a directory of *.yaml/*.yml/*.json, or `-` for stdin.
        #[arg(short, long = "filename", required = true)]
        file: Vec<PathBuf>,
    },
    /// Delete records by name, or those in manifests.
    Delete {
        /// Kind (see `get`); omit with -f.
        kind: Option<String>,
        /// Names to delete.
        names: Vec<String>,
        /// Delete the records named in these manifests.
        #[arg(short, long = "filename")]
        file: Vec<PathBuf>,
        /// Treat missing records as success.
        #[arg(long)]
        ignore_not_found: bool,
    },
    /// Print a test run's logs (every stream in plan order), or follow them.
    Logs {
        /// Kind: only `run` (testrun, runs, tr) has logs.
        kind: String,
        /// The run's name.
        name: String,
        /// Keep printing new output until the run is over (lines prefixed `[stream] ` unless
        /// --stream is given).
        #[arg(short, long)]
        follow: bool,
        /// Only this stream (`run`, `install`, `upgrade`, `backup-restore`, …).
        #[arg(long, value_name = "S")]
        stream: Option<String>,
    },
    /// List a test run's artifacts (JUnit XML, screenshots, traces, page HTML), print one, or
    /// download one or all with -o DIR.
    Artifacts {
        /// Kind: only `run` (testrun, runs, tr) has artifacts.
        kind: String,
        /// The run's name.
        name: String,
        /// One artifact, as listed (printed to stdout unless -o is given).
        path: Option<String>,
        /// Download into this directory (keeping the listed paths).
        #[arg(short, long, value_name = "DIR")]
        output: Option<std::path::PathBuf>,
    },
    /// Start a manual test run of a recipe; prints the generated run name.
    Run {
        /// Name of the Recipe record.
        recipe: String,
        /// Commit SHA or ref to test.
        #[arg(long = "ref", value_name = "REF")]
        git_ref: String,
        /// Git repository to fetch from instead of the Recipe's (skips the Recipe check).
        #[arg(long, value_name = "URL")]
        git: Option<String>,
        /// Pull request number the ref belongs to.
        #[arg(long, value_name = "N")]
        pr: Option<u64>,
        /// A stage to run (repeatable): install, upgrade, backup-restore [default: the Recipe's].
        #[arg(long = "stage", value_name = "S", value_parser = parse_stage)]
        stages: Vec<StageKind>,
        /// Version to upgrade from instead of the previous release tag.
        #[arg(long, value_name = "V")]
        upgrade_from: Option<String>,
        /// After a failing step, keep the app deployed this long (e.g. 30m; at most 24h).
        #[arg(long, value_name = "DURATION", value_parser = parse_keep_flag)]
        keep_on_failure: Option<String>,
        /// Follow the run's logs until it is over (like `logs -f`).
        #[arg(short, long)]
        follow: bool,
    },
    /// Print the client and server versions.
    Version {
        /// Only the client version; do not contact the server.
        #[arg(long)]
        client: bool,
    },
}

/// A bearer token; never printed (its `Debug` is redacted).
#[derive(Clone)]
pub struct Token(String);

impl Token {
    /// The secret value, for the `Authorization` header only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// Where the token came from, for error hints.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenSource {
    /// `--token` or `CCCTL_TOKEN`.
    Value,
    /// A token file.
    File(PathBuf),
    /// No token found.
    None,
}

/// The validated configuration every command consumes.
#[derive(Debug)]
pub struct Config {
    /// Base URL without a trailing slash, e.g. `http://127.0.0.1:8080`.
    pub server: String,
    /// Token for writes, if any.
    pub token: Option<Token>,
    /// Where the token came from.
    pub token_source: TokenSource,
    /// Per-request timeout (not for watches).
    pub request_timeout: Duration,
    /// The command to run.
    pub command: Command,
}

/// A validated command.
#[derive(Debug)]
pub enum Command {
    /// `get`.
    Get {
        /// Which kind.
        kind: Kind,
        /// One record, or all.
        name: Option<String>,
        /// Output format.
        output: Output,
        /// Label selector passed to the server.
        selector: Option<String>,
        /// Stream changes.
        watch: bool,
        /// Missing NAME is not an error.
        ignore_not_found: bool,
    },
    /// `describe`.
    Describe {
        /// Which kind.
        kind: Kind,
        /// Which record.
        name: String,
    },
    /// `apply -f`.
    Apply {
        /// Files, directories or `-`.
        files: Vec<PathBuf>,
    },
    /// `delete`.
    Delete {
        /// Records named on the command line.
        targets: Vec<(Kind, String)>,
        /// Manifests naming more records.
        files: Vec<PathBuf>,
        /// Missing records are not an error.
        ignore_not_found: bool,
    },
    /// `logs`.
    Logs {
        /// The run.
        run: String,
        /// Only this stream.
        stream: Option<String>,
        /// Follow until the run is over.
        follow: bool,
    },
    /// `artifacts`.
    Artifacts(super::artifacts::ArtifactsRequest),
    /// `run`.
    Run(RunRequest),
    /// `version`.
    Version {
        /// Skip the server.
        client_only: bool,
    },
}

/// Checks a `--keep-on-failure` value.
pub fn parse_keep_flag(s: &str) -> Result<String, String> {
    crate::api::parse_keep(s).map(|_| s.trim().to_string())
}

/// Parses a `--stage` value.
pub fn parse_stage(s: &str) -> Result<StageKind, String> {
    StageKind::ALL
        .into_iter()
        .find(|k| k.as_str() == s)
        .ok_or_else(|| {
            let known: Vec<&str> = StageKind::ALL.iter().map(|k| k.as_str()).collect();
            format!("unknown stage {s:?}; stages: {}", known.join(", "))
        })
}

/// Parses a kind argument, with a message listing what is accepted.
pub fn parse_kind(s: &str) -> anyhow::Result<Kind> {
    Kind::parse(s).with_context(|| {
        let known: Vec<String> = Kind::ALL
            .iter()
            .map(|k| format!("{} ({})", k.plural(), k.aliases().join(", ")))
            .collect();
        format!("unknown kind {s:?}; known kinds: {}", known.join("; "))
    })
}

/// Normalises a server address: adds `http://` when no scheme is given, drops trailing slashes.
pub fn normalize_server(s: &str) -> anyhow::Result<String> {
    let s = s.trim().trim_end_matches('/');
    if s.is_empty() {
        bail!("--server must not be empty");
    }
    let url = if s.contains("://") {
        s.to_string()
    } else {
        format!("http://{s}")
    };
    if url.starts_with("https://") {
        bail!(
            "--server {url}: this ccctl is built without TLS; use http:// (e.g. through an SSH tunnel or a local reverse proxy)"
        );
    }
    reqwest::Url::parse(&url).with_context(|| format!("--server {url:?} is not a valid URL"))?;
    Ok(url)
}

fn read_token_file(path: &Path) -> anyhow::Result<Token> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading token file {}", path.display()))?;
    let token = text.trim();
    if token.is_empty() {
        bail!("token file {} is empty", path.display());
    }
    Ok(Token(token.to_string()))
}

impl RawArgs {
    /// Validates the raw arguments into a [`Config`]; reads the token file.
    pub fn into_config(self) -> anyhow::Result<Config> {
        let server = normalize_server(&self.server)?;
        let (token, token_source) = match (self.token, self.token_file) {
            (Some(t), _) if !t.trim().is_empty() => {
                (Some(Token(t.trim().to_string())), TokenSource::Value)
            }
            (_, Some(path)) if !path.is_empty() => {
                let path = PathBuf::from(path);
                (Some(read_token_file(&path)?), TokenSource::File(path))
            }
            _ => {
                let default = PathBuf::from(DEFAULT_TOKEN_FILE);
                if default.is_file() {
                    (Some(read_token_file(&default)?), TokenSource::File(default))
                } else {
                    (None, TokenSource::None)
                }
            }
        };
        let command = match self.command {
            RawCommand::Get {
                kind,
                name,
                output,
                selector,
                watch,
                ignore_not_found,
            } => Command::Get {
                kind: parse_kind(&kind)?,
                name,
                output: output.unwrap_or(Output::Table),
                selector,
                watch,
                ignore_not_found,
            },
            RawCommand::Describe { kind, name } => Command::Describe {
                kind: parse_kind(&kind)?,
                name,
            },
            RawCommand::Apply { file } => Command::Apply { files: file },
            RawCommand::Delete {
                kind,
                names,
                file,
                ignore_not_found,
            } => {
                let targets = match kind {
                    Some(k) => {
                        let kind = parse_kind(&k)?;
                        if names.is_empty() {
                            bail!(
                                "delete {k}: name at least one record (deleting all is not supported)"
                            );
                        }
                        names.into_iter().map(|n| (kind, n)).collect()
                    }
                    None => Vec::new(),
                };
                if targets.is_empty() && file.is_empty() {
                    bail!("delete: give KIND NAME... or -f FILE");
                }
                Command::Delete {
                    targets,
                    files: file,
                    ignore_not_found,
                }
            }
            RawCommand::Logs {
                kind,
                name,
                follow,
                stream,
            } => {
                if parse_kind(&kind)? != Kind::TestRun {
                    bail!("logs {kind}: only test runs have logs (ccctl logs run NAME)");
                }
                Command::Logs {
                    run: name,
                    stream,
                    follow,
                }
            }
            RawCommand::Artifacts {
                kind,
                name,
                path,
                output,
            } => {
                if parse_kind(&kind)? != Kind::TestRun {
                    bail!(
                        "artifacts {kind}: only test runs have artifacts (ccctl artifacts run NAME)"
                    );
                }
                Command::Artifacts(super::artifacts::ArtifactsRequest {
                    run: name,
                    path,
                    out: output,
                })
            }
            RawCommand::Run {
                recipe,
                git_ref,
                git,
                pr,
                stages,
                upgrade_from,
                keep_on_failure,
                follow,
            } => Command::Run(RunRequest {
                recipe,
                git_ref,
                git,
                pr,
                stages,
                upgrade_from,
                keep_on_failure,
                follow,
            }),
            RawCommand::Version { client } => Command::Version {
                client_only: client,
            },
        };
        Ok(Config {
            server,
            token,
            token_source,
            request_timeout: Duration::from_secs(self.request_timeout.max(1)),
            command,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_addresses_are_normalised() {
        assert_eq!(
            normalize_server("127.0.0.1:9/").unwrap(),
            "http://127.0.0.1:9"
        );
        assert_eq!(
            normalize_server("http://ci.example.org/").unwrap(),
            "http://ci.example.org"
        );
        assert!(normalize_server("https://ci.example.org").is_err());
        assert!(normalize_server("").is_err());
    }

    #[test]
    fn kinds_are_found_by_alias_and_unknown_kinds_list_the_known_ones() {
        assert_eq!(parse_kind("tr").unwrap(), Kind::TestRun);
        assert_eq!(parse_kind("proxies").unwrap(), Kind::ProxyDeployment);
        let err = parse_kind("pods").unwrap_err().to_string();
        assert!(err.contains("recipes (recipe, recipes, rc)"), "{err}");
    }

    #[test]
    fn token_debug_output_is_redacted() {
        let t = Token("s3cret".into());
        assert!(!format!("{t:?}").contains("s3cret"));
    }
}
