//! A run's own directory under the state dir (`<state_dir>/runs/<run>/`): the recipe
//! checkouts (head and previous version), the generated secrets file, and the backup archives.
//! Every accessor re-creates what is missing, so a step can run again after a crash or after
//! the directory was wiped.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::recipe::snapshot::Archive;
use crate::recipe::source::{self, Checkout, FetchOptions, SourceError};

/// Limit of each git command of a checkout.
const GIT_TIMEOUT: Duration = Duration::from_secs(300);

/// Why the workspace could not provide something.
#[derive(Debug, thiserror::Error)]
pub enum WorkspaceError {
    /// Fetching or checking out failed.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// Local files.
    #[error("{path}: {message}")]
    Io {
        /// The path.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> WorkspaceError + '_ {
    move |e| WorkspaceError::Io {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

/// The directory of one run.
#[derive(Clone, Debug)]
pub struct Workspace {
    dir: PathBuf,
}

impl Workspace {
    /// The workspace in `run_dir` (see [`crate::runlog::RunLogs::run_dir`]).
    pub fn new(run_dir: PathBuf) -> Workspace {
        Workspace { dir: run_dir }
    }

    /// The run's directory itself (where [`crate::recipe::facts`] are recorded).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn checkouts(&self) -> PathBuf {
        self.dir.join("workspace")
    }

    /// The run's generated secrets (mode 0600).
    pub fn secrets_file(&self) -> PathBuf {
        self.dir.join("secrets.json")
    }

    /// Where backups are archived.
    pub fn backup_dir(&self) -> PathBuf {
        self.dir.join("backup")
    }

    fn archives_file(&self) -> PathBuf {
        self.dir.join("backup-archives.json")
    }

    /// The head checkout of `git_ref` from `url`: reused when present at `expect` (the
    /// pinned commit, once known), else fetched afresh (and the previous version with it).
    pub async fn head(
        &self,
        url: &str,
        git_ref: &str,
        expect: Option<&str>,
    ) -> Result<Checkout, WorkspaceError> {
        let dir = self.checkouts().join("head");
        if let Some(commit) = expect
            && dir.join(".git").exists()
            && let Ok(c) = Checkout::open(&dir, GIT_TIMEOUT).await
            && c.head == commit
        {
            return Ok(c);
        }
        remove_dir(&self.checkouts()).await?;
        let opts = FetchOptions {
            depth: Some(1),
            timeout: GIT_TIMEOUT,
        };
        Ok(source::fetch(url, expect.unwrap_or(git_ref), &dir, &opts).await?)
    }

    /// The checkout of `tag` (a tag fetched along with `head`), taken from the head checkout.
    pub async fn previous(&self, head: &Checkout, tag: &str) -> Result<Checkout, WorkspaceError> {
        let dir = self.checkouts().join("previous");
        let want = head.tags.iter().find(|t| t.name == tag).map(|t| &t.commit);
        if dir.join(".git").exists()
            && let Ok(c) = Checkout::open(&dir, GIT_TIMEOUT).await
            && Some(&c.head) == want
        {
            return Ok(c);
        }
        remove_dir(&dir).await?;
        let opts = FetchOptions {
            depth: Some(1),
            timeout: GIT_TIMEOUT,
        };
        let origin = head.dir.to_string_lossy().into_owned();
        Ok(source::fetch(&origin, &format!("refs/tags/{tag}"), &dir, &opts).await?)
    }

    /// Keeps the archives of a backup for the restore step.
    pub fn save_archives(&self, archives: &[Archive]) -> Result<(), WorkspaceError> {
        let path = self.archives_file();
        let body = serde_json::to_vec_pretty(archives).map_err(|e| WorkspaceError::Io {
            path: path.clone(),
            message: e.to_string(),
        })?;
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, body).map_err(io(&tmp))?;
        std::fs::rename(&tmp, &path).map_err(io(&path))
    }

    /// The archives of the last backup.
    pub fn archives(&self) -> Result<Vec<Archive>, WorkspaceError> {
        let path = self.archives_file();
        let bytes = std::fs::read(&path).map_err(io(&path))?;
        serde_json::from_slice(&bytes).map_err(|e| WorkspaceError::Io {
            path,
            message: e.to_string(),
        })
    }

    /// Removes the checkouts, the secrets file and the backups (logs stay). Idempotent.
    pub async fn clean(&self) -> Result<(), WorkspaceError> {
        remove_dir(&self.checkouts()).await?;
        remove_dir(&self.backup_dir()).await?;
        for f in [self.secrets_file(), self.archives_file()] {
            match tokio::fs::remove_file(&f).await {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io(&f)(e)),
            }
        }
        Ok(())
    }
}

async fn remove_dir(dir: &Path) -> Result<(), WorkspaceError> {
    match tokio::fs::remove_dir_all(dir).await {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io(dir)(e)),
    }
}
