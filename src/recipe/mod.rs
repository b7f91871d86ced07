//! Recipe sources and apps: fetching a recipe at a commit, versions, app env, secrets,
//! backup plans.

pub mod app;
pub mod backup;
pub mod claims;
pub mod deploy;
pub mod facts;
pub mod levels;
pub mod metadata;
pub mod pipeline;
pub mod policy;
pub mod secrets;
pub mod snapshot;
pub mod source;
pub mod version;
mod words;
