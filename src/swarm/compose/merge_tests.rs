//! Unit tests for [`super`] (overlay merge rules). Each expectation was observed from
//! `docker stack deploy` (CLI 28.2) on the same pair of files.

use super::*;
use serde_json::json;

fn merged(base: Value, over: Value) -> Value {
    let mut base = base;
    merge_files(&mut base, over, "over.yml");
    base
}

fn app(base: Value, over: Value) -> Value {
    merged(
        json!({"services": {"app": base}}),
        json!({"services": {"app": over}}),
    )["services"]["app"]
        .clone()
}

fn port(mode: &str, target: u32, published: u32, protocol: &str) -> Value {
    json!({"mode": mode, "target": target, "published": published, "protocol": protocol})
}

#[test]
fn an_overlay_republishing_a_port_in_host_mode_replaces_the_ingress_entry() {
    let out = app(
        json!({"ports": [port("ingress", 80, 80, "tcp"), port("ingress", 443, 443, "tcp")]}),
        json!({"ports": [{"target": 443, "published": 443, "mode": "host"},
                         {"target": 80, "published": 80, "mode": "host"}]}),
    );
    assert_eq!(
        out["ports"],
        json!([{"target": 80, "published": 80, "mode": "host"},
               {"target": 443, "published": 443, "mode": "host"}])
    );
}

#[test]
fn an_overlay_republishing_in_ingress_mode_replaces_the_host_entry() {
    let out = app(
        json!({"ports": [{"target": 80, "published": 8080, "mode": "host"}]}),
        json!({"ports": [port("ingress", 81, 8080, "udp")]}),
    );
    assert_eq!(out["ports"], json!([port("ingress", 81, 8080, "udp")]));
}

#[test]
fn mentioning_a_service_rebuilds_its_keyed_lists_one_entry_per_key_sorted() {
    let out = app(
        json!({
            "ports": [port("ingress", 53, 5353, "tcp"), port("ingress", 53, 5353, "udp"),
                      port("ingress", 8080, 0, "tcp"), port("ingress", 9090, 0, "tcp"),
                      port("ingress", 80, 80, "tcp")],
            "volumes": [{"type": "volume", "target": "/z"}, {"type": "volume", "target": "/a"},
                        {"type": "bind", "source": "/srv", "target": "/m"}],
            "secrets": [{"source": "zz"}, {"source": "aa"}],
            "configs": [{"source": "site"}, {"source": "app", "target": "/a"},
                        {"source": "app", "target": "/b"}],
            "cap_add": ["B", "A"]
        }),
        json!({"environment": {"X": "1"}}),
    );
    // Keyed by published port: 5353/udp (the later entry) and 9090 (the later unpublished one)
    // are all that is left of their keys.
    assert_eq!(
        out["ports"],
        json!([
            port("ingress", 9090, 0, "tcp"),
            port("ingress", 80, 80, "tcp"),
            port("ingress", 53, 5353, "udp")
        ])
    );
    let targets: Vec<&str> = out["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["target"].as_str().unwrap())
        .collect();
    assert_eq!(targets, ["/a", "/m", "/z"]);
    assert_eq!(out["secrets"], json!([{"source": "aa"}, {"source": "zz"}]));
    assert_eq!(
        out["configs"],
        json!([{"source": "app", "target": "/b"}, {"source": "site"}])
    );
    assert_eq!(out["cap_add"], json!(["B", "A"]), "plain lists keep order");
}

#[test]
fn a_service_the_overlay_does_not_mention_keeps_its_lists_as_written() {
    let out = merged(
        json!({"services": {
            "app": {"volumes": [{"target": "/z"}, {"target": "/a"}]},
            "db": {"volumes": [{"target": "/z"}, {"target": "/a"}]}
        }}),
        json!({"services": {"app": {}}}),
    );
    assert_eq!(
        out["services"]["db"]["volumes"],
        json!([{"target": "/z"}, {"target": "/a"}])
    );
    assert_eq!(
        out["services"]["app"]["volumes"],
        json!([{"target": "/a"}, {"target": "/z"}])
    );
}

#[test]
fn an_overlay_list_on_a_service_without_one_is_taken_as_written() {
    let out = app(
        json!({"image": "x"}),
        json!({"volumes": [{"target": "/z"}, {"target": "/a"}],
               "ports": [port("ingress", 90, 9000, "tcp"), port("ingress", 80, 8000, "tcp")]}),
    );
    assert_eq!(out["volumes"], json!([{"target": "/z"}, {"target": "/a"}]));
    assert_eq!(out["ports"][0]["published"], json!(9000));
    // …but an empty list in the base counts as having one.
    let out = app(
        json!({"volumes": []}),
        json!({"volumes": [{"target": "/z"}, {"target": "/a"}]}),
    );
    assert_eq!(out["volumes"], json!([{"target": "/a"}, {"target": "/z"}]));
}

#[test]
fn keyed_entries_are_replaced_whole_and_new_ones_added() {
    let out = app(
        json!({"secrets": [{"source": "db_password"}, {"source": "admin"}],
               "volumes": [{"type": "volume", "source": "data", "target": "/data"}]}),
        json!({"secrets": [{"source": "smtp_password"}, {"source": "admin", "target": "/admin"}],
               "volumes": [{"type": "bind", "source": "/srv", "target": "/data"},
                           {"type": "volume", "source": "cache", "target": "/cache"}]}),
    );
    assert_eq!(
        out["secrets"],
        json!([{"source": "admin", "target": "/admin"}, {"source": "db_password"},
               {"source": "smtp_password"}])
    );
    assert_eq!(
        out["volumes"],
        json!([{"type": "volume", "source": "cache", "target": "/cache"},
               {"type": "bind", "source": "/srv", "target": "/data"}])
    );
}

#[test]
fn environment_keeps_a_value_an_overlay_blanks_while_string_maps_take_the_blank() {
    let out = app(
        json!({"environment": {"A": "1", "B": "2", "C": null, "D": ""},
               "labels": {"l": "v"}, "sysctls": {"s": "1"},
               "deploy": {"labels": {"d": "v", "keep": "k"}}}),
        json!({"environment": {"A": "", "B": null, "C": "3", "D": null, "E": "5"},
               "labels": {"l": ""}, "sysctls": {"s": "2"},
               "deploy": {"labels": {"d": ""}}}),
    );
    assert_eq!(
        out["environment"],
        json!({"A": "1", "B": "2", "C": "3", "D": null, "E": "5"})
    );
    assert_eq!(out["labels"], json!({"l": ""}));
    assert_eq!(out["sysctls"], json!({"s": "2"}));
    assert_eq!(out["deploy"]["labels"], json!({"d": "", "keep": "k"}));
}

#[test]
fn zero_values_do_not_override_except_uint64_pointers() {
    let out = app(
        json!({"init": true, "read_only": true, "stop_grace_period": "10s", "image": "a",
               "healthcheck": {"interval": "10s", "retries": 3},
               "deploy": {"replicas": 2, "update_config": {"parallelism": 2, "delay": "5s"},
                          "restart_policy": {"delay": "5s", "max_attempts": 3},
                          "resources": {"limits": {"memory": "512M"}}}}),
        json!({"init": false, "read_only": false, "stop_grace_period": "0s", "image": "",
               "healthcheck": {"interval": "0s", "retries": 0},
               "deploy": {"replicas": 0, "update_config": {"parallelism": 0, "delay": "0s"},
                          "restart_policy": {"delay": "0", "max_attempts": 0},
                          "resources": {"limits": {"memory": "0"}}}}),
    );
    assert_eq!(out["init"], json!(true));
    assert_eq!(out["read_only"], json!(true));
    assert_eq!(out["stop_grace_period"], json!("10s"));
    assert_eq!(out["image"], json!("a"));
    assert_eq!(out["healthcheck"], json!({"interval": "10s", "retries": 0}));
    assert_eq!(out["deploy"]["replicas"], json!(0));
    assert_eq!(
        out["deploy"]["update_config"],
        json!({"parallelism": 0, "delay": "5s"})
    );
    assert_eq!(
        out["deploy"]["restart_policy"],
        json!({"delay": "5s", "max_attempts": 0})
    );
    assert_eq!(
        out["deploy"]["resources"]["limits"]["memory"],
        json!("512M")
    );
}

#[test]
fn plain_lists_append_and_commands_are_replaced() {
    let out = app(
        json!({"cap_add": ["NET_ADMIN"], "dns": ["1.1.1.1"], "extra_hosts": ["h1:1.1.1.1"],
               "command": ["serve"], "entrypoint": ["/init"],
               "deploy": {"placement": {"constraints": ["node.role==manager"],
                                        "preferences": [{"spread": "node.labels.a"}]}}}),
        json!({"cap_add": ["NET_ADMIN", "SYS_ADMIN"], "dns": ["1.1.1.1", "8.8.8.8"],
               "extra_hosts": ["h1:1.1.1.1", "h2:2.2.2.2"],
               "command": ["serve", "--debug"], "entrypoint": [],
               "deploy": {"placement": {"constraints": ["node.role==manager"],
                                        "preferences": [{"spread": "node.labels.a"}]}}}),
    );
    assert_eq!(
        out["cap_add"],
        json!(["NET_ADMIN", "NET_ADMIN", "SYS_ADMIN"])
    );
    assert_eq!(out["dns"], json!(["1.1.1.1", "1.1.1.1", "8.8.8.8"]));
    assert_eq!(
        out["extra_hosts"],
        json!(["h1:1.1.1.1", "h1:1.1.1.1", "h2:2.2.2.2"])
    );
    assert_eq!(out["command"], json!(["serve", "--debug"]));
    assert_eq!(
        out["entrypoint"],
        json!(["/init"]),
        "an empty one is ignored"
    );
    assert_eq!(
        out["deploy"]["placement"]["constraints"],
        json!(["node.role==manager", "node.role==manager"])
    );
    assert_eq!(
        out["deploy"]["placement"]["preferences"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

#[test]
fn healthcheck_tests_append_like_docker_and_say_so() {
    let mut base = json!({"services": {"app": {"healthcheck": {"test": ["CMD", "true"]}}}});
    let warnings = merge_files(
        &mut base,
        json!({"services": {"app": {"healthcheck": {"test": ["CMD", "false"]}}}}),
        "compose.hc.yml",
    );
    assert_eq!(
        base["services"]["app"]["healthcheck"]["test"],
        json!(["CMD", "true", "CMD", "false"])
    );
    assert_eq!(warnings.len(), 1);
    assert!(warnings[0].starts_with("compose.hc.yml: services.app.healthcheck.test:"));
}

#[test]
fn service_networks_bare_entries_keep_aliases_bodies_replace_them() {
    let out = app(
        json!({"networks": {"n1": {"aliases": ["x1"]}, "n2": {"aliases": ["x2"]},
                            "n3": {"aliases": ["x3"], "ipv4_address": "10.0.0.3"}, "n4": null}}),
        json!({"networks": {"n1": null, "n2": {}, "n3": {"aliases": ["y3"], "ipv4_address": ""},
                            "n4": {"aliases": ["y4"]}, "n5": null}}),
    );
    assert_eq!(
        out["networks"],
        json!({"n1": {"aliases": ["x1"]}, "n2": {},
               "n3": {"aliases": ["y3"], "ipv4_address": "10.0.0.3"},
               "n4": {"aliases": ["y4"]}, "n5": null})
    );
}

#[test]
fn logging_ulimits_and_top_level_entries() {
    let out = app(
        json!({"logging": {"driver": "json-file", "options": {"max-size": "1m"}},
               "ulimits": {"nofile": {"soft": 100, "hard": 200}, "nproc": {"single": 50}}}),
        json!({"logging": {"options": {"max-file": "2"}},
               "ulimits": {"nofile": {"soft": 10, "hard": 20}, "core": {"single": 0}}}),
    );
    assert_eq!(
        out["logging"],
        json!({"driver": "json-file", "options": {"max-size": "1m", "max-file": "2"}})
    );
    assert_eq!(
        out["ulimits"],
        json!({"core": {"single": 0}, "nofile": {"soft": 10, "hard": 20}, "nproc": {"single": 50}})
    );

    let out = app(
        json!({"logging": {"driver": "json-file", "options": {"a": "1"}}}),
        json!({"logging": {"driver": "syslog", "options": {"b": "2"}}}),
    );
    assert_eq!(
        out["logging"],
        json!({"driver": "syslog", "options": {"b": "2"}}),
        "a different driver replaces the section"
    );
    let out = app(
        json!({"logging": {"driver": "json-file"}}),
        json!({"logging": {"driver": "json-file", "options": {"b": "2"}}}),
    );
    assert_eq!(
        out["logging"],
        json!({"driver": "json-file"}),
        "without base options the overlay's are dropped, as docker/cli does"
    );

    let out = merged(
        json!({"networks": {"proxy": {"external": true, "name": "proxy"}},
               "secrets": {"db_password": {"name": "a", "external": true}}}),
        json!({"secrets": {"db_password": {"file": "/tmp/x"}}}),
    );
    assert_eq!(out["secrets"]["db_password"], json!({"file": "/tmp/x"}));
    assert_eq!(out["networks"]["proxy"]["external"], json!(true));
}

#[test]
fn a_service_only_in_the_overlay_is_taken_whole() {
    let out = merged(
        json!({"services": {"app": {"image": "a"}}}),
        json!({"services": {"smtp": {"image": "postfix", "volumes": [{"target": "/z"},
                                                                     {"target": "/a"}]}}}),
    );
    assert_eq!(
        out["services"]["smtp"]["volumes"],
        json!([{"target": "/z"}, {"target": "/a"}])
    );
    assert_eq!(out["services"]["app"]["image"], json!("a"));
}
