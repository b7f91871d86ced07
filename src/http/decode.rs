//! Turning a request body into a checked `Object<S>`: content type, size limit, JSON syntax, field
//! paths of type errors, unknown fields, kind/apiVersion/name against the path, and validation.
//!
//! Every problem that can be found without decoding is collected together with the decode error
//! and the record's own `validate()` findings, so one answer lists all causes.

use axum::body::Body;
use axum::http::{HeaderMap, header};
use serde_json::{Map, Value};

use super::error::{ApiError, Reason};
use crate::api::{API_VERSION, FieldError, Object, Spec, validate_name};

const TOP_FIELDS: [&str; 5] = ["apiVersion", "kind", "metadata", "spec", "status"];
const META_FIELDS: [&str; 9] = [
    "name",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "finalizers",
    "labels",
    "annotations",
];

/// What a decoded body is going to be used for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose<'a> {
    /// `POST`: a new record; the name comes from the body. Status is ignored.
    Create,
    /// `PUT /{name}`: spec and metadata; status is ignored.
    Replace(&'a str),
    /// `PUT /{name}/status`: only status is used; the spec is decoded but not validated.
    Status(&'a str),
}

/// Checks the content type and reads at most `limit` bytes of `body`.
pub async fn read_json_body(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<bytes::Bytes, ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if essence != "application/json" && !essence.ends_with("+json") {
        return Err(ApiError::new(
            Reason::UnsupportedMediaType,
            format!(
                "the body must be JSON sent with Content-Type: application/json (got {:?}); \
                 ccctl converts YAML manifests",
                content_type
            ),
        ));
    }
    let too_large = || {
        ApiError::new(
            Reason::PayloadTooLarge,
            format!("the body is larger than the limit of {limit} bytes"),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
        while let Some(s) = source {
            if s.is::<http_body_util::LengthLimitError>() {
                return too_large();
            }
            source = s.source();
        }
        ApiError::bad_request(format!("reading the body failed: {e}"))
    })
}

/// Parses JSON bytes into a value (syntax errors are `BadRequest` with line and column).
pub fn parse_json(bytes: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::bad_request(format!("the body is not valid JSON: {e}")))
}

/// Decodes and checks a record of kind `S` for `purpose`. All causes found are listed in one
/// `Invalid` error.
pub fn decode_object<S: Spec>(value: Value, purpose: Purpose<'_>) -> Result<Object<S>, ApiError> {
    let kind = S::KIND.name();
    let Value::Object(mut top) = value else {
        return Err(ApiError::bad_request(format!(
            "the body must be a JSON object (a {kind} record)"
        )));
    };
    let mut causes = Vec::new();
    unknown_fields(&top, &TOP_FIELDS, "", &mut causes);
    match top.get("apiVersion") {
        None | Some(Value::Null) => {
            top.insert("apiVersion".into(), API_VERSION.into());
        }
        Some(Value::String(v)) if v == API_VERSION => {}
        Some(other) => causes.push(FieldError::new(
            "apiVersion",
            format!("{other} is not supported; use {API_VERSION:?}"),
        )),
    }
    match top.get("kind") {
        None | Some(Value::Null) => {
            top.insert("kind".into(), kind.into());
        }
        Some(Value::String(v)) if v == kind => {}
        Some(other) => causes.push(FieldError::new(
            "kind",
            format!(
                "{other} does not match the path /api/v1/{}, which holds {kind} records",
                S::KIND.plural()
            ),
        )),
    }
    let path_name = match purpose {
        Purpose::Create => None,
        Purpose::Replace(n) | Purpose::Status(n) => Some(n),
    };
    let meta = top
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Value::Object(meta) = meta {
        unknown_fields(meta, &META_FIELDS, "metadata.", &mut causes);
        if let Some(Value::String(rv)) = meta.get("resourceVersion") {
            if !rv.is_empty() && rv.parse::<u64>().is_err() {
                causes.push(FieldError::new(
                    "metadata.resourceVersion",
                    format!("{rv:?} is not a resource version (a number, as the server gave it)"),
                ));
            }
        }
        if let Some(path_name) = path_name {
            match meta.get("name") {
                None | Some(Value::Null) => {
                    meta.insert("name".into(), path_name.into());
                }
                Some(Value::String(n)) if n.is_empty() => {
                    meta.insert("name".into(), path_name.into());
                }
                Some(Value::String(n)) if n == path_name => {}
                Some(other) => causes.push(FieldError::new(
                    "metadata.name",
                    format!("{other} does not match the name in the path ({path_name:?})"),
                )),
            }
        }
    }
    if !matches!(purpose, Purpose::Status(_)) {
        // Status in a spec write is ignored; do not let a stale or foreign status block it.
        top.remove("status");
    }
    let decoded: Result<Object<S>, _> = serde_path_to_error::deserialize(Value::Object(top));
    let obj = match decoded {
        Ok(obj) => obj,
        Err(e) => {
            let path = e.path().to_string();
            let message = e.into_inner().to_string();
            causes.push(FieldError::new(field_of(&path, &message), message));
            return Err(ApiError::invalid(kind, causes));
        }
    };
    if let Err(e) = validate_name(obj.name()) {
        causes.push(e);
    }
    if !matches!(purpose, Purpose::Status(_)) {
        if let Err(errs) = obj.spec.validate() {
            causes.extend(errs);
        }
    }
    if causes.is_empty() {
        Ok(obj)
    } else {
        let what = if obj.name().is_empty() {
            kind.to_string()
        } else {
            format!("{kind} {:?}", obj.name())
        };
        Err(ApiError::invalid(&what, causes))
    }
}

/// The field a decode error is about: its path, and for a missing field the field itself
/// (serde reports `missing field `spec`` at the parent's path, which is empty at the top).
fn field_of(path: &str, message: &str) -> String {
    let parent = if path == "." { "" } else { path };
    let missing = message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split('`').next());
    match missing {
        Some(name) if parent.is_empty() => name.to_string(),
        Some(name) => format!("{parent}.{name}"),
        None => parent.to_string(),
    }
}

fn unknown_fields(
    map: &Map<String, Value>,
    known: &[&str],
    prefix: &str,
    causes: &mut Vec<FieldError>,
) {
    for key in map.keys() {
        if !known.contains(&key.as_str()) {
            causes.push(FieldError::new(
                format!("{prefix}{key}"),
                format!("unknown field; expected one of {}", known.join(", ")),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{RecipeSpec, TestRunSpec};
    use serde_json::json;

    fn causes(e: &ApiError) -> Vec<String> {
        e.details
            .as_ref()
            .map(|d| d.causes.iter().map(ToString::to_string).collect())
            .unwrap_or_default()
    }

    #[test]
    fn a_bad_stage_names_its_index_and_the_allowed_values() {
        let v = json!({"metadata":{"name":"hedgedoc"},"spec":{"git":"https://x","stages":["install","foo"]}});
        let e = decode_object::<RecipeSpec>(v, Purpose::Create).unwrap_err();
        let c = causes(&e);
        assert_eq!(e.reason, Reason::Invalid);
        assert!(c[0].starts_with("spec.stages[1]: unknown variant"), "{c:?}");
        assert!(c[0].contains("backup-restore"), "{c:?}");
    }

    #[test]
    fn unknown_spec_fields_are_rejected_with_their_path() {
        let v = json!({"metadata":{"name":"a"},"spec":{"git":"x","gti":"y"}});
        let e = decode_object::<RecipeSpec>(v, Purpose::Create).unwrap_err();
        let c = causes(&e);
        assert!(c[0].starts_with("spec"), "{c:?}");
        assert!(c[0].contains("gti"), "{c:?}");
        let v = json!({"metadata":{"name":"a","lables":{}},"spec":{"git":"x"},"extra":1});
        let c = causes(&decode_object::<RecipeSpec>(v, Purpose::Create).unwrap_err());
        assert!(
            c.iter().any(|c| c.starts_with("extra: unknown field")),
            "{c:?}"
        );
        assert!(
            c.iter().any(|c| c.starts_with("metadata.lables: unknown")),
            "{c:?}"
        );
    }

    #[test]
    fn every_validation_cause_is_listed() {
        let v = json!({"kind":"Recipe","metadata":{"name":"Bad_Name"},"spec":{"git":" ","forgeRepo":"nope"}});
        let c = causes(&decode_object::<RecipeSpec>(v, Purpose::Create).unwrap_err());
        let fields: Vec<&str> = c.iter().map(|c| c.split(':').next().unwrap()).collect();
        assert_eq!(fields, ["metadata.name", "spec.git", "spec.forgeRepo"]);
    }

    #[test]
    fn kind_and_api_version_must_match_the_path_and_are_filled_in_when_missing() {
        let v = json!({"kind":"Recipe","metadata":{"name":"a"},"spec":{"recipe":"a","ref":"main"}});
        let c = causes(&decode_object::<TestRunSpec>(v, Purpose::Create).unwrap_err());
        assert!(c[0].starts_with("kind: \"Recipe\" does not match"), "{c:?}");
        let v = json!({"apiVersion":"v1","metadata":{"name":"a"},"spec":{"git":"x"}});
        let c = causes(&decode_object::<RecipeSpec>(v, Purpose::Create).unwrap_err());
        assert!(c[0].starts_with("apiVersion:"), "{c:?}");
        let v = json!({"spec":{"git":"x"}});
        let obj = decode_object::<RecipeSpec>(v, Purpose::Replace("a")).unwrap();
        assert_eq!(
            (obj.kind.as_str(), obj.api_version.as_str(), obj.name()),
            ("Recipe", API_VERSION, "a")
        );
    }

    #[test]
    fn a_missing_field_is_named_with_its_path() {
        let c = causes(
            &decode_object::<TestRunSpec>(json!({"metadata":{"name":"a"}}), Purpose::Create)
                .unwrap_err(),
        );
        assert!(c[0].starts_with("spec: missing field"), "{c:?}");
        let v = json!({"metadata":{"name":"a"},"spec":{"ref":"main"}});
        let c = causes(&decode_object::<TestRunSpec>(v, Purpose::Create).unwrap_err());
        assert!(c[0].starts_with("spec.recipe: missing field"), "{c:?}");
    }

    #[test]
    fn a_resource_version_that_is_not_a_number_is_invalid_not_a_conflict() {
        let v = json!({"metadata":{"name":"a","resourceVersion":"abc"},"spec":{"git":"x"}});
        let e = decode_object::<RecipeSpec>(v, Purpose::Replace("a")).unwrap_err();
        assert_eq!(e.reason, Reason::Invalid);
        assert!(
            causes(&e)[0].starts_with("metadata.resourceVersion:"),
            "{:?}",
            causes(&e)
        );
    }

    #[test]
    fn a_name_differing_from_the_path_is_invalid() {
        let v = json!({"metadata":{"name":"b"},"spec":{"git":"x"}});
        let c = causes(&decode_object::<RecipeSpec>(v, Purpose::Replace("a")).unwrap_err());
        assert!(c[0].starts_with("metadata.name:"), "{c:?}");
    }

    #[test]
    fn status_is_ignored_on_spec_writes_and_kept_on_status_writes() {
        let v = json!({"metadata":{"name":"a"},"spec":{"git":"x"},"status":{"badge":"passing"}});
        let obj = decode_object::<RecipeSpec>(v.clone(), Purpose::Create).unwrap();
        assert_eq!(obj.status.badge, None);
        let obj = decode_object::<RecipeSpec>(v, Purpose::Status("a")).unwrap();
        assert_eq!(obj.status.badge, Some(crate::api::Badge::Passing));
    }
}
