//! What the forge intake remembers per recipe between polls and across restarts: the poll
//! cursor, the comments already processed, and the default-branch head and tags last seen —
//! one small JSON file per recipe under `<state_dir>/forge/`, replaced atomically.
//!
//! # Guarantees
//! - [`RecipeState::save`] returns after the new content is durable (written to a temporary
//!   file, synced, renamed over the old one, directory synced): a crash leaves either the old
//!   or the new state, never a torn one.
//! - The cursor only moves forward ([`RecipeState::advance`]), and only over comments that
//!   were processed: the caller advances it after a whole poll batch has been stored.

use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

/// How far before the cursor each poll asks again: covers clock skew and comments whose
/// update time ties with the cursor. Comments already processed are skipped by `seen`.
pub const OVERLAP: Duration = Duration::seconds(60);

/// The remembered state of one recipe.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecipeState {
    /// Newest `updated_at` of a fully processed poll batch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<DateTime<Utc>>,
    /// `(comment id, updated_at)` of every comment processed inside the overlap window.
    #[serde(default)]
    pub seen: Vec<(u64, DateTime<Utc>)>,
    /// The default branch's commit when it was last looked at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch_head: Option<String>,
    /// Tag names seen so far (the newest page of them).
    #[serde(default)]
    pub tags: Vec<String>,
    /// When the last scheduled default-branch run was created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_scheduled: Option<DateTime<Utc>>,
}

/// Why a state file could not be read or written.
#[derive(Debug, thiserror::Error)]
#[error("forge state file {path}: {message}")]
pub struct StateError {
    /// The file.
    pub path: PathBuf,
    /// What went wrong.
    pub message: String,
}

impl RecipeState {
    /// The `since` of the next poll: the cursor minus [`OVERLAP`], or `now - OVERLAP` the
    /// first time (comments older than that are history, not triggers).
    pub fn since(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        self.cursor.unwrap_or(now) - OVERLAP
    }

    /// Whether exactly this version of the comment was processed.
    pub fn processed(&self, id: u64, updated_at: DateTime<Utc>) -> bool {
        self.seen.contains(&(id, updated_at))
    }

    /// Whether any version of the comment was processed (a new version is an edit).
    pub fn known(&self, id: u64) -> bool {
        self.seen.iter().any(|(i, _)| *i == id)
    }

    /// Records a processed comment version.
    pub fn mark(&mut self, id: u64, updated_at: DateTime<Utc>) {
        if !self.processed(id, updated_at) {
            self.seen.push((id, updated_at));
        }
    }

    /// Moves the cursor to `to` (never backwards) and forgets comments that can no longer be
    /// returned by a poll.
    pub fn advance(&mut self, to: DateTime<Utc>) {
        let cursor = self.cursor.map_or(to, |c| c.max(to));
        self.cursor = Some(cursor);
        let keep_from = cursor - OVERLAP - OVERLAP;
        self.seen.retain(|(_, t)| *t >= keep_from);
    }

    /// Reads the state file (a missing file is the empty state).
    pub fn load(path: &Path) -> Result<RecipeState, StateError> {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| StateError {
                path: path.to_path_buf(),
                message: format!("does not decode: {e}"),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(RecipeState::default()),
            Err(e) => Err(StateError {
                path: path.to_path_buf(),
                message: e.to_string(),
            }),
        }
    }

    /// Writes the state file durably and atomically.
    pub fn save(&self, path: &Path) -> Result<(), StateError> {
        let err = |e: std::io::Error| StateError {
            path: path.to_path_buf(),
            message: e.to_string(),
        };
        let dir = path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(err)?;
        let tmp = path.with_extension("json.tmp");
        let bytes = serde_json::to_vec(self).map_err(|e| StateError {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        let mut f = std::fs::File::create(&tmp).map_err(err)?;
        f.write_all(&bytes).map_err(err)?;
        f.sync_all().map_err(err)?;
        std::fs::rename(&tmp, path).map_err(err)?;
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cursor_never_moves_back_and_old_comments_are_forgotten() {
        let t0 = Utc::now();
        let mut s = RecipeState::default();
        assert_eq!(s.since(t0), t0 - OVERLAP);
        s.mark(1, t0 - Duration::minutes(10));
        s.mark(2, t0);
        s.mark(2, t0);
        assert_eq!(s.seen.len(), 2);
        s.advance(t0);
        s.advance(t0 - Duration::minutes(1));
        assert_eq!(s.cursor, Some(t0));
        assert!(!s.known(1));
        assert!(s.processed(2, t0));
        assert!(s.known(2) && !s.processed(2, t0 + Duration::seconds(1)));
    }

    #[test]
    fn saved_state_reads_back_and_a_missing_file_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("forge/site.json");
        assert_eq!(RecipeState::load(&path).unwrap(), RecipeState::default());
        let mut s = RecipeState::default();
        s.mark(5, Utc::now());
        s.branch_head = Some("abc".into());
        s.save(&path).unwrap();
        assert_eq!(RecipeState::load(&path).unwrap(), s);
        std::fs::write(&path, b"{not json").unwrap();
        assert!(
            RecipeState::load(&path)
                .unwrap_err()
                .to_string()
                .contains("site.json")
        );
    }
}
