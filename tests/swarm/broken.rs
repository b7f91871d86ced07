//! Broken services fail converge with a useful message, within their timeout: a command that
//! exits at once and a failing healthcheck (retried by Swarm until the stack's timeout label
//! expires), and a task that its restart policy will not retry (failed at once).

use std::time::{Duration, Instant};

use cc_ci::swarm::apply::{ApplyOptions, apply};
use cc_ci::swarm::converge::{ConvergeError, ConvergeOptions, ServiceFailure, wait};
use cc_ci::swarm::remove::remove;

use super::{fresh, objects_left, render_dir, sweep_options, write_files};

/// How much later than its timeout a failing converge may return (the final diagnosis reads
/// tasks, containers and logs).
const MARGIN: Duration = Duration::from_secs(5);

const BROKEN: &str = r#"
version: "3.8"
services:
  crash:
    image: ccci-fixture/nginx:1.24
    command: ["sh", "-c", "echo crash-marker: config missing >&2; exit 3"]
    deploy:
      labels:
        # List form, as recipes write it: compose interpolates values, never mapping keys.
        - "coop-cloud.${STACK_NAME}.timeout=15"
  sick:
    image: ccci-fixture/nginx:1.24
    command: ["sh", "-c", "echo started-marker; exec nginx -g 'daemon off;'"]
    healthcheck:
      test: ["CMD", "sh", "-c", "echo unhealthy-marker; exit 1"]
      interval: 1s
      timeout: 2s
      retries: 2
      start_period: 0s
  fine:
    image: ccci-fixture/nginx:1.24
"#;

fn failure<'a>(failures: &'a [ServiceFailure], service: &str) -> &'a ServiceFailure {
    failures
        .iter()
        .find(|f| f.service == service)
        .unwrap_or_else(|| panic!("no failure for {service} in {failures:#?}"))
}

#[tokio::test]
async fn crashing_and_unhealthy_services_time_out_naming_state_error_and_logs() {
    let test = "broken";
    let stack_name = "ccci_swarm_broken";
    let docker = fresh(test).await;
    let dir = tempfile::tempdir().unwrap();
    write_files(dir.path(), &[("compose.yml", BROKEN), (".env", "")]);
    let stack = render_dir(dir.path(), stack_name, test);
    apply(&docker, &stack, &ApplyOptions::default())
        .await
        .expect("apply");

    let started = Instant::now();
    // No explicit timeout: the `coop-cloud.<stack>.timeout` label (15 s) decides.
    let result = wait(&docker, stack_name, &ConvergeOptions::default(), |line| {
        eprintln!("  {line}")
    })
    .await;
    let elapsed = started.elapsed();
    let err = result.expect_err("a broken stack must not converge");
    let message = err.to_string();
    eprintln!("after {elapsed:?}: {message}");
    remove(&docker, stack_name, &sweep_options()).await.unwrap();
    assert_eq!(objects_left(&docker, test).await, Vec::<String>::new());

    let ConvergeError::Timeout {
        seconds, failures, ..
    } = &err
    else {
        panic!("expected a timeout, got {err:?}");
    };
    assert_eq!(*seconds, 15, "the timeout comes from the stack's label");
    assert!(
        elapsed >= Duration::from_secs(15) && elapsed <= Duration::from_secs(15) + MARGIN,
        "reported after {elapsed:?}, timeout 15 s"
    );
    let mut services: Vec<&str> = failures.iter().map(|f| f.service.as_str()).collect();
    services.sort();
    assert_eq!(
        services,
        ["ccci_swarm_broken_crash", "ccci_swarm_broken_sick"],
        "only the broken services are reported"
    );

    let crash = failure(failures, "ccci_swarm_broken_crash");
    assert_eq!(crash.task_state.as_deref(), Some("failed"), "{crash:#?}");
    assert!(
        crash
            .task_error
            .as_deref()
            .is_some_and(|e| e.contains("non-zero exit (3)")),
        "{crash:#?}"
    );
    assert!(
        crash.logs.iter().any(|l| l.contains("crash-marker")),
        "{crash:#?}"
    );

    let sick = failure(failures, "ccci_swarm_broken_sick");
    assert!(sick.task_state.is_some(), "{sick:#?}");
    assert!(sick.task_error.is_some(), "{sick:#?}");
    assert!(
        sick.health
            .as_deref()
            .is_some_and(|h| h.contains("unhealthy-marker")),
        "{sick:#?}"
    );
    assert!(
        sick.logs.iter().any(|l| l.contains("started-marker")),
        "{sick:#?}"
    );

    // The message a maintainer reads carries all of it.
    for needle in [
        "ccci_swarm_broken_crash",
        "non-zero exit (3)",
        "crash-marker",
        "ccci_swarm_broken_sick",
        "unhealthy-marker",
        "started-marker",
    ] {
        assert!(
            message.contains(needle),
            "{needle:?} missing from: {message}"
        );
    }
    assert!(!message.contains("ccci_swarm_broken_fine"), "{message}");
}

const NO_RESTART: &str = r#"
version: "3.8"
services:
  once:
    image: ccci-fixture/nginx:1.24
    command: ["sh", "-c", "echo once-marker; exit 7"]
    deploy:
      restart_policy:
        condition: none
"#;
#[tokio::test]
async fn a_failed_task_that_will_not_restart_fails_converge_at_once() {
    let test = "no-restart";
    let stack_name = "ccci_swarm_norestart";
    let docker = fresh(test).await;
    let dir = tempfile::tempdir().unwrap();
    write_files(dir.path(), &[("compose.yml", NO_RESTART), (".env", "")]);
    let stack = render_dir(dir.path(), stack_name, test);
    apply(&docker, &stack, &ApplyOptions::default())
        .await
        .expect("apply");

    let opts = ConvergeOptions {
        timeout: Some(Duration::from_secs(60)),
        ..Default::default()
    };
    let started = Instant::now();
    let result = wait(&docker, stack_name, &opts, |line| eprintln!("  {line}")).await;
    let elapsed = started.elapsed();
    remove(&docker, stack_name, &sweep_options()).await.unwrap();
    assert_eq!(objects_left(&docker, test).await, Vec::<String>::new());

    let err = result.expect_err("the task failed");
    let ConvergeError::Failed { failure, .. } = &err else {
        panic!("expected an immediate failure, got {err:?}");
    };
    assert!(
        elapsed < Duration::from_secs(20),
        "waiting cannot help, so no waiting: {elapsed:?}"
    );
    assert_eq!(failure.service, "ccci_swarm_norestart_once");
    assert_eq!(failure.task_state.as_deref(), Some("failed"));
    assert!(
        failure
            .task_error
            .as_deref()
            .is_some_and(|e| e.contains("non-zero exit (7)")),
        "{failure:#?}"
    );
    assert!(
        failure.logs.iter().any(|l| l.contains("once-marker")),
        "{failure:#?}"
    );
}
