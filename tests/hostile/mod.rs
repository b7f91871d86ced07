//! Hostile recipes: one per way a recipe has tried to reach outside its checkout or take
//! another app's identity or objects. Each is a checkout written next to a **canary** file
//! (`<tmp>/outside/canary`, unique text per case) that must never reach the app, the swarm
//! objects, the logs or an error message. `pipeline` runs every case through the TestRun's
//! path (app configuration + the one compose → stack pipeline); `swarm` runs representative
//! cases through `cc-ci stack deploy` on the real swarm; `api` checks what record writes refuse.

mod api;
mod pipeline;
mod swarm;
mod testrun_swarm;

use std::path::PathBuf;

/// One hostile recipe.
pub struct Case {
    /// Short name (also in the canary text).
    pub name: &'static str,
    /// Files of the checkout: (path, text). `{canary}` is replaced by the canary's absolute
    /// path, `{outside}` by its directory.
    pub files: &'static [(&'static str, &'static str)],
    /// Symlinks of the checkout: (link, target), targets templated like files.
    pub links: &'static [(&'static str, &'static str)],
    /// What the refusal must mention (the key or rule).
    pub expect: &'static [&'static str],
}

const SAMPLE: &str = "TYPE=hostile\nDOMAIN=hostile.example.com\nLETS_ENCRYPT_ENV=\n";

const APP: &str =
    "services:\n  app:\n    image: ccci/base:bookworm\n    command: [sleep, infinity]\n";

/// Every case. The `.env.sample` is [`SAMPLE`] unless a case writes its own.
pub const CASES: &[Case] = &[
    Case {
        name: "config-file-climbs-out",
        files: &[(
            "compose.yml",
            "services:\n  app:\n    image: ccci/base:bookworm\n    configs: [leak]\nconfigs:\n  leak:\n    file: ../outside/canary\n",
        )],
        links: &[],
        expect: &["configs.leak.file", "outside the recipe directory"],
    },
    Case {
        name: "config-file-absolute",
        files: &[(
            "compose.yml",
            "services:\n  app:\n    image: ccci/base:bookworm\n    configs: [leak]\nconfigs:\n  leak:\n    file: {canary}\n",
        )],
        links: &[],
        expect: &["configs.leak.file"],
    },
    Case {
        name: "secret-file-climbs-out",
        files: &[(
            "compose.yml",
            "services:\n  app:\n    image: ccci/base:bookworm\n    secrets: [leak]\nsecrets:\n  leak:\n    file: ../../../../../../../../{canary}\n",
        )],
        links: &[],
        expect: &["secrets.leak.file"],
    },
    Case {
        name: "env-file-climbs-out",
        files: &[(
            "compose.yml",
            "services:\n  app:\n    image: ccci/base:bookworm\n    env_file: ../outside/canary\n",
        )],
        links: &[],
        expect: &["services.app.env_file[0]"],
    },
    Case {
        name: "env-file-symlink",
        files: &[(
            "compose.yml",
            "services:\n  app:\n    image: ccci/base:bookworm\n    env_file: [app.env]\n",
        )],
        links: &[("app.env", "../outside/canary")],
        expect: &["services.app.env_file[0]"],
    },
    Case {
        name: "config-symlink-to-file",
        files: &[(
            "compose.yml",
            "services:\n  app:\n    image: ccci/base:bookworm\n    configs: [leak]\nconfigs:\n  leak:\n    file: ./innocent.conf\n",
        )],
        links: &[("innocent.conf", "{canary}")],
        expect: &["configs.leak.file"],
    },
    Case {
        name: "config-through-symlink-to-root",
        files: &[(
            "compose.yml",
            "services:\n  app:\n    image: ccci/base:bookworm\n    configs: [leak]\nconfigs:\n  leak:\n    file: ./fs{canary}\n",
        )],
        links: &[("fs", "/")],
        expect: &["configs.leak.file"],
    },
    Case {
        name: "env-sample-symlink",
        files: &[("compose.yml", APP)],
        links: &[(".env.sample", "{canary}")],
        expect: &[".env.sample"],
    },
    Case {
        name: "abra-sh-symlink",
        files: &[("compose.yml", APP)],
        links: &[("abra.sh", "{canary}")],
        expect: &["abra.sh"],
    },
    Case {
        name: "compose-file-entry-symlink",
        files: &[
            (
                ".env.sample",
                "TYPE=hostile\nDOMAIN=x\nCOMPOSE_FILE=compose.yml:compose.extra.yml\n",
            ),
            ("compose.yml", APP),
        ],
        links: &[("compose.extra.yml", "{canary}")],
        expect: &["COMPOSE_FILE"],
    },
    Case {
        name: "compose-yml-symlink-unparsable-canary",
        files: &[],
        links: &[("compose.yml", "{canary}")],
        expect: &["COMPOSE_FILE"],
    },
    Case {
        name: "compose-file-entry-climbs-out",
        files: &[
            (
                ".env.sample",
                "TYPE=hostile\nDOMAIN=x\nCOMPOSE_FILE=compose.yml:../outside/canary\n",
            ),
            ("compose.yml", APP),
        ],
        links: &[],
        expect: &["COMPOSE_FILE"],
    },
    Case {
        name: "relative-bind-climbs-out",
        files: &[(
            "compose.yml",
            "services:\n  app:\n    image: ccci/base:bookworm\n    volumes: [\"../outside:/leak:ro\"]\n",
        )],
        links: &[],
        expect: &["services.app.volumes[0].source", "host bind mount"],
    },
    Case {
        name: "bind-through-symlinked-dir",
        files: &[(
            "compose.yml",
            "services:\n  app:\n    image: ccci/base:bookworm\n    volumes: [\"./data:/leak:ro\"]\n",
        )],
        links: &[("data", "../outside")],
        expect: &["services.app.volumes[0].source", "host bind mount"],
    },
    Case {
        name: "docker-socket",
        files: &[(
            "compose.yml",
            "services:\n  app:\n    image: ccci/base:bookworm\n    command: [sleep, infinity]\n    volumes: [\"/var/run/docker.sock:/var/run/docker.sock\"]\n",
        )],
        links: &[],
        expect: &[
            "services.app.volumes[0].source",
            "bind:/var/run/docker.sock",
        ],
    },
    Case {
        name: "volume-driver-opts-bind",
        files: &[(
            "compose.yml",
            "services:\n  app:\n    image: ccci/base:bookworm\n    volumes: [\"data:/leak\"]\nvolumes:\n  data:\n    driver: local\n    driver_opts:\n      type: none\n      o: bind\n      device: {outside}\n",
        )],
        links: &[],
        expect: &["volumes.data.driver_opts.device"],
    },
    Case {
        name: "other-apps-secret",
        files: &[(
            "compose.yml",
            "services:\n  app:\n    image: ccci/base:bookworm\n    secrets: [db]\nsecrets:\n  db:\n    external: true\n    name: victim_example_com_db_password_v1\n",
        )],
        links: &[],
        expect: &["secrets.db.name", "object not owned by the app"],
    },
    Case {
        name: "other-apps-volume",
        files: &[(
            "compose.yml",
            "services:\n  app:\n    image: ccci/base:bookworm\n    volumes: [\"data:/data\"]\nvolumes:\n  data:\n    name: victim_example_com_data\n",
        )],
        links: &[],
        expect: &["volumes.data.name"],
    },
    Case {
        name: "host-network",
        files: &[(
            "compose.yml",
            "services:\n  app:\n    image: ccci/base:bookworm\n    networks: [hostnet]\nnetworks:\n  hostnet:\n    external: true\n    name: host\n",
        )],
        links: &[],
        expect: &["networks.hostnet.name"],
    },
    Case {
        name: "privileged-and-pid-host",
        files: &[(
            "compose.yml",
            "services:\n  app:\n    image: ccci/base:bookworm\n    privileged: true\n    pid: host\n",
        )],
        links: &[],
        expect: &["services.app.privileged", "services.app.pid"],
    },
    Case {
        name: "ownership-labels",
        files: &[(
            "compose.yml",
            "services:\n  app:\n    image: ccci/base:bookworm\n    deploy:\n      labels:\n        cc-ci.run: someone-elses-run\n",
        )],
        links: &[],
        expect: &["services.app.deploy.labels", "reserved label"],
    },
    Case {
        name: "secret-length-bomb",
        files: &[
            (
                ".env.sample",
                "TYPE=hostile\nDOMAIN=x\nSECRET_DB_VERSION=v1 # length=99999999999\n",
            ),
            (
                "compose.yml",
                "services:\n  app:\n    image: ccci/base:bookworm\n    secrets: [db]\nsecrets:\n  db:\n    external: true\n    name: ${STACK_NAME}_db_${SECRET_DB_VERSION}\n",
            ),
        ],
        links: &[],
        expect: &["SECRET_DB_VERSION", "length"],
    },
];

/// Cases about recipe-app files (`abra.sh`, secret modifiers) that `cc-ci stack render`
/// (compose files + an operator's env file) never reads.
pub const APP_ONLY: &[&str] = &["abra-sh-symlink", "secret-length-bomb"];

/// A case written to disk: the checkout and its canary.
pub struct Written {
    /// Holds everything (removed on drop).
    pub _tmp: tempfile::TempDir,
    /// The recipe checkout.
    pub checkout: PathBuf,
}

/// Writes `case` into a fresh temporary directory.
pub fn write(case: &Case) -> Written {
    let tmp = tempfile::tempdir().unwrap();
    let outside = tmp.path().join("outside");
    let checkout = tmp.path().join("checkout");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::create_dir_all(&checkout).unwrap();
    // Not YAML, not an env file: a parser quoting it would show it.
    let canary = format!("CANARY-{}-7d1c: [unbalanced {{ \"quote", case.name);
    let canary_path = outside.join("canary");
    std::fs::write(&canary_path, &canary).unwrap();
    let fill = |t: &str| {
        t.replace("{canary}", canary_path.to_str().unwrap())
            .replace("{outside}", outside.to_str().unwrap())
    };
    if !case.files.iter().any(|(p, _)| *p == ".env.sample")
        && !case.links.iter().any(|(p, _)| *p == ".env.sample")
    {
        std::fs::write(checkout.join(".env.sample"), SAMPLE).unwrap();
    }
    for (path, text) in case.files {
        std::fs::write(checkout.join(path), fill(text)).unwrap();
    }
    for (link, target) in case.links {
        std::os::unix::fs::symlink(fill(target), checkout.join(link)).unwrap();
    }
    Written {
        _tmp: tmp,
        checkout,
    }
}

/// The part of every canary that identifies it.
pub fn canary_marker(case: &Case) -> String {
    format!("CANARY-{}-7d1c", case.name)
}

/// Asserts `text` holds no trace of the case's canary.
pub fn assert_no_canary(case: &Case, text: &str, what: &str) {
    assert!(
        !text.contains(&canary_marker(case)),
        "{}: the canary reached {what}:\n{text}",
        case.name
    );
}

/// The case named `name`.
pub fn case(name: &str) -> &'static Case {
    CASES.iter().find(|c| c.name == name).unwrap()
}
