//! Unit tests for [`super::super`]: ports and endpoint modes, container details and the
//! stack's own secrets, as `docker stack deploy --resolve-image never` sends them.

use super::*;

const PORTS_MODES: &str = r#"
services:
  proxy:
    image: traefik:v3
    ports:
      - target: 443
        published: 443
        mode: host
        protocol: tcp
      - target: 80
        published: 80
        mode: host
  web:
    image: nginx
    ports:
      - "8080:80"
      - "5353:53/udp"
  job:
    image: busybox
    command: sh -c 'echo done'
    deploy:
      mode: replicated-job
      replicas: 2
  agent:
    image: busybox
    deploy:
      mode: global
  once:
    image: busybox
    deploy:
      mode: global-job
  plain:
    image: busybox
    deploy:
      replicas: 0
"#;

#[test]
fn ports_modes_and_dnsrr_override() {
    let opts = ConvertOptions {
        force_dnsrr: true,
        ..Default::default()
    };
    let spec = convert_files(&[("compose.yml", PORTS_MODES)], &opts).unwrap();
    let proxy = svc(&spec, "notes_example_com_proxy");
    let ep = proxy.endpoint_spec.as_ref().unwrap();
    let ports = ep.ports.as_ref().unwrap();
    assert_eq!(
        ports[0].published_port,
        Some(80),
        "sorted by published port"
    );
    assert_eq!(
        ports[0].protocol, None,
        "long form without protocol stays unset"
    );
    assert_eq!(
        ports[1].publish_mode,
        Some(EndpointPortConfigPublishModeEnum::HOST)
    );
    assert_eq!(
        ep.mode,
        Some(EndpointSpecModeEnum::DNSRR),
        "host-mode ports only: dnsrr forced"
    );
    let web = svc(&spec, "notes_example_com_web");
    let ep = web.endpoint_spec.as_ref().unwrap();
    assert_eq!(ep.mode, None, "ingress ports need a VIP: not forced");
    let ports = ep.ports.as_ref().unwrap();
    assert_eq!(ports[0].published_port, Some(5353));
    assert_eq!(ports[0].protocol, Some(EndpointPortConfigProtocolEnum::UDP));
    assert_eq!(
        ports[1].publish_mode,
        Some(EndpointPortConfigPublishModeEnum::INGRESS)
    );

    let job = svc(&spec, "notes_example_com_job");
    assert_eq!(
        job.mode.as_ref().unwrap().replicated_job,
        Some(ServiceSpecModeReplicatedJob {
            max_concurrent: Some(2),
            total_completions: Some(2)
        })
    );
    assert_eq!(
        container(job).args.as_deref().unwrap(),
        ["sh", "-c", "echo done"]
    );
    assert!(
        svc(&spec, "notes_example_com_agent")
            .mode
            .as_ref()
            .unwrap()
            .global
            .is_some()
    );
    assert!(
        svc(&spec, "notes_example_com_once")
            .mode
            .as_ref()
            .unwrap()
            .global_job
            .is_some()
    );
    assert_eq!(
        svc(&spec, "notes_example_com_plain")
            .mode
            .as_ref()
            .unwrap()
            .replicated,
        Some(ServiceSpecModeReplicated { replicas: Some(0) })
    );

    // Without the option nothing is forced.
    let spec = convert_files(&[("compose.yml", PORTS_MODES)], &ConvertOptions::default()).unwrap();
    let proxy = svc(&spec, "notes_example_com_proxy");
    assert_eq!(proxy.endpoint_spec.as_ref().unwrap().mode, None);
}

#[test]
fn container_details_follow_docker_cli() {
    let spec = convert_files(
        &[(
            "compose.yml",
            r#"
services:
  app:
    image: busybox
    entrypoint: ["/init"]
    hostname: "{{.Task.Name}}"
    user: "1000:1000"
    working_dir: /srv
    extra_hosts:
      - "host.docker.internal:host-gateway"
      - "db.local:10.0.0.5"
    cap_add: [net_admin, CAP_SYS_TIME, ALL]
    cap_drop: [mknod]
    ulimits:
      nproc: 65535
      nofile:
        soft: 20000
        hard: 40000
    sysctls:
      net.core.somaxconn: 1024
    init: true
    read_only: true
    tty: true
    stop_signal: SIGQUIT
    stop_grace_period: 45s
    logging:
      driver: json-file
      options:
        max-size: 10m
    dns: [9.9.9.9, not-an-ip]
    restart: on-failure:3
    volumes:
      - /var/run/docker.sock:/var/run/docker.sock:ro
      - type: tmpfs
        target: /run/cache
        tmpfs:
          size: 16M
      - /anonymous
    healthcheck:
      disable: true
"#,
        )],
        &ConvertOptions::default(),
    )
    .unwrap();
    let app = svc(&spec, "notes_example_com_app");
    let c = container(app);
    assert_eq!(c.command.as_deref().unwrap(), ["/init"]);
    assert_eq!(c.args, None);
    assert_eq!(
        c.hosts.as_deref().unwrap(),
        ["host-gateway host.docker.internal", "10.0.0.5 db.local"]
    );
    assert_eq!(c.capability_add.as_deref().unwrap(), ["ALL"]);
    assert_eq!(c.capability_drop.as_deref().unwrap(), ["CAP_MKNOD"]);
    let ul = c.ulimits.as_ref().unwrap();
    assert_eq!(ul[0].name.as_deref(), Some("nofile"));
    assert_eq!((ul[0].soft, ul[0].hard), (Some(20000), Some(40000)));
    assert_eq!((ul[1].soft, ul[1].hard), (Some(65535), Some(65535)));
    assert_eq!(c.sysctls.as_ref().unwrap()["net.core.somaxconn"], "1024");
    assert_eq!(
        (c.init, c.read_only, c.tty),
        (Some(true), Some(true), Some(true))
    );
    assert_eq!(c.open_stdin, None);
    assert_eq!(c.stop_grace_period, Some(45_000_000_000));
    assert_eq!(c.user.as_deref(), Some("1000:1000"));
    assert_eq!(c.hostname.as_deref(), Some("{{.Task.Name}}"));
    assert_eq!(
        c.dns_config
            .as_ref()
            .unwrap()
            .nameservers
            .as_deref()
            .unwrap(),
        ["9.9.9.9"]
    );
    assert_eq!(
        c.health_check.as_ref().unwrap().test.as_deref().unwrap(),
        ["NONE"]
    );
    let mounts = c.mounts.as_ref().unwrap();
    assert_eq!(mounts[0].typ, Some(MountType::BIND));
    assert_eq!(mounts[0].source.as_deref(), Some("/var/run/docker.sock"));
    assert_eq!(mounts[0].read_only, Some(true));
    assert_eq!(mounts[1].typ, Some(MountType::TMPFS));
    assert_eq!(
        mounts[1].tmpfs_options.as_ref().unwrap().size_bytes,
        Some(16 << 20)
    );
    assert_eq!(mounts[2].source, None);
    assert_eq!(
        mounts[2].volume_options, None,
        "anonymous volumes get no options"
    );
    let task = app.task_template.as_ref().unwrap();
    let rp = task.restart_policy.as_ref().unwrap();
    assert_eq!(
        rp.condition,
        Some(TaskSpecRestartPolicyConditionEnum::ON_FAILURE)
    );
    assert_eq!(rp.max_attempts, Some(3));
    let log = task.log_driver.as_ref().unwrap();
    assert_eq!(log.name.as_deref(), Some("json-file"));
    assert_eq!(log.options.as_ref().unwrap()["max-size"], "10m");
}

#[test]
fn own_secrets_are_read_and_errors_are_clear() {
    let compose = r#"
services:
  app:
    image: busybox
    secrets:
      - source: api_key
        target: api
        uid: "33"
        mode: 0400
secrets:
  api_key:
    file: secrets/api_key
"#;
    let spec = convert_files(
        &[("compose.yml", compose), ("secrets/api_key", "s3cr3t")],
        &extra(),
    )
    .unwrap();
    let secret = &spec.secrets[0];
    assert_eq!(secret.name.as_deref(), Some("notes_example_com_api_key"));
    assert_eq!(secret.data.as_deref(), Some("czNjcjN0"));
    assert_eq!(secret.labels.as_ref().unwrap()["cc-ci.managed"], "true");
    let r = &container(&spec.services[0]).secrets.as_ref().unwrap()[0];
    let file = r.file.as_ref().unwrap();
    assert_eq!(file.name.as_deref(), Some("api"));
    assert_eq!(file.uid.as_deref(), Some("33"));
    assert_eq!(file.gid.as_deref(), Some("0"));
    assert_eq!(file.mode, Some(0o400));

    // The file is missing: a clear error, naming the secret but not its contents.
    let err = convert_files(&[("compose.yml", compose)], &extra()).unwrap_err();
    assert!(matches!(err, ConvertError::ReadFile { .. }), "{err}");
    assert!(
        err.to_string().starts_with("secret api_key: cannot read"),
        "{err}"
    );

    // A service using a secret that is not declared: docker/cli's wording.
    let err = convert_files(
        &[(
            "compose.yml",
            "services:\n  app:\n    image: busybox\n    secrets: [nope]\n",
        )],
        &extra(),
    )
    .unwrap_err();
    assert_eq!(err.to_string(), "service app: undefined secret \"nope\"");

    let err = convert_files(
        &[(
            "compose.yml",
            "services:\n  app:\n    image: busybox\n    networks: [ghost]\n",
        )],
        &extra(),
    )
    .unwrap_err();
    assert_eq!(err.to_string(), "service app: undefined network \"ghost\"");

    let err = convert_files(
        &[(
            "compose.yml",
            "services:\n  app:\n    image: busybox\n    deploy:\n      mode: global\n      replicas: 2\n",
        )],
        &extra(),
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("replicas can only be used"),
        "{err}"
    );
}
