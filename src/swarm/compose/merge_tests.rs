//! Unit tests for [`super`] (overlay merge rules).

use super::*;
use serde_json::json;

fn merged(base: Value, over: Value) -> Value {
    let mut base = base;
    merge_files(&mut base, over);
    base
}

#[test]
fn maps_merge_by_key_and_scalars_override() {
    let out = merged(
        json!({"services": {"app": {
            "image": "nginx:1.24",
            "environment": {"A": "1", "B": "2"},
            "deploy": {"labels": {"x": "1"}, "replicas": 2},
            "read_only": true
        }}}),
        json!({"services": {"app": {
            "image": "nginx:1.25",
            "environment": {"B": "two", "C": "3"},
            "deploy": {"labels": {"y": "2"}, "replicas": 0},
            "read_only": false
        }, "smtp": {"image": "postfix"}}}),
    );
    let app = &out["services"]["app"];
    assert_eq!(app["image"], json!("nginx:1.25"));
    assert_eq!(app["environment"], json!({"A": "1", "B": "two", "C": "3"}));
    assert_eq!(app["deploy"]["labels"], json!({"x": "1", "y": "2"}));
    assert_eq!(
        app["deploy"]["replicas"],
        json!(0),
        "pointer fields take zero"
    );
    assert_eq!(
        app["read_only"],
        json!(true),
        "zero does not override (mergo)"
    );
    assert_eq!(out["services"]["smtp"]["image"], json!("postfix"));
}

#[test]
fn keyed_lists_merge_by_identity_and_sort() {
    let out = merged(
        json!({"services": {"app": {
            "secrets": [{"source": "db_password"}, {"source": "admin"}],
            "volumes": [{"type": "volume", "source": "data", "target": "/data"}],
            "ports": [{"target": 80, "published": 8080}],
            "cap_add": ["NET_ADMIN"],
            "command": ["serve"]
        }}}),
        json!({"services": {"app": {
            "secrets": [{"source": "smtp_password"}, {"source": "admin", "target": "/admin"}],
            "volumes": [{"type": "bind", "source": "/srv", "target": "/data"},
                        {"type": "volume", "source": "cache", "target": "/cache"}],
            "ports": [{"target": 80, "published": 8080}, {"target": 443, "published": 443}],
            "cap_add": ["SYS_ADMIN"],
            "command": ["serve", "--debug"]
        }}}),
    );
    let app = &out["services"]["app"];
    assert_eq!(
        app["secrets"],
        json!([{"source": "admin", "target": "/admin"}, {"source": "db_password"}, {"source": "smtp_password"}])
    );
    assert_eq!(
        app["volumes"],
        json!([{"type": "volume", "source": "cache", "target": "/cache"},
               {"type": "bind", "source": "/srv", "target": "/data"}])
    );
    assert_eq!(
        app["ports"],
        json!([{"target": 443, "published": 443}, {"target": 80, "published": 8080}])
    );
    assert_eq!(
        app["cap_add"],
        json!(["NET_ADMIN", "SYS_ADMIN"]),
        "plain lists append"
    );
    assert_eq!(
        app["command"],
        json!(["serve", "--debug"]),
        "commands are replaced"
    );
}

#[test]
fn networks_logging_and_top_level_entries() {
    let out = merged(
        json!({
            "services": {"app": {
                "networks": {"internal": {"aliases": ["db"]}, "proxy": {}},
                "logging": {"driver": "json-file", "options": {"max-size": "10m"}},
                "healthcheck": {"test": ["CMD", "true"], "interval": "10s"}
            }},
            "networks": {"proxy": {"external": true, "name": "proxy"}},
            "secrets": {"db_password": {"name": "a", "external": true}}
        }),
        json!({
            "services": {"app": {
                "networks": {"internal": {"aliases": ["database"]}, "backend": {}},
                "logging": {"options": {"max-file": "3"}},
                "healthcheck": {"test": ["CMD-SHELL", "curl -f localhost"]}
            }},
            "secrets": {"db_password": {"file": "/tmp/x"}}
        }),
    );
    let app = &out["services"]["app"];
    assert_eq!(
        app["networks"]["internal"],
        json!({"aliases": ["database"]})
    );
    assert!(app["networks"]["backend"].is_object());
    assert_eq!(
        app["logging"],
        json!({"driver": "json-file", "options": {"max-size": "10m", "max-file": "3"}})
    );
    assert_eq!(
        app["healthcheck"],
        json!({"test": ["CMD-SHELL", "curl -f localhost"], "interval": "10s"})
    );
    assert_eq!(
        out["secrets"]["db_password"],
        json!({"file": "/tmp/x"}),
        "replaced whole"
    );
    assert_eq!(out["networks"]["proxy"]["external"], json!(true));

    let out = merged(
        json!({"services": {"app": {"logging": {"driver": "json-file", "options": {"a": "1"}}}}}),
        json!({"services": {"app": {"logging": {"driver": "syslog", "options": {"b": "2"}}}}}),
    );
    assert_eq!(
        out["services"]["app"]["logging"],
        json!({"driver": "syslog", "options": {"b": "2"}}),
        "a different driver replaces the logging section"
    );
}
