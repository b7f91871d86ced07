//! [`SledStore`]: the [`super::Store`] on sled. Not yet built.

/// The sled-backed store.
#[derive(Clone, Debug)]
pub struct SledStore {}
