//! Unit tests of secret discovery, generation and persistence.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;

use super::*;
use crate::recipe::app::AppVar;

/// `(key, value, modifiers)` of one env line.
type Line<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)]);

fn env(vars: &[Line<'_>]) -> AppEnv {
    AppEnv::from_vars(vars.iter().map(|(k, v, m)| {
        AppVar {
            key: k.to_string(),
            value: v.to_string(),
            modifiers: m
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect::<BTreeMap<_, _>>(),
        }
    }))
}

const COMPOSE: &str = "secrets:\n  db_password:\n    external: true\n    name: ${STACK_NAME}_db_password_${SECRET_DB_PASSWORD_VERSION}\n  app_key:\n    name: ${STACK_NAME}_app_key_${SECRET_APP_KEY_VERSION}\n";

#[test]
fn only_secrets_of_enabled_compose_files_are_listed() {
    let e = env(&[
        ("SECRET_DB_PASSWORD_VERSION", "v1", &[]),
        (
            "SECRET_APP_KEY_VERSION",
            "v2",
            &[("length", "48"), ("charset", "default,special")],
        ),
        ("SECRET_SMTP_PASSWORD_VERSION", "v1", &[]),
    ]);
    let specs = secret_specs(&e, &[COMPOSE, "services: {}\n"]).unwrap();
    assert_eq!(
        specs,
        vec![
            SecretSpec {
                name: "app_key".into(),
                version: "v2".into(),
                length: Some(48),
                charset: Some("default,special".into()),
            },
            SecretSpec {
                name: "db_password".into(),
                version: "v1".into(),
                length: None,
                charset: None,
            },
        ]
    );
    assert_eq!(specs[1].swarm_name("s_test"), "s_test_db_password_v1");
}

#[test]
fn bad_modifiers_and_missing_versions_are_errors() {
    for bad in ["lots", "0", "99999999999", "512001"] {
        let e = env(&[
            ("SECRET_DB_PASSWORD_VERSION", "v1", &[("length", bad)]),
            ("SECRET_APP_KEY_VERSION", "v1", &[]),
        ]);
        assert!(
            matches!(
                secret_specs(&e, &[COMPOSE]),
                Err(SecretError::BadLength { .. })
            ),
            "{bad}"
        );
    }
    let e = env(&[
        ("SECRET_DB_PASSWORD_VERSION", "v1", &[("charset", "emoji")]),
        ("SECRET_APP_KEY_VERSION", "v1", &[]),
    ]);
    assert!(matches!(
        secret_specs(&e, &[COMPOSE]),
        Err(SecretError::BadCharset { .. })
    ));
    let e = env(&[("SECRET_DB_PASSWORD_VERSION", "v1", &[])]);
    let err = secret_specs(&e, &[COMPOSE]).unwrap_err();
    assert!(err.to_string().contains("SECRET_APP_KEY_VERSION"), "{err}");
}

#[test]
fn generated_values_honour_length_and_charset() {
    let spec = |length, charset: Option<&str>| SecretSpec {
        name: "x".into(),
        version: "v1".into(),
        length,
        charset: charset.map(str::to_string),
    };
    let alnum = generate(&spec(Some(40), None));
    assert_eq!(alnum.chars().count(), 40);
    assert!(alnum.chars().all(|c| c.is_ascii_alphanumeric()), "{alnum}");
    let hex = generate(&spec(Some(64), Some("hex")));
    assert!(
        hex.len() == 64 && hex.chars().all(|c| c.is_ascii_hexdigit()),
        "{hex}"
    );
    let special = generate(&spec(Some(200), Some("special")));
    assert!(special.chars().all(|c| SPECIAL.contains(c)), "{special}");
    assert_ne!(
        generate(&spec(Some(32), None)),
        generate(&spec(Some(32), None))
    );

    let phrase = generate(&spec(None, None));
    let words: Vec<&str> = phrase.split('-').collect();
    assert_eq!(words.len(), PASSPHRASE_WORDS, "{phrase}");
    assert!(words.iter().all(|w| WORDS.contains(w)), "{phrase}");
}

#[test]
fn the_word_list_is_sorted_unique_and_plain() {
    assert!(WORDS.windows(2).all(|w| w[0] < w[1]));
    assert!(
        WORDS
            .iter()
            .all(|w| w.len() >= 3 && w.bytes().all(|b| b.is_ascii_lowercase()))
    );
}

#[test]
fn secrets_persist_with_mode_0600_and_only_new_versions_are_generated() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run/secrets.json");
    let redactor = Redactor::new();
    let v1 = vec![SecretSpec {
        name: "db_password".into(),
        version: "v1".into(),
        length: None,
        charset: None,
    }];
    let mut file = SecretFile::open(&path).unwrap();
    let first = file.ensure("s", &v1, &redactor).unwrap();
    assert_eq!(first[0].swarm_name, "s_db_password_v1");
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert_eq!(redactor.redact(&first[0].value), "***");

    // A restarted controller reads the same value back; an upgrade adds a secret.
    let mut reopened = SecretFile::open(&path).unwrap();
    let mut v2 = v1.clone();
    v2.push(SecretSpec {
        name: "app_key".into(),
        version: "v1".into(),
        length: Some(48),
        charset: None,
    });
    let second = reopened.ensure("s", &v2, &Redactor::new()).unwrap();
    assert_eq!(second[0].value, first[0].value, "existing value reused");
    assert_eq!(second[1].value.len(), 48);
    let on_disk = SecretFile::open(&path).unwrap();
    assert_eq!(on_disk.values().len(), 2);
    assert_eq!(on_disk.get("s_app_key_v1"), Some(second[1].value.as_str()));

    // Bumping a version is a new secret with a new value.
    let bumped = vec![SecretSpec {
        version: "v2".into(),
        ..v1[0].clone()
    }];
    let third = reopened.ensure("s", &bumped, &Redactor::new()).unwrap();
    assert_ne!(third[0].value, first[0].value);
    assert!(
        !std::fs::read_dir(path.parent().unwrap()).unwrap().any(|e| e
            .unwrap()
            .path()
            .extension()
            .is_some_and(|x| x == "tmp"))
    );

    on_disk.remove().unwrap();
    assert!(!path.exists());
}

#[test]
fn names_over_64_characters_are_refused() {
    let spec = SecretSpec {
        name: "a_rather_long_secret_name".into(),
        version: "v1".into(),
        length: Some(8),
        charset: None,
    };
    let dir = tempfile::tempdir().unwrap();
    let mut file = SecretFile::open(&dir.path().join("s.json")).unwrap();
    let stack = "x".repeat(40);
    let err = file.ensure(&stack, &[spec], &Redactor::new()).unwrap_err();
    assert!(matches!(err, SecretError::NameTooLong(_)), "{err}");
    assert!(!dir.path().join("s.json").exists(), "nothing written");
}

#[test]
fn a_corrupt_file_is_an_error_that_quotes_no_content() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.json");
    std::fs::write(&path, "{\"secrets\": {\"a\": 12345678}}").unwrap();
    let err = SecretFile::open(&path).unwrap_err().to_string();
    assert!(!err.contains("12345678"), "{err}");
}
