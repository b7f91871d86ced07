//! The records API over real HTTP against a real `cc-ci serve` on a real sled store: CRUD per
//! kind, concurrency control, finalizers, validation, auth and limits.

use std::path::Path;

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{Server, TOKEN};

/// A small JSON client of one server.
pub struct Client {
    http: reqwest::Client,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    token: Option<String>,
}

impl Client {
    /// A client sending the test token.
    pub fn of(server: &Server) -> Client {
        Client {
            http: reqwest::Client::new(),
            url: server.url.clone(),
            token: Some(TOKEN.to_string()),
        }
    }

    /// The same server with another token (or none).
    pub fn with_token(&self, token: Option<&str>) -> Client {
        Client {
            http: self.http.clone(),
            url: self.url.clone(),
            token: token.map(str::to_string),
        }
    }

    /// Sends a request; answers the status and the body (JSON, or a JSON string of the text).
    pub async fn send(&self, method: Method, path: &str, body: Option<&Value>) -> (u16, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.url));
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        let text = resp.text().await.expect("body");
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, value)
    }

    /// `GET`.
    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.send(Method::GET, path, None).await
    }

    /// `POST` JSON.
    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        self.send(Method::POST, path, Some(body)).await
    }

    /// `PUT` JSON.
    pub async fn put(&self, path: &str, body: &Value) -> (u16, Value) {
        self.send(Method::PUT, path, Some(body)).await
    }

    /// `DELETE`.
    pub async fn delete(&self, path: &str) -> (u16, Value) {
        self.send(Method::DELETE, path, None).await
    }
}

/// Read-modify-write of one record, retried on `409 Conflict` (controllers write status
/// concurrently, which bumps the version). Answers the final status and body.
pub async fn update(api: &Client, path: &str, edit: impl Fn(&mut Value)) -> (u16, Value) {
    for _ in 0..20 {
        let (status, mut obj) = api.get(path).await;
        if status != 200 {
            return (status, obj);
        }
        edit(&mut obj);
        let (status, body) = api.put(path, &obj).await;
        if status != 409 {
            return (status, body);
        }
    }
    panic!("{path}: still conflicting after 20 attempts");
}

/// A Recipe manifest.
pub fn recipe(name: &str) -> Value {
    json!({
        "apiVersion": "cc-ci/v1alpha1",
        "kind": "Recipe",
        "metadata": {"name": name, "labels": {"test": "api"}},
        "spec": {"git": format!("https://git.coopcloud.tech/coop-cloud/{name}.git")},
    })
}

fn examples() -> Vec<(String, Value)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut out = Vec::new();
    let entries = std::fs::read_dir(&dir)
        .unwrap()
        .chain(std::fs::read_dir(dir.join("production")).unwrap());
    for entry in entries {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) == Some("yaml") {
            let text = std::fs::read_to_string(&path).unwrap();
            let doc: Value = serde_saphyr::from_str(&text).unwrap();
            out.push((path.display().to_string(), doc));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn plural_of(doc: &Value) -> &'static str {
    cc_ci::api::Kind::parse(doc["kind"].as_str().unwrap())
        .unwrap()
        .plural()
}

fn rv(obj: &Value) -> u64 {
    obj["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn every_example_goes_through_create_read_update_and_delete() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_in(dir.path(), &[]);
    let api = Client::of(&server);
    let examples = examples();
    assert_eq!(examples.len(), 4, "one example per kind");
    for (file, doc) in examples {
        let plural = plural_of(&doc);
        let name = doc["metadata"]["name"].as_str().unwrap().to_string();
        let one = format!("/api/v1/{plural}/{name}");
        let (status, created) = api.post(&format!("/api/v1/{plural}"), &doc).await;
        assert_eq!(status, 201, "{file}: {created}");
        assert_eq!(
            created["spec"],
            doc["spec"].clone().merge_defaults(&created["spec"])
        );
        assert_eq!(created["metadata"]["generation"], 1);
        let (status, again) = api.post(&format!("/api/v1/{plural}"), &doc).await;
        assert_eq!(
            (status, again["reason"].as_str()),
            (409, Some("AlreadyExists"))
        );

        let (status, got) = api.get(&one).await;
        assert_eq!(status, 200);
        assert_eq!(
            (&got["spec"], &got["metadata"]["uid"]),
            (&created["spec"], &created["metadata"]["uid"])
        );
        let (_, list) = api.get(&format!("/api/v1/{plural}")).await;
        let items = list["items"].as_array().unwrap();
        assert_eq!(items.len(), 1, "{file}: {list}");
        assert_eq!(items[0]["metadata"]["uid"], created["metadata"]["uid"]);

        let (status, replaced) = update(&api, &one, |o| {
            o["metadata"]["labels"]["edited"] = json!("yes");
        })
        .await;
        assert_eq!(status, 200, "{file}: {replaced}");
        assert_eq!(replaced["metadata"]["labels"]["edited"], "yes");
        assert_eq!(replaced["metadata"]["generation"], 1, "labels are not spec");
        assert!(rv(&replaced) > rv(&created));

        let (status, gone) = api.delete(&one).await;
        assert_eq!(
            (status, gone["kind"].as_str()),
            (200, Some("Status")),
            "{file}"
        );
        assert_eq!(api.get(&one).await.0, 404);
        assert_eq!(api.delete(&one).await.0, 404);
    }
}

/// Comparing a manifest with what the server stored: the server adds defaults, so compare only
/// the keys the manifest sets.
trait MergeDefaults {
    fn merge_defaults(self, stored: &Value) -> Value;
}

impl MergeDefaults for Value {
    fn merge_defaults(self, stored: &Value) -> Value {
        match (self, stored) {
            (Value::Object(mut given), Value::Object(stored)) => {
                for (k, v) in stored {
                    let merged = match given.remove(k) {
                        Some(g) => g.merge_defaults(v),
                        None => v.clone(),
                    };
                    given.insert(k.clone(), merged);
                }
                Value::Object(given)
            }
            (given, _) => given,
        }
    }
}

#[tokio::test]
async fn stale_resource_version_is_a_conflict() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_in(dir.path(), &[]);
    let api = Client::of(&server);
    let (_, v1) = api.post("/api/v1/recipes", &recipe("hedgedoc")).await;
    let (status, v2) = update(&api, "/api/v1/recipes/hedgedoc", |o| {
        o["spec"]["defaultBranch"] = json!("develop");
    })
    .await;
    assert_eq!(status, 200, "{v2}");
    assert_eq!(v2["metadata"]["generation"], 2);
    // v1's resourceVersion is stale now.
    let mut stale = v1.clone();
    stale["spec"]["defaultBranch"] = json!("stale");
    let (status, err) = api.put("/api/v1/recipes/hedgedoc", &stale).await;
    assert_eq!(
        (status, err["reason"].as_str()),
        (409, Some("Conflict")),
        "{err}"
    );
    let (status, err) = api.put("/api/v1/recipes/hedgedoc/status", &stale).await;
    assert_eq!(
        (status, err["reason"].as_str()),
        (409, Some("Conflict")),
        "{err}"
    );
    // Without a resourceVersion the write is unconditional.
    stale["metadata"]["resourceVersion"] = json!("");
    assert_eq!(api.put("/api/v1/recipes/hedgedoc", &stale).await.0, 200);
    let (_, now) = api.get("/api/v1/recipes/hedgedoc").await;
    assert_eq!(now["spec"]["defaultBranch"], "stale");
    assert_eq!(
        api.put("/api/v1/recipes/absent", &recipe("absent")).await.0,
        404
    );
}

#[tokio::test]
async fn delete_with_finalizers_waits_until_they_are_removed() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_in(dir.path(), &[]);
    let api = Client::of(&server);
    let mut doc = recipe("traefik");
    doc["metadata"]["finalizers"] = json!(["cc-ci.coopcloud.tech/teardown"]);
    assert_eq!(api.post("/api/v1/recipes", &doc).await.0, 201);
    let (status, pending) = api.delete("/api/v1/recipes/traefik").await;
    assert_eq!(status, 200);
    assert_eq!(pending["kind"], "Recipe", "{pending}");
    assert!(pending["metadata"]["deletionTimestamp"].is_string());
    assert_eq!(
        api.get("/api/v1/recipes/traefik").await.0,
        200,
        "a record with finalizers stays until they are removed"
    );
    let (status, _) = update(&api, "/api/v1/recipes/traefik", |o| {
        o["metadata"]["finalizers"] = json!([]);
    })
    .await;
    assert_eq!(status, 200);
    assert_eq!(api.get("/api/v1/recipes/traefik").await.0, 404);
}

#[tokio::test]
async fn status_writes_do_not_bump_generation() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_in(dir.path(), &[]);
    let api = Client::of(&server);
    let (_, created) = api.post("/api/v1/recipes", &recipe("custom-html")).await;
    let path = "/api/v1/recipes/custom-html/status";
    let mut answer = (409, Value::Null);
    for _ in 0..20 {
        let (_, mut fresh) = api.get("/api/v1/recipes/custom-html").await;
        fresh["status"] = json!({"observedGeneration": 1, "badge": "failing", "level": 2});
        answer = api.put(path, &fresh).await;
        if answer.0 != 409 {
            break;
        }
    }
    let (status, stored) = answer;
    assert_eq!(status, 200, "{stored}");
    assert_eq!(stored["metadata"]["generation"], 1);
    assert_eq!(stored["status"]["badge"], "failing");
    assert!(rv(&stored) > rv(&created));
    // Status sent with a spec write is ignored; spec changes bump generation.
    let (status, after) = update(&api, "/api/v1/recipes/custom-html", |o| {
        o["spec"]["suspended"] = json!(true);
        o["status"]["badge"] = json!("passing");
    })
    .await;
    assert_eq!(status, 200);
    assert_eq!(after["metadata"]["generation"], 2);
    assert_ne!(after["status"]["badge"], "passing");
}

#[tokio::test]
async fn invalid_manifests_are_rejected_with_the_field_path() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_in(dir.path(), &[]);
    let api = Client::of(&server);
    let cases = [
        (
            json!({"kind":"Recipe","metadata":{"name":"a"},"spec":{"git":"x","stages":["install","foo"]}}),
            "spec.stages[1]",
            "backup-restore",
        ),
        (
            json!({"kind":"Recipe","metadata":{"name":"a"},"spec":{"git":"x","forge":"o/n"}}),
            "spec.forge",
            "unknown field",
        ),
        (
            json!({"kind":"Recipe","metadata":{"name":"Not_A_Name"},"spec":{"git":"x"}}),
            "metadata.name",
            "not a valid name",
        ),
        (
            json!({"kind":"Recipe","metadata":{"name":"a"},"spec":{"git":"x","timeouts":{"stageSeconds":"ten"}}}),
            "spec.timeouts.stageSeconds",
            "invalid type",
        ),
        (
            json!({"kind":"TestRun","metadata":{"name":"a"},"spec":{"git":"x"}}),
            "kind",
            "does not match",
        ),
    ];
    for (body, field, words) in cases {
        let (status, err) = api.post("/api/v1/recipes", &body).await;
        assert_eq!(
            (status, err["reason"].as_str()),
            (422, Some("Invalid")),
            "{err}"
        );
        let causes = err["details"]["causes"].as_array().unwrap();
        assert!(
            causes
                .iter()
                .any(|c| c["field"] == field && c["message"].as_str().unwrap().contains(words)),
            "expected a cause at {field} mentioning {words:?}: {err}"
        );
        assert!(err["message"].as_str().unwrap().contains(field), "{err}");
    }
    // Several problems are reported together.
    let body = json!({"kind":"ProxyDeployment","metadata":{"name":"traefik"},
        "spec":{"git":"","version":"","domain":"not a domain","wildcardCertFile":"/c"}});
    let (status, err) = api.post("/api/v1/proxydeployments", &body).await;
    assert_eq!(status, 422);
    let fields: Vec<&str> = err["details"]["causes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        [
            "spec.git",
            "spec.version",
            "spec.domain",
            "spec.wildcardKeyFile"
        ]
    );
    assert_eq!(api.get("/api/v1/recipes").await.1["items"], json!([]));
}

#[tokio::test]
async fn writes_need_the_token_while_reads_do_not() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_in(dir.path(), &[]);
    let api = Client::of(&server);
    assert_eq!(api.post("/api/v1/recipes", &recipe("kept")).await.0, 201);
    for anonymous in [api.with_token(None), api.with_token(Some("wrong-token"))] {
        let (status, err) = anonymous.post("/api/v1/recipes", &recipe("new")).await;
        assert_eq!(
            (status, err["reason"].as_str()),
            (401, Some("Unauthorized"))
        );
        assert_eq!(
            anonymous
                .put("/api/v1/recipes/kept", &recipe("kept"))
                .await
                .0,
            401
        );
        assert_eq!(
            anonymous
                .put("/api/v1/recipes/kept/status", &recipe("kept"))
                .await
                .0,
            401
        );
        assert_eq!(anonymous.delete("/api/v1/recipes/kept").await.0, 401);
        assert_eq!(anonymous.get("/api/v1/recipes/kept").await.0, 200);
        assert_eq!(anonymous.get("/api/v1/recipes").await.0, 200);
    }
    assert_eq!(api.get("/api/v1/recipes/new").await.0, 404);
}

#[tokio::test]
async fn oversized_and_non_json_bodies_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_in(dir.path(), &[]);
    let api = Client::of(&server);
    let mut big = recipe("big");
    big["metadata"]["annotations"] = json!({"blob": "x".repeat(2 * 1024 * 1024)});
    let (status, err) = api.post("/api/v1/recipes", &big).await;
    assert_eq!(
        (status, err["reason"].as_str()),
        (413, Some("PayloadTooLarge"))
    );
    let resp = reqwest::Client::new()
        .post(format!("{}/api/v1/recipes", api.url))
        .bearer_auth(TOKEN)
        .header("content-type", "application/x-yaml")
        .body("kind: Recipe\n")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 415);
    let (status, err) = api
        .send(
            Method::POST,
            "/api/v1/recipes",
            Some(&json!("just a string")),
        )
        .await;
    assert_eq!((status, err["reason"].as_str()), (400, Some("BadRequest")));
    assert_eq!(api.get("/api/v1/recipes/big").await.0, 404);
}

#[tokio::test]
async fn lists_filter_by_label_selector() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_in(dir.path(), &[]);
    let api = Client::of(&server);
    for (name, tier) in [("a", "web"), ("b", "db"), ("c", "web")] {
        let mut doc = recipe(name);
        doc["metadata"]["labels"]["tier"] = json!(tier);
        assert_eq!(api.post("/api/v1/recipes", &doc).await.0, 201);
    }
    let names = |list: &Value| -> Vec<String> {
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["metadata"]["name"].as_str().unwrap().to_string())
            .collect()
    };
    let (_, web) = api.get("/api/v1/recipes?labelSelector=tier%3Dweb").await;
    assert_eq!(names(&web), ["a", "c"]);
    let (_, not_web) = api
        .get("/api/v1/recipes?labelSelector=tier!%3Dweb,test")
        .await;
    assert_eq!(names(&not_web), ["b"]);
    let (status, err) = api.get("/api/v1/recipes?labelSelector=a%20b").await;
    assert_eq!((status, err["reason"].as_str()), (400, Some("BadRequest")));
}

#[tokio::test]
async fn operational_endpoints_answer() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_in(dir.path(), &[]);
    let api = Client::of(&server);
    assert_eq!(api.get("/healthz").await, (200, json!("ok")));
    assert_eq!(api.get("/readyz").await, (200, json!("ready")));
    assert_eq!(
        api.get("/api/v1/version").await,
        (200, json!({"version": env!("CARGO_PKG_VERSION")}))
    );
    let resp = reqwest::get(format!("{}/metrics", api.url)).await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let ctype = resp.headers()["content-type"].to_str().unwrap().to_string();
    assert!(ctype.starts_with("text/plain"), "{ctype}");
    let text = resp.text().await.unwrap();
    assert!(
        text.lines()
            .all(|l| l.is_empty() || l.starts_with('#') || l.contains(' ')),
        "not Prometheus text: {text}"
    );
    assert!(
        text.contains("# TYPE ccci_http_requests_total counter"),
        "{text}"
    );
    let version_line = text
        .lines()
        .find(|l| {
            l.starts_with("ccci_http_requests_total{")
                && l.contains(r#"route="/api/v1/version""#)
                && l.contains(r#"code="200""#)
        })
        .unwrap_or_else(|| panic!("no counter for the version request: {text}"));
    assert!(version_line.ends_with(" 1"), "{version_line}");
    let (status, err) = api.get("/api/v1/widgets").await;
    assert_eq!((status, err["reason"].as_str()), (404, Some("NotFound")));
}
