//! Real git repositories of the fixture recipes in `tests/fixtures/recipes/<name>/` (made by
//! `scripts/fixture-repo`: one commit and tag per version directory, in version order), plus
//! pull-request refs.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use cc_ci::recipe::version::Version;

/// A recipe repository built in a temporary directory.
pub struct FixtureRepo {
    /// The repository's work tree (branch `main`).
    pub dir: PathBuf,
    /// `(tag, commit)` for each version, oldest first.
    pub versions: Vec<(String, String)>,
}

/// Directory holding the fixture recipe `name`.
pub fn fixture_dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/recipes")
        .join(name)
}

/// Runs git in `dir` with a fixed identity and returns trimmed stdout; panics on failure.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "Fixture")
        .env("GIT_AUTHOR_EMAIL", "fixture@example.org")
        .env("GIT_COMMITTER_NAME", "Fixture")
        .env("GIT_COMMITTER_EMAIL", "fixture@example.org")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

impl FixtureRepo {
    /// Builds the repository of fixture recipe `name` in `dir` with `scripts/fixture-repo`
    /// (the script the docs give newcomers): one commit and tag per version, in version order;
    /// the oldest tag annotated, the others lightweight.
    pub fn build(name: &str, dir: &Path) -> FixtureRepo {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/fixture-repo");
        let out = Command::new(&script)
            .arg(name)
            .arg(dir)
            .output()
            .expect("scripts/fixture-repo runs");
        assert!(
            out.status.success(),
            "scripts/fixture-repo {name} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let versions: Vec<(String, String)> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split_once(' '))
            .map(|(tag, commit)| (tag.to_string(), commit.to_string()))
            .collect();
        assert!(versions.len() >= 2, "fixture {name} needs two versions");
        for (tag, _) in &versions {
            Version::parse(tag).unwrap_or_else(|e| panic!("fixture {name}: tag {tag}: {e:?}"));
        }
        FixtureRepo {
            dir: dir.to_path_buf(),
            versions,
        }
    }

    /// `file://` URL of the repository (the real git transport, not a local copy).
    pub fn url(&self) -> String {
        format!("file://{}", self.dir.display())
    }

    /// Commits `edit` on top of `main` as pull request `n`: the commit is reachable only from
    /// `refs/pull/<n>/head`, like a PR from a fork on Gitea. Returns its SHA.
    pub fn open_pull_request(&self, n: u64, edit: impl FnOnce(&Path)) -> String {
        let branch = format!("pr-{n}");
        git(&self.dir, &["checkout", "-q", "-b", &branch]);
        edit(&self.dir);
        git(&self.dir, &["add", "-A"]);
        git(
            &self.dir,
            &["commit", "-q", "-m", &format!("Pull request {n}")],
        );
        let sha = git(&self.dir, &["rev-parse", "HEAD"]);
        git(
            &self.dir,
            &["update-ref", &format!("refs/pull/{n}/head"), &sha],
        );
        git(&self.dir, &["checkout", "-q", "main"]);
        git(&self.dir, &["branch", "-q", "-D", &branch]);
        sha
    }

    /// The commit of version `tag`.
    pub fn commit_of(&self, tag: &str) -> &str {
        &self
            .versions
            .iter()
            .find(|(t, _)| t == tag)
            .unwrap_or_else(|| panic!("no version {tag}"))
            .1
    }
}
