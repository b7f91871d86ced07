//! Unit tests for [`super`]: recipe-like compose files converted to the specs
//! `docker stack deploy --resolve-image never` sends.

use std::collections::{BTreeMap, HashMap};

use base64::Engine as _;
use bollard::models::*;

use super::*;
use crate::swarm::compose;

mod options;

const STACK: &str = "notes_example_com";

fn env() -> BTreeMap<String, String> {
    [
        ("STACK_NAME", STACK),
        ("DOMAIN", "notes.example.com"),
        ("SECRET_DB_PASSWORD_VERSION", "v1"),
        ("APP_CONFIG_VERSION", "v3"),
        ("LETS_ENCRYPT_ENV", ""),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// Writes `files` into a temp dir, loads `compose.yml` and converts it.
fn convert_files(files: &[(&str, &str)], opts: &ConvertOptions) -> Result<StackSpec, ConvertError> {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    let loaded = compose::load(dir.path(), &["compose.yml".into()], &env()).unwrap();
    convert_loaded(STACK, &loaded, opts)
}

fn extra() -> ConvertOptions {
    ConvertOptions {
        extra_labels: [("cc-ci.managed", "true"), ("cc-ci.run", "run-1")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        force_dnsrr: false,
    }
}

fn labels(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn svc<'a>(spec: &'a StackSpec, name: &str) -> &'a ServiceSpec {
    spec.services
        .iter()
        .find(|s| s.name.as_deref() == Some(name))
        .unwrap_or_else(|| panic!("no service {name}"))
}

fn container(s: &ServiceSpec) -> &TaskSpecContainerSpec {
    s.task_template
        .as_ref()
        .unwrap()
        .container_spec
        .as_ref()
        .unwrap()
}

const APP_DB: &str = r#"
version: "3.8"
services:
  app:
    image: git.example.org/coop/notes:2.1.0
    environment:
      - STACK_NAME
      - DOMAIN=${DOMAIN}
      - DB_PASSWORD_FILE=/run/secrets/db_password
      - APP_CONFIG=/etc/notes/config.toml
    secrets:
      - db_password
    configs:
      - source: app_config
        target: /etc/notes/config.toml
    networks:
      - proxy
      - internal
    volumes:
      - uploads:/srv/uploads
    deploy:
      update_config:
        failure_action: rollback
        order: start-first
      labels:
        - "traefik.enable=true"
        - "traefik.http.services.${STACK_NAME}.loadbalancer.server.port=8080"
        - "traefik.http.routers.${STACK_NAME}.rule=Host(`${DOMAIN}`)"
        - "traefik.http.routers.${STACK_NAME}.entrypoints=web-secure"
        - "traefik.http.routers.${STACK_NAME}.tls.certresolver=${LETS_ENCRYPT_ENV}"
        - "coop-cloud.${STACK_NAME}.version=0.3.0+2.1.0"
    healthcheck:
      test: ["CMD", "curl", "-f", "http://localhost:8080/health"]
      interval: 30s
      timeout: 10s
      retries: 10
      start_period: 1m
  db:
    image: postgres:15
    environment:
      POSTGRES_PASSWORD_FILE: /run/secrets/db_password
      POSTGRES_USER: notes
    secrets: [db_password]
    networks: [internal]
    volumes:
      - type: volume
        source: db_data
        target: /var/lib/postgresql/data
        volume:
          nocopy: true
    deploy:
      resources:
        limits:
          cpus: "1.5"
          memory: 1G
          pids: 200
        reservations:
          memory: 256M
      labels:
        backupbot.backup: "true"

networks:
  proxy:
    external: true
  internal:
  unused:

volumes:
  uploads:
  db_data:

secrets:
  db_password:
    external: true
    name: ${STACK_NAME}_db_password_${SECRET_DB_PASSWORD_VERSION}

configs:
  app_config:
    name: ${STACK_NAME}_app_config_${APP_CONFIG_VERSION}
    file: config.toml.tmpl
    template_driver: golang
"#;

const CONFIG_TMPL: &str = "domain = \"{{ env \"DOMAIN\" }}\"\nservice = \"{{ .Service.Name }}\"\n";

#[test]
fn app_and_db_recipe_converts_like_stack_deploy() {
    let spec = convert_files(
        &[("compose.yml", APP_DB), ("config.toml.tmpl", CONFIG_TMPL)],
        &extra(),
    )
    .unwrap();
    let ns = [
        ("com.docker.stack.namespace", STACK),
        ("cc-ci.managed", "true"),
        ("cc-ci.run", "run-1"),
    ];

    // Networks: only used, non-external ones; external ones listed; overlay by default.
    assert_eq!(spec.networks.len(), 1);
    let internal = &spec.networks[0];
    assert_eq!(internal.name, format!("{STACK}_internal"));
    assert_eq!(internal.driver.as_deref(), Some("overlay"));
    assert_eq!(internal.labels.as_ref().unwrap(), &labels(&ns));
    assert_eq!(spec.external_networks, vec!["proxy".to_string()]);

    // External secret: not created; the templated config is, with golang templating.
    assert!(spec.secrets.is_empty());
    assert_eq!(spec.configs.len(), 1);
    let cfg = &spec.configs[0];
    assert_eq!(cfg.name.as_deref(), Some("notes_example_com_app_config_v3"));
    assert_eq!(
        cfg.templating,
        Some(Driver {
            name: "golang".into(),
            options: None
        })
    );
    let data = base64::engine::general_purpose::STANDARD
        .decode(cfg.data.as_deref().unwrap())
        .unwrap();
    assert_eq!(data, CONFIG_TMPL.as_bytes());
    assert_eq!(cfg.labels.as_ref().unwrap(), &labels(&ns));

    // Declared volumes, namespaced and labelled.
    let vols: Vec<_> = spec
        .volumes
        .iter()
        .map(|v| v.name.clone().unwrap())
        .collect();
    assert_eq!(
        vols,
        [format!("{STACK}_db_data"), format!("{STACK}_uploads")]
    );

    // Services: names, labels, image label, env sorted, networks with aliases.
    let names: Vec<_> = spec
        .services
        .iter()
        .map(|s| s.name.clone().unwrap())
        .collect();
    assert_eq!(names, [format!("{STACK}_app"), format!("{STACK}_db")]);
    let app = svc(&spec, "notes_example_com_app");
    let app_labels = app.labels.as_ref().unwrap();
    assert_eq!(app_labels["com.docker.stack.namespace"], STACK);
    assert_eq!(
        app_labels["com.docker.stack.image"],
        "git.example.org/coop/notes:2.1.0"
    );
    assert_eq!(app_labels["cc-ci.run"], "run-1");
    assert_eq!(
        app_labels["traefik.http.routers.notes_example_com.rule"],
        "Host(`notes.example.com`)"
    );
    assert_eq!(
        app_labels["traefik.http.routers.notes_example_com.tls.certresolver"],
        ""
    );
    let c = container(app);
    assert_eq!(c.labels.as_ref().unwrap(), &labels(&ns));
    assert_eq!(
        c.env.as_deref().unwrap(),
        [
            "APP_CONFIG=/etc/notes/config.toml",
            "DB_PASSWORD_FILE=/run/secrets/db_password",
            "DOMAIN=notes.example.com",
            "STACK_NAME=notes_example_com",
        ]
    );
    let task = app.task_template.as_ref().unwrap();
    let nets = task.networks.as_ref().unwrap();
    assert_eq!(nets.len(), 2);
    assert_eq!(
        nets[0].target.as_deref(),
        Some("notes_example_com_internal")
    );
    assert_eq!(nets[1].target.as_deref(), Some("proxy"));
    assert_eq!(nets[1].aliases.as_deref().unwrap(), ["app"]);

    // Secret and config references: names resolved, default file target/uid/gid/mode.
    let secret = &c.secrets.as_ref().unwrap()[0];
    assert_eq!(
        secret.secret_name.as_deref(),
        Some("notes_example_com_db_password_v1")
    );
    assert_eq!(
        secret.file,
        Some(TaskSpecContainerSpecFile {
            name: Some("db_password".into()),
            uid: Some("0".into()),
            gid: Some("0".into()),
            mode: Some(0o444)
        })
    );
    assert!(
        secret.secret_id.is_none(),
        "IDs are filled in at apply time"
    );
    let config = &c.configs.as_ref().unwrap()[0];
    assert_eq!(
        config.config_name.as_deref(),
        Some("notes_example_com_app_config_v3")
    );
    assert_eq!(
        config.file.as_ref().unwrap().name.as_deref(),
        Some("/etc/notes/config.toml")
    );

    // Deploy settings.
    let upd = app.update_config.as_ref().unwrap();
    assert_eq!(
        upd.parallelism,
        Some(1),
        "docker/cli defaults parallelism to 1"
    );
    assert_eq!(
        upd.order,
        Some(ServiceSpecUpdateConfigOrderEnum::START_FIRST)
    );
    assert_eq!(
        upd.failure_action,
        Some(ServiceSpecUpdateConfigFailureActionEnum::ROLLBACK)
    );
    assert_eq!(
        app.mode.as_ref().unwrap().replicated,
        Some(ServiceSpecModeReplicated { replicas: None })
    );
    let hc = c.health_check.as_ref().unwrap();
    assert_eq!(hc.interval, Some(30_000_000_000));
    assert_eq!(hc.start_period, Some(60_000_000_000));
    assert_eq!(hc.retries, Some(10));
    assert_eq!(hc.test.as_ref().unwrap()[0], "CMD");
    let endpoint = app.endpoint_spec.as_ref().unwrap();
    assert_eq!(endpoint.mode, None);
    assert_eq!(endpoint.ports, None);

    // Named volume mount: namespaced source, labels on the volume options.
    let mount = &c.mounts.as_ref().unwrap()[0];
    assert_eq!(mount.source.as_deref(), Some("notes_example_com_uploads"));
    assert_eq!(mount.typ, Some(MountType::VOLUME));
    assert_eq!(
        mount
            .volume_options
            .as_ref()
            .unwrap()
            .labels
            .as_ref()
            .unwrap(),
        &labels(&ns)
    );

    // db: resources, nocopy, its own labels.
    let db = svc(&spec, "notes_example_com_db");
    let res = db
        .task_template
        .as_ref()
        .unwrap()
        .resources
        .as_ref()
        .unwrap();
    let limits = res.limits.as_ref().unwrap();
    assert_eq!(limits.nano_cpus, Some(1_500_000_000));
    assert_eq!(limits.memory_bytes, Some(1 << 30));
    assert_eq!(limits.pids, Some(200));
    assert_eq!(
        res.reservations.as_ref().unwrap().memory_bytes,
        Some(256 << 20)
    );
    let dbm = &container(db).mounts.as_ref().unwrap()[0];
    assert_eq!(dbm.volume_options.as_ref().unwrap().no_copy, Some(true));
    assert_eq!(db.labels.as_ref().unwrap()["backupbot.backup"], "true");
    assert_eq!(
        container(db).env.as_deref().unwrap(),
        [
            "POSTGRES_PASSWORD_FILE=/run/secrets/db_password",
            "POSTGRES_USER=notes"
        ]
    );
}

#[test]
fn services_without_networks_join_the_default_network() {
    let spec = convert_files(
        &[(
            "compose.yml",
            "services:\n  web:\n    image: nginx\n  worker:\n    image: busybox\n    networks: [back]\nnetworks:\n  back:\n    driver_opts:\n      encrypted: \"true\"\n    attachable: true\n",
        )],
        &ConvertOptions::default(),
    )
    .unwrap();
    let names: Vec<_> = spec.networks.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, [format!("{STACK}_back"), format!("{STACK}_default")]);
    let default = &spec.networks[1];
    assert_eq!(default.driver.as_deref(), Some("overlay"));
    assert_eq!(
        default.labels.as_ref().unwrap(),
        &labels(&[("com.docker.stack.namespace", STACK)])
    );
    assert_eq!(spec.networks[0].attachable, Some(true));
    assert_eq!(
        spec.networks[0].options.as_ref().unwrap()["encrypted"],
        "true"
    );
    let web = svc(&spec, "notes_example_com_web");
    let nets = web
        .task_template
        .as_ref()
        .unwrap()
        .networks
        .as_ref()
        .unwrap();
    assert_eq!(nets[0].target.as_deref(), Some("notes_example_com_default"));
    assert_eq!(nets[0].aliases.as_deref().unwrap(), ["web"]);
}
