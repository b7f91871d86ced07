//! Which git URLs records may name (`[sources]` of the configuration), checked when a record
//! is written: an empty URL, one that git would read as an option (`-…`), a transport git
//! would run a program for (`ext::…`) or a scheme not allowed is refused there with a 422,
//! instead of being retried into an `Error` by every run.

use std::sync::RwLock;

use serde::{Deserialize, Serialize};

/// The `[sources]` settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SourceSettings {
    /// URL schemes records may use (`scheme://…`; `user@host:path` counts as `ssh`). Default
    /// `https`, `http`, `ssh`, `git`.
    pub schemes: Vec<String>,
    /// Whether records may name a repository on the server's own disk (a path, or
    /// `file://`). Default true so the README's local examples and fixture recipes work; a
    /// server that takes records from people who must not read its disk sets it to false.
    pub allow_local_paths: bool,
}

impl Default for SourceSettings {
    fn default() -> Self {
        SourceSettings {
            schemes: ["https", "http", "ssh", "git"].map(String::from).to_vec(),
            allow_local_paths: true,
        }
    }
}

static ACTIVE: RwLock<Option<SourceSettings>> = RwLock::new(None);

/// Makes `settings` the rules every record write checks (`cc-ci serve` calls it at start).
pub fn set_source_settings(settings: SourceSettings) {
    *ACTIVE.write().unwrap_or_else(|e| e.into_inner()) = Some(settings);
}

/// The rules in force: the ones set, else the defaults.
pub fn source_settings() -> SourceSettings {
    ACTIVE
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
        .unwrap_or_default()
}

/// Checks `url` against `settings`; the error says what is wrong (never echoing credentials).
pub fn check_git_url(url: &str, settings: &SourceSettings) -> Result<(), String> {
    if url.trim().is_empty() {
        return Err("must not be empty".into());
    }
    if url.starts_with('-') {
        return Err("must not start with '-' (git would read it as an option)".into());
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("must not contain whitespace or control characters".into());
    }
    let local_refused = || {
        "names a path on the server, which [sources] allow_local_paths does not allow".to_string()
    };
    if let Some((scheme, rest)) = url.split_once("://") {
        let scheme = scheme.to_ascii_lowercase();
        let valid_scheme = scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
        if !valid_scheme || scheme.is_empty() {
            return Err("has a malformed scheme".into());
        }
        if scheme == "file" {
            return if settings.allow_local_paths {
                Ok(())
            } else {
                Err(local_refused())
            };
        }
        if !settings
            .schemes
            .iter()
            .any(|s| s.eq_ignore_ascii_case(&scheme))
        {
            return Err(format!(
                "uses scheme {scheme:?}; allowed: {}",
                settings.schemes.join(", ")
            ));
        }
        let host = rest.split('/').next().unwrap_or_default();
        let host = host.rsplit('@').next().unwrap_or_default();
        if host.is_empty() || host.starts_with('-') {
            return Err("has no host".into());
        }
        return Ok(());
    }
    if url.contains("::") {
        return Err(
            "uses a git transport helper (`<transport>::…`), which is never allowed".into(),
        );
    }
    // `user@host:path` (scp-like): ssh, when the part before ':' has no '/'.
    if let Some((host, _)) = url.split_once(':')
        && !host.contains('/')
    {
        if host.len() == 1 {
            return Err("looks like a Windows drive path".into());
        }
        let name = host.rsplit('@').next().unwrap_or_default();
        if name.is_empty() || name.starts_with('-') {
            return Err("has no host".into());
        }
        return if settings.schemes.iter().any(|s| s == "ssh") {
            Ok(())
        } else {
            Err(format!(
                "is an ssh address; allowed schemes: {}",
                settings.schemes.join(", ")
            ))
        };
    }
    if settings.allow_local_paths {
        Ok(())
    } else {
        Err(local_refused())
    }
}

/// Whether `key` can be a shell/env variable name (`[A-Za-z_][A-Za-z0-9_]*`).
pub fn valid_env_key(key: &str) -> bool {
    let mut chars = key.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strict() -> SourceSettings {
        SourceSettings {
            schemes: vec!["https".into()],
            allow_local_paths: false,
        }
    }

    #[test]
    fn urls_that_can_never_work_are_refused() {
        let all = SourceSettings::default();
        for bad in [
            "",
            "  ",
            "--upload-pack=touch /tmp/x",
            "-oProxyCommand=x",
            "ext::sh -c touch% /tmp/pwned",
            "ext::sh",
            "fd::17",
            "https://",
            "https://-host/x",
            "gopher://host/x",
            "ht tp://host/x",
            "https://host/x y",
            "c:/repo",
            "https://host/x\n",
        ] {
            assert!(check_git_url(bad, &all).is_err(), "{bad:?}");
        }
        for good in [
            "https://git.coopcloud.tech/coop-cloud/custom-html.git",
            "HTTPS://host/x",
            "ssh://git@host:2222/o/r.git",
            "git@git.coopcloud.tech:coop-cloud/traefik.git",
            "git://host/r",
            "file:///srv/recipes/x",
            "/srv/recipes/x",
            "./relative/repo",
        ] {
            assert_eq!(check_git_url(good, &all), Ok(()), "{good:?}");
        }
    }

    #[test]
    fn schemes_and_local_paths_follow_the_settings() {
        let s = strict();
        assert!(check_git_url("https://host/r", &s).is_ok());
        for refused in [
            "http://host/r",
            "ssh://host/r",
            "git@host:r",
            "file:///etc",
            "/etc",
        ] {
            let err = check_git_url(refused, &s).unwrap_err();
            assert!(!err.is_empty(), "{refused}");
        }
        assert!(
            check_git_url("/etc", &s)
                .unwrap_err()
                .contains("allow_local_paths")
        );
    }

    #[test]
    fn env_keys_are_variable_names() {
        for ok in ["A", "_x", "SECRET_DB_PASSWORD_VERSION", "a1"] {
            assert!(valid_env_key(ok), "{ok}");
        }
        for bad in ["", "1A", "A-B", "A B", "A=B", "$A", "Ä"] {
            assert!(!valid_env_key(bad), "{bad}");
        }
    }
}
