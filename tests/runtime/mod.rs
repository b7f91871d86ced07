//! The controller runtime and its controllers: channel-fed controllers on paused time, the
//! finalizer helper and the recipe status roll-up against a store.

mod controller;
