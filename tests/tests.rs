//! The one integration-test binary: each module covers one surface against real sled, HTTP and Swarm.

mod api;
mod ccctl;
mod conformance;
mod deployment;
mod fixture_repo;
mod forge;
mod hostile;
mod jobs;
mod lifecycle;
mod logs;
mod nix;
mod recipe;
mod runtime;
mod schema;
mod serve;
mod stack_cli;
mod store;
mod support;
mod swarm;
