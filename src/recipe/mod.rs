//! Recipe sources and apps: fetching a recipe at a commit, versions, app env, secrets, redaction.

pub mod source;
pub mod version;
