//! The gate layer in front of a user's own routes, from `lambda_http` and from axum: closed, it
//! answers 503 + Retry-After + problem+json naming the flag and never calls the route; open, it
//! calls the route with the read it decided with.

use axum::body::{to_bytes, Body as AxumBody};
use chrono::{DateTime, TimeDelta, Utc};
use lambda_http::{Body, Request, Response};
use lockstep::cache::CacheOptions;
use lockstep::memory::{MemoryHandle, MemorySource};
use lockstep::{FlagCache, FlagCatalog, FlagDecl, ManualClock, Overrides, Settings};
use lockstep_http::gate::UndeclaredFlag;
use lockstep_http::{Decided, GateLayer};
use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tower::{service_fn, Layer, ServiceExt};

const FLAG: &str = "isCheckoutV2Enabled";

fn document(enabled: bool) -> String {
    format!(
        r#"{{"{FLAG}": {enabled}, "lockstepMetadata": {{"lastModifiedTimestamp": "2026-11-21T10:00:00Z", "deploymentDurationSeconds": 0}}}}"#
    )
}

async fn cache(enabled: bool) -> (Arc<FlagCache>, MemoryHandle, ManualClock) {
    let now = DateTime::parse_from_rfc3339("2026-11-21T10:05:00Z")
        .unwrap()
        .with_timezone(&Utc);
    let clock = ManualClock::new(now);
    let (source, handle) = MemorySource::new();
    handle.publish("1", document(enabled));
    let options = CacheOptions {
        catalog: FlagCatalog::new(vec![FlagDecl::public(FLAG)]).unwrap(),
        overrides: Overrides::none(),
        settings: Settings::default(),
        clock: Arc::new(clock.clone()),
    };
    let cache = Arc::new(FlagCache::new(Box::new(source), options).await);
    (cache, handle, clock)
}

fn request() -> Request {
    http::Request::builder()
        .method("POST")
        .uri("/checkout")
        .body(Body::Text(r#"{"items": 1}"#.into()))
        .unwrap()
}

fn text(body: &Body) -> String {
    match body {
        Body::Text(text) => text.clone(),
        other => panic!("unexpected body {other:?}"),
    }
}

#[tokio::test]
async fn a_closed_gate_answers_503_problem_json_naming_the_flag_and_never_calls_the_route() {
    let (cache, _, _) = cache(false).await;
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    let route = service_fn(move |_request: Request| {
        counted.fetch_add(1, Ordering::SeqCst);
        async { Ok::<_, Infallible>(Response::new(Body::from("stored"))) }
    });

    let response = GateLayer::new(cache, FLAG)
        .unwrap()
        .layer(route)
        .oneshot(request())
        .await
        .unwrap();

    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["retry-after"], "45");
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let problem: serde_json::Value = serde_json::from_str(&text(response.body())).unwrap();
    assert_eq!(problem["flag"], FLAG);
    assert_eq!(calls.load(Ordering::SeqCst), 0, "the route was called");
}

#[tokio::test]
async fn an_open_gate_calls_the_route_with_the_read_it_decided_with() {
    let (cache, _, _) = cache(true).await;
    let handle = cache.handle(FLAG).unwrap();
    let route = service_fn(move |request: Request| async move {
        let Decided(view) = request
            .extensions()
            .get::<Decided>()
            .cloned()
            .expect("the read");
        let answer = format!("flag on: {}", view.enabled(handle));
        Ok::<_, Infallible>(Response::new(Body::from(answer)))
    });

    let response = GateLayer::new(cache, FLAG)
        .unwrap()
        .layer(route)
        .oneshot(request())
        .await
        .unwrap();

    assert_eq!(response.status(), 200);
    assert_eq!(text(response.body()), "flag on: true");
}

#[tokio::test]
async fn the_gate_follows_a_new_version_after_p_without_being_rebuilt() {
    let (cache, source, clock) = cache(true).await;
    let gated = GateLayer::new(cache, FLAG)
        .unwrap()
        .layer(service_fn(|_request: Request| async {
            Ok::<_, Infallible>(Response::new(Body::from("stored")))
        }));

    source.publish("2", document(false));
    let before_p = gated.clone().oneshot(request()).await.unwrap();
    clock.advance(TimeDelta::seconds(45));
    let after_p = gated.oneshot(request()).await.unwrap();

    assert_eq!(before_p.status(), 200, "a fresh read makes no call");
    assert_eq!(
        after_p.status(),
        503,
        "a read P after the fetch refreshes first"
    );
}

#[tokio::test]
async fn a_gate_on_an_undeclared_flag_is_refused_at_init() {
    let (cache, _, _) = cache(true).await;

    let refused = GateLayer::new(cache, "isTypoEnabled").unwrap_err();

    assert_eq!(refused, UndeclaredFlag("isTypoEnabled".into()));
}

#[tokio::test]
async fn the_same_gate_works_as_an_axum_route_layer() {
    async fn checkout(axum::Extension(Decided(view)): axum::Extension<Decided>) -> String {
        format!("served version {}", view.snapshot().version)
    }
    let app = |cache: Arc<FlagCache>| {
        axum::Router::new()
            .route("/checkout", axum::routing::post(checkout))
            .route_layer(GateLayer::new(cache, FLAG).unwrap())
    };
    let post = || {
        http::Request::builder()
            .method("POST")
            .uri("/checkout")
            .body(AxumBody::empty())
            .unwrap()
    };
    let (open, _, _) = cache(true).await;
    let (closed, _, _) = cache(false).await;

    let served = app(open).oneshot(post()).await.unwrap();
    let refused = app(closed).oneshot(post()).await.unwrap();

    assert_eq!(served.status(), 200);
    let body = to_bytes(served.into_body(), 1024).await.unwrap();
    assert_eq!(&body[..], b"served version 1");
    assert_eq!(refused.status(), 503);
    assert_eq!(refused.headers()["retry-after"], "45");
    let body = to_bytes(refused.into_body(), 4096).await.unwrap();
    let problem: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(problem["flag"], FLAG);
}

#[tokio::test]
async fn the_journey_header_makes_a_behind_instance_catch_up_or_say_how_long_to_wait() {
    // The instance fetched "off" at 10:05:00; "on" (stamped 10:05:01) is published right after.
    let (cache, source, clock) = cache_with(&document(false), "2026-11-21T10:05:00Z").await;
    let on = r#"{"isCheckoutV2Enabled": true, "lockstepMetadata": {"lastModifiedTimestamp": "2026-11-21T10:05:01Z", "deploymentDurationSeconds": 0}}"#;
    source.publish("2", on);
    let (issuer, _, _) = cache_with(on, "2026-11-21T10:05:05Z").await;
    let token = lockstep::journey::issue(
        issuer.read().await.snapshot(),
        issuer.read().await.now().timestamp_millis(),
    )
    .unwrap();
    let gated = GateLayer::new(cache, FLAG)
        .unwrap()
        .layer(service_fn(|_request: Request| async {
            Ok::<_, Infallible>(Response::new(Body::from("stored")))
        }));
    let with_token = || {
        let mut r = request();
        r.headers_mut()
            .insert(lockstep::journey::HEADER, token.parse().unwrap());
        r
    };

    // 6.5 s after its last call the session allows none: 503, Retry-After rounded up to 9 s.
    clock.advance(TimeDelta::milliseconds(6_500));
    let early = gated.clone().oneshot(with_token()).await.unwrap();
    assert_eq!(early.status(), 503);
    assert_eq!(early.headers()["retry-after"], "9");
    let problem: serde_json::Value = serde_json::from_str(&text(early.body())).unwrap();
    assert_eq!(problem["reason"], "behind");

    // Without the header the same instance is closed for P, as before.
    let blind = gated.clone().oneshot(request()).await.unwrap();
    assert_eq!(blind.headers()["retry-after"], "45");

    // Once the session allows a call, the header makes it poll before deciding.
    clock.advance(TimeDelta::milliseconds(8_500));
    let served = gated.oneshot(with_token()).await.unwrap();
    assert_eq!(served.status(), 200);
    assert_eq!(source.early_calls(), 0);
}

/// A cache on a source that behaves like an AppConfigData session with Q = 15 s.
async fn cache_with(content: &str, at: &str) -> (Arc<FlagCache>, MemoryHandle, ManualClock) {
    let clock = ManualClock::new(
        DateTime::parse_from_rfc3339(at)
            .unwrap()
            .with_timezone(&Utc),
    );
    let (source, handle) = MemorySource::new();
    handle.set_session_interval(Some(std::time::Duration::from_secs(15)));
    handle.publish("1", content);
    let options = CacheOptions {
        catalog: FlagCatalog::new(vec![FlagDecl::public(FLAG)]).unwrap(),
        overrides: Overrides::none(),
        settings: Settings::default(),
        clock: Arc::new(clock.clone()),
    };
    (
        Arc::new(FlagCache::new(Box::new(source), options).await),
        handle,
        clock,
    )
}
