//! Bad input to `cc-ci stack deploy`: each a clear error (naming the file and key path where
//! there is one) before anything is created in Swarm. Every case's stack also declares a
//! network, a secret and a config of its own, so a half-done deploy would leave objects behind.

use std::process::Command;

use super::{extra_labels, fresh, objects_left, write_files};

/// A valid stack the cases break one piece of.
const BASE: &str = r#"
version: "3.8"
services:
  app:
    image: ccci-fixture/nginx:1.24
    networks: [backend]
    secrets: [token]
    configs:
      - source: site
        target: /var/www/html/index.html
networks:
  backend:
secrets:
  token:
    name: ${STACK_NAME}_token_v1
    file: token.txt
configs:
  site:
    name: ${STACK_NAME}_site_v1
    file: site.html
"#;

/// Runs `cc-ci stack deploy` on `files` and returns its stderr, asserting it failed.
fn deploy_fails(test: &str, stack: &str, files: &[(&str, &str)]) -> String {
    let dir = tempfile::tempdir().unwrap();
    write_files(dir.path(), files);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cc-ci"));
    cmd.args(["stack", "deploy", "--timeout", "30", "--env-file"])
        .arg(dir.path().join(".env"));
    for (k, v) in extra_labels(test) {
        cmd.arg("--label").arg(format!("{k}={v}"));
    }
    let out = cmd.arg(stack).output().expect("running cc-ci stack deploy");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !out.status.success(),
        "cc-ci stack deploy should have failed:\n{stderr}"
    );
    stderr
}

#[tokio::test]
async fn bad_input_is_a_clear_error_before_anything_is_created() {
    let test = "bad-input";
    let stack = "ccci_swarm_bad";
    let docker = fresh(test).await;
    let env = "TYPE=bad\n";
    let token = ("token.txt", "s3cr3t-token");
    let site = ("site.html", "<h1>site</h1>");

    // Malformed YAML: the file and the line.
    let broken_yaml = BASE.replace("    networks: [backend]\n", "    networks: [backend\n");
    let err = deploy_fails(
        test,
        stack,
        &[(".env", env), ("compose.yml", &broken_yaml), token, site],
    );
    assert!(err.contains("compose.yml:"), "{err}");
    assert!(err.contains("line"), "the position is given: {err}");

    // A required variable that is not set: the file, the key path and the recipe's message.
    let required = BASE.replace(
        "    secrets: [token]\n",
        "    secrets: [token]\n    environment:\n      DB_HOST: ${DB_HOST:?set DB_HOST in the app's .env}\n",
    );
    let err = deploy_fails(
        test,
        stack,
        &[(".env", env), ("compose.yml", &required), token, site],
    );
    assert!(
        err.contains(
            "compose.yml: services.app.environment.DB_HOST: required variable DB_HOST is missing \
             a value: set DB_HOST in the app's .env"
        ),
        "{err}"
    );

    // A secret the service uses but the compose files do not declare.
    let undeclared = BASE.replace(
        "    secrets: [token]\n",
        "    secrets: [token, db_password]\n",
    );
    let err = deploy_fails(
        test,
        stack,
        &[(".env", env), ("compose.yml", &undeclared), token, site],
    );
    assert!(
        err.contains("converting compose.yml: service app: undefined secret \"db_password\""),
        "{err}"
    );

    // A config whose file is missing: the config, the path tried, and the I/O error.
    let err = deploy_fails(test, stack, &[(".env", env), ("compose.yml", BASE), token]);
    assert!(err.contains("config site: cannot read"), "{err}");
    assert!(err.contains("site.html"), "{err}");
    assert!(err.contains("No such file"), "{err}");
    assert!(
        !err.contains("s3cr3t-token"),
        "secret contents never appear: {err}"
    );

    // An external secret nobody created (`abra app secret generate` forgotten): found out before
    // the stack's own network, secret and config are created.
    let external = BASE
        .replace("    secrets: [token]\n", "    secrets: [token, db_password]\n")
        .replace(
            "    file: token.txt\n",
            "    file: token.txt\n  db_password:\n    external: true\n    name: ${STACK_NAME}_db_password_v1\n",
        );
    let err = deploy_fails(
        test,
        stack,
        &[(".env", env), ("compose.yml", &external), token, site],
    );
    assert!(
        err.contains(&format!(
            "service {stack}_app: secret \"{stack}_db_password_v1\" not found"
        )),
        "{err}"
    );

    assert_eq!(
        objects_left(&docker, test).await,
        Vec::<String>::new(),
        "a refused deploy creates nothing"
    );
}
