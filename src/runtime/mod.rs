//! The controller runtime after kube-runtime: watch → cache → scheduler → runner → reconcile.
//!
//! Each piece is a small module, usable and tested alone:
//! - [`reflector`]: the in-memory [`Cache`] of one kind, fed by a [`crate::store::Store::watch`] stream;
//! - [`scheduler`]: a delay queue, one entry per key, earliest time wins, in-progress keys held back;
//! - [`runner`]: bounded concurrency, never two tasks of the same key at once;
//! - [`backoff`]: per-key exponential backoff on error, reset on success;
//! - [`controller`]: [`Controller`] tying them together around a `reconcile` function;
//! - [`finalizer`]: kube's four-case finalizer helper;
//! - [`watcher`]: a store watch that re-lists after errors;
//! - [`settings`]: [`RuntimeSettings`], the tunables;

pub mod backoff;
pub mod controller;
pub mod finalizer;
pub mod reflector;
pub mod runner;
pub mod scheduler;
pub mod settings;
pub mod watcher;

pub use controller::{Action, Controller};
pub use reflector::{Cache, Index, Keyed, Writer};
pub use settings::RuntimeSettings;
