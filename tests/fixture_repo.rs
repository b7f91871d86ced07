//! Builds real git repositories from the fixture recipes in `tests/fixtures/recipes/<name>/`,
//! one commit and tag per version directory, in version order, plus pull-request refs.

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

fn copy_tree(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

fn clear_work_tree(dir: &Path) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name() == ".git" {
            continue;
        }
        if entry.file_type().unwrap().is_dir() {
            std::fs::remove_dir_all(entry.path()).unwrap();
        } else {
            std::fs::remove_file(entry.path()).unwrap();
        }
    }
}

impl FixtureRepo {
    /// Builds the repository of fixture recipe `name` in `dir` (created). Versions are
    /// committed in version order; the oldest tag is annotated, the others lightweight.
    pub fn build(name: &str, dir: &Path) -> FixtureRepo {
        let source = fixture_dir(name);
        let mut tags: Vec<Version> = std::fs::read_dir(&source)
            .unwrap_or_else(|e| panic!("{}: {e}", source.display()))
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter_map(|n| Version::parse(&n).ok())
            .collect();
        tags.sort();
        assert!(tags.len() >= 2, "fixture {name} needs two versions");
        std::fs::create_dir_all(dir).unwrap();
        git(dir, &["init", "-q", "-b", "main"]);
        let mut versions = Vec::new();
        for (i, v) in tags.iter().enumerate() {
            clear_work_tree(dir);
            copy_tree(&source.join(v.tag()), dir);
            git(dir, &["add", "-A"]);
            git(
                dir,
                &["commit", "-q", "-m", &format!("Release {}", v.tag())],
            );
            if i == 0 {
                git(
                    dir,
                    &["tag", "-a", "-m", &format!("{name} {}", v.tag()), v.tag()],
                );
            } else {
                git(dir, &["tag", v.tag()]);
            }
            versions.push((v.tag().to_string(), git(dir, &["rev-parse", "HEAD"])));
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
