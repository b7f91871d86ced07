//! Run logs: one append-only file per run and stage under the state dir
//! (`<state_dir>/runs/<run>/logs/<stream>.log`), redacted before anything is written, readable
//! from a byte offset (for the API's incremental reads and `ccctl logs -f`); and the
//! redactor ([`redact`]) every line passes through.
//!
//! Lines are written as `<RFC 3339 UTC time> <text>\n`. Raw output (container logs, hook
//! output) can be appended as chunks through [`LogWriter::output`], which redacts across
//! chunk boundaries ([`redact::StreamRedactor`]).

use std::path::{Path, PathBuf};

use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

pub mod redact;

use redact::{Redactor, StreamRedactor};

/// The run-level stream (admission, fetch, teardown); every stage has a stream of its own,
/// named after the stage.
pub const RUN_STREAM: &str = "run";

/// Why a run log could not be opened, written or read.
#[derive(Debug, thiserror::Error)]
pub enum RunLogError {
    /// The run or stream name could escape the runs directory.
    #[error("{0:?} is not a valid run or log name")]
    BadName(String),
    /// Filesystem trouble.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}

/// The run logs below one state directory.
#[derive(Clone, Debug)]
pub struct RunLogs {
    runs: PathBuf,
}

/// A piece of a log read from an offset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogChunk {
    /// The bytes read (possibly empty).
    pub data: Vec<u8>,
    /// Offset to read from next.
    pub next_offset: u64,
    /// The file's size when read.
    pub size: u64,
}

fn valid(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && !name.starts_with('.')
}

impl RunLogs {
    /// Run logs under `<state_dir>/runs`.
    pub fn new(state_dir: &Path) -> RunLogs {
        RunLogs {
            runs: state_dir.join("runs"),
        }
    }

    /// The state directory these run logs live under.
    pub fn state_dir(&self) -> PathBuf {
        self.runs
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default()
    }

    /// The directory of everything a run keeps on disk (logs, secrets file, artifacts).
    pub fn run_dir(&self, run: &str) -> Result<PathBuf, RunLogError> {
        if !valid(run) {
            return Err(RunLogError::BadName(run.to_string()));
        }
        Ok(self.runs.join(run))
    }

    /// The file of log `stream` (e.g. `install`, `upgrade`, `run`) of `run`.
    pub fn path(&self, run: &str, stream: &str) -> Result<PathBuf, RunLogError> {
        if !valid(stream) {
            return Err(RunLogError::BadName(stream.to_string()));
        }
        Ok(self
            .run_dir(run)?
            .join("logs")
            .join(format!("{stream}.log")))
    }

    /// Opens log `stream` of `run` for appending (created if needed).
    pub async fn writer(
        &self,
        run: &str,
        stream: &str,
        redactor: Redactor,
    ) -> Result<LogWriter, RunLogError> {
        let path = self.path(run, stream)?;
        let io = |source| RunLogError::Io {
            path: path.clone(),
            source,
        };
        if let Some(dir) = path.parent() {
            tokio::fs::create_dir_all(dir).await.map_err(io)?;
        }
        let file = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .await
            .map_err(io)?;
        Ok(LogWriter {
            path,
            file,
            stream: redactor.stream(),
            redactor,
        })
    }

    /// The log streams `run` has, sorted.
    pub async fn streams(&self, run: &str) -> Result<Vec<String>, RunLogError> {
        let dir = self.run_dir(run)?.join("logs");
        let mut out = Vec::new();
        let mut entries = match tokio::fs::read_dir(&dir).await {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(source) => return Err(RunLogError::Io { path: dir, source }),
        };
        while let Ok(Some(entry)) = entries.next_entry().await {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(stream) = name.strip_suffix(".log") {
                out.push(stream.to_string());
            }
        }
        out.sort();
        Ok(out)
    }

    /// Reads at most `max` bytes of log `stream` of `run` from `offset`. A missing log reads
    /// as empty.
    pub async fn read(
        &self,
        run: &str,
        stream: &str,
        offset: u64,
        max: usize,
    ) -> Result<LogChunk, RunLogError> {
        let path = self.path(run, stream)?;
        let io = |source| RunLogError::Io {
            path: path.clone(),
            source,
        };
        let mut file = match tokio::fs::File::open(&path).await {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(LogChunk {
                    data: Vec::new(),
                    next_offset: offset,
                    size: 0,
                });
            }
            Err(e) => return Err(io(e)),
        };
        let size = file.metadata().await.map_err(io)?.len();
        let start = offset.min(size);
        file.seek(std::io::SeekFrom::Start(start))
            .await
            .map_err(io)?;
        let want = usize::try_from(size - start).unwrap_or(usize::MAX).min(max);
        let mut data = vec![0; want];
        file.read_exact(&mut data).await.map_err(io)?;
        Ok(LogChunk {
            next_offset: start + data.len() as u64,
            data,
            size,
        })
    }

    /// Removes everything `run` keeps on disk. Missing is fine.
    pub async fn remove_run(&self, run: &str) -> Result<(), RunLogError> {
        let dir = self.run_dir(run)?;
        match tokio::fs::remove_dir_all(&dir).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(RunLogError::Io { path: dir, source }),
        }
    }
}

/// Appends to one log, redacting everything first.
#[derive(Debug)]
pub struct LogWriter {
    path: PathBuf,
    file: tokio::fs::File,
    redactor: Redactor,
    stream: StreamRedactor,
}

impl LogWriter {
    fn io(&self, source: std::io::Error) -> RunLogError {
        RunLogError::Io {
            path: self.path.clone(),
            source,
        }
    }

    /// Writes one timestamped line (each line of a multi-line `text` gets the stamp).
    pub async fn line(&mut self, text: &str) -> Result<(), RunLogError> {
        let stamp = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let clean = self.redactor.redact(text);
        let mut out = String::with_capacity(clean.len() + 32);
        for l in clean.lines() {
            out.push_str(&stamp);
            out.push(' ');
            out.push_str(l);
            out.push('\n');
        }
        if out.is_empty() {
            out = format!("{stamp} \n");
        }
        self.file
            .write_all(out.as_bytes())
            .await
            .map_err(|e| self.io(e))
    }

    /// Appends a chunk of raw output as it arrives (secrets split across chunks are still
    /// caught; up to the longest secret's length is held back until [`LogWriter::finish`]).
    pub async fn output(&mut self, chunk: &[u8]) -> Result<(), RunLogError> {
        let clean = self.stream.push(chunk);
        self.file.write_all(&clean).await.map_err(|e| self.io(e))
    }

    /// Flushes held-back output and syncs the file to disk.
    pub async fn finish(mut self) -> Result<(), RunLogError> {
        let rest = std::mem::replace(&mut self.stream, self.redactor.stream()).finish();
        self.file.write_all(&rest).await.map_err(|e| self.io(e))?;
        self.file.sync_data().await.map_err(|e| self.io(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn lines_are_redacted_stamped_and_read_back_from_offsets() {
        let dir = tempfile::tempdir().unwrap();
        let logs = RunLogs::new(dir.path());
        let redactor = Redactor::new();
        redactor.register("hunter2-password");
        let mut w = logs
            .writer("run-1", "install", redactor.clone())
            .await
            .unwrap();
        w.line("deploying with hunter2-password").await.unwrap();
        w.output(b"container says hunter2-").await.unwrap();
        w.output(b"password twice\n").await.unwrap();
        w.finish().await.unwrap();

        let all = logs.read("run-1", "install", 0, 1 << 20).await.unwrap();
        let text = String::from_utf8(all.data.clone()).unwrap();
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains(" deploying with ***\n"), "{text}");
        assert!(text.ends_with("container says *** twice\n"), "{text}");
        assert_eq!(all.next_offset, all.size);
        let stamp = text.split(' ').next().unwrap();
        assert!(
            chrono::DateTime::parse_from_rfc3339(stamp).is_ok(),
            "{stamp}"
        );

        // Incremental reads continue where the last one stopped.
        let part = logs.read("run-1", "install", 0, 10).await.unwrap();
        assert_eq!(part.data.len(), 10);
        let rest = logs
            .read("run-1", "install", part.next_offset, 1 << 20)
            .await
            .unwrap();
        assert_eq!([part.data, rest.data].concat(), all.data);
        let past = logs
            .read("run-1", "install", all.size + 100, 10)
            .await
            .unwrap();
        assert!(past.data.is_empty());

        assert_eq!(logs.streams("run-1").await.unwrap(), ["install"]);
        let none = logs.read("run-1", "upgrade", 0, 10).await.unwrap();
        assert!(none.data.is_empty());
        logs.remove_run("run-1").await.unwrap();
        assert!(logs.streams("run-1").await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn names_cannot_leave_the_runs_directory() {
        let dir = tempfile::tempdir().unwrap();
        let logs = RunLogs::new(dir.path());
        for bad in ["", "..", "../x", "a/b", ".hidden", "UPPER"] {
            assert!(matches!(
                logs.path(bad, "install"),
                Err(RunLogError::BadName(_))
            ));
            assert!(matches!(
                logs.path("run", bad),
                Err(RunLogError::BadName(_))
            ));
        }
    }
}
