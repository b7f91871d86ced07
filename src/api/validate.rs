//! Name rules and the field-pointed validation error shared by every record kind.

use serde::Serialize;

/// A validation failure that points at the offending field, e.g. `metadata.name`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// Dotted path of the field, e.g. `spec.stages[1]`.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

impl FieldError {
    /// A new error for `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// Checks a record name against `^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`.
pub fn validate_name(name: &str) -> Result<(), FieldError> {
    let bytes = name.as_bytes();
    let ok_char = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    let valid = !bytes.is_empty()
        && bytes.len() <= 63
        && ok_char(&bytes[0])
        && ok_char(&bytes[bytes.len() - 1])
        && bytes.iter().all(|c| ok_char(c) || *c == b'-');
    if valid {
        Ok(())
    } else {
        Err(FieldError::new(
            "metadata.name",
            format!(
                "{name:?} is not a valid name: use 1-63 lowercase letters, digits and '-', starting and ending with a letter or digit"
            ),
        ))
    }
}

/// The variables that make a run's identity (its domain and stack): cc-ci sets them for each
/// run, after everything a recipe or a record says, and a record's `env` may not name them.
pub const IDENTITY_KEYS: [&str; 2] = ["DOMAIN", "STACK_NAME"];

/// Checks a record's git URL field against the `[sources]` settings in force.
pub fn validate_git_url(field: &str, url: &str) -> Result<(), FieldError> {
    super::sources::check_git_url(url, &super::sources::source_settings())
        .map_err(|m| FieldError::new(field, m))
}

/// Checks a record's `env` overrides: every key a variable name, and none of the run's
/// identity (`DOMAIN`, `STACK_NAME`), which only cc-ci sets. Errors name `<field>.<KEY>`.
pub fn validate_env(
    field: &str,
    env: &std::collections::BTreeMap<String, String>,
) -> Vec<FieldError> {
    let mut errors = Vec::new();
    for key in env.keys() {
        if !super::sources::valid_env_key(key) {
            errors.push(FieldError::new(
                format!("{field}.{key}"),
                format!("{key:?} is not a valid variable name (letters, digits and '_', not starting with a digit)"),
            ));
        } else if IDENTITY_KEYS.contains(&key.as_str()) {
            errors.push(FieldError::new(
                format!("{field}.{key}"),
                format!("{key} is set by cc-ci for each run and cannot be overridden"),
            ));
        }
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_dns_label_rule() {
        assert!(validate_name("hedgedoc").is_ok());
        assert!(validate_name("a").is_ok());
        assert!(validate_name("hedgedoc-pr12-c3456").is_ok());
        assert!(validate_name("").is_err());
        assert!(validate_name("-a").is_err());
        assert!(validate_name("a-").is_err());
        assert!(validate_name("Upper").is_err());
        assert!(validate_name("a_b").is_err());
        assert!(validate_name(&"a".repeat(63)).is_ok());
        assert!(validate_name(&"a".repeat(64)).is_err());
    }
}
