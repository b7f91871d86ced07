//! `cc-ci stack render|deploy|rm`: the native swarm engine from the command line, with the
//! meaning of `docker stack deploy -c … <stack>` / `docker stack rm <stack>`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::recipe::pipeline::{self, StackError, StackSource};
use crate::recipe::policy::Allowances;
use crate::swarm::StackSpec;
use crate::swarm::apply::{ApplyOptions, apply};
use crate::swarm::compose::compose_files_from_env;
use crate::swarm::converge::{ConvergeOptions, wait};
use crate::swarm::docker::connect;
use crate::swarm::env::EnvFile;
use crate::swarm::remove::{RemoveOptions, remove};

/// Arguments of `cc-ci stack`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Print the Swarm objects a deploy would create, as JSON (nothing is sent to Docker).
    Render(SourceArgs),
    /// Create or update the stack, then wait until it has converged.
    Deploy(DeployArgs),
    /// Remove the stack and wait until its containers are gone.
    Rm(RmArgs),
}

/// Where a stack comes from: compose files, an env file, and conversion options.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct SourceArgs {
    /// Compose file (repeatable, later files override earlier ones). Default: `COMPOSE_FILE`
    /// from the env file (else `compose.yml`), relative to the env file's directory.
    #[arg(short = 'c', long = "compose-file")]
    pub compose_files: Vec<PathBuf>,
    /// A `.env` file: its variables (over the process environment) drive interpolation.
    #[arg(long)]
    pub env_file: Option<PathBuf>,
    /// Use DNS round-robin endpoints for services without published ingress ports (for kernels
    /// without IPVS, where virtual IPs do not route).
    #[arg(long)]
    pub dnsrr: bool,
    /// Extra label `KEY=VALUE` put on every object (repeatable).
    #[arg(long = "label", value_parser = parse_label)]
    pub labels: Vec<(String, String)>,
    /// A compose policy exception, as in a Recipe's `allow` (`KEY` or `KEY:VALUE`, e.g.
    /// `cap_add:NET_ADMIN`, `bind:/srv/data`, `ports:8080`; repeatable). Without it, what an
    /// untrusted recipe may not ask for (privileged, capabilities, host mounts and ports, other
    /// stacks' objects, …) is refused, exactly as in a test run.
    #[arg(long = "allow")]
    pub allow: Vec<String>,
    /// The stack name (namespace).
    pub stack: String,
}

#[derive(Debug, clap::Args)]
struct DeployArgs {
    #[command(flatten)]
    source: SourceArgs,
    /// Remove services of the stack that are no longer in the compose files.
    #[arg(long)]
    prune: bool,
    /// Converge timeout in seconds (default: the `coop-cloud.<stack>.timeout` label, else 300).
    #[arg(long)]
    timeout: Option<u64>,
}

#[derive(Debug, clap::Args)]
struct RmArgs {
    /// Also remove the stack's volumes (their data is lost).
    #[arg(long)]
    volumes: bool,
    /// How long to wait for containers to go, in seconds.
    #[arg(long, default_value_t = 120)]
    timeout: u64,
    /// The stack name.
    stack: String,
}

fn parse_label(s: &str) -> Result<(String, String), String> {
    let (k, v) = s.split_once('=').unwrap_or((s, ""));
    if k.is_empty() {
        return Err(format!("label {s:?} has no key"));
    }
    Ok((k.to_owned(), v.to_owned()))
}

/// Runs `cc-ci stack`.
pub async fn run(args: Args) -> anyhow::Result<()> {
    match args.command {
        Command::Render(source) => {
            let stack = render(&source)?;
            for warning in &stack.warnings {
                eprintln!("warning: {warning}");
            }
            println!("{}", serde_json::to_string_pretty(&stack)?);
            Ok(())
        }
        Command::Deploy(deploy) => run_deploy(deploy).await,
        Command::Rm(rm) => {
            let started = Instant::now();
            let docker = connect().await?;
            let opts = RemoveOptions {
                volumes: rm.volumes,
                timeout: Duration::from_secs(rm.timeout),
            };
            let report = remove(&docker, &rm.stack, &opts).await?;
            if report.is_empty() {
                eprintln!("nothing to remove for stack {}", rm.stack);
            }
            for (kind, names) in [
                ("service", &report.services),
                ("network", &report.networks),
                ("secret", &report.secrets),
                ("config", &report.configs),
                ("volume", &report.volumes),
            ] {
                names.iter().for_each(|n| eprintln!("removed {kind} {n}"));
            }
            eprintln!("removed stack {} in {:.2?}", rm.stack, started.elapsed());
            Ok(())
        }
    }
}

async fn run_deploy(deploy: DeployArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let stack = render(&deploy.source)?;
    for warning in &stack.warnings {
        eprintln!("warning: {warning}");
    }
    let docker = connect().await?;
    let report = apply(
        &docker,
        &stack,
        &ApplyOptions {
            prune: deploy.prune,
        },
    )
    .await?;
    for (verb, names) in [
        ("created", &report.created),
        ("unchanged", &report.unchanged),
        ("pruned", &report.pruned),
    ] {
        names.iter().for_each(|n| eprintln!("{verb} service {n}"));
    }
    for name in &report.updated {
        let paths = report.changes.get(name).cloned().unwrap_or_default();
        eprintln!("updated service {name} (changed: {})", paths.join(", "));
    }
    let opts = ConvergeOptions {
        timeout: deploy.timeout.map(Duration::from_secs),
        ..Default::default()
    };
    wait(&docker, &stack.name, &opts, |line| eprintln!("  {line}")).await?;
    eprintln!(
        "stack {} converged in {:.2?}",
        stack.name,
        started.elapsed()
    );
    Ok(())
}

/// Builds a stack the way `cc-ci stack render` does, through the same pipeline as a test run's
/// deploy ([`crate::recipe::pipeline`]): the env file (over the process environment, with
/// `STACK_NAME` defaulting to the stack name), the compose files — every file they name must
/// stay inside the env file's directory (or the first `-c` file's) — the compose policy
/// with `--allow`'s exceptions, conversion.
pub fn render(source: &SourceArgs) -> anyhow::Result<StackSpec> {
    let mut env: BTreeMap<String, String> = std::env::vars().collect();
    env.entry("STACK_NAME".to_owned())
        .or_insert_with(|| source.stack.clone());
    let mut env_dir = PathBuf::from(".");
    if let Some(path) = &source.env_file {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading env file {}", path.display()))?;
        let file = EnvFile::parse_with_base(&text, &env)
            .with_context(|| format!("env file {}", path.display()))?;
        env.extend(file.to_map());
        env_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        if env_dir.as_os_str().is_empty() {
            env_dir = PathBuf::from(".");
        }
    }
    let (dir, files) = if source.compose_files.is_empty() {
        (env_dir, compose_files_from_env(&env))
    } else {
        // Like compose's project directory: the first file's directory, which every file
        // (the other `-c` files included) must stay inside.
        let files: Vec<PathBuf> = source
            .compose_files
            .iter()
            .map(std::path::absolute)
            .collect::<Result<_, _>>()
            .context("resolving the compose file paths")?;
        let dir = files[0].parent().map(Path::to_path_buf).unwrap_or_default();
        let files = files
            .iter()
            .map(|f| {
                f.strip_prefix(&dir)
                    .unwrap_or(f)
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        (dir, files)
    };
    let allow = Allowances::new(&source.allow);
    let src = StackSource {
        dir: &dir,
        files: &files,
        env: &env,
        stack: &source.stack,
        labels: source.labels.iter().cloned().collect(),
        force_dnsrr: source.dnsrr,
        allow: &allow,
        app: None,
        secrets: &[],
    };
    match pipeline::build(&src) {
        Ok(spec) => Ok(spec),
        Err(StackError::Compose(e)) => Err(e).context("loading compose files"),
        Err(StackError::Convert(e)) => Err(e).context(format!("converting {}", files.join(":"))),
        Err(e @ StackError::Policy(_)) => Err(e.into()),
    }
}
