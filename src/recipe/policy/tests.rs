//! One test per rule: refused without an allowance, allowed with exactly the right one.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::*;
use crate::swarm::compose::{self, LoadedCompose};

const STACK: &str = "app_example_test";

fn load(yaml: &str) -> LoadedCompose {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("compose.yml"), yaml).unwrap();
    let env = BTreeMap::from([("STACK_NAME".to_string(), STACK.to_string())]);
    compose::load(dir.path(), &["compose.yml".into()], &env).unwrap()
}

fn violations(yaml: &str, binds: &BTreeMap<String, BindTarget>, allow: &[&str]) -> Vec<Violation> {
    violations_of(&load(yaml), binds, allow)
}

fn violations_of(
    loaded: &LoadedCompose,
    binds: &BTreeMap<String, BindTarget>,
    allow: &[&str],
) -> Vec<Violation> {
    let input = Input {
        compose: &loaded.compose,
        sources: &loaded.sources,
        stack: STACK,
        binds,
    };
    check(&input, &Allowances::new(allow))
}

/// The (key, rule, value) of each violation.
fn found(yaml: &str, allow: &[&str]) -> Vec<(String, Rule, String)> {
    violations(yaml, &BTreeMap::new(), allow)
        .into_iter()
        .map(|v| (v.key, v.rule, v.value))
        .collect()
}

fn service(body: &str) -> String {
    format!("services:\n  app:\n    image: x\n{body}")
}

fn one(key: &str, rule: Rule, value: &str) -> Vec<(String, Rule, String)> {
    vec![(key.to_string(), rule, value.to_string())]
}

#[test]
fn a_plain_recipe_passes() {
    let yaml = "services:\n  app:\n    image: x\n    networks: [proxy, internal]\n\
                networks:\n  proxy:\n    external: true\n  internal: {}\n\
                volumes:\n  data: {}\n\
                secrets:\n  db:\n    external: true\n    name: ${STACK_NAME}_db_v1\n";
    assert_eq!(found(yaml, &[]), vec![]);
}

#[test]
fn privileged_is_refused_although_swarm_would_drop_it() {
    let yaml = service("    privileged: true\n");
    assert_eq!(
        found(&yaml, &[]),
        one("services.app.privileged", Rule::Privileged, "true")
    );
    assert_eq!(found(&yaml, &["privileged"]), vec![]);
    assert!(found(&service("    privileged: false\n"), &[]).is_empty());
}

#[test]
fn capabilities_need_their_exact_name() {
    let yaml = service("    cap_add: [NET_ADMIN, CAP_SYS_ADMIN]\n");
    assert_eq!(found(&yaml, &[]).len(), 2);
    assert_eq!(
        found(&yaml, &["cap_add:NET_ADMIN"]),
        one("services.app.cap_add", Rule::Capability, "SYS_ADMIN")
    );
    assert_eq!(
        found(&yaml, &["cap_add:NET_ADMIN", "cap_add:SYS_ADMIN"]),
        vec![]
    );
    assert_eq!(found(&yaml, &["cap_add:ALL"]).len(), 2, "no wildcard");
}

#[test]
fn security_options_namespaces_cgroups_devices_and_sysctls_are_refused() {
    let cases = [
        (
            "    security_opt: [apparmor=unconfined]\n",
            "security_opt",
            Rule::SecurityOption,
            "apparmor=unconfined",
            "security_opt:apparmor=unconfined",
        ),
        (
            "    network_mode: host\n",
            "network_mode",
            Rule::HostNamespace,
            "host",
            "network_mode:host",
        ),
        (
            "    pid: host\n",
            "pid",
            Rule::HostNamespace,
            "host",
            "pid:host",
        ),
        (
            "    ipc: host\n",
            "ipc",
            Rule::HostNamespace,
            "host",
            "ipc:host",
        ),
        (
            "    userns_mode: host\n",
            "userns_mode",
            Rule::HostNamespace,
            "host",
            "userns_mode:host",
        ),
        (
            "    network_mode: \"container:victim\"\n",
            "network_mode",
            Rule::HostNamespace,
            "container:victim",
            "network_mode:container:victim",
        ),
        (
            "    cgroup_parent: /system\n",
            "cgroup_parent",
            Rule::CgroupParent,
            "/system",
            "cgroup_parent:/system",
        ),
        (
            "    devices: [\"/dev/sda:/dev/sda:rwm\"]\n",
            "devices",
            Rule::Device,
            "/dev/sda",
            "devices:/dev/sda",
        ),
        (
            "    sysctls:\n      net.ipv4.ip_forward: 1\n",
            "sysctls",
            Rule::Sysctl,
            "net.ipv4.ip_forward",
            "sysctls:net.ipv4.ip_forward",
        ),
    ];
    for (body, key, rule, value, allowance) in cases {
        let yaml = service(body);
        assert_eq!(
            found(&yaml, &[]),
            one(&format!("services.app.{key}"), rule, value),
            "{body}"
        );
        let v = &violations(&yaml, &BTreeMap::new(), &[])[0];
        assert_eq!(v.allowances, vec![allowance.to_string()], "{body}");
        assert!(v.to_string().contains(allowance), "{v}");
        assert_eq!(found(&yaml, &[allowance]), vec![], "{body}");
    }
    assert!(found(&service("    network_mode: none\n"), &[]).is_empty());
}

#[test]
fn host_binds_need_the_exact_path_and_checkout_binds_must_be_read_only() {
    let yaml = service(
        "    volumes:\n      - /var/run/docker.sock:/var/run/docker.sock\n      - ./conf:/conf:ro\n      - ./data:/data\n",
    );
    let loaded = load(&yaml);
    let sources: Vec<String> = loaded.compose.services["app"]
        .volumes
        .iter()
        .map(|v| v.source.clone().unwrap())
        .collect();
    let binds = BTreeMap::from([
        (
            sources[0].clone(),
            BindTarget::Host(PathBuf::from("/run/docker.sock")),
        ),
        (sources[1].clone(), BindTarget::Checkout),
        (sources[2].clone(), BindTarget::Checkout),
    ]);
    let v = violations_of(&loaded, &binds, &[]);
    let rules: Vec<(Rule, &str)> = v.iter().map(|v| (v.rule, v.key.as_str())).collect();
    assert_eq!(
        rules,
        [
            (Rule::HostBind, "services.app.volumes[0].source"),
            (Rule::WritableCheckoutBind, "services.app.volumes[2].source"),
        ]
    );
    assert!(
        v[1].allowances.is_empty(),
        "a writable checkout bind is never allowed"
    );
    for allowance in ["bind:/var/run/docker.sock", "bind:/run/docker.sock"] {
        let left = violations_of(&loaded, &binds, &[allowance]);
        assert_eq!(left.len(), 1, "{allowance}: {left:?}");
        assert_eq!(left[0].rule, Rule::WritableCheckoutBind);
    }
    assert_eq!(
        violations_of(&loaded, &binds, &["bind:/var/run"]).len(),
        2,
        "exact paths only"
    );
    // A bind the caller did not resolve counts as a host path.
    assert_eq!(violations_of(&loaded, &BTreeMap::new(), &[]).len(), 3);
}

#[test]
fn volume_drivers_and_device_options_are_refused() {
    let yaml = "services:\n  app:\n    image: x\n    volumes: [data:/data, nfs:/nfs]\n\
                volumes:\n  data:\n    driver: local\n    driver_opts:\n      type: none\n      o: bind\n      device: /etc\n\
                \x20 nfs:\n    driver: rexray\n";
    assert_eq!(
        found(yaml, &[]),
        vec![
            (
                "volumes.data.driver_opts.device".into(),
                Rule::VolumeDevice,
                "/etc".into()
            ),
            (
                "volumes.nfs.driver".into(),
                Rule::VolumeDriver,
                "rexray".into()
            ),
        ]
    );
    assert_eq!(found(yaml, &["driver_opts:/etc", "driver:rexray"]), vec![]);
}

#[test]
fn published_ports_need_their_number_and_protocol() {
    let yaml = service(
        "    ports:\n      - \"8080:80\"\n      - target: 53\n        published: 5353\n        protocol: udp\n        mode: host\n      - \"9000\"\n",
    );
    assert_eq!(
        found(&yaml, &[]),
        vec![
            (
                "services.app.ports".into(),
                Rule::HostPort,
                "5353/udp".into()
            ),
            ("services.app.ports".into(), Rule::HostPort, "8080".into()),
        ],
        "a port without a published side publishes nothing"
    );
    assert_eq!(
        found(&yaml, &["ports:8080", "ports:5353"]).len(),
        1,
        "udp needs /udp"
    );
    assert_eq!(found(&yaml, &["ports:8080", "ports:5353/udp"]), vec![]);
}

#[test]
fn external_and_named_objects_must_be_the_stacks_own_or_the_proxy_network() {
    let yaml = "services:\n  app:\n    image: x\n\
                networks:\n  proxy:\n    external: true\n  host:\n    external: true\n  other:\n    external: true\n    name: victim_default\n\
                volumes:\n  stolen:\n    external: true\n    name: victim_data\n  named:\n    name: victim_db\n  mine:\n    name: ${STACK_NAME}_data\n\
                secrets:\n  token:\n    external: true\n    name: victim_db_password_v1\n  ours:\n    external: true\n    name: ${STACK_NAME}_db_v1\n  prefix:\n    external: true\n    name: app_example_testing_x\n\
                configs:\n  conf:\n    external: true\n";
    let names: Vec<(String, String)> = found(yaml, &[])
        .into_iter()
        .inspect(|(_, rule, _)| assert_eq!(*rule, Rule::ForeignObject))
        .map(|(k, _, v)| (k, v))
        .collect();
    let expected = [
        ("configs.conf.name", "conf"),
        ("networks.host.name", "host"),
        ("networks.other.name", "victim_default"),
        ("secrets.prefix.name", "app_example_testing_x"),
        ("secrets.token.name", "victim_db_password_v1"),
        ("volumes.named.name", "victim_db"),
        ("volumes.stolen.name", "victim_data"),
    ];
    let expected: Vec<(String, String)> = expected
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    assert_eq!(names, expected);
    assert_eq!(found(yaml, &["external:victim_data"]).len(), 6);
}

#[test]
fn labels_that_decide_ownership_are_never_allowed() {
    let yaml = service(
        "    labels:\n      cc-ci.run: someone-else\n    deploy:\n      labels:\n        com.docker.stack.namespace: victim\n        traefik.enable: \"true\"\n",
    );
    let v = violations(&yaml, &BTreeMap::new(), &["cc-ci.run"]);
    let got: Vec<(&str, Rule, &str)> = v
        .iter()
        .map(|v| (v.key.as_str(), v.rule, v.value.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (
                "services.app.deploy.labels",
                Rule::ReservedLabel,
                "com.docker.stack.namespace"
            ),
            ("services.app.labels", Rule::ReservedLabel, "cc-ci.run"),
        ]
    );
    assert!(v.iter().all(|v| v.allowances.is_empty()));
}

#[test]
fn an_overlay_cannot_hide_a_refused_key_and_errors_list_every_violation() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("compose.yml"),
        "services:\n  app:\n    image: x\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("compose.extra.yml"),
        "services:\n  app:\n    privileged: true\n    pid: host\n",
    )
    .unwrap();
    let files = ["compose.yml".to_string(), "compose.extra.yml".to_string()];
    let loaded = compose::load(dir.path(), &files, &BTreeMap::new()).unwrap();
    let input = Input {
        compose: &loaded.compose,
        sources: &loaded.sources,
        stack: STACK,
        binds: &BTreeMap::new(),
    };
    let err = enforce(&input, &Allowances::default()).unwrap_err();
    assert_eq!(err.0.len(), 2);
    let text = err.to_string();
    assert!(
        text.contains("services.app.pid: host namespace \"host\""),
        "{text}"
    );
    assert!(
        text.contains("services.app.privileged: privileged container"),
        "{text}"
    );
}
