//! The record kinds cc-ci stores (`Recipe`, `TestRun`, `ProxyDeployment`, `AppDeployment`) and what they share.

mod deployment;
pub mod manifest;
mod meta;
mod recipe;
mod sources;
mod testrun;
mod validate;
pub mod wire;

pub use deployment::{
    AppDeployment, AppDeploymentSpec, DeploymentPhase, DeploymentStatus, ProxyDeployment,
    ProxyDeploymentSpec,
};
pub use meta::{API_VERSION, Condition, ConditionStatus, Object, ObjectMeta, Spec, set_condition};
pub use recipe::{
    Badge, MAX_TIMEOUT_SECONDS, Recipe, RecipeSpec, RecipeStatus, StageKind, StageSummary, Timeouts,
};
pub use sources::{
    SourceSettings, check_git_url, set_source_settings, source_settings, valid_env_key,
};
pub use testrun::{
    AppInfo, MAX_KEEP_SECONDS, RoutingMode, RunPhase, RunSource, StagePhase, StageStatus, StepName,
    StepStatus, TestCounts, TestPhase, TestRun, TestRunSpec, TestRunStatus, parse_keep,
};
pub use validate::{FieldError, IDENTITY_KEYS, validate_env, validate_git_url, validate_name};

use serde::{Deserialize, Serialize};

/// The four record kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Kind {
    /// A recipe enrolled for testing.
    Recipe,
    /// One test run of a recipe at a pinned commit.
    TestRun,
    /// The long-lived reverse proxy (traefik recipe).
    ProxyDeployment,
    /// Any other long-lived recipe app (e.g. drone).
    AppDeployment,
}

impl Kind {
    /// Every kind, in a stable order.
    pub const ALL: [Kind; 4] = [
        Kind::Recipe,
        Kind::TestRun,
        Kind::ProxyDeployment,
        Kind::AppDeployment,
    ];

    /// The `kind` field value, e.g. `TestRun`.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Recipe => "Recipe",
            Kind::TestRun => "TestRun",
            Kind::ProxyDeployment => "ProxyDeployment",
            Kind::AppDeployment => "AppDeployment",
        }
    }

    /// The lowercase plural used in API paths and store trees, e.g. `testruns`.
    pub fn plural(self) -> &'static str {
        match self {
            Kind::Recipe => "recipes",
            Kind::TestRun => "testruns",
            Kind::ProxyDeployment => "proxydeployments",
            Kind::AppDeployment => "appdeployments",
        }
    }

    /// Short names and aliases accepted by `ccctl` (kubectl style).
    pub fn aliases(self) -> &'static [&'static str] {
        match self {
            Kind::Recipe => &["recipe", "recipes", "rc"],
            Kind::TestRun => &["testrun", "testruns", "run", "runs", "tr"],
            Kind::ProxyDeployment => &[
                "proxydeployment",
                "proxydeployments",
                "proxy",
                "proxies",
                "pd",
            ],
            Kind::AppDeployment => &["appdeployment", "appdeployments", "app", "apps", "ad"],
        }
    }

    /// Looks a kind up by its `kind` name, plural or alias (case-insensitive).
    pub fn parse(s: &str) -> Option<Kind> {
        let lower = s.to_ascii_lowercase();
        Kind::ALL
            .into_iter()
            .find(|k| k.name().eq_ignore_ascii_case(s) || k.aliases().contains(&lower.as_str()))
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
