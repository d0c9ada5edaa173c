//! The function's handler on the `events/` files, with Lockstep's real cache over an in-memory
//! source in virtual time: no AWS, no server, no waiting.

use checkout_function::{catalog, handle, App, CHECKOUT_V2};
use chrono::{DateTime, TimeDelta, Utc};
use lambda_http::{Body, Request, Response};
use lockstep::cache::CacheOptions;
use lockstep::memory::MemorySource;
use lockstep::{FlagCache, ManualClock, Overrides, Settings};
use serde_json::Value;
use std::sync::Arc;

/// A configuration stamped at 10:00:00Z with Δ = 60 s: with the default P = 45 s and ε = 5 s,
/// every instance serves it from 10:01:50Z.
fn flags(checkout_v2: bool, loyalty: bool) -> String {
    format!(
        r#"{{"isCheckoutV2Enabled": {checkout_v2}, "applyLoyaltyDiscount": {loyalty},
  "lockstepMetadata": {{"lastModifiedTimestamp": "2026-11-21T10:00:00Z", "deploymentDurationSeconds": 60}}}}"#
    )
}

fn at(time: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(time)
        .expect("a valid time")
        .with_timezone(&Utc)
}

/// The cache at `now`, having fetched `content` (if any), and its clock to move time on.
async fn cache(
    content: Option<&str>,
    overrides: Overrides,
    now: &str,
) -> (Arc<FlagCache>, ManualClock) {
    let (source, publisher) = MemorySource::new();
    if let Some(content) = content {
        publisher.publish("1", content);
    }
    let clock = ManualClock::new(at(now));
    let options = CacheOptions {
        catalog: catalog(),
        overrides,
        settings: Settings::default(),
        clock: Arc::new(clock.clone()),
    };
    let cache = FlagCache::new(Box::new(source), options).await;
    (Arc::new(cache), clock)
}

/// The app at 10:05:00Z, long after the configuration became consistent.
async fn app(content: Option<&str>, overrides: Overrides) -> App {
    let (cache, _clock) = cache(content, overrides, "2026-11-21T10:05:00Z").await;
    App::new(cache).expect("the catalog declares the gate's flag")
}

fn checkout_event() -> Request {
    lambda_http::request::from_str(include_str!("../events/checkout.json"))
        .expect("a valid API Gateway event")
}

fn config_event() -> Request {
    lambda_http::request::from_str(include_str!("../events/config.json"))
        .expect("a valid API Gateway event")
}

fn request(method: &str, path: &str) -> Request {
    lambda_http::http::Request::builder()
        .method(method)
        .uri(path)
        .body(Body::Empty)
        .expect("a valid request")
}

fn json(response: &Response<Body>) -> Value {
    match response.body() {
        Body::Text(text) => serde_json::from_str(text).expect("a JSON body"),
        other => panic!("unexpected body {other:?}"),
    }
}

fn assert_gate_closed(response: &Response<Body>) {
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["retry-after"], "45");
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    assert_eq!(json(response)["flag"], CHECKOUT_V2);
}

#[tokio::test]
async fn checkout_runs_the_route_while_its_flag_is_on() {
    let app = app(Some(&flags(true, false)), Overrides::none()).await;

    let response = handle(&app, checkout_event()).await;

    assert_eq!(response.status(), 201);
    assert_eq!(json(&response)["checkout"], "v2");
    assert_eq!(app.orders_taken(), 1);
}

#[tokio::test]
async fn checkout_answers_503_naming_the_flag_without_running_the_route_while_its_flag_is_off() {
    let app = app(Some(&flags(false, true)), Overrides::none()).await;

    let response = handle(&app, checkout_event()).await;

    assert_gate_closed(&response);
    assert_eq!(app.orders_taken(), 0);
}

#[tokio::test]
async fn checkout_stays_closed_when_no_configuration_was_ever_fetched() {
    let app = app(None, Overrides::none()).await;

    let response = handle(&app, checkout_event()).await;

    assert_gate_closed(&response);
    assert_eq!(app.orders_taken(), 0);
}

#[tokio::test]
async fn a_force_override_closes_checkout_even_when_the_configuration_has_it_on() {
    let forced_off = Overrides::none().force(CHECKOUT_V2, false);
    let app = app(Some(&flags(true, false)), forced_off).await;

    let response = handle(&app, checkout_event()).await;

    assert_gate_closed(&response);
    assert_eq!(app.orders_taken(), 0);
}

#[tokio::test]
async fn the_route_decides_its_internal_flag_with_the_read_the_gate_made() {
    let off = app(Some(&flags(true, false)), Overrides::none()).await;
    let on = app(Some(&flags(true, true)), Overrides::none()).await;

    let without = json(&handle(&off, checkout_event()).await);
    let with = json(&handle(&on, checkout_event()).await);

    assert_eq!(without["loyaltyDiscount"], false);
    assert_eq!(with["loyaltyDiscount"], true);
}

#[tokio::test]
async fn the_local_flags_file_opens_checkout() {
    let local = include_str!("../local/lockstep:local:flags.json");
    let app = app(Some(local), Overrides::none()).await;

    let response = handle(&app, checkout_event()).await;

    assert_eq!(response.status(), 201);
    assert_eq!(json(&response)["loyaltyDiscount"], false);
}

#[tokio::test]
async fn config_becomes_consistent_at_consistent_at_and_never_shows_the_internal_flag() {
    let (cache, clock) = cache(
        Some(&flags(true, true)),
        Overrides::none(),
        "2026-11-21T10:01:49Z",
    )
    .await;
    let app = App::new(cache).expect("the catalog declares the gate's flag");

    let before = json(&handle(&app, config_event()).await);
    clock.advance(TimeDelta::seconds(1));
    let from = json(&handle(&app, config_event()).await);

    assert_eq!(before["isCheckoutV2Enabled"], true);
    assert_eq!(before["isBackendConsistent"], false);
    assert_eq!(before["consistentAt"], "2026-11-21T10:01:50Z");
    assert_eq!(from["serverTime"], "2026-11-21T10:01:50Z");
    assert_eq!(from["isBackendConsistent"], true);
    assert_eq!(from["flags"][CHECKOUT_V2]["consistent"], true);
    assert_eq!(from.get("applyLoyaltyDiscount"), None);
    assert_eq!(from["flags"].get("applyLoyaltyDiscount"), None);
}

#[tokio::test]
async fn config_answers_the_fields_the_guide_lists() {
    let app = app(Some(&flags(true, false)), Overrides::none()).await;

    let response = handle(&app, config_event()).await;
    let body = json(&response);
    let fields = |value: &Value| -> Vec<String> {
        let mut names: Vec<String> = value
            .as_object()
            .expect("an object")
            .keys()
            .cloned()
            .collect();
        names.sort();
        names
    };

    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    assert_eq!(
        fields(&body),
        [
            "catchUpIntervalSeconds",
            "configurationVersion",
            "consistentAt",
            "degraded",
            "flags",
            "isBackendConsistent",
            "isCheckoutV2Enabled",
            "journeyOpensAt",
            "journeyToken",
            "lastModifiedTimestamp",
            "pollIntervalSeconds",
            "serverTime",
        ]
    );
    assert_eq!(
        fields(&body["flags"][CHECKOUT_V2]),
        [
            "consistent",
            "consistentAt",
            "forced",
            "journeyOpensAt",
            "value"
        ]
    );
}

#[tokio::test]
async fn reading_a_flag_by_handle_gives_its_value_and_consistency() {
    let (cache, clock) = cache(
        Some(&flags(true, false)),
        Overrides::none(),
        "2026-11-21T10:01:00Z",
    )
    .await;

    let checkout_v2 = cache.handle(CHECKOUT_V2).expect("a declared flag");
    let early = cache
        .flag(checkout_v2)
        .await
        .expect("a handle of this cache");
    clock.set(at("2026-11-21T10:01:50Z"));
    let settled = cache
        .flag(checkout_v2)
        .await
        .expect("a handle of this cache");

    assert!(early.value);
    assert!(!early.consistent);
    assert_eq!(early.consistent_at, Some(at("2026-11-21T10:01:50Z")));
    assert!(!early.forced);
    assert!(settled.consistent);
}

#[tokio::test]
async fn other_methods_on_checkout_answer_405_and_unknown_paths_404() {
    let app = app(Some(&flags(true, false)), Overrides::none()).await;

    let get = handle(&app, request("GET", "/checkout")).await;
    let unknown = handle(&app, request("POST", "/nowhere")).await;

    assert_eq!(get.status(), 405);
    assert_eq!(get.headers()["allow"], "POST");
    assert_eq!(unknown.status(), 404);
    assert_eq!(app.orders_taken(), 0);
}
