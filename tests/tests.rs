//! The one integration-test binary: each module covers one surface against real sled, HTTP and Swarm.

mod conformance;
mod support;
mod swarm;
