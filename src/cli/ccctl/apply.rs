//! `ccctl apply -f` and `ccctl delete`: create-or-replace records from manifests, delete by name.

use serde_json::{Map, Value};

use super::client::{ApiError, Client};
use super::{Failures, kind_label};
use crate::api::manifest::{self, Document};
use crate::api::{AppDeploymentSpec, Kind, ProxyDeploymentSpec, RecipeSpec, Spec, TestRunSpec};

/// How many times a create-or-replace is retried after a 409 (a concurrent writer).
const CONFLICT_RETRIES: usize = 5;

/// What applying one document did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Applied {
    /// The record did not exist.
    Created,
    /// Its spec, labels or annotations changed.
    Configured,
    /// It already matched the manifest.
    Unchanged,
}

impl Applied {
    fn as_str(self) -> &'static str {
        match self {
            Applied::Created => "created",
            Applied::Configured => "configured",
            Applied::Unchanged => "unchanged",
        }
    }
}

fn roundtrip<S: Spec>(spec: &Value) -> Option<Value> {
    let typed: S = serde_json::from_value(spec.clone()).ok()?;
    serde_json::to_value(typed).ok()
}

/// The spec with the defaults the server fills in, so an applied-before manifest compares equal;
/// `None` when it does not parse (the server will say why).
pub fn normalize_spec(kind: Kind, spec: &Value) -> Option<Value> {
    match kind {
        Kind::Recipe => roundtrip::<RecipeSpec>(spec),
        Kind::TestRun => roundtrip::<TestRunSpec>(spec),
        Kind::ProxyDeployment => roundtrip::<ProxyDeploymentSpec>(spec),
        Kind::AppDeployment => roundtrip::<AppDeploymentSpec>(spec),
    }
}

fn meta_map(obj: &Value, key: &str) -> Value {
    match obj.get("metadata").and_then(|m| m.get(key)) {
        Some(Value::Object(m)) => Value::Object(m.clone()),
        _ => Value::Object(Map::new()),
    }
}

/// Whether the server's record already holds the manifest's spec, labels and annotations.
pub fn matches_server(kind: Kind, manifest: &Value, server: &Value) -> bool {
    let Some(want) = manifest.get("spec").and_then(|s| normalize_spec(kind, s)) else {
        return false;
    };
    let have = server.get("spec").cloned().unwrap_or(Value::Null);
    want == have
        && meta_map(manifest, "labels") == meta_map(server, "labels")
        && meta_map(manifest, "annotations") == meta_map(server, "annotations")
}

/// The PUT body: the server's record with the manifest's spec, labels and annotations, keeping
/// the server's resourceVersion (so a concurrent write is a 409, not lost) and finalizers.
pub fn replacement(manifest: &Value, server: &Value) -> Value {
    let mut body = server.clone();
    if let Some(obj) = body.as_object_mut() {
        obj.remove("status");
        obj.insert(
            "spec".into(),
            manifest.get("spec").cloned().unwrap_or(Value::Null),
        );
        if let Some(Value::Object(meta)) = obj.get_mut("metadata") {
            meta.insert("labels".into(), meta_map(manifest, "labels"));
            meta.insert("annotations".into(), meta_map(manifest, "annotations"));
        }
    }
    body
}

fn creation(manifest: &Value) -> Value {
    let mut body = manifest.clone();
    if let Some(obj) = body.as_object_mut() {
        obj.remove("status");
        if let Some(Value::Object(meta)) = obj.get_mut("metadata") {
            meta.remove("resourceVersion");
        }
    }
    body
}

/// Creates the document's record, or replaces its spec/labels/annotations when they differ.
pub async fn apply_one(client: &Client, doc: &Document) -> anyhow::Result<Applied> {
    let mut last_err = None;
    for _ in 0..CONFLICT_RETRIES {
        let result = match client.get_value(doc.kind, &doc.name).await {
            Err(e)
                if e.downcast_ref::<ApiError>()
                    .is_some_and(ApiError::is_not_found) =>
            {
                client
                    .create(doc.kind, &creation(&doc.value))
                    .await
                    .map(|_| Applied::Created)
            }
            Err(e) => return Err(e),
            Ok(server) if matches_server(doc.kind, &doc.value, &server) => {
                return Ok(Applied::Unchanged);
            }
            Ok(server) => client
                .replace(doc.kind, &doc.name, &replacement(&doc.value, &server))
                .await
                .map(|_| Applied::Configured),
        };
        match result {
            Err(e)
                if e.downcast_ref::<ApiError>()
                    .is_some_and(ApiError::is_conflict) =>
            {
                last_err = Some(e);
            }
            other => return other,
        }
    }
    Err(last_err
        .expect("the loop ran")
        .context("gave up after repeated conflicts"))
}

/// `apply -f`: every document in order; an error is reported and the rest still applied.
pub async fn apply(client: &Client, files: &[std::path::PathBuf]) -> anyhow::Result<()> {
    let docs = manifest::read_all(files)?;
    if docs.is_empty() {
        anyhow::bail!("no manifests found in the given files");
    }
    let mut failures = Failures::default();
    for doc in &docs {
        let label = format!("{}/{}", kind_label(doc.kind), doc.name);
        match apply_one(client, doc).await {
            Ok(applied) => println!("{label} {}", applied.as_str()),
            Err(e) => failures.report(&e, &format!("{}: {label}", doc.source)),
        }
    }
    failures.into_result()
}

/// `delete`: named records and those in manifests; every target is tried.
pub async fn delete(
    client: &Client,
    mut targets: Vec<(Kind, String)>,
    files: &[std::path::PathBuf],
    ignore_not_found: bool,
) -> anyhow::Result<()> {
    if !files.is_empty() {
        for doc in manifest::read_all(files)? {
            targets.push((doc.kind, doc.name));
        }
    }
    let mut failures = Failures::default();
    for (kind, name) in targets {
        let label = format!("{} {name:?}", kind_label(kind));
        match client.delete(kind, &name).await {
            Ok(body) => println!("{label} {}", deletion_outcome(&body)),
            Err(e)
                if ignore_not_found
                    && e.downcast_ref::<ApiError>()
                        .is_some_and(ApiError::is_not_found) => {}
            Err(e) => failures.report(&e, &label),
        }
    }
    failures.into_result()
}

/// `deleted`, or `deletion requested (waiting on finalizers: …)` when the record is still there.
pub fn deletion_outcome(body: &Value) -> String {
    let finalizers: Vec<&str> = body
        .get("metadata")
        .and_then(|m| m.get("finalizers"))
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if body.get("kind").and_then(Value::as_str) == Some("Status") || finalizers.is_empty() {
        "deleted".to_string()
    } else {
        format!(
            "deletion requested (waiting on finalizers: {})",
            finalizers.join(", ")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_manifest_without_defaults_matches_the_stored_record() {
        let manifest = json!({"kind":"Recipe","metadata":{"name":"a"},"spec":{"git":"g"}});
        let server = json!({"kind":"Recipe","metadata":{"name":"a","resourceVersion":"9","uid":"u"},
            "spec": normalize_spec(Kind::Recipe, &json!({"git":"g"})).unwrap(), "status":{}});
        assert!(matches_server(Kind::Recipe, &manifest, &server));
        let changed =
            json!({"kind":"Recipe","metadata":{"name":"a","labels":{"x":"y"}},"spec":{"git":"g"}});
        assert!(!matches_server(Kind::Recipe, &changed, &server));
        let other = json!({"kind":"Recipe","metadata":{"name":"a"},"spec":{"git":"h"}});
        assert!(!matches_server(Kind::Recipe, &other, &server));
    }

    #[test]
    fn replacements_keep_the_servers_version_and_finalizers() {
        let manifest = json!({"metadata":{"name":"a","labels":{"k":"v"}},"spec":{"git":"new"}});
        let server = json!({"metadata":{"name":"a","resourceVersion":"9","finalizers":["f"],"labels":{"old":"x"}},
            "spec":{"git":"old"},"status":{"phase":"Ready"}});
        let body = replacement(&manifest, &server);
        assert_eq!(body["metadata"]["resourceVersion"], "9");
        assert_eq!(body["metadata"]["finalizers"], json!(["f"]));
        assert_eq!(body["metadata"]["labels"], json!({"k":"v"}));
        assert_eq!(body["spec"]["git"], "new");
        assert!(body.get("status").is_none());
    }

    #[test]
    fn deletion_messages_name_pending_finalizers() {
        assert_eq!(
            deletion_outcome(&json!({"kind":"Status","status":"Success"})),
            "deleted"
        );
        assert_eq!(
            deletion_outcome(
                &json!({"kind":"TestRun","metadata":{"finalizers":["cc-ci/teardown"]}})
            ),
            "deletion requested (waiting on finalizers: cc-ci/teardown)"
        );
    }
}
