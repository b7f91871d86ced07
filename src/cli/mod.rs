//! Command-line front ends: the `cc-ci` subcommands and `ccctl`. This is the binaries' edge,
//! where typed errors become `anyhow` reports.

pub mod ccctl;
pub mod serve;
pub mod stack;
pub mod store;
