//! JSON Schemas of the four record kinds, generated from the Rust types (schemars) into
//! `crds-schema/<kind>.json`. A test fails when the committed files drift from the types;
//! regenerate them with `CCCI_REGENERATE=1 cargo nextest run schema`.

use std::path::{Path, PathBuf};

use crate::api::{AppDeploymentSpec, Kind, Object, ProxyDeploymentSpec, RecipeSpec, TestRunSpec};

/// The directory, relative to the repository root, the schemas are committed in.
pub const SCHEMA_DIR: &str = "crds-schema";

/// The file name of a kind's schema, e.g. `testrun.json`.
pub fn file_name(kind: Kind) -> String {
    format!("{}.json", kind.name().to_ascii_lowercase())
}

/// The schema of a whole record of `kind`, as pretty JSON with a trailing newline. Deterministic.
pub fn schema_json(kind: Kind) -> String {
    let mut schema = match kind {
        Kind::Recipe => schemars::schema_for!(Object<RecipeSpec>),
        Kind::TestRun => schemars::schema_for!(Object<TestRunSpec>),
        Kind::ProxyDeployment => schemars::schema_for!(Object<ProxyDeploymentSpec>),
        Kind::AppDeployment => schemars::schema_for!(Object<AppDeploymentSpec>),
    };
    schema.insert("title".into(), kind.name().into());
    schema.insert(
        "$id".into(),
        format!(
            "https://cc-ci.coopcloud.tech/schemas/v1alpha1/{}",
            file_name(kind)
        )
        .into(),
    );
    let mut text = serde_json::to_string_pretty(&schema).unwrap_or_default();
    text.push('\n');
    text
}

/// Writes every kind's schema into `dir`; returns the files written.
pub fn write_all(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    Kind::ALL
        .iter()
        .map(|&kind| {
            let path = dir.join(file_name(kind));
            std::fs::write(&path, schema_json(kind))?;
            Ok(path)
        })
        .collect()
}

/// The kinds whose file in `dir` is missing or differs from the types.
pub fn drifted(dir: &Path) -> Vec<Kind> {
    Kind::ALL
        .into_iter()
        .filter(|&kind| {
            std::fs::read_to_string(dir.join(file_name(kind))).ok() != Some(schema_json(kind))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemas_are_deterministic_and_name_their_kind() {
        for kind in Kind::ALL {
            let a = schema_json(kind);
            assert_eq!(a, schema_json(kind));
            let v: serde_json::Value = serde_json::from_str(&a).unwrap();
            assert_eq!(v["title"], kind.name());
            assert!(v["properties"]["spec"].is_object(), "{kind}: {a}");
            assert!(a.ends_with("}\n"));
        }
    }

    #[test]
    fn drifted_reports_missing_and_changed_files() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(drifted(dir.path()), Kind::ALL.to_vec());
        write_all(dir.path()).unwrap();
        assert!(drifted(dir.path()).is_empty());
        std::fs::write(dir.path().join("testrun.json"), "{}\n").unwrap();
        assert_eq!(drifted(dir.path()), vec![Kind::TestRun]);
    }
}
