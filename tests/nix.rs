//! The Nix side, as far as a machine without nixpkgs allows (Debian's `nix-bin`, offline): every
//! `.nix` file parses; the pure renderers of `services.cc-ci.{proxy,apps,recipes}` evaluate to
//! manifests that cc-ci's own decoding and validation accept (and refuse when the declaration is
//! bad); records removed from the declaration are pruned at the next start of `cc-ci serve`.

use std::path::{Path, PathBuf};
use std::process::Command;

use cc_ci::api::{AppDeploymentSpec, ProxyDeploymentSpec, RecipeSpec, Spec};
use cc_ci::http::{Purpose, decode_object};
use serde_json::Value;

use crate::support::{Server, TOKEN};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn nix_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            nix_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "nix") {
            out.push(path);
        }
    }
}

/// `nix-instantiate <args>`: stdout, or panics with stderr (nix-bin is installed by
/// `scripts/test-env`).
fn nix_instantiate(args: &[&str]) -> String {
    let out = Command::new("nix-instantiate")
        .args(args)
        .output()
        .expect("nix-instantiate runs (scripts/test-env installs Debian's nix-bin)");
    assert!(
        out.status.success(),
        "nix-instantiate {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Evaluates `expr` (with `render` bound to nix/lib/render.nix) to JSON.
fn eval_render(expr: &str) -> Value {
    let render = root().join("nix/lib/render.nix");
    let full = format!("let render = import {}; in {expr}", render.display());
    let json = nix_instantiate(&["--eval", "--strict", "--json", "--expr", &full]);
    serde_json::from_str(&json).unwrap()
}

/// A declaration like the example host's, with the nulls and defaults a module evaluation leaves.
const DECLARATION: &str = r#"{
  proxy = {
    name = "traefik"; git = "https://git.coopcloud.tech/coop-cloud/traefik.git";
    version = "3.0.1+v3.3.3"; domain = "traefik.ci.example.org"; env = { };
    keepVolumes = false;
    wildcardCertFile = "/run/secrets/cc-ci/wildcard-cert";
    wildcardKeyFile = "/run/secrets/cc-ci/wildcard-key";
  };
  apps.drone = {
    git = "https://git.coopcloud.tech/coop-cloud/drone.git"; version = "1.4.0+2.25.0";
    domain = "drone.ci.example.org"; keepVolumes = true;
    env = { GITEA_DOMAIN = "git.coopcloud.tech"; };
    secretFiles = { rpc_secret = "/run/secrets/drone/rpc-secret"; };
  };
  recipes.custom-html = {
    git = "https://git.coopcloud.tech/coop-cloud/custom-html.git";
    forgeRepo = "coop-cloud/custom-html"; defaultBranch = null; suitePath = null; env = { };
    stages = null; allow = [ ]; suspended = false;
    timeouts = { convergeSeconds = 300; stageSeconds = null; runSeconds = null; };
  };
}"#;

fn decode<S: Spec>(doc: &Value) -> Result<cc_ci::api::Object<S>, String> {
    decode_object::<S>(doc.clone(), Purpose::Create).map_err(|e| e.message)
}

#[test]
fn every_nix_file_parses() {
    let mut files = vec![root().join("flake.nix")];
    nix_files(&root().join("nix"), &mut files);
    let names: Vec<String> = files
        .iter()
        .map(|f| f.strip_prefix(root()).unwrap().display().to_string())
        .collect();
    for must in [
        "flake.nix",
        "nix/module.nix",
        "nix/package.nix",
        "nix/lib/render.nix",
    ] {
        assert!(names.iter().any(|n| n == must), "{must} missing: {names:?}");
    }
    for f in &files {
        nix_instantiate(&["--parse", f.to_str().unwrap()]);
    }
}

#[test]
fn a_file_that_does_not_parse_is_caught() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.nix");
    std::fs::write(&bad, "{ a = ; }").unwrap();
    let out = Command::new("nix-instantiate")
        .args(["--parse", bad.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
}

#[test]
fn rendered_declarations_are_records_cc_ci_accepts() {
    let docs = eval_render(&format!("render.manifests {DECLARATION}"));
    let docs = docs.as_array().expect("a list of manifests");
    assert_eq!(docs.len(), 3);
    for d in docs {
        assert_eq!(d["apiVersion"], "cc-ci/v1alpha1");
        assert_eq!(d["metadata"]["labels"]["cc-ci.source"], "nix", "{d}");
    }
    let proxy = decode::<ProxyDeploymentSpec>(&docs[0]).unwrap();
    assert_eq!(proxy.metadata.name, "traefik");
    assert_eq!(
        proxy.spec.wildcard_cert_file.as_deref(),
        Some("/run/secrets/cc-ci/wildcard-cert")
    );
    assert!(!proxy.spec.keep_volumes);
    let app = decode::<AppDeploymentSpec>(&docs[1]).unwrap();
    assert_eq!(app.metadata.name, "drone");
    assert!(app.spec.keep_volumes);
    assert_eq!(app.spec.env["GITEA_DOMAIN"], "git.coopcloud.tech");
    assert_eq!(
        app.spec.secret_files["rpc_secret"],
        "/run/secrets/drone/rpc-secret"
    );
    let recipe = decode::<RecipeSpec>(&docs[2]).unwrap();
    assert_eq!(recipe.metadata.name, "custom-html");
    assert_eq!(
        recipe.spec.forge_repo.as_deref(),
        Some("coop-cloud/custom-html")
    );
    assert_eq!(recipe.spec.timeouts.converge_seconds, Some(300));
    assert_eq!(
        recipe.spec.default_branch, "main",
        "null fell back to the default"
    );
    // Without a proxy, nothing is rendered for it.
    let none = eval_render("render.manifests { recipes.x = { git = \"g\"; }; }");
    assert_eq!(none.as_array().unwrap().len(), 1);
}

#[test]
fn bad_declarations_are_refused_by_cc_ci_s_validation() {
    let relative = eval_render(
        r#"render.appManifest "drone" { git = "g"; version = "1"; domain = "d.example";
           secretFiles = { rpc_secret = "secrets/rpc"; }; }"#,
    );
    let err = decode::<AppDeploymentSpec>(&relative).unwrap_err();
    assert!(err.contains("spec.secretFiles.rpc_secret"), "{err}");
    let half = eval_render(
        r#"render.proxyManifest { git = "g"; version = "1"; domain = "p.example";
           wildcardCertFile = "/c"; wildcardKeyFile = null; }"#,
    );
    let err = decode::<ProxyDeploymentSpec>(&half).unwrap_err();
    assert!(err.contains("wildcardKeyFile"), "{err}");
    let unknown = eval_render(r#"render.recipeManifest "r" { git = "g"; gti = "typo"; }"#);
    let err = decode::<RecipeSpec>(&unknown).unwrap_err();
    assert!(err.contains("gti"), "{err}");
    let name = eval_render(r#"render.recipeManifest "Not_A_Name" { git = "g"; }"#);
    assert!(decode::<RecipeSpec>(&name).is_err());
}

async fn status_of(server: &Server, path: &str) -> u16 {
    reqwest::Client::new()
        .get(format!("{}{path}", server.url))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn records_removed_from_the_nix_declaration_are_pruned_at_the_next_start() {
    let tmp = tempfile::tempdir().unwrap();
    let manifests = tmp.path().join("manifests");
    std::fs::create_dir_all(&manifests).unwrap();
    let render_to_dir = |decl: &str| {
        let docs = eval_render(&format!("render.manifests ({decl})"));
        std::fs::write(manifests.join("manifests.json"), docs.to_string()).unwrap();
    };
    render_to_dir(DECLARATION);
    let state = tmp.path().join("state");
    let dir = manifests.to_str().unwrap();
    let server = Server::start_in(&state, &["--manifests", dir]);
    for path in [
        "/api/v1/proxydeployments/traefik",
        "/api/v1/appdeployments/drone",
        "/api/v1/recipes/custom-html",
    ] {
        assert_eq!(status_of(&server, path).await, 200, "{path}");
    }
    // A record made through the API: never pruned.
    let made = reqwest::Client::new()
        .post(format!("{}/api/v1/recipes", server.url))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({
            "apiVersion": "cc-ci/v1alpha1", "kind": "Recipe",
            "metadata": {"name": "by-hand"}, "spec": {"git": "https://example.org/r.git"}
        }))
        .send()
        .await
        .unwrap();
    assert!(made.status().is_success(), "{}", made.status());
    let state = server.kill();

    // drone and the recipe are removed from the declaration.
    render_to_dir(&format!(
        "builtins.removeAttrs {DECLARATION} [ \"apps\" \"recipes\" ]"
    ));
    let server = Server::start_in(&state, &["--manifests", dir]);
    assert_eq!(
        status_of(&server, "/api/v1/appdeployments/drone").await,
        404
    );
    assert_eq!(status_of(&server, "/api/v1/recipes/custom-html").await, 404);
    assert_eq!(
        status_of(&server, "/api/v1/proxydeployments/traefik").await,
        200
    );
    assert_eq!(status_of(&server, "/api/v1/recipes/by-hand").await, 200);
}
