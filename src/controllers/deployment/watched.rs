//! What of a deployment record wakes its reconciler (pure): the parts a reconcile acts on, never
//! the status the reconcile itself writes.
//!
//! With a cache of whole records every status write is a change, so a reconcile that wrote a
//! status (`Progressing`, then `Failed`) was scheduled again at once, overriding the re-check it
//! asked for: a version that could not be fetched was retried back to back, and the record spent
//! nearly all its time `Progressing` (runs waiting for the proxy rarely saw it `Failed`).
//! kube-runtime users reach for a generation predicate for this; here the controller caches this
//! projection, and a change is scheduled only when the projection changes.

use crate::api::{Object, Spec};
use crate::runtime::reflector::Keyed;

/// The parts of a deployment record whose change calls for a reconcile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Watched {
    /// The record's name (the key).
    pub name: String,
    /// A record deleted and created again under the same name is another deployment.
    pub uid: String,
    /// Bumped by every spec change (version, env, files named).
    pub generation: u64,
    /// Deletion was asked for: the finalizer's cleanup is due.
    pub deleting: bool,
    /// The finalizer being added (or removed) moves the record to its next case.
    pub finalizers: Vec<String>,
}

impl Watched {
    /// The projection of `obj` the controller caches.
    pub fn of<S: Spec>(obj: Object<S>) -> Watched {
        Watched {
            deleting: obj.is_deleting(),
            name: obj.metadata.name,
            uid: obj.metadata.uid,
            generation: obj.metadata.generation,
            finalizers: obj.metadata.finalizers,
        }
    }
}

impl Keyed for Watched {
    fn key(&self) -> &str {
        &self.name
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{DeploymentPhase, ProxyDeploymentSpec};

    fn proxy() -> Object<ProxyDeploymentSpec> {
        let mut p = Object::new(
            "traefik",
            ProxyDeploymentSpec {
                git: "https://git.example.org/traefik.git".into(),
                version: "1.0.0+2.11".into(),
                domain: "traefik.ci.example.org".into(),
                env: Default::default(),
                wildcard_cert_file: None,
                wildcard_key_file: None,
                keep_volumes: false,
            },
        );
        p.metadata.generation = 1;
        p.metadata.resource_version = "10".into();
        p
    }

    #[test]
    fn the_reconcilers_own_status_writes_are_not_a_change() {
        let before = proxy();
        let mut after = before.clone();
        after.status.phase = DeploymentPhase::Progressing;
        after.status.message = "preparing version 9.9.9+missing".into();
        after.status.observed_generation = 1;
        after.metadata.resource_version = "11".into();
        assert_eq!(Watched::of(before), Watched::of(after));
    }

    #[test]
    fn a_spec_change_a_deletion_or_a_finalizer_is_a_change() {
        let base = Watched::of(proxy());
        let mut spec = proxy();
        spec.spec.version = "9.9.9+missing".into();
        spec.metadata.generation = 2;
        assert_ne!(Watched::of(spec), base);
        let mut deleting = proxy();
        deleting.metadata.deletion_timestamp = Some(chrono::Utc::now());
        assert_ne!(Watched::of(deleting), base);
        let mut finalized = proxy();
        finalized
            .metadata
            .finalizers
            .push("cc-ci/proxydeployment-remove".into());
        assert_ne!(Watched::of(finalized), base);
        let mut recreated = proxy();
        recreated.metadata.uid = "another".into();
        assert_ne!(Watched::of(recreated), base);
    }
}
