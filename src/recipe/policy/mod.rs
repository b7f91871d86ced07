//! The compose policy for untrusted recipes: what a recipe's compose files may ask of the host.
//! Pure — it reads the loaded compose (and what the caller found on disk about bind sources)
//! and returns every violation, each naming the service or object, the key and the rule.
//!
//! Refused unless the Recipe's `allow` lists that exact thing (`KEY` or `KEY:VALUE`):
//!
//! | rule | compose | allowance |
//! |---|---|---|
//! | privileged | `privileged: true` | `privileged` |
//! | capability | `cap_add: [X]` | `cap_add:X` |
//! | security option | `security_opt: [X]` | `security_opt:X` |
//! | host namespace | `network_mode`/`pid`/`ipc`/`userns_mode`/`uts`/`cgroupns_mode: host` (or `container:…`, `service:…`) | `pid:host`, … |
//! | cgroup parent | `cgroup_parent: X` | `cgroup_parent:X` |
//! | device | `devices: [/dev/x:…]` | `devices:/dev/x` |
//! | sysctl | `sysctls: {k: v}` | `sysctls:k` |
//! | host bind mount | a bind whose source (symlinks followed) is outside the checkout | `bind:/host/path` |
//! | volume driver | a named volume with a `driver` other than `local` | `driver:NAME` |
//! | volume driver options | `driver_opts.device` (a host path or remote share) | `driver_opts:DEVICE` |
//! | host port | a published port | `ports:N` or `ports:N/udp` |
//! | foreign object | an external (or explicitly named) network, volume, secret or config that is not the stack's own (`<stack>_…`) nor the `proxy` network | `external:NAME` |
//!
//! Never allowed: a writable bind mount of the recipe checkout itself (mount it `read_only`;
//! a writable one lets a container plant symlinks another mount would follow), and labels in
//! cc-ci's or Docker's stack namespaces (`cc-ci.*`, `com.docker.stack.*`), which decide who
//! owns and removes an object.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use crate::swarm::compose::{ComposeFile, SourceTree};

mod rules;
#[cfg(test)]
mod tests;

/// The network every recipe may join without an allowance.
pub const PROXY_NETWORK: &str = "proxy";

/// What a rule protects against; the wire name is the key an allowance starts with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Rule {
    /// `privileged: true`.
    Privileged,
    /// `cap_add`.
    Capability,
    /// `security_opt`.
    SecurityOption,
    /// A host (or another container's) namespace.
    HostNamespace,
    /// `cgroup_parent`.
    CgroupParent,
    /// `devices`.
    Device,
    /// `sysctls`.
    Sysctl,
    /// A bind mount of a host path.
    HostBind,
    /// A writable bind mount of the checkout.
    WritableCheckoutBind,
    /// A volume driver other than `local`.
    VolumeDriver,
    /// Volume driver options that mount a host path or a share.
    VolumeDevice,
    /// A published port.
    HostPort,
    /// Another stack's (or the host's) network, volume, secret or config.
    ForeignObject,
    /// A label cc-ci or Docker use to decide ownership.
    ReservedLabel,
}

impl Rule {
    /// A short name for messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::Privileged => "privileged container",
            Rule::Capability => "added capability",
            Rule::SecurityOption => "security option",
            Rule::HostNamespace => "host namespace",
            Rule::CgroupParent => "cgroup parent",
            Rule::Device => "host device",
            Rule::Sysctl => "kernel parameter",
            Rule::HostBind => "host bind mount",
            Rule::WritableCheckoutBind => "writable bind mount of the recipe",
            Rule::VolumeDriver => "volume driver",
            Rule::VolumeDevice => "volume bound to a host path",
            Rule::HostPort => "port published on the host",
            Rule::ForeignObject => "object not owned by the app",
            Rule::ReservedLabel => "reserved label",
        }
    }
}

/// One refused thing.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Violation {
    /// Dotted key path, e.g. `services.app.cap_add` or `volumes.data.driver_opts.device`.
    pub key: String,
    /// The rule broken.
    pub rule: Rule,
    /// The value concerned, e.g. `NET_ADMIN` or `/var/run/docker.sock`.
    pub value: String,
    /// The `allow` entries that would permit it (any one does); empty when nothing can.
    pub allowances: Vec<String>,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {} {:?}", self.key, self.rule.as_str(), self.value)?;
        match self.allowances.first() {
            Some(a) => write!(f, " (refused unless the Recipe's allow lists {a:?})"),
            None => write!(f, " (never allowed)"),
        }
    }
}

/// Every violation of one compose, for a typed error.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("compose policy refused {}: {}", .0.len(), list(.0))]
pub struct PolicyError(pub Vec<Violation>);

fn list(v: &[Violation]) -> String {
    v.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// The exceptions a Recipe allows: `KEY` or `KEY:VALUE` entries, matched exactly.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Allowances(BTreeSet<String>, bool);

impl Allowances {
    /// From a Recipe's `allow` list (entries trimmed; empty ones ignored).
    pub fn new<S: AsRef<str>>(entries: &[S]) -> Allowances {
        Allowances(
            entries
                .iter()
                .map(|e| e.as_ref().trim().to_string())
                .filter(|e| !e.is_empty())
                .collect(),
            false,
        )
    }

    /// Everything allowed: for apps the operator declares (`ProxyDeployment`,
    /// `AppDeployment`), which are trusted as the operator's own configuration — unlike a pull
    /// request's compose. Path confinement to the checkout still applies to them.
    pub fn operator() -> Allowances {
        Allowances(BTreeSet::new(), true)
    }

    /// Whether `entry` is listed.
    pub fn allows(&self, entry: &str) -> bool {
        self.1 || self.0.contains(entry)
    }
}

/// Where a bind mount's source leads, found by the caller on disk (symlinks followed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BindTarget {
    /// Inside the recipe checkout.
    Checkout,
    /// Outside it: the real host path.
    Host(PathBuf),
}

/// What the policy looks at.
#[derive(Clone, Copy, Debug)]
pub struct Input<'a> {
    /// The merged compose model.
    pub compose: &'a ComposeFile,
    /// Each file as written (interpolated), for keys the model drops.
    pub sources: &'a [SourceTree],
    /// The stack: objects named `<stack>_…` are the app's own.
    pub stack: &'a str,
    /// Bind sources (absolute, as loaded) → where they lead. A source missing here is
    /// treated as a host path.
    pub binds: &'a BTreeMap<String, BindTarget>,
}

/// Every violation of `input` that `allow` does not permit, sorted and de-duplicated.
pub fn check(input: &Input<'_>, allow: &Allowances) -> Vec<Violation> {
    let mut found = Vec::new();
    for source in input.sources {
        rules::raw_service_keys(&source.tree, &mut found);
    }
    rules::services(input, &mut found);
    rules::objects(input, &mut found);
    let mut out: Vec<Violation> = found
        .into_iter()
        .filter(|v| !v.allowances.iter().any(|a| allow.allows(a)))
        .collect();
    out.sort();
    out.dedup();
    out
}

/// [`check`] as a result.
pub fn enforce(input: &Input<'_>, allow: &Allowances) -> Result<(), PolicyError> {
    let violations = check(input, allow);
    if violations.is_empty() {
        Ok(())
    } else {
        Err(PolicyError(violations))
    }
}
