//! Every hostile recipe through the TestRun's own path — the app configured from the checkout
//! (`recipe::app::load`), then the one compose → stack pipeline (`recipe::deploy::stack_spec`)
//! — is refused before anything could be deployed, with an error naming the file or key and
//! holding no trace of the canary. Then the same through `cc-ci stack render`.

use std::collections::BTreeMap;
use std::process::Command;

use cc_ci::recipe::app::{self, AppParams};
use cc_ci::recipe::deploy::{self, StackOptions};

use super::{CASES, Case, assert_no_canary, write};

fn params() -> AppParams {
    AppParams {
        recipe: "hostile".into(),
        version: "1.0.0+1".into(),
        domain: "hostile-abc1234.ci.test".into(),
        stack: None,
        overrides: BTreeMap::new(),
    }
}

/// The run's deploy path: `Err(message)` when refused, `Ok(spec as JSON)` when it would deploy.
pub fn deploy_path(case: &Case, allow: &[String]) -> Result<String, String> {
    let w = write(case);
    let app = app::load(&w.checkout, &params()).map_err(|e| e.to_string())?;
    let opts = StackOptions {
        instance: "hostile-test",
        run: "hostile-run",
        recipe: "hostile",
        version: "1.0.0+1",
        force_dnsrr: true,
        allow,
    };
    let spec = deploy::stack_spec(&app, &[], &opts).map_err(|e| e.to_string())?;
    Ok(serde_json::to_string(&spec).unwrap())
}

#[test]
fn every_hostile_recipe_is_refused_naming_the_key_without_the_canary() {
    for case in CASES {
        let err = match deploy_path(case, &[]) {
            Ok(spec) => {
                assert_no_canary(case, &spec, "the stack spec");
                panic!("{}: the recipe would deploy", case.name);
            }
            Err(e) => e,
        };
        for expected in case.expect {
            assert!(
                err.contains(expected),
                "{}: the refusal does not mention {expected:?}: {err}",
                case.name
            );
        }
        assert_no_canary(case, &err, "the error");
    }
}

#[test]
fn the_same_recipes_are_refused_by_cc_ci_stack_render() {
    for case in CASES.iter().filter(|c| !super::APP_ONLY.contains(&c.name)) {
        let w = write(case);
        // `stack render` reads a `.env` (the operator's app env): use the sample as one.
        let env = w.checkout.join(".env.sample");
        let out = Command::new(env!("CARGO_BIN_EXE_cc-ci"))
            .args(["stack", "render", "--env-file"])
            .arg(&env)
            .arg("hostile_example_com")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{}: rendered:\n{stdout}", case.name);
        if case.name != "env-sample-symlink" {
            for expected in case.expect {
                assert!(
                    stderr.contains(expected),
                    "{}: {expected:?} not in {stderr}",
                    case.name
                );
            }
        }
        assert_no_canary(case, &stdout, "stack render's output");
        assert_no_canary(case, &stderr, "stack render's errors");
    }
}

#[test]
fn an_exact_allowance_lets_the_docker_socket_through_and_nothing_else() {
    let case = super::case("docker-socket");
    let allowed = deploy_path(case, &["bind:/var/run/docker.sock".into()]).unwrap();
    assert!(allowed.contains("/var/run/docker.sock"), "{allowed}");
    for wrong in ["bind:/var/run", "bind:/var/run/docker.sock/", "privileged"] {
        assert!(
            deploy_path(case, &[wrong.into()]).is_err(),
            "{wrong} must not allow the socket"
        );
    }
    let privileged = super::case("privileged-and-pid-host");
    let err = deploy_path(privileged, &["privileged".into()]).unwrap_err();
    assert!(
        err.contains("services.app.pid") && !err.contains("services.app.privileged"),
        "{err}"
    );
    assert!(deploy_path(privileged, &["privileged".into(), "pid:host".into()]).is_ok());
}

#[test]
fn abra_sh_and_the_sample_cannot_change_the_runs_domain_or_stack() {
    let case = Case {
        name: "identity",
        files: &[
            (
                ".env.sample",
                "TYPE=hostile\nDOMAIN=evil.example.com\nSTACK_NAME=victim_example_com\nLETS_ENCRYPT_ENV=\n",
            ),
            (
                "abra.sh",
                "export DOMAIN=evil.example.com\nexport STACK_NAME=victim_example_com\n",
            ),
            (
                "compose.yml",
                "services:\n  app:\n    image: ccci/base:bookworm\n    deploy:\n      labels:\n        - traefik.http.routers.${STACK_NAME}.rule=Host(`${DOMAIN}`)\n",
            ),
        ],
        links: &[],
        expect: &[],
    };
    let spec = deploy_path(&case, &[]).unwrap();
    assert!(!spec.contains("evil.example.com"), "{spec}");
    assert!(!spec.contains("victim_example_com"), "{spec}");
    assert!(
        spec.contains("Host(`hostile-abc1234.ci.test`)"),
        "the router follows the run's domain: {spec}"
    );
}
