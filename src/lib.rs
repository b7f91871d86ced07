//! cc-ci: a CI server for Co-op Cloud recipes, built as a reconciliation controller over Docker Swarm.
//!
//! Data flows one way: forge → records ([`api`], kept in the [`store`]) → reconcilers
//! ([`runtime`], [`controllers`]) → Swarm ([`swarm`]); the surfaces ([`http`], [`cli`]) read and
//! write records only. See `docs/architecture.md`.

pub mod api;
pub mod cli;
pub mod config;
pub mod controllers;
pub mod executor;
pub mod forge;
pub mod http;
pub mod metrics;
pub mod recipe;
pub mod runlog;
pub mod runtime;
pub mod schema;
pub mod store;
pub mod swarm;
pub mod telemetry;
pub mod web;
