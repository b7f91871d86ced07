//! Recipe sources and apps: fetching a recipe at a commit, versions, app env, secrets, redaction.

pub mod app;
pub mod backup;
pub mod redact;
pub mod secrets;
pub mod source;
pub mod version;
mod words;
