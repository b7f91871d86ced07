//! The configuration of one app of a recipe, made like `abra app new` + `abra app deploy` do:
//! the run's domain and stack name, `.env.sample` rewritten for the run, `abra.sh` exports,
//! the Recipe's overrides, the enabled compose files and abra's labels on the `app` service.
//!
//! Order of precedence, lowest first: `.env.sample` (with `DOMAIN`, `TYPE`/`RECIPE`,
//! `LETS_ENCRYPT_ENV` and the overrides written into its text, so later lines that expand
//! `$DOMAIN` see the run's domain), then `abra.sh` exports, then the Recipe's overrides once
//! more (they win over the recipe), then the run's identity — [`IDENTITY_KEYS`] `DOMAIN` and
//! `STACK_NAME` — which nothing a recipe or a Recipe record says can change.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

/// Longest a swarm object name may be (Docker's limit for secret and config names).
pub const MAX_OBJECT_NAME: usize = 64;

/// Longest stack name we produce, so `<stack>_<service>` stays a valid DNS label (63).
pub const MAX_STACK_NAME: usize = 40;

/// The variables that make a run's identity: set by cc-ci last, never by the recipe's
/// `.env.sample` or `abra.sh`, nor by a Recipe's `env` (refused when the record is written).
pub use crate::api::IDENTITY_KEYS;

/// Whether `key` is one of [`IDENTITY_KEYS`].
pub fn is_identity_key(key: &str) -> bool {
    IDENTITY_KEYS.contains(&key)
}

/// One variable of an app env, with its trailing-comment modifiers (`# length=32`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AppVar {
    /// The name.
    pub key: String,
    /// The value, expanded.
    pub value: String,
    /// Modifiers from a trailing comment, e.g. `length` → `32`.
    pub modifiers: BTreeMap<String, String>,
}

/// An app env: variables in file order, each key once.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AppEnv {
    vars: Vec<AppVar>,
}

impl AppEnv {
    /// An env from variables in file order; a repeated key keeps its first position and its
    /// last value (like sourcing the file).
    pub fn from_vars(vars: impl IntoIterator<Item = AppVar>) -> AppEnv {
        let mut env = AppEnv::default();
        for v in vars {
            match env.vars.iter_mut().find(|x| x.key == v.key) {
                Some(existing) => *existing = v,
                None => env.vars.push(v),
            }
        }
        env
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.var(key).map(|v| v.value.as_str())
    }

    /// The variable `key` with its modifiers.
    pub fn var(&self, key: &str) -> Option<&AppVar> {
        self.vars.iter().find(|v| v.key == key)
    }

    /// Sets `key`, keeping its position and modifiers when it exists.
    pub fn set(&mut self, key: &str, value: impl Into<String>) {
        let value = value.into();
        match self.vars.iter_mut().find(|v| v.key == key) {
            Some(v) => v.value = value,
            None => self.vars.push(AppVar {
                key: key.to_string(),
                value,
                modifiers: BTreeMap::new(),
            }),
        }
    }

    /// Every variable, in order.
    pub fn vars(&self) -> &[AppVar] {
        &self.vars
    }

    /// Key → value, e.g. for compose interpolation or a service's environment.
    pub fn to_map(&self) -> BTreeMap<String, String> {
        self.vars
            .iter()
            .map(|v| (v.key.clone(), v.value.clone()))
            .collect()
    }

    /// The enabled compose files from `COMPOSE_FILE` (`:`-separated), `compose.yml` when unset.
    pub fn compose_files(&self) -> Vec<String> {
        let files: Vec<String> = self
            .get("COMPOSE_FILE")
            .unwrap_or("")
            .split(':')
            .map(str::trim)
            .filter(|f| !f.is_empty())
            .map(str::to_string)
            .collect();
        if files.is_empty() {
            vec!["compose.yml".to_string()]
        } else {
            files
        }
    }
}

/// The run's app domain: `<recipe>-pr<N>-<sha7>[-<n>].<base_domain>`, or
/// `<recipe>-<sha7>[-<n>].<base>` without a pull request. `attempt` > 0 adds `-<n>` (a run
/// repeated for the same commit). The first label is kept within 63 characters by shortening
/// the recipe part.
pub fn run_domain(
    recipe: &str,
    pr: Option<u64>,
    commit: &str,
    attempt: u32,
    base_domain: &str,
) -> String {
    let sha7: String = commit.chars().take(7).collect::<String>().to_lowercase();
    let mut rest = match pr {
        Some(n) => format!("-pr{n}-{sha7}"),
        None => format!("-{sha7}"),
    };
    if attempt > 0 {
        rest.push_str(&format!("-{attempt}"));
    }
    let room = 63usize.saturating_sub(rest.len());
    let recipe: String = recipe.chars().take(room).collect();
    let label = format!("{}{rest}", recipe.trim_end_matches('-'));
    format!("{label}.{}", base_domain.trim_start_matches('.'))
}

/// The stack name for `domain`: the domain with `.` → `_`, shortened when needed so that
/// every `<stack><suffix>` in `suffixes` (e.g. `_db_password_v1`) is at most
/// [`MAX_OBJECT_NAME`] characters and the stack at most [`MAX_STACK_NAME`]. Shortening keeps
/// a readable prefix and appends `_` + 8 hex characters of the domain's SHA-256, so the result
/// is deterministic. Compute it once per run and keep it: a later version's longer secret
/// names must not change the stack of a running app.
pub fn stack_name<'a>(domain: &str, suffixes: impl IntoIterator<Item = &'a str>) -> String {
    let full = domain.replace('.', "_");
    let longest = suffixes.into_iter().map(str::len).max().unwrap_or(0);
    let limit = MAX_OBJECT_NAME.saturating_sub(longest).min(MAX_STACK_NAME);
    if full.len() <= limit {
        return full;
    }
    let hash = hex::encode(Sha256::digest(domain.as_bytes()));
    let keep = limit.saturating_sub(9);
    let prefix: String = full.chars().take(keep).collect();
    format!("{}_{}", prefix.trim_end_matches(['_', '-']), &hash[..8])
}

/// `value` quoted for a `.env` file so that it reads back literally.
pub fn quote_env_value(value: &str) -> String {
    if !value.contains('\'') {
        return format!("'{value}'");
    }
    let mut out = String::from("\"");
    for c in value.chars() {
        match c {
            '\\' | '"' | '$' | '`' => {
                out.push('\\');
                out.push(c);
            }
            '\n' => out.push_str("\\n"),
            _ => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Rewrites `.env.sample` text: each uncommented `KEY=…` line (optionally `export KEY=…`) of
/// a key in `assignments` gets the new value (quoted, trailing `# modifiers` kept); keys not
/// present are appended at the end. Everything else is left as written.
pub fn rewrite_sample(sample: &str, assignments: &[(String, String)]) -> String {
    let mut done = vec![false; assignments.len()];
    let mut out = String::with_capacity(sample.len() + 64);
    for line in sample.lines() {
        let body = line.trim_start();
        let body = body.strip_prefix("export ").unwrap_or(body).trim_start();
        let key = body.split_once('=').map(|(k, _)| k.trim_end());
        let hit = key.and_then(|k| assignments.iter().position(|(a, _)| a == k));
        match hit {
            Some(i) if !body.starts_with('#') => {
                let (k, v) = &assignments[i];
                out.push_str(&format!("{k}={}", quote_env_value(v)));
                if let Some(comment) = trailing_comment(line) {
                    out.push_str(" #");
                    out.push_str(comment);
                }
                done[i] = true;
            }
            _ => out.push_str(line),
        }
        out.push('\n');
    }
    for (i, (k, v)) in assignments.iter().enumerate() {
        if !done[i] {
            out.push_str(&format!("{k}={}\n", quote_env_value(v)));
        }
    }
    out
}

/// The text after an unquoted ` #` on an assignment line, e.g. ` length=32`.
fn trailing_comment(line: &str) -> Option<&str> {
    let value = line.split_once('=')?.1;
    let (mut single, mut double, mut prev_space) = (false, false, false);
    for (i, c) in value.char_indices() {
        match c {
            '\'' if !double => single = !single,
            '"' if !single => double = !double,
            '#' if !single && !double && (prev_space || i == 0) => return Some(&value[i + 1..]),
            _ => {}
        }
        prev_space = c.is_whitespace();
    }
    None
}

/// What a run's app is made of, before the env file is parsed.
#[derive(Clone, Debug)]
pub struct AppParams {
    /// Recipe name (the `Recipe` record's name).
    pub recipe: String,
    /// Version deployed: the tag, or the short commit when the head has no tag.
    pub version: String,
    /// The run's domain ([`run_domain`]).
    pub domain: String,
    /// The run's stack name once chosen ([`stack_name`]); `None` on a run's first
    /// configuration, when [`load`] picks it from the domain and the recipe's object names.
    pub stack: Option<String>,
    /// The Recipe's env overrides.
    pub overrides: BTreeMap<String, String>,
}

impl AppParams {
    /// The assignments written into `.env.sample` before it is parsed: `DOMAIN`,
    /// `TYPE` (or `RECIPE` when the sample uses that name) = `<recipe>:<version>`, an empty
    /// `LETS_ENCRYPT_ENV` (routers then use the proxy's default certificate), then overrides.
    pub fn sample_assignments(&self, sample: &str) -> Vec<(String, String)> {
        let uses_recipe_key = sample
            .lines()
            .any(|l| l.trim_start().starts_with("RECIPE="))
            && !sample.lines().any(|l| l.trim_start().starts_with("TYPE="));
        let type_key = if uses_recipe_key { "RECIPE" } else { "TYPE" };
        let mut out = vec![
            ("DOMAIN".to_string(), self.domain.clone()),
            (
                type_key.to_string(),
                format!("{}:{}", self.recipe, self.version),
            ),
            ("LETS_ENCRYPT_ENV".to_string(), String::new()),
        ];
        for (k, v) in self.overrides.iter().filter(|(k, _)| !is_identity_key(k)) {
            match out.iter_mut().find(|(a, _)| a == k) {
                Some(slot) => slot.1 = v.clone(),
                None => out.push((k.clone(), v.clone())),
            }
        }
        out
    }

    /// Completes the parsed, rewritten sample: `abra.sh` exports merged over it, then the
    /// overrides again so they win over `abra.sh`, then the run's `DOMAIN` and `STACK_NAME`
    /// (whatever the recipe or the overrides said about them).
    pub fn finish(
        &self,
        mut env: AppEnv,
        abra_sh_exports: &[(String, String)],
        stack: &str,
    ) -> AppEnv {
        for (k, v) in abra_sh_exports {
            env.set(k, v.clone());
        }
        for (k, v) in &self.overrides {
            env.set(k, v.clone());
        }
        env.set("DOMAIN", self.domain.clone());
        env.set("STACK_NAME", stack);
        env
    }
}

/// The labels abra puts on a recipe's `app` service at deploy, which the compose conversion
/// adds: `coop-cloud.<stack>.version`, `…recipe` and `…chaos` (`false`: we deploy released
/// or pinned code, never abra's "chaos" mode of an uncommitted checkout).
pub fn app_labels(stack: &str, recipe: &str, version: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (format!("coop-cloud.{stack}.version"), version.to_string()),
        (format!("coop-cloud.{stack}.recipe"), recipe.to_string()),
        (format!("coop-cloud.{stack}.chaos"), "false".to_string()),
    ])
}

/// Does to a recipe's compose model what `abra app deploy` does before converting it: every
/// variable of the app env becomes part of the `app` service's environment (unless the
/// service sets it already) so templated configs can read it, and [`app_labels`] go on the
/// `app` service's deploy labels. Recipes without an `app` service are left as they are.
pub fn prepare_compose(
    compose: &mut crate::swarm::compose::ComposeFile,
    env: &AppEnv,
    recipe: &str,
    version: &str,
) {
    let Some(app) = compose.services.get_mut("app") else {
        return;
    };
    for var in env.vars() {
        app.environment
            .entry(var.key.clone())
            .or_insert_with(|| Some(var.value.clone()));
    }
    let stack = env.get("STACK_NAME").unwrap_or_default();
    app.deploy.labels.extend(app_labels(stack, recipe, version));
}

mod load;
pub use load::{App, AppError, load, object_name_suffixes};

impl From<&crate::swarm::env::EnvFile> for AppEnv {
    fn from(file: &crate::swarm::env::EnvFile) -> AppEnv {
        AppEnv::from_vars(file.entries.iter().map(|e| AppVar {
            key: e.key.clone(),
            value: e.value.clone(),
            modifiers: e.modifiers.clone(),
        }))
    }
}

#[cfg(test)]
mod tests;
