//! The committed JSON Schemas in `crds-schema/` match the record types.

use std::path::Path;

#[test]
fn committed_schemas_match_the_types() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(cc_ci::schema::SCHEMA_DIR);
    if std::env::var_os("CCCI_REGENERATE").is_some() {
        cc_ci::schema::write_all(&dir).expect("write crds-schema/");
    }
    let drifted = cc_ci::schema::drifted(&dir);
    assert!(
        drifted.is_empty(),
        "crds-schema/ is out of date for {drifted:?}; regenerate it with \
         `CCCI_REGENERATE=1 cargo nextest run schema` and commit the result"
    );
}
