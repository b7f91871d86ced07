//! Fetching a recipe repository at one commit into a run's own workspace directory, with the
//! `git` command line (never a checkout shared between runs).
//!
//! A fetch is `git init` + one `git fetch --depth N` of the wanted ref (a full or abbreviated
//! SHA, a branch, a tag, or `refs/pull/N/head`) together with every tag, then a detached
//! checkout. Tags come along because versions are tags ([`super::version`]). Servers that refuse
//! a SHA in a fetch request get a second, full fetch of every branch and pull ref. Every git
//! command runs with a timeout, no terminal prompts and no credential helpers; error messages
//! carry git's stderr with any `user:password@` in URLs replaced by `***@`.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::LazyLock;
use std::time::Duration;

use regex::Regex;
use tokio::process::Command;

use super::version::TagRef;

/// Local ref the fetched head is stored under.
const HEAD_REF: &str = "refs/ccci/head";

/// How a fetch behaves.
#[derive(Clone, Debug)]
pub struct FetchOptions {
    /// History depth to fetch (`None` = full history).
    pub depth: Option<u32>,
    /// Limit for each git command.
    pub timeout: Duration,
}

impl Default for FetchOptions {
    fn default() -> Self {
        FetchOptions {
            depth: Some(1),
            timeout: Duration::from_secs(120),
        }
    }
}

/// Why a fetch failed. Messages never contain credentials embedded in the URL.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The workspace directory exists and is not empty: workspaces are never reused.
    #[error("workspace {0} already exists and is not empty")]
    WorkspaceNotEmpty(PathBuf),
    /// Filesystem trouble around the workspace.
    #[error("workspace {path}: {source}")]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The ref is empty or could be read as a command-line option.
    #[error("{0:?} is not a usable git ref")]
    BadRef(String),
    /// `git` could not be started.
    #[error("could not run git: {0}")]
    Spawn(std::io::Error),
    /// A git command exceeded its time limit.
    #[error("git {command} timed out after {seconds}s")]
    Timeout {
        /// The subcommand, e.g. `fetch`.
        command: String,
        /// The limit.
        seconds: u64,
    },
    /// A git command failed.
    #[error("git {command} failed ({status}): {stderr}")]
    Git {
        /// The subcommand and its redacted arguments.
        command: String,
        /// Exit status.
        status: String,
        /// Its stderr, redacted and trimmed.
        stderr: String,
    },
    /// The ref does not exist in the repository.
    #[error("ref {git_ref:?} not found in {url}")]
    RefNotFound {
        /// The requested ref.
        git_ref: String,
        /// The repository URL, redacted.
        url: String,
    },
}

/// A recipe checked out at one commit.
#[derive(Clone, Debug)]
pub struct Checkout {
    /// The workspace directory (the work tree; `.git` inside).
    pub dir: PathBuf,
    /// Full SHA of the checked-out commit.
    pub head: String,
    /// Every tag of the repository with the commit it points at.
    pub tags: Vec<TagRef>,
}

static URL_CREDENTIALS: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"([a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s]+@").expect("valid regex"));

/// Replaces `user:password@` (or a bare token) after a URL scheme with `***@`.
pub fn redact_url(text: &str) -> String {
    URL_CREDENTIALS.replace_all(text, "${1}***@").into_owned()
}

fn is_full_sha(s: &str) -> bool {
    (s.len() == 40 || s.len() == 64) && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn is_abbreviated_sha(s: &str) -> bool {
    (4..40).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Fetches `git_ref` of the repository at `url` into `dest` (created; must be absent or
/// empty) and checks it out detached.
pub async fn fetch(
    url: &str,
    git_ref: &str,
    dest: &Path,
    opts: &FetchOptions,
) -> Result<Checkout, SourceError> {
    if git_ref.is_empty()
        || git_ref.starts_with('-')
        || git_ref.contains(|c: char| c.is_whitespace() || c.is_control() || c == ':')
    {
        return Err(SourceError::BadRef(git_ref.to_string()));
    }
    prepare_workspace(dest).await?;
    let git = Git {
        dir: dest,
        timeout: opts.timeout,
    };
    git.run(&["init", "-q"]).await?;
    // `--` before every user value: a URL or ref can never be read as an option.
    git.run(&["remote", "add", "--", "origin", url]).await?;

    let depth = opts.depth.map(|d| format!("--depth={}", d.max(1)));
    let tags = "+refs/tags/*:refs/tags/*";
    // Servers only accept full object names in a fetch request; a branch or tag name is
    // resolved by git on the remote side.
    let direct = (!is_abbreviated_sha(git_ref)).then(|| git_ref.to_string());
    let mut fetched = false;
    if let Some(src) = direct {
        let spec = format!("+{src}:{HEAD_REF}");
        let mut args = vec!["fetch", "-q", "--no-tags"];
        args.extend(depth.as_deref());
        args.extend(["--", "origin", spec.as_str(), tags]);
        match git.run(&args).await {
            Ok(_) => fetched = true,
            Err(SourceError::Git { .. }) if looks_like_sha(git_ref) => {}
            Err(SourceError::Git { stderr, .. }) if missing_ref(&stderr) => {
                return Err(SourceError::RefNotFound {
                    git_ref: git_ref.to_string(),
                    url: redact_url(url),
                });
            }
            Err(e) => return Err(e),
        }
    }
    if !fetched {
        // The server refused a SHA (or it was abbreviated): fetch everything reachable from
        // branches and pull requests, then look the commit up locally.
        git.run(&[
            "fetch",
            "-q",
            "--no-tags",
            "--",
            "origin",
            "+refs/heads/*:refs/remotes/origin/*",
            "+refs/pull/*/head:refs/remotes/origin/pull/*",
            tags,
        ])
        .await?;
        let spec = format!("{git_ref}^{{commit}}");
        let sha = git
            .run(&["rev-parse", "-q", "--verify", &spec])
            .await
            .map_err(|_| SourceError::RefNotFound {
                git_ref: git_ref.to_string(),
                url: redact_url(url),
            })?;
        git.run(&["update-ref", HEAD_REF, sha.trim()]).await?;
    }
    git.run(&[
        "-c",
        "advice.detachedHead=false",
        "checkout",
        "-q",
        "--detach",
        HEAD_REF,
    ])
    .await?;
    let head_spec = format!("{HEAD_REF}^{{commit}}");
    let head = git
        .run(&["rev-parse", &head_spec])
        .await?
        .trim()
        .to_string();
    let tags = list_tags(&git).await?;
    Ok(Checkout {
        dir: dest.to_path_buf(),
        head,
        tags,
    })
}

impl Checkout {
    /// Opens a checkout made earlier by [`fetch`] or [`Checkout::worktree`] (e.g. after a
    /// controller restart): its checked-out commit and its tags.
    pub async fn open(dir: &Path, timeout: Duration) -> Result<Checkout, SourceError> {
        let git = Git { dir, timeout };
        let head = git.run(&["rev-parse", "HEAD"]).await?.trim().to_string();
        let tags = list_tags(&git).await?;
        Ok(Checkout {
            dir: dir.to_path_buf(),
            head,
            tags,
        })
    }

    /// Checks out `rev` (a tag or a SHA present in this checkout) into a new work tree at
    /// `dest`, sharing this checkout's objects; used for the previous version of an upgrade.
    pub async fn worktree(
        &self,
        rev: &str,
        dest: &Path,
        timeout: Duration,
    ) -> Result<Checkout, SourceError> {
        if rev.is_empty() || rev.starts_with('-') {
            return Err(SourceError::BadRef(rev.to_string()));
        }
        if let Some(parent) = dest.parent() {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(|source| SourceError::Io {
                    path: parent.to_path_buf(),
                    source,
                })?;
        }
        let git = Git {
            dir: &self.dir,
            timeout,
        };
        let spec = format!("{rev}^{{commit}}");
        let sha = git
            .run(&["rev-parse", "-q", "--verify", &spec])
            .await
            .map_err(|_| SourceError::RefNotFound {
                git_ref: rev.to_string(),
                url: self.dir.display().to_string(),
            })?;
        let sha = sha.trim().to_string();
        let dest = std::path::absolute(dest).map_err(|source| SourceError::Io {
            path: dest.to_path_buf(),
            source,
        })?;
        let dest_text = dest.to_string_lossy().into_owned();
        git.run(&["worktree", "add", "-q", "--detach", "--", &dest_text, &sha])
            .await?;
        Ok(Checkout {
            dir: dest,
            head: sha,
            tags: self.tags.clone(),
        })
    }
}

fn looks_like_sha(s: &str) -> bool {
    is_full_sha(s) || is_abbreviated_sha(s)
}

fn missing_ref(stderr: &str) -> bool {
    stderr.contains("couldn't find remote ref") || stderr.contains("not our ref")
}

async fn prepare_workspace(dest: &Path) -> Result<(), SourceError> {
    let io = |source| SourceError::Io {
        path: dest.to_path_buf(),
        source,
    };
    match tokio::fs::read_dir(dest).await {
        Ok(mut entries) => {
            if entries.next_entry().await.map_err(io)?.is_some() {
                return Err(SourceError::WorkspaceNotEmpty(dest.to_path_buf()));
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            tokio::fs::create_dir_all(dest).await.map_err(io)
        }
        Err(e) => Err(io(e)),
    }
}

async fn list_tags(git: &Git<'_>) -> Result<Vec<TagRef>, SourceError> {
    let out = git
        .run(&[
            "for-each-ref",
            "--format=%(refname:strip=2) %(objectname) %(*objectname)",
            "refs/tags",
        ])
        .await?;
    Ok(out
        .lines()
        .filter_map(|line| {
            let mut parts = line.split_whitespace();
            let name = parts.next()?;
            let object = parts.next()?;
            // Annotated tags: the peeled commit; lightweight ones: the object itself.
            let commit = parts.next().unwrap_or(object);
            Some(TagRef {
                name: name.to_string(),
                commit: commit.to_string(),
            })
        })
        .collect())
}

/// One repository directory and the time limit for each command run in it.
struct Git<'a> {
    dir: &'a Path,
    timeout: Duration,
}

impl Git<'_> {
    /// Runs `git <args>` in the directory and returns its stdout.
    async fn run(&self, args: &[&str]) -> Result<String, SourceError> {
        let name = redact_url(&args.join(" "));
        let mut cmd = Command::new("git");
        cmd.args(["-c", "credential.helper=", "-c", "core.hooksPath=/dev/null"])
            .args(args)
            .current_dir(self.dir)
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_ASKPASS", "true")
            .env("SSH_ASKPASS", "true")
            .env("GIT_SSH_COMMAND", "ssh -o BatchMode=yes")
            .env_remove("GIT_DIR")
            .env_remove("GIT_WORK_TREE")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let child = cmd.spawn().map_err(SourceError::Spawn)?;
        let output = tokio::time::timeout(self.timeout, child.wait_with_output())
            .await
            .map_err(|_| SourceError::Timeout {
                command: name.clone(),
                seconds: self.timeout.as_secs(),
            })?
            .map_err(SourceError::Spawn)?;
        if !output.status.success() {
            return Err(SourceError::Git {
                command: name,
                status: output.status.to_string(),
                stderr: redact_url(String::from_utf8_lossy(&output.stderr).trim()),
            });
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_in_urls_are_redacted() {
        let cases = [
            (
                "fatal: unable to access 'https://bot:s3cr3t@git.example.org/r.git/'",
                "fatal: unable to access 'https://***@git.example.org/r.git/'",
            ),
            (
                "https://tok3n@host/x and ssh://u@h/y",
                "https://***@host/x and ssh://***@h/y",
            ),
            ("https://host/x.git", "https://host/x.git"),
            ("git@host:owner/repo.git", "git@host:owner/repo.git"),
        ];
        for (input, expected) in cases {
            assert_eq!(redact_url(input), expected);
        }
    }

    #[test]
    fn refs_are_classified() {
        assert!(is_full_sha(&"a".repeat(40)));
        assert!(!is_full_sha(&"g".repeat(40)));
        assert!(is_abbreviated_sha("abc1234"));
        assert!(!is_abbreviated_sha("main"));
        assert!(!is_abbreviated_sha(&"a".repeat(40)));
    }

    #[tokio::test]
    async fn urls_that_look_like_options_reach_git_as_values_only() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("pwned");
        let url = format!("--upload-pack=touch {}", marker.display());
        let err = fetch(
            &url,
            "main",
            &dir.path().join("ws"),
            &FetchOptions::default(),
        )
        .await
        .unwrap_err();
        // `remote add` took the value as a URL (not as an unknown option); only the fetch
        // from a repository of that name failed.
        assert!(
            matches!(&err, SourceError::Git { command, .. } if command.starts_with("fetch")),
            "{err}"
        );
        assert!(!marker.exists(), "git ran the URL as an option");
    }

    #[tokio::test]
    async fn refs_that_could_be_options_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        for bad in ["", "--upload-pack=x", "a b", "main:other"] {
            let err = fetch("file:///nowhere", bad, dir.path(), &FetchOptions::default())
                .await
                .unwrap_err();
            assert!(matches!(err, SourceError::BadRef(_)), "{bad:?}: {err}");
        }
    }
}
