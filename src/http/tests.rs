//! Handler tests without a socket: the real router over a real sled store, called with `oneshot`.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

use super::*;
use crate::store::SledStore;

const TOKEN: &str = "unit-token";

fn app() -> (Router, AppState<SledStore>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open(&dir.path().join("store")).unwrap();
    let state = AppState::new(store, Arc::new(Metrics::new()), WriteAuth::token(TOKEN));
    (router(state.clone()), state, dir)
}

async fn call(app: &Router, req: Request<Body>) -> (StatusCode, Value) {
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let value = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    (status, value)
}

fn write(method: &str, uri: &str, body: &Value) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(uri)
        .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap()
}

fn read(uri: &str) -> Request<Body> {
    Request::builder().uri(uri).body(Body::empty()).unwrap()
}

fn recipe(name: &str) -> Value {
    json!({"kind":"Recipe","metadata":{"name":name},"spec":{"git":"https://git.coopcloud.tech/coop-cloud/custom-html.git"}})
}

#[tokio::test]
async fn readyz_answers_503_until_marked_ready() {
    let (app, state, _dir) = app();
    assert_eq!(
        call(&app, read("/readyz")).await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
    state.set_ready(true);
    assert_eq!(
        call(&app, read("/readyz")).await,
        (StatusCode::OK, Value::String("ready".into()))
    );
    assert_eq!(call(&app, read("/healthz")).await.0, StatusCode::OK);
}

#[tokio::test]
async fn created_records_are_listed_and_read_back() {
    let (app, _state, _dir) = app();
    let (status, created) = call(&app, write("POST", "/api/v1/recipes", &recipe("b"))).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["metadata"]["generation"], 1);
    call(&app, write("POST", "/api/v1/recipes", &recipe("a"))).await;
    let (status, list) = call(&app, read("/api/v1/recipes")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["kind"], "RecipeList");
    let names: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a", "b"]);
    let rv: u64 = list["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        rv >= created["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap()
    );
    let (status, got) = call(&app, read("/api/v1/recipes/b")).await;
    assert_eq!((status, &got), (StatusCode::OK, &created));
    let (status, err) = call(&app, read("/api/v1/recipes/zzz")).await;
    assert_eq!(
        (status, err["reason"].as_str()),
        (StatusCode::NOT_FOUND, Some("NotFound"))
    );
}

#[tokio::test]
async fn writes_without_the_token_are_unauthorized() {
    let (app, _state, _dir) = app();
    let req = Request::builder()
        .method("POST")
        .uri("/api/v1/recipes")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(recipe("a").to_string()))
        .unwrap();
    let (status, err) = call(&app, req).await;
    assert_eq!(
        (status, err["reason"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("Unauthorized"))
    );
    assert_eq!(
        call(&app, read("/api/v1/recipes/a")).await.0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn non_json_and_oversized_bodies_are_refused() {
    let (app, _state, _dir) = app();
    let mut req = write("POST", "/api/v1/recipes", &recipe("a"));
    req.headers_mut()
        .insert(header::CONTENT_TYPE, "application/yaml".parse().unwrap());
    let (status, err) = call(&app, req).await;
    assert_eq!(
        (status, err["reason"].as_str()),
        (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Some("UnsupportedMediaType")
        )
    );
    let mut big = recipe("a");
    big["metadata"]["annotations"] = json!({"blob": "x".repeat(DEFAULT_BODY_LIMIT)});
    let (status, err) = call(&app, write("POST", "/api/v1/recipes", &big)).await;
    assert_eq!(
        (status, err["reason"].as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, Some("PayloadTooLarge"))
    );
}

#[tokio::test]
async fn a_kind_from_another_path_is_invalid() {
    let (app, _state, _dir) = app();
    let (status, err) = call(&app, write("POST", "/api/v1/testruns", &recipe("a"))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(err["details"]["causes"][0]["field"], "kind");
}

#[tokio::test]
async fn metrics_are_prometheus_text() {
    let (app, state, _dir) = app();
    let counter = prometheus::IntCounter::new("ccci_unit_test_total", "a test counter").unwrap();
    state
        .metrics
        .registry
        .register(Box::new(counter.clone()))
        .unwrap();
    counter.inc();
    let (status, body) = call(&app, read("/metrics")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        body.as_str().unwrap().contains("ccci_unit_test_total 1"),
        "{body}"
    );
}

#[tokio::test]
async fn resuming_from_a_trimmed_version_is_an_expired_error_event() {
    let dir = tempfile::tempdir().unwrap();
    let options = crate::store::StoreOptions {
        history_limit: 2,
        ..Default::default()
    };
    let store = SledStore::open_with(&dir.path().join("store"), options).unwrap();
    let state = AppState::new(store.clone(), Arc::new(Metrics::new()), WriteAuth::Disabled);
    let app = router(state);
    for i in 0..10 {
        let (status, _) = call(
            &app,
            write("POST", "/api/v1/recipes", &recipe(&format!("r{i}"))),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED);
    }
    store.compact_history().unwrap();
    // The stream ends after the error, so the whole body can be read.
    let resp = app
        .clone()
        .oneshot(read("/api/v1/recipes?watch=true&resourceVersion=1"))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8_lossy(&body);
    let data = text
        .split("\n\n")
        .find(|e| e.contains("event: error"))
        .and_then(|e| e.lines().find_map(|l| l.strip_prefix("data: ")))
        .unwrap_or_else(|| panic!("no error event in {text:?}"));
    let err: Value = serde_json::from_str(data).unwrap();
    assert_eq!(
        (err["code"].as_u64(), err["reason"].as_str()),
        (Some(410), Some("Expired"))
    );
    assert!(!text.contains("event: apply"), "{text}");
}

#[tokio::test]
async fn a_method_a_path_does_not_answer_is_a_json_405() {
    let (app, _state, _dir) = app();
    for (method, uri) in [("PATCH", "/api/v1/testruns"), ("POST", "/healthz")] {
        let req = Request::builder()
            .method(method)
            .uri(uri)
            .body(Body::empty())
            .unwrap();
        let (status, err) = call(&app, req).await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {uri}");
        assert_eq!(err["reason"], "MethodNotAllowed", "{method} {uri}: {err}");
        assert!(err["message"].as_str().unwrap().contains(method), "{err}");
    }
}

#[tokio::test]
async fn a_watch_from_a_future_version_is_a_bad_request_not_expired() {
    let (app, _state, _dir) = app();
    call(&app, write("POST", "/api/v1/recipes", &recipe("a"))).await;
    let (status, err) = call(
        &app,
        read("/api/v1/recipes?watch=true&resourceVersion=999999"),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");
    let message = err["message"].as_str().unwrap();
    assert!(message.contains("newer than"), "{message}");
    assert!(!message.contains("too old"), "{message}");
}

#[tokio::test]
async fn a_bad_run_name_in_a_log_path_is_named_as_a_run_name() {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open(&dir.path().join("store")).unwrap();
    let state = AppState::new(store, Arc::new(Metrics::new()), WriteAuth::Disabled)
        .with_run_logs(RunLogs::new(dir.path()));
    let app = router(state);
    for uri in [
        "/api/v1/testruns/BAD_NAME/logs",
        "/api/v1/testruns/BAD_NAME/logs/run",
    ] {
        let (status, err) = call(&app, read(uri)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}: {err}");
        let message = err["message"].as_str().unwrap();
        assert!(message.contains("not a valid TestRun name"), "{message}");
        assert!(!message.contains("stream"), "{message}");
    }
}

#[tokio::test]
async fn a_write_with_a_non_numeric_resource_version_is_invalid_not_a_conflict() {
    let (app, _state, _dir) = app();
    call(&app, write("POST", "/api/v1/recipes", &recipe("a"))).await;
    let mut body = recipe("a");
    body["metadata"]["resourceVersion"] = json!("abc");
    let (status, err) = call(&app, write("PUT", "/api/v1/recipes/a", &body)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{err}");
    assert_eq!(
        err["details"]["causes"][0]["field"],
        "metadata.resourceVersion"
    );
    let (status, err) = call(
        &app,
        write(
            "POST",
            "/api/v1/testruns",
            &json!({"metadata": {"name": "r"}}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(err["details"]["causes"][0]["field"], "spec", "{err}");
}

#[tokio::test]
async fn metrics_show_the_store_size_and_records_of_every_kind() {
    let (app, _state, _dir) = app();
    call(&app, write("POST", "/api/v1/recipes", &recipe("a"))).await;
    let proxy = json!({"metadata":{"name":"traefik"},"spec":{"git":"https://git.example.org/traefik.git",
        "version":"1.0.0+1","domain":"proxy.example.org"}});
    let (status, created) = call(&app, write("POST", "/api/v1/proxydeployments", &proxy)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let (_, body) = call(&app, read("/metrics")).await;
    let text = body.as_str().unwrap();
    let gauge = |name: &str| -> i64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {text}"))
    };
    assert!(gauge("ccci_store_size_bytes ") > 0, "{text}");
    assert_eq!(gauge("ccci_records{kind=\"ProxyDeployment\"} "), 1);
    assert_eq!(gauge("ccci_records{kind=\"AppDeployment\"} "), 0);
    assert_eq!(gauge("ccci_records{kind=\"Recipe\"} "), 1);
}
