//! JSON Schemas of the record kinds, generated from the Rust types into `crds-schema/`.
