//! Reconcilers: one file per record kind or concern, each built on the [`crate::runtime`].
