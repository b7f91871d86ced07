//! Opening a [`SledStore`]: sled's lock and corruption errors made typed and explained, and
//! the schema-version gate in the `meta` tree.

use std::path::Path;

use super::StoreError;
use super::sled_store::{SledStore, StoreOptions, backend};

/// The schema version this build writes and understands.
pub const SCHEMA_VERSION: u32 = 1;
const SCHEMA_KEY: &[u8] = b"schema_version";

impl SledStore {
    /// Opens (or creates) the store in `dir` with default options.
    ///
    /// Errors: [`StoreError::Locked`] when another process has it open (a second open in the
    /// same process is refused the same way; a lock still being released is waited on for up
    /// to 1.5 s), [`StoreError::Corrupt`] when its files are damaged or were written by a newer
    /// schema. Opening reads no records.
    pub fn open(dir: &Path) -> Result<SledStore, StoreError> {
        Self::open_with(dir, StoreOptions::default())
    }

    /// Opens (or creates) the store in `dir`.
    pub fn open_with(dir: &Path, options: StoreOptions) -> Result<SledStore, StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| {
            StoreError::Backend(format!("cannot create the store at {}: {e}", dir.display()))
        })?;
        let config = sled::Config::new()
            .path(dir)
            .cache_capacity(options.cache_bytes)
            .flush_every_ms(Some(1000));
        // sled's background I/O threads can hold the file lock for a moment after the last
        // handle of an earlier open is dropped (a restart in the same process, or a failed
        // open just before): a lock is waited on briefly before it counts as held.
        let deadline = std::time::Instant::now() + LOCK_WAIT;
        loop {
            match open_db(&config, dir) {
                Err(StoreError::Locked { .. }) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(25));
                }
                Err(e) => return Err(e),
                Ok(db) => return Self::from_db(db, dir, options),
            }
        }
    }
}

/// How long a store lock may take to be released before the store counts as held elsewhere.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_millis(1500);

fn open_db(config: &sled::Config, dir: &Path) -> Result<sled::Db, StoreError> {
    // sled may panic on damaged files instead of returning an error.
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| config.open())) {
        Ok(Ok(db)) => Ok(db),
        Ok(Err(e)) => Err(open_error(dir, e)),
        Err(p) => Err(StoreError::Corrupt {
            path: dir.display().to_string(),
            message: format!("sled could not read its files: {}", panic_message(&*p)),
        }),
    }
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

/// Maps an error from opening sled to a typed, explained error.
fn open_error(path: &Path, e: sled::Error) -> StoreError {
    let shown = path.display().to_string();
    let corrupt = |message: String| StoreError::Corrupt {
        path: shown.clone(),
        message,
    };
    match e {
        sled::Error::Io(io) if io.to_string().contains("could not acquire lock") => {
            StoreError::Locked { path: shown }
        }
        sled::Error::Io(io)
            if matches!(
                io.kind(),
                std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::NotFound
            ) =>
        {
            StoreError::Backend(format!("cannot open the store at {shown}: {io}"))
        }
        sled::Error::Io(io) => corrupt(format!("reading its files failed: {io}")),
        sled::Error::Corruption { at, .. } => corrupt(format!(
            "its files are damaged (at {at:?}); restore it from an export (`cc-ci store import`)"
        )),
        sled::Error::Unsupported(m) => corrupt(format!("unsupported database: {m}")),
        sled::Error::ReportableBug(m) => corrupt(format!("sled failed: {m}")),
        other => StoreError::Backend(format!("cannot open the store at {shown}: {other}")),
    }
}

/// A file next to sled's, written once the store has been initialised. sled opens a store whose
/// files are garbage as an *empty* database, so "the marker exists but the schema key is gone"
/// is how such damage is told apart from a new store.
const MARKER_FILE: &str = "CC-CI-STORE";

pub(crate) fn check_schema(meta: &sled::Tree, dir: &Path) -> Result<(), StoreError> {
    let corrupt = |message: String| StoreError::Corrupt {
        path: dir.display().to_string(),
        message,
    };
    let marker = dir.join(MARKER_FILE);
    let write_marker = || {
        std::fs::write(
            &marker,
            format!("cc-ci record store, schema version {SCHEMA_VERSION}\n"),
        )
        .map_err(|e| StoreError::Backend(format!("cannot write {}: {e}", marker.display())))
    };
    match meta.get(SCHEMA_KEY).map_err(backend)? {
        None if marker.exists() => Err(corrupt(
            "its data files are unreadable (sled found an empty database where cc-ci had \
             stored records); restore it from an export with `cc-ci store import`"
                .into(),
        )),
        None => {
            meta.insert(SCHEMA_KEY, SCHEMA_VERSION.to_string().as_bytes())
                .map_err(backend)?;
            meta.flush().map_err(backend)?;
            write_marker()
        }
        Some(v) => {
            let text = String::from_utf8_lossy(&v);
            match text.parse::<u32>() {
                Ok(SCHEMA_VERSION) if marker.exists() => Ok(()),
                Ok(SCHEMA_VERSION) => write_marker(),
                Ok(n) if n > SCHEMA_VERSION => Err(corrupt(format!(
                    "its schema version is {n}, newer than the version {SCHEMA_VERSION} this \
                     cc-ci understands; run a newer cc-ci or import an export"
                ))),
                Ok(n) => Err(corrupt(format!(
                    "its schema version {n} is unknown (this cc-ci understands {SCHEMA_VERSION})"
                ))),
                Err(_) => Err(corrupt(format!(
                    "its schema version {text:?} is not a number"
                ))),
            }
        }
    }
}
