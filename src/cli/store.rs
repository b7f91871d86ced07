//! `cc-ci store export|import`: back up the record store to JSON lines and restore it.
//!
//! The store lives at `<state-dir>/store` and is locked while `cc-ci serve` runs, so both
//! commands need the controller stopped; they say so instead of waiting.

use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use crate::store::{SledStore, StoreError, export, import};

/// Arguments of `cc-ci store`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Write every record as one JSON line, to a file or stdout.
    Export {
        /// State directory of the controller (the store is `<state-dir>/store`).
        #[arg(long, default_value = ".cc-ci")]
        state_dir: PathBuf,
        /// Write here instead of stdout (written to a temporary file, then renamed).
        #[arg(short = 'o', long)]
        output: Option<PathBuf>,
    },
    /// Restore records from an export into the store (empty, unless --replace).
    Import {
        /// State directory of the controller (the store is `<state-dir>/store`).
        #[arg(long, default_value = ".cc-ci")]
        state_dir: PathBuf,
        /// Overwrite records that exist already.
        #[arg(long)]
        replace: bool,
        /// The JSON-lines file written by `cc-ci store export`.
        file: PathBuf,
    },
}

/// The store directory inside a state directory.
pub fn store_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("store")
}

fn open(dir: &Path) -> anyhow::Result<SledStore> {
    match SledStore::open(dir) {
        Ok(store) => Ok(store),
        Err(e @ StoreError::Locked { .. }) => {
            Err(e).context("stop `cc-ci serve` before exporting or importing")
        }
        Err(e) => Err(e.into()),
    }
}

/// Runs `cc-ci store`.
pub async fn run(args: Args) -> anyhow::Result<()> {
    match args.command {
        Command::Export { state_dir, output } => {
            let dir = store_dir(&state_dir);
            if !dir.exists() {
                bail!("there is no store at {} (check --state-dir)", dir.display());
            }
            let store = open(&dir)?;
            match output {
                None => {
                    let mut out = BufWriter::new(std::io::stdout().lock());
                    let n = export(&store, &mut out)?;
                    eprintln!("exported {n} records");
                }
                Some(path) => {
                    let tmp = path.with_extension("partial");
                    let file = std::fs::File::create(&tmp)
                        .with_context(|| format!("creating {}", tmp.display()))?;
                    let mut out = BufWriter::new(file);
                    let n = export(&store, &mut out)?;
                    out.into_inner()
                        .map_err(|e| e.into_error())?
                        .sync_all()
                        .with_context(|| format!("writing {}", tmp.display()))?;
                    std::fs::rename(&tmp, &path)
                        .with_context(|| format!("renaming to {}", path.display()))?;
                    eprintln!("exported {n} records to {}", path.display());
                }
            }
            std::io::stdout().flush()?;
            Ok(())
        }
        Command::Import {
            state_dir,
            replace,
            file,
        } => {
            let input = std::fs::File::open(&file)
                .with_context(|| format!("opening {}", file.display()))?;
            let store = open(&store_dir(&state_dir))?;
            let summary = import(&store, BufReader::new(input), replace)
                .with_context(|| format!("importing {}", file.display()))?;
            eprintln!(
                "imported {} records ({} replaced)",
                summary.records, summary.replaced
            );
            Ok(())
        }
    }
}
