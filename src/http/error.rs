//! [`ApiError`]: the JSON error body every API route answers with, and how store errors map to it.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::api::FieldError;
use crate::store::StoreError;

/// Machine-readable reason of an [`ApiError`] (the contract's `reason` values).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Reason {
    /// 404: no such record or route.
    NotFound,
    /// 409: `create` of a name that exists.
    AlreadyExists,
    /// 409: a stale `resourceVersion`.
    Conflict,
    /// 422: the record is invalid; `details.causes` says where.
    Invalid,
    /// 400: a malformed request (query, JSON syntax).
    BadRequest,
    /// 401: a write without a valid bearer token.
    Unauthorized,
    /// 413: the body is larger than the server accepts.
    PayloadTooLarge,
    /// 410: a watch asked to resume from a version no longer retained.
    Expired,
    /// 500: the server failed.
    InternalError,
    /// 415: the body is not JSON.
    UnsupportedMediaType,
    /// 405: the path exists but does not answer this method.
    MethodNotAllowed,
}

impl Reason {
    /// The HTTP status this reason is answered with.
    pub fn status(self) -> StatusCode {
        match self {
            Reason::NotFound => StatusCode::NOT_FOUND,
            Reason::AlreadyExists | Reason::Conflict => StatusCode::CONFLICT,
            Reason::Invalid => StatusCode::UNPROCESSABLE_ENTITY,
            Reason::BadRequest => StatusCode::BAD_REQUEST,
            Reason::Unauthorized => StatusCode::UNAUTHORIZED,
            Reason::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Reason::Expired => StatusCode::GONE,
            Reason::InternalError => StatusCode::INTERNAL_SERVER_ERROR,
            Reason::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Reason::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        }
    }
}

/// `details` of an `Invalid` error.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Details {
    /// Every problem found, each pointing at its field.
    pub causes: Vec<FieldError>,
}

/// An API error: `{"code":…,"reason":…,"message":…[,"details":{"causes":[…]}]}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{reason:?}: {message}")]
pub struct ApiError {
    /// The HTTP status code.
    pub code: u16,
    /// The CamelCase reason.
    pub reason: Reason,
    /// Human-readable text.
    pub message: String,
    /// Field causes, for `Invalid`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<Details>,
}

impl ApiError {
    /// An error with `reason` and `message`.
    pub fn new(reason: Reason, message: impl Into<String>) -> Self {
        Self {
            code: reason.status().as_u16(),
            reason,
            message: message.into(),
            details: None,
        }
    }

    /// An `Invalid` error listing `causes`; the message summarises them.
    pub fn invalid(what: &str, causes: Vec<FieldError>) -> Self {
        let list = causes
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ");
        Self {
            details: Some(Details { causes }),
            ..Self::new(Reason::Invalid, format!("{what} is invalid: {list}"))
        }
    }

    /// A `BadRequest` error.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(Reason::BadRequest, message)
    }

    /// The JSON body.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| self.message.clone())
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        let reason = match &e {
            StoreError::AlreadyExists { .. } => Reason::AlreadyExists,
            StoreError::NotFound { .. } => Reason::NotFound,
            StoreError::Conflict { .. } => Reason::Conflict,
            StoreError::Expired(_) => Reason::Expired,
            StoreError::Invalid { kind, message } => {
                return ApiError::invalid(kind.name(), vec![FieldError::new("", message.clone())]);
            }
            StoreError::Locked { .. }
            | StoreError::Corrupt { .. }
            | StoreError::Backend(_)
            | StoreError::Decode { .. } => {
                tracing::error!(error = %e, "store failure while serving a request");
                Reason::InternalError
            }
        };
        ApiError::new(reason, e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.reason.status();
        (
            status,
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            self.to_json(),
        )
            .into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Kind;

    #[test]
    fn invalid_errors_list_every_cause_with_its_field() {
        let e = ApiError::invalid(
            "Recipe \"x\"",
            vec![
                FieldError::new("spec.git", "must not be empty"),
                FieldError::new("metadata.name", "bad"),
            ],
        );
        let v: serde_json::Value = serde_json::from_str(&e.to_json()).unwrap();
        assert_eq!(v["code"], 422);
        assert_eq!(v["reason"], "Invalid");
        assert_eq!(v["details"]["causes"][0]["field"], "spec.git");
        assert_eq!(v["details"]["causes"][1]["field"], "metadata.name");
        assert!(
            v["message"]
                .as_str()
                .unwrap()
                .contains("spec.git: must not be empty")
        );
    }

    #[test]
    fn stale_versions_map_to_409_conflict() {
        let e: ApiError = StoreError::Conflict {
            kind: Kind::Recipe,
            name: "a".into(),
            given: "1".into(),
            current: "2".into(),
        }
        .into();
        assert_eq!((e.code, e.reason), (409, Reason::Conflict));
        let e: ApiError = StoreError::Expired(3).into();
        assert_eq!((e.code, e.reason), (410, Reason::Expired));
    }
}
