//! Record writes refuse what could change a run's identity or reach git as an option: 422
//! naming the field, nothing stored.

use serde_json::json;

use crate::api::Client;
use crate::support::Server;

#[tokio::test]
async fn identity_keys_invalid_env_names_and_unusable_git_urls_are_refused_on_write() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_in(dir.path(), &[]);
    let client = Client::of(&server);
    let recipe = |git: &str, env: serde_json::Value| {
        json!({"apiVersion": "cc-ci/v1alpha1", "kind": "Recipe",
               "metadata": {"name": "hostile"}, "spec": {"git": git, "env": env}})
    };
    let cases = [
        (
            recipe("https://h/r.git", json!({"DOMAIN": "evil.example.com"})),
            "spec.env.DOMAIN",
        ),
        (
            recipe("https://h/r.git", json!({"STACK_NAME": "victim"})),
            "spec.env.STACK_NAME",
        ),
        (
            recipe("https://h/r.git", json!({"A-B": "x"})),
            "spec.env.A-B",
        ),
        (
            recipe("https://h/r.git", json!({"X=1\nDOMAIN": "x"})),
            "spec.env.X=1\nDOMAIN",
        ),
        (recipe("", json!({})), "spec.git"),
        (recipe("--upload-pack=touch /tmp/x", json!({})), "spec.git"),
        (recipe("ext::sh -c touch% /tmp/x", json!({})), "spec.git"),
        (recipe("gopher://h/r", json!({})), "spec.git"),
    ];
    for (body, field) in cases {
        let (status, answer) = client.post("/api/v1/recipes", &body).await;
        assert_eq!(status, 422, "{body}: {answer}");
        assert!(
            answer
                .to_string()
                .contains(serde_json::to_string(field).unwrap().trim_matches('"')),
            "{body}: the answer does not name {field:?}: {answer}"
        );
    }
    let (status, _) = client.get("/api/v1/recipes/hostile").await;
    assert_eq!(status, 404, "nothing was stored");

    let run = |git: &str, git_ref: &str| {
        json!({"apiVersion": "cc-ci/v1alpha1", "kind": "TestRun",
               "metadata": {"name": "hostile-run"},
               "spec": {"recipe": "hostile", "git": git, "ref": git_ref}})
    };
    for (body, field) in [
        (run("-oProxyCommand=x", "main"), "spec.git"),
        (run("https://h/r.git", "--output=/tmp/x"), "spec.ref"),
    ] {
        let (status, answer) = client.post("/api/v1/testruns", &body).await;
        assert_eq!(status, 422, "{body}: {answer}");
        assert!(answer.to_string().contains(field), "{answer}");
    }
    let ok = recipe("https://h/r.git", json!({"COMPOSE_FILE": "compose.yml"}));
    let (status, answer) = client.post("/api/v1/recipes", &ok).await;
    assert_eq!(status, 201, "{answer}");
}

#[tokio::test]
async fn local_paths_are_refused_when_the_operator_does_not_allow_them() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("cc-ci.toml");
    std::fs::write(
        &config,
        "[sources]\nschemes = [\"https\"]\nallow_local_paths = false\n",
    )
    .unwrap();
    let server = Server::start_in(
        &dir.path().join("state"),
        &["--config", config.to_str().unwrap()],
    );
    let client = Client::of(&server);
    for (git, expected) in [
        ("/etc", 422),
        ("file:///etc", 422),
        ("ssh://h/r", 422),
        ("git@h:r.git", 422),
        ("https://h/r.git", 201),
    ] {
        let body = json!({"apiVersion": "cc-ci/v1alpha1", "kind": "Recipe",
                          "metadata": {"name": format!("r{}", git.len())},
                          "spec": {"git": git}});
        let (status, answer) = client.post("/api/v1/recipes", &body).await;
        assert_eq!(status, expected, "{git}: {answer}");
        if expected == 422 {
            assert!(answer.to_string().contains("spec.git"), "{answer}");
        }
    }
}
