//! The one integration-test binary: each module covers one surface against real sled, HTTP and Swarm.

mod runtime;
mod store;
mod support;
