//! Unit tests of the app configuration.

use super::*;

#[test]
fn run_domains_follow_the_pattern() {
    let sha = "0123456789abcdef0123456789abcdef01234567";
    let cases = [
        (
            "webapp-pg",
            Some(12),
            0,
            "webapp-pg-pr12-0123456.ci.example.org",
        ),
        (
            "webapp-pg",
            Some(12),
            2,
            "webapp-pg-pr12-0123456-2.ci.example.org",
        ),
        ("static-site", None, 0, "static-site-0123456.ci.example.org"),
    ];
    for (recipe, pr, attempt, expected) in cases {
        assert_eq!(
            run_domain(recipe, pr, sha, attempt, "ci.example.org"),
            expected
        );
    }
    let long = "a-recipe-with-a-really-long-name-that-goes-on-and-on-and-on-forever";
    let d = run_domain(long, Some(123456), sha, 7, "ci.example.org");
    let label = d.split('.').next().unwrap();
    assert!(label.len() <= 63, "{label}");
    assert!(label.ends_with("-pr123456-0123456-7"), "{label}");
}

#[test]
fn stack_names_replace_dots_and_fit_every_secret() {
    assert_eq!(
        stack_name("webapp-pg-pr1-abcdef0.ci.example.org", ["_db_password_v1"]),
        "webapp-pg-pr1-abcdef0_ci_example_org"
    );
    let domain = "a-recipe-with-a-long-name-pr1234-abcdef0-3.ci.some-long-example.org";
    let suffixes = ["_db_password_v1", "_oauth_client_secret_v12"];
    let stack = stack_name(domain, suffixes);
    assert!(stack.len() <= MAX_STACK_NAME, "{stack}");
    for s in suffixes {
        assert!(stack.len() + s.len() <= MAX_OBJECT_NAME, "{stack}{s}");
    }
    assert!(stack.starts_with("a-recipe-with-a"), "{stack}");
    assert_eq!(stack, stack_name(domain, suffixes), "deterministic");
    assert_ne!(
        stack,
        stack_name(&domain.replace("pr1234", "pr1235"), suffixes),
        "distinct domains, distinct stacks"
    );
    // A very long secret name leaves little room but still a usable, unique name.
    let tight = stack_name(domain, ["_a_secret_with_a_very_long_name_indeed_v1"]);
    assert!(tight.len() + 41 <= MAX_OBJECT_NAME, "{tight}");
}

#[test]
fn the_sample_is_rewritten_in_place_keeping_modifiers_and_comments() {
    let sample = "TYPE=webapp-pg\n\
                  DOMAIN=webapp-pg.example.com\n\
                  #DOMAIN=commented.example.com\n\
                  LETS_ENCRYPT_ENV=production\n\
                  SITE_URL=https://$DOMAIN\n\
                  SECRET_DB_PASSWORD_VERSION=v1 # length=32\n";
    let params = AppParams {
        recipe: "webapp-pg".into(),
        version: "1.1.0+0.2".into(),
        domain: "w-pr1-abc.ci.test".into(),
        stack: None,
        overrides: BTreeMap::from([
            ("SECRET_DB_PASSWORD_VERSION".into(), "v2".into()),
            ("EXTRA".into(), "it's $literal".into()),
        ]),
    };
    let text = rewrite_sample(sample, &params.sample_assignments(sample));
    let expected = "TYPE='webapp-pg:1.1.0+0.2'\n\
                    DOMAIN='w-pr1-abc.ci.test'\n\
                    #DOMAIN=commented.example.com\n\
                    LETS_ENCRYPT_ENV=''\n\
                    SITE_URL=https://$DOMAIN\n\
                    SECRET_DB_PASSWORD_VERSION='v2' # length=32\n\
                    EXTRA=\"it's \\$literal\"\n";
    assert_eq!(text, expected);
}

#[test]
fn samples_using_recipe_instead_of_type_keep_that_key() {
    let sample = "RECIPE=gitea\nDOMAIN=x\n";
    let params = AppParams {
        recipe: "gitea".into(),
        version: "abc1234".into(),
        domain: "d".into(),
        stack: None,
        overrides: BTreeMap::new(),
    };
    let text = rewrite_sample(sample, &params.sample_assignments(sample));
    assert!(text.starts_with("RECIPE='gitea:abc1234'\n"), "{text}");
    assert!(!text.contains("TYPE="), "{text}");
}

fn var(key: &str, value: &str) -> AppVar {
    AppVar {
        key: key.into(),
        value: value.into(),
        modifiers: BTreeMap::new(),
    }
}

#[test]
fn abra_sh_exports_then_stack_then_overrides_win() {
    let params = AppParams {
        recipe: "r".into(),
        version: "1.0.0".into(),
        domain: "d.test".into(),
        stack: None,
        overrides: BTreeMap::from([("PG_BACKUP_VERSION".into(), "v9".into())]),
    };
    let env = AppEnv::from_vars([var("DOMAIN", "d.test"), var("CONFIG_VERSION", "v1")]);
    let exports = vec![
        ("CONFIG_VERSION".to_string(), "v2".to_string()),
        ("PG_BACKUP_VERSION".to_string(), "v1".to_string()),
        ("STACK_NAME".to_string(), "from-abra-sh".to_string()),
    ];
    let env = params.finish(env, &exports, "d_test");
    assert_eq!(env.get("CONFIG_VERSION"), Some("v2"));
    assert_eq!(env.get("PG_BACKUP_VERSION"), Some("v9"));
    assert_eq!(env.get("STACK_NAME"), Some("d_test"));
    let keys: Vec<&str> = env.vars().iter().map(|v| v.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "DOMAIN",
            "CONFIG_VERSION",
            "PG_BACKUP_VERSION",
            "STACK_NAME"
        ]
    );
}

#[test]
fn compose_files_come_from_compose_file() {
    let cases = [
        (None, vec!["compose.yml"]),
        (Some(""), vec!["compose.yml"]),
        (Some("compose.yml"), vec!["compose.yml"]),
        (
            Some("compose.yml:compose.smtp.yml: compose.sso.yml"),
            vec!["compose.yml", "compose.smtp.yml", "compose.sso.yml"],
        ),
    ];
    for (value, expected) in cases {
        let env = AppEnv::from_vars(value.map(|v| var("COMPOSE_FILE", v)));
        assert_eq!(env.compose_files(), expected, "{value:?}");
    }
}

#[test]
fn abra_labels_name_the_stack() {
    let labels = app_labels("s_test", "webapp-pg", "1.1.0+0.2");
    assert_eq!(labels["coop-cloud.s_test.version"], "1.1.0+0.2");
    assert_eq!(labels["coop-cloud.s_test.recipe"], "webapp-pg");
    assert_eq!(labels["coop-cloud.s_test.chaos"], "false");
}

#[test]
fn repeated_keys_keep_the_last_value() {
    let env = AppEnv::from_vars([var("A", "1"), var("B", "2"), var("A", "3")]);
    assert_eq!(env.get("A"), Some("3"));
    assert_eq!(env.vars().len(), 2);
}

#[test]
fn object_name_suffixes_substitute_versions_and_skip_labels() {
    let compose = "secrets:\n  db:\n    name: ${STACK_NAME}_db_password_${SECRET_DB_PASSWORD_VERSION}\n\
                   configs:\n  c:\n    name: ${STACK_NAME}_conf_${CONF_VERSION}\n\
                   labels:\n  - traefik.http.routers.${STACK_NAME}.rule=Host(`x`)\n";
    let env = AppEnv::from_vars([
        var("SECRET_DB_PASSWORD_VERSION", "v3"),
        var("CONF_VERSION", "v12"),
    ]);
    assert_eq!(
        object_name_suffixes(&[compose], &env),
        ["_conf_v12", "_db_password_v3"]
    );
}

#[test]
fn nothing_the_recipe_or_the_overrides_say_changes_domain_or_stack_name() {
    let params = AppParams {
        recipe: "r".into(),
        version: "1.0.0".into(),
        domain: "r-abc1234.ci.test".into(),
        stack: None,
        overrides: BTreeMap::from([
            ("DOMAIN".into(), "evil.example.com".into()),
            ("STACK_NAME".into(), "victim_stack".into()),
        ]),
    };
    let sample = "DOMAIN=evil.example.com\nexport STACK_NAME=victim_stack\n";
    let assignments = params.sample_assignments(sample);
    assert!(
        !assignments
            .iter()
            .any(|(_, v)| v.contains("evil") || v.contains("victim")),
        "{assignments:?}"
    );
    let text = rewrite_sample(sample, &assignments);
    let parsed = AppEnv::from(&crate::swarm::env::EnvFile::parse(&text).unwrap());
    let exports = vec![
        ("DOMAIN".to_string(), "evil.example.com".to_string()),
        ("STACK_NAME".to_string(), "victim_stack".to_string()),
    ];
    let env = params.finish(parsed, &exports, "r-abc1234_ci_test");
    assert_eq!(env.get("DOMAIN"), Some("r-abc1234.ci.test"));
    assert_eq!(env.get("STACK_NAME"), Some("r-abc1234_ci_test"));
    assert!(is_identity_key("DOMAIN") && is_identity_key("STACK_NAME"));
    assert!(!is_identity_key("COMPOSE_FILE"));
}

#[test]
fn recipe_files_behind_symlinks_out_of_the_checkout_are_refused_unread() {
    let outside = tempfile::tempdir().unwrap();
    let canary = outside.path().join("canary");
    std::fs::write(&canary, "DOMAIN=canary-ZQX\n").unwrap();
    let params = AppParams {
        recipe: "r".into(),
        version: "1.0.0".into(),
        domain: "r.ci.test".into(),
        stack: None,
        overrides: BTreeMap::new(),
    };
    type Files = &'static [(&'static str, &'static str)];
    let cases: [(&str, Files, &str); 3] = [
        (".env.sample", &[], ".env.sample"),
        ("abra.sh", &[(".env.sample", "DOMAIN=x\n")], "abra.sh"),
        (
            "compose.link.yml",
            &[(".env.sample", "DOMAIN=x\nCOMPOSE_FILE=compose.link.yml\n")],
            "COMPOSE_FILE",
        ),
    ];
    for (link, files, key) in cases {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        std::os::unix::fs::symlink(&canary, dir.path().join(link)).unwrap();
        let err = load(dir.path(), &params).unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, AppError::Outside { .. }), "{link}: {text}");
        assert!(text.starts_with(&format!("{key}: ")), "{text}");
        assert!(!text.contains("canary-ZQX"), "{text}");
    }
}
