//! Unit tests for [`super`] (interpolation forms, quirks and casts).

use super::*;
use serde_json::json;

fn env(name: &str) -> Option<String> {
    match name {
        "STACK_NAME" => Some("app_example_com".into()),
        "EMPTY" => Some(String::new()),
        "REPLICAS" => Some("3".into()),
        "RO" => Some("yes".into()),
        "lower" => Some("small".into()),
        _ => None,
    }
}

fn sub(t: &str) -> Result<String, TemplateError> {
    substitute(t, &env, &mut BTreeSet::new())
}

#[test]
fn every_form_substitutes_like_docker_cli() {
    assert_eq!(sub("${STACK_NAME}_db").unwrap(), "app_example_com_db");
    assert_eq!(sub("$STACK_NAME").unwrap(), "app_example_com");
    assert_eq!(sub("${UNSET:-fallback}").unwrap(), "fallback");
    assert_eq!(sub("${EMPTY:-fallback}").unwrap(), "fallback");
    assert_eq!(sub("${EMPTY-fallback}").unwrap(), "");
    assert_eq!(sub("${UNSET-fallback}").unwrap(), "fallback");
    assert_eq!(sub("${STACK_NAME:?set it}").unwrap(), "app_example_com");
    assert_eq!(sub("${EMPTY?set it}").unwrap(), "");
    assert_eq!(sub("cost: $$5 and $${NOT}").unwrap(), "cost: $5 and ${NOT}");
    assert_eq!(
        sub("${lower}").unwrap(),
        "small",
        "names are case-insensitive"
    );
    assert_eq!(sub("no variables").unwrap(), "no variables");
}

#[test]
fn required_forms_fail_with_the_message() {
    assert_eq!(
        sub("${DB_HOST:?set it in .env}").unwrap_err(),
        TemplateError::Required {
            name: "DB_HOST".into(),
            message: "set it in .env".into()
        }
    );
    assert!(matches!(
        sub("${EMPTY:?must not be empty}"),
        Err(TemplateError::Required { .. })
    ));
    assert!(matches!(
        sub("${UNSET?gone}"),
        Err(TemplateError::Required { .. })
    ));
}

#[test]
fn docker_cli_quirks_are_kept() {
    // Defaults do not nest: the braced form stops at the first `}`.
    assert_eq!(sub("${UNSET:-${STACK_NAME}}").unwrap(), "${STACK_NAME}");
    // The unbraced form takes modifiers too.
    assert_eq!(sub("$UNSET-x").unwrap(), "x");
    // `-` is tried before `:?`, so this is a default, not an error.
    assert_eq!(sub("${UNSET:?see the-docs}").unwrap(), "docs");
    // A lone or malformed `$` is an error.
    assert_eq!(sub("price $").unwrap_err(), TemplateError::Invalid);
    assert_eq!(sub("${}").unwrap_err(), TemplateError::Invalid);
    assert_eq!(sub("$1").unwrap_err(), TemplateError::Invalid);
}

#[test]
fn unset_variables_are_empty_and_reported() {
    let mut missing = BTreeSet::new();
    let out = substitute("a${NOPE}b$ALSO_NOPE", &env, &mut missing).unwrap();
    assert_eq!(out, "ab");
    assert_eq!(
        missing.into_iter().collect::<Vec<_>>(),
        vec!["ALSO_NOPE".to_string(), "NOPE".to_string()]
    );
}

#[test]
fn tree_interpolation_casts_known_paths_and_leaves_keys() {
    let mut v = json!({
        "services": {
            "app": {
                "image": "nginx:${UNSET:-1.25}",
                "read_only": "$RO",
                "deploy": {"replicas": "${REPLICAS}", "labels": {"${STACK_NAME}": "$STACK_NAME"}},
                "ports": [{"target": "80", "published": "${PORT:-8080}"}],
                "environment": {"N": "${REPLICAS}", "M": "$MISSING_ONE"}
            }
        }
    });
    let mut missing = Vec::new();
    interpolate_tree(&mut v, &env, &mut missing).unwrap();
    let app = &v["services"]["app"];
    assert_eq!(app["image"], json!("nginx:1.25"));
    assert_eq!(app["read_only"], json!(true));
    assert_eq!(app["deploy"]["replicas"], json!(3));
    assert_eq!(
        app["deploy"]["labels"]["${STACK_NAME}"],
        json!("app_example_com")
    );
    // Unchanged strings are not cast (docker/cli only casts substituted values).
    assert_eq!(app["ports"][0]["target"], json!("80"));
    assert_eq!(app["ports"][0]["published"], json!(8080));
    assert_eq!(
        app["environment"]["N"],
        json!("3"),
        "env values stay strings"
    );
    assert_eq!(
        missing,
        vec![(
            "MISSING_ONE".to_string(),
            "services.app.environment.M".to_string()
        )]
    );
}

#[test]
fn tree_errors_name_the_key_path() {
    let mut v = json!({"services": {"app": {"environment": {"DB": "${DB_HOST:?set it in .env}"}}}});
    let err = interpolate_tree(&mut v, &env, &mut Vec::new()).unwrap_err();
    assert_eq!(err.path, "services.app.environment.DB");
    assert_eq!(
        err.message,
        "required variable DB_HOST is missing a value: set it in .env"
    );

    let mut v = json!({"services": {"app": {"deploy": {"replicas": "${STACK_NAME}"}}}});
    let err = interpolate_tree(&mut v, &env, &mut Vec::new()).unwrap_err();
    assert_eq!(err.path, "services.app.deploy.replicas");
    assert!(err.message.contains("invalid integer"), "{}", err.message);

    let mut v = json!({"services": {"app": {"command": ["sh", "-c", "echo $"]}}});
    let err = interpolate_tree(&mut v, &env, &mut Vec::new()).unwrap_err();
    assert_eq!(err.path, "services.app.command[2]");
}

#[test]
fn keys_that_expect_interpolation_are_found_with_their_paths() {
    let v = json!({
        "services": {"app": {"deploy": {"labels": {
            "coop-cloud.${STACK_NAME}.timeout": "60",
            "plain.$$escaped": "x",
            "traefik.enable": "true"
        }, "x-list": [{"$HOME": 1}]}}}
    });
    assert_eq!(
        keys_with_variables(&v),
        vec![
            "services.app.deploy.labels.coop-cloud.${STACK_NAME}.timeout".to_string(),
            "services.app.deploy.x-list[0].$HOME".to_string(),
        ]
    );
}
