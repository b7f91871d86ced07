//! Unit tests for [`super::load`]: whole files through parse, interpolation, normalization,
//! merge and typed deserialization.

use super::*;

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

const RECIPE: &str = r#"
version: "3.8"

x-common-env: &common-env
  TZ: Europe/Berlin
  LOG_LEVEL: info

services:
  app:
    image: "git.example.org/coop/notes:${APP_TAG:-2.1.0}"
    environment:
      <<: *common-env
      DB_HOST: "${STACK_NAME}_db"
      DB_PASSWORD_FILE: /run/secrets/db_password
      EMPTY_FROM_ENV:
    networks:
      - proxy
      - internal
    secrets:
      - db_password
      - source: admin_password
        target: admin_pw
        mode: 0400
    configs:
      - source: app_config
        target: /etc/notes/config.toml
    volumes:
      - "uploads:/srv/uploads"
      - ./static:/srv/static:ro
      - type: tmpfs
        target: /tmp
        tmpfs:
          size: 64M
    ports:
      - "2222:22"
      - target: 8443
        published: 8443
        mode: host
    healthcheck:
      test: "curl -fsS http://localhost:8080/health || exit 1"
      interval: 30s
      timeout: 10s
      retries: 5
      start_period: 1m
    deploy:
      replicas: ${REPLICAS:-1}
      update_config:
        failure_action: rollback
        order: start-first
      restart_policy:
        max_attempts: 3
      labels:
        - "traefik.enable=true"
        - "traefik.http.routers.${STACK_NAME}.rule=Host(`${DOMAIN}`)"
        - "coop-cloud.${STACK_NAME}.version=1.0.0+2.1.0"
      resources:
        limits:
          cpus: "0.5"
          memory: 512M
    entrypoint: /docker-entrypoint.sh
    command: ["serve", "--port", 8080]
    stop_grace_period: 1m30s
    extra_hosts:
      - "host.docker.internal:host-gateway"
    colour: blue
    x-notes: ignored extension

  db:
    image: postgres:15
    volumes:
      - db_data:/var/lib/postgresql/data
    networks: [internal]
    deploy:
      mode: global

networks:
  proxy:
    external: true
  internal:

volumes:
  uploads:
  db_data:
    labels:
      backupbot.backup: "true"

secrets:
  db_password:
    external: true
    name: ${STACK_NAME}_db_password_${SECRET_DB_PASSWORD_VERSION}
  admin_password:
    file: secrets/admin

configs:
  app_config:
    name: ${STACK_NAME}_app_config_${APP_CONFIG_VERSION}
    file: config.toml.tmpl
    template_driver: golang
"#;

fn recipe_env() -> BTreeMap<String, String> {
    env(&[
        ("STACK_NAME", "notes_example_com"),
        ("DOMAIN", "notes.example.com"),
        ("SECRET_DB_PASSWORD_VERSION", "v1"),
        ("APP_CONFIG_VERSION", "v2"),
        ("EMPTY_FROM_ENV", "filled"),
    ])
}

#[test]
fn recipe_compose_loads_into_long_forms() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "compose.yml", RECIPE);
    let loaded = load(dir.path(), &["compose.yml".into()], &recipe_env()).unwrap();
    let c = &loaded.compose;
    let app = &c.services["app"];
    assert_eq!(
        app.image.as_deref(),
        Some("git.example.org/coop/notes:2.1.0")
    );
    assert_eq!(app.environment["TZ"].as_deref(), Some("Europe/Berlin"));
    assert_eq!(
        app.environment["DB_HOST"].as_deref(),
        Some("notes_example_com_db")
    );
    assert_eq!(
        app.environment["EMPTY_FROM_ENV"].as_deref(),
        Some("filled"),
        "a key without a value is looked up in the environment"
    );
    assert_eq!(
        app.networks.keys().collect::<Vec<_>>(),
        vec!["internal", "proxy"]
    );
    assert_eq!(app.secrets[0].source, "db_password");
    assert_eq!(
        app.secrets[1].mode,
        Some(0o400),
        "YAML 1.1 octal like yaml.v2"
    );
    assert_eq!(app.volumes[0].kind, "volume");
    assert_eq!(app.volumes[0].source.as_deref(), Some("uploads"));
    let static_dir = std::path::absolute(dir.path().join("static")).unwrap();
    assert_eq!(
        app.volumes[1].source.as_deref(),
        Some(static_dir.to_str().unwrap())
    );
    assert!(app.volumes[1].read_only);
    assert_eq!(
        app.volumes[2].tmpfs.as_ref().unwrap().size,
        Some(units::ByteSize(64 << 20))
    );
    assert_eq!(
        app.ports[0],
        Port {
            mode: Some("ingress".into()),
            target: 22,
            published: Some(2222),
            protocol: Some("tcp".into())
        }
    );
    assert_eq!(app.ports[1].mode.as_deref(), Some("host"));
    let hc = app.healthcheck.as_ref().unwrap();
    assert_eq!(
        hc.test.as_deref().unwrap(),
        [
            "CMD-SHELL",
            "curl -fsS http://localhost:8080/health || exit 1"
        ]
    );
    assert_eq!(hc.start_period, Some(units::GoDuration(60_000_000_000)));
    assert_eq!(app.deploy.replicas, Some(1));
    assert_eq!(
        app.deploy.labels["traefik.http.routers.notes_example_com.rule"],
        "Host(`notes.example.com`)"
    );
    assert_eq!(
        app.entrypoint.as_deref().unwrap(),
        ["/docker-entrypoint.sh"]
    );
    assert_eq!(app.command.as_deref().unwrap(), ["serve", "--port", "8080"]);
    assert_eq!(
        app.stop_grace_period,
        Some(units::GoDuration(90_000_000_000))
    );
    assert_eq!(c.services["db"].deploy.mode.as_deref(), Some("global"));
    assert!(c.networks["proxy"].external);
    assert_eq!(c.networks["proxy"].name.as_deref(), Some("proxy"));
    assert_eq!(
        c.secrets["db_password"].name.as_deref(),
        Some("notes_example_com_db_password_v1")
    );
    let admin_file = std::path::absolute(dir.path().join("secrets/admin")).unwrap();
    assert_eq!(
        c.secrets["admin_password"].file.as_deref(),
        Some(admin_file.to_str().unwrap())
    );
    assert_eq!(
        c.configs["app_config"].template_driver.as_deref(),
        Some("golang")
    );
    assert_eq!(c.volumes["db_data"].labels["backupbot.backup"], "true");
    // Unknown keys are reported with their path; `x-` keys and `version` are not.
    let unknown: Vec<_> = loaded
        .warnings
        .iter()
        .filter(|w| w.contains("unknown key"))
        .collect();
    assert_eq!(unknown.len(), 1, "{:?}", loaded.warnings);
    assert!(unknown[0].contains("services.app.colour"), "{unknown:?}");
    assert!(
        !loaded
            .warnings
            .iter()
            .any(|w| w.contains("APP_TAG") || w.contains("REPLICAS")),
        "defaults are not unset variables: {:?}",
        loaded.warnings
    );
}

#[test]
fn overlays_merge_in_compose_file_order() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "compose.yml", RECIPE);
    write(
        dir.path(),
        "compose.smtp.yml",
        r#"
services:
  app:
    environment:
      - SMTP_HOST=mail.example.com
      - LOG_LEVEL=debug
    secrets:
      - smtp_password
    deploy:
      labels:
        traefik.http.routers.extra.rule: "Host(`x`)"
secrets:
  smtp_password:
    external: true
    name: ${STACK_NAME}_smtp_password_v1
"#,
    );
    let mut e = recipe_env();
    e.insert("COMPOSE_FILE".into(), "compose.yml:compose.smtp.yml".into());
    let files = compose_files_from_env(&e);
    assert_eq!(files, vec!["compose.yml", "compose.smtp.yml"]);
    let loaded = load(dir.path(), &files, &e).unwrap();
    let app = &loaded.compose.services["app"];
    assert_eq!(app.environment["LOG_LEVEL"].as_deref(), Some("debug"));
    assert_eq!(
        app.environment["SMTP_HOST"].as_deref(),
        Some("mail.example.com")
    );
    assert_eq!(app.environment["TZ"].as_deref(), Some("Europe/Berlin"));
    let sources: Vec<_> = app.secrets.iter().map(|s| s.source.as_str()).collect();
    assert_eq!(sources, ["admin_password", "db_password", "smtp_password"]);
    assert!(app.deploy.labels.contains_key("traefik.enable"));
    assert!(
        app.deploy
            .labels
            .contains_key("traefik.http.routers.extra.rule")
    );
    assert!(loaded.compose.secrets.contains_key("smtp_password"));
}

#[test]
fn default_compose_file_is_compose_yml() {
    assert_eq!(
        compose_files_from_env(&BTreeMap::new()),
        vec!["compose.yml"]
    );
}

#[test]
fn errors_name_file_line_and_key_path() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "compose.yml",
        "services:\n  app:\n    image: [unclosed\n",
    );
    let err = load(dir.path(), &["compose.yml".into()], &BTreeMap::new()).unwrap_err();
    match &err {
        ComposeError::Yaml { file, line, .. } => {
            assert_eq!(file, "compose.yml");
            assert!(line.is_some(), "{err}");
        }
        other => panic!("expected a YAML error, got {other}"),
    }

    let err = load(dir.path(), &["missing.yml".into()], &BTreeMap::new()).unwrap_err();
    assert!(matches!(err, ComposeError::Read { .. }), "{err}");
    assert!(err.to_string().starts_with("missing.yml:"), "{err}");

    write(
        dir.path(),
        "compose.yml",
        "services:\n  app:\n    image: x\n    environment:\n      DB: ${DB_HOST:?set it in .env}\n",
    );
    let err = load(dir.path(), &["compose.yml".into()], &BTreeMap::new()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "compose.yml: services.app.environment.DB: required variable DB_HOST is missing a value: set it in .env"
    );

    write(
        dir.path(),
        "compose.yml",
        "services:\n  app:\n    image: x\n    deploy:\n      replicas: many\n",
    );
    let err = load(dir.path(), &["compose.yml".into()], &BTreeMap::new()).unwrap_err();
    match &err {
        ComposeError::Invalid { path, .. } => assert_eq!(path, "services.app.deploy.replicas"),
        other => panic!("expected a type error, got {other}"),
    }

    write(
        dir.path(),
        "compose.yml",
        "services:\n  app:\n    image: x\n    mem_limit: 1g\n",
    );
    let err = load(dir.path(), &["compose.yml".into()], &BTreeMap::new()).unwrap_err();
    assert!(err.to_string().contains("mem_limit"), "{err}");
}

#[test]
fn unsupported_options_and_unset_variables_warn() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "compose.yml",
        "services:\n  app:\n    image: x:${TAG}\n    build: .\n    restart: always\n",
    );
    let loaded = load(dir.path(), &["compose.yml".into()], &BTreeMap::new()).unwrap();
    assert_eq!(loaded.compose.services["app"].image.as_deref(), Some("x:"));
    assert_eq!(
        loaded.compose.services["app"].restart.as_deref(),
        Some("always")
    );
    let w = loaded.warnings.join("\n");
    assert!(w.contains("ignoring unsupported option build"), "{w}");
    assert!(w.contains("variable TAG is not set"), "{w}");
    assert!(!w.contains("unknown key"), "{w}");
}

#[test]
fn an_overlay_of_the_wrong_shape_is_reported_not_dropped() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "compose.yml",
        "services:\n  app:\n    image: a\n    ports: [\"80:80\"]\n    networks: [n]\nnetworks:\n  n:\n",
    );
    for (overlay, path) in [
        (
            "services:\n  app:\n    ports: \"443:443\"\n",
            "services.app.ports",
        ),
        (
            "services:\n  app:\n    networks: {n: [x]}\n",
            "services.app.networks.n[0]",
        ),
        (
            "services:\n  app:\n    environment: 3\n",
            "services.app.environment",
        ),
    ] {
        write(dir.path(), "compose.over.yml", overlay);
        let files = ["compose.yml".to_owned(), "compose.over.yml".to_owned()];
        match load(dir.path(), &files, &env(&[])) {
            Err(ComposeError::Invalid { path: p, .. }) => assert_eq!(p, path, "{overlay}"),
            other => panic!("{overlay}: expected an error at {path}, got {other:?}"),
        }
    }
    // A service named in an overlay as a list, a number or nothing at all.
    for overlay in ["services:\n  app: []\n", "services:\n  app: 3\n"] {
        write(dir.path(), "compose.over.yml", overlay);
        let files = ["compose.yml".to_owned(), "compose.over.yml".to_owned()];
        assert!(
            matches!(
                load(dir.path(), &files, &env(&[])),
                Err(ComposeError::Invalid { .. })
            ),
            "{overlay}"
        );
    }
    write(dir.path(), "compose.over.yml", "services:\n  app:\n");
    let files = ["compose.yml".to_owned(), "compose.over.yml".to_owned()];
    let loaded = load(dir.path(), &files, &env(&[])).unwrap();
    assert_eq!(loaded.compose.services["app"].ports.len(), 1);
}
