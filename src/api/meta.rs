//! Kubernetes-shaped metadata, conditions and the generic `Object<S>` envelope every record kind shares.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::Kind;

/// The `apiVersion` of every record cc-ci stores.
pub const API_VERSION: &str = "cc-ci/v1alpha1";

/// Metadata common to all records, as in Kubernetes' `ObjectMeta`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ObjectMeta {
    /// Unique name within the kind: `^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`.
    pub name: String,
    /// Set by the store at creation; never changes afterwards.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub uid: String,
    /// Opaque version for optimistic concurrency; set by the store on every write.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub resource_version: String,
    /// Bumped by the store whenever `spec` changes (never on status writes).
    #[serde(default)]
    pub generation: u64,
    /// Set by the store at creation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creation_timestamp: Option<DateTime<Utc>>,
    /// Set when deletion was requested; the record goes once `finalizers` is empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_timestamp: Option<DateTime<Utc>>,
    /// Controllers that must clean up before the record may disappear.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub finalizers: Vec<String>,
    /// Key/value pairs for selection (`?labelSelector=`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Free-form key/value notes, not used for selection.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl ObjectMeta {
    /// Metadata with only a name, as a user writes it in a manifest.
    pub fn named(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            ..Self::default()
        }
    }

    /// The resource version as a number (0 when unset or not numeric).
    pub fn resource_version_u64(&self) -> u64 {
        self.resource_version.parse().unwrap_or(0)
    }
}

/// Truth value of a [`Condition`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ConditionStatus {
    /// The condition holds.
    True,
    /// The condition does not hold.
    False,
    /// Not yet known.
    #[default]
    Unknown,
}

/// One observed condition, as in Kubernetes' `metav1.Condition`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// CamelCase kind of condition, e.g. `Ready`.
    #[serde(rename = "type")]
    pub type_: String,
    /// Whether it holds.
    pub status: ConditionStatus,
    /// CamelCase machine-readable reason for the last transition.
    #[serde(default)]
    pub reason: String,
    /// Human-readable detail.
    #[serde(default)]
    pub message: String,
    /// When `status` last changed.
    pub last_transition_time: DateTime<Utc>,
}

/// Sets `type_` in `conditions` to the given values, keeping `lastTransitionTime` when the
/// status did not change. Returns whether anything changed.
pub fn set_condition(
    conditions: &mut Vec<Condition>,
    type_: &str,
    status: ConditionStatus,
    reason: &str,
    message: &str,
) -> bool {
    if let Some(c) = conditions.iter_mut().find(|c| c.type_ == type_) {
        let changed = c.status != status || c.reason != reason || c.message != message;
        if c.status != status {
            c.last_transition_time = Utc::now();
        }
        c.status = status;
        c.reason = reason.to_string();
        c.message = message.to_string();
        changed
    } else {
        conditions.push(Condition {
            type_: type_.to_string(),
            status,
            reason: reason.to_string(),
            message: message.to_string(),
            last_transition_time: Utc::now(),
        });
        true
    }
}

/// The spec half of a record kind; ties a spec type to its status type and [`Kind`].
pub trait Spec:
    Clone
    + std::fmt::Debug
    + PartialEq
    + Serialize
    + DeserializeOwned
    + JsonSchema
    + Send
    + Sync
    + 'static
{
    /// The observed-state type stored next to this spec.
    type Status: Clone
        + std::fmt::Debug
        + Default
        + PartialEq
        + Serialize
        + DeserializeOwned
        + JsonSchema
        + Send
        + Sync
        + 'static;
    /// Which kind this spec belongs to.
    const KIND: Kind;

    /// Checks what the schema cannot express. Errors name the field, e.g. `spec.git: must not be empty`.
    fn validate(&self) -> Result<(), Vec<super::FieldError>> {
        Ok(())
    }
}

/// A record: `apiVersion`, `kind`, `metadata`, `spec`, `status`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", bound = "")]
#[schemars(bound = "S: Spec")]
pub struct Object<S: Spec> {
    /// Always `cc-ci/v1alpha1`.
    pub api_version: String,
    /// The kind's name, e.g. `TestRun`.
    pub kind: String,
    /// Name, versions, labels, finalizers.
    pub metadata: ObjectMeta,
    /// The desired state.
    pub spec: S,
    /// The observed state; written only through status updates.
    #[serde(default)]
    pub status: S::Status,
}

impl<S: Spec> Object<S> {
    /// A new record with the given name and spec and an empty status.
    pub fn new(name: impl Into<String>, spec: S) -> Self {
        Self {
            api_version: API_VERSION.to_string(),
            kind: S::KIND.name().to_string(),
            metadata: ObjectMeta::named(name),
            spec,
            status: S::Status::default(),
        }
    }

    /// The record's name.
    pub fn name(&self) -> &str {
        &self.metadata.name
    }

    /// Whether deletion was requested.
    pub fn is_deleting(&self) -> bool {
        self.metadata.deletion_timestamp.is_some()
    }
}
