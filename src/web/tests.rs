//! Dashboard handler tests without a socket: the whole router over a real sled store and run
//! logs in a temporary state directory, called with `oneshot`; hostile content stays inert.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use tower::ServiceExt;

use crate::api::{Object, RecipeSpec, RunPhase, TestRunSpec};
use crate::http::{AppState, WriteAuth};
use crate::metrics::Metrics;
use crate::runlog::RunLogs;
use crate::runlog::redact::Redactor;
use crate::store::{SledStore, Store};

async fn app() -> (Router, SledStore, RunLogs, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open(&dir.path().join("store")).unwrap();
    let logs = RunLogs::new(dir.path());
    let state = AppState::new(
        store.clone(),
        Arc::new(Metrics::new()),
        WriteAuth::token("t0k"),
    )
    .with_run_logs(logs.clone());
    let mut recipe = Object::new(
        "wiki",
        serde_json::from_value::<RecipeSpec>(
            serde_json::json!({"git": "https://u:hunter2@git.example.org/a/wiki.git"}),
        )
        .unwrap(),
    );
    recipe.metadata.labels.clear();
    store.create(recipe).await.unwrap();
    let run = Object::new(
        "wiki-pr1-c1",
        TestRunSpec {
            recipe: "wiki".into(),
            git: None,
            git_ref: "main".into(),
            pr: Some(1),
            source: Default::default(),
            stages: None,
            upgrade_from: None,
            cancel: false,
            keep_on_failure: None,
        },
    );
    let mut run = store.create(run).await.unwrap();
    run.status.phase = RunPhase::Running;
    run.status.message = "<img src=x onerror=alert(1)>".into();
    run.status.app = Some(crate::api::AppInfo {
        stack: "wiki_ci_test".into(),
        domain: "wiki-pr1.ci.test".into(),
        routing: Some(crate::api::RoutingMode::Proxy),
        version: None,
        previous_version: None,
    });
    store.replace_status(run).await.unwrap();
    let mut w = logs
        .writer("wiki-pr1-c1", "install", Redactor::new())
        .await
        .unwrap();
    w.line("<script>alert(1)</script> \u{1b}[31mred\u{1b}[0m")
        .await
        .unwrap();
    w.finish().await.unwrap();
    (crate::http::router(state), store, logs, dir)
}

async fn get(app: &Router, uri: &str) -> (StatusCode, String) {
    let resp = app
        .clone()
        .oneshot(Request::builder().uri(uri).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn pages_render_and_hostile_content_stays_inert() {
    let (app, _store, _logs, _dir) = app().await;
    let (status, html) = get(&app, "/runs/wiki-pr1-c1").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{html}"
    );
    assert!(html.contains("&lt;img src=x onerror=alert(1)&gt;"));
    assert!(!html.contains("<script>alert") && !html.contains("<img src=x"));
    assert!(html.contains("<span class=\"f1\">red</span>"));
    assert!(!html.contains("hunter2"));
    assert!(
        html.contains("<code>wiki-pr1.ci.test</code>")
            && html.contains("tests went through the proxy, by domain over TLS"),
        "the run page says how its tests reached the app: {html}"
    );
    for uri in [
        "/",
        "/runs",
        "/runs?phase=Running&pr=1",
        "/recipes/wiki",
        "/signin",
    ] {
        let (status, html) = get(&app, uri).await;
        assert_eq!(status, StatusCode::OK, "{uri}");
        assert!(!html.contains("hunter2"), "{uri}");
    }
    assert_eq!(get(&app, "/runs/nope").await.0, StatusCode::NOT_FOUND);
    assert_eq!(get(&app, "/recipes/nope").await.0, StatusCode::NOT_FOUND);
    let (status, raw) = get(&app, "/runs/wiki-pr1-c1/log/install").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        raw.contains("<script>alert(1)</script>"),
        "the raw log is the log"
    );
    assert_eq!(
        get(&app, "/runs/wiki-pr1-c1/log/..%2F..%2Fsecrets").await.0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        get(&app, "/runs/wiki-pr1-c1/artifacts/..%2Fsecrets.json")
            .await
            .0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn actions_need_a_session_and_its_csrf_token() {
    let (app, store, _logs, _dir) = app().await;
    let post = |uri: &str, cookie: Option<&str>, body: &str| {
        let mut b = Request::builder()
            .method("POST")
            .uri(uri)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        if let Some(c) = cookie {
            b = b.header(header::COOKIE, c);
        }
        b.body(Body::from(body.to_string())).unwrap()
    };
    let resp = app
        .clone()
        .oneshot(post("/runs/wiki-pr1-c1/cancel", None, "csrf=x"))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let resp = app
        .clone()
        .oneshot(post("/signin", None, "token=wrong"))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let resp = app
        .clone()
        .oneshot(post("/signin", None, "token=t0k"))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let set = resp.headers()[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .to_string();
    let cookie = set.split(';').next().unwrap().to_string();
    let resp = app
        .clone()
        .oneshot(post(
            "/runs/wiki-pr1-c1/cancel",
            Some(&cookie),
            "csrf=forged",
        ))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert!(
        !store
            .get::<TestRunSpec>("wiki-pr1-c1")
            .unwrap()
            .unwrap()
            .spec
            .cancel
    );
    // The CSRF token is in the run page's form.
    let page = app
        .clone()
        .oneshot(
            Request::builder()
                .uri("/runs/wiki-pr1-c1")
                .header(header::COOKIE, &cookie)
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    let html = String::from_utf8(
        page.into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec(),
    )
    .unwrap();
    let at = html.find("name=\"csrf\" value=\"").unwrap() + 19;
    let csrf = &html[at..at + 64];
    let resp = app
        .clone()
        .oneshot(post(
            "/runs/wiki-pr1-c1/cancel",
            Some(&cookie),
            &format!("csrf={csrf}"),
        ))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert!(
        store
            .get::<TestRunSpec>("wiki-pr1-c1")
            .unwrap()
            .unwrap()
            .spec
            .cancel
    );
}
