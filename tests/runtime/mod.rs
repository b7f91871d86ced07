//! The controller runtime and its controllers: channel-fed controllers on paused time, the
//! finalizer helper and the recipe status roll-up against an in-memory store.

mod controller;
mod finalizer;
mod memory_store;
mod recipe_status;
