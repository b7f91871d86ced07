//! `ccctl artifacts run NAME [PATH] [-o DIR]`: lists a run's test artifacts, prints one to
//! stdout, or downloads one (or all) into a directory, keeping their relative paths.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use super::client::Client;
use crate::executor::artifacts::safe_parts;
use crate::http::artifacts::ArtifactList;

/// What `ccctl artifacts` was asked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArtifactsRequest {
    /// The run.
    pub run: String,
    /// One artifact (a path from the list).
    pub path: Option<String>,
    /// Download into this directory.
    pub out: Option<PathBuf>,
}

fn url(client: &Client, run: &str, path: Option<&str>) -> reqwest::Url {
    let mut url = client.url(crate::api::Kind::TestRun, Some(run));
    if let Ok(mut segments) = url.path_segments_mut() {
        segments.push("artifacts");
        for part in path.into_iter().flat_map(|p| p.split('/')) {
            segments.push(part);
        }
    }
    url
}

async fn download(client: &Client, run: &str, rel: &str, out: &Path) -> anyhow::Result<PathBuf> {
    // The server's list is trusted no more than any input: stay inside DIR.
    safe_parts(rel).with_context(|| format!("refusing to write {rel:?}"))?;
    let bytes = client.get_bytes(url(client, run, Some(rel))).await?;
    let target = out.join(rel);
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    std::fs::write(&target, &bytes).with_context(|| format!("writing {}", target.display()))?;
    Ok(target)
}

/// Runs the command.
pub async fn artifacts(client: &Client, req: &ArtifactsRequest) -> anyhow::Result<()> {
    match (&req.path, &req.out) {
        (Some(path), None) => {
            let bytes = client.get_bytes(url(client, &req.run, Some(path))).await?;
            std::io::stdout().lock().write_all(&bytes)?;
        }
        (Some(path), Some(out)) => {
            let target = download(client, &req.run, path, out).await?;
            println!("{}", target.display());
        }
        (None, out) => {
            let body = client.get_bytes(url(client, &req.run, None)).await?;
            let list: ArtifactList =
                serde_json::from_slice(&body).context("decoding the artifact list")?;
            match out {
                None => {
                    if list.artifacts.is_empty() {
                        eprintln!("run {} has no artifacts", req.run);
                    }
                    for a in &list.artifacts {
                        println!("{a}");
                    }
                }
                Some(out) => {
                    if list.artifacts.is_empty() {
                        bail!("run {} has no artifacts", req.run);
                    }
                    for a in &list.artifacts {
                        println!("{}", download(client, &req.run, a, out).await?.display());
                    }
                }
            }
        }
    }
    Ok(())
}
