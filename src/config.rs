//! The controller configuration: a TOML file whose every setting has a default.
