//! Recipe sources and apps: fetching a recipe at a commit, versions, app env, secrets,
//! backup plans, redaction, and the run logs of a recipe's test runs.

pub mod app;
pub mod backup;
pub mod deploy;
pub mod facts;
pub mod metadata;
pub mod redact;
pub mod runlog;
pub mod secrets;
pub mod snapshot;
pub mod source;
pub mod version;
mod words;
