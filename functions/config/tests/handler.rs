//! The config function on the `events/` fixtures, with the real cache over an in-memory source.

use chrono::{DateTime, Utc};
use lambda_http::{Body, Response};
use lockstep::cache::CacheOptions;
use lockstep::memory::MemorySource;
use lockstep::{FlagCache, ManualClock, Overrides, Settings};
use serde_json::Value;
use std::sync::Arc;

fn event(json: &str) -> lambda_http::Request {
    lambda_http::request::from_str(json).expect("a valid API Gateway event")
}

async fn cache(content: Option<&str>, overrides: Overrides, now: &str) -> FlagCache {
    let (source, handle) = MemorySource::new();
    if let Some(content) = content {
        handle.publish("7", content);
    }
    let clock = ManualClock::new(
        DateTime::parse_from_rfc3339(now)
            .unwrap()
            .with_timezone(&Utc),
    );
    let options = CacheOptions {
        catalog: lockstep_sample::product::catalog(),
        overrides,
        settings: Settings::default(),
        clock: Arc::new(clock),
    };
    FlagCache::new(Box::new(source), options).await
}

fn json(response: &Response<Body>) -> Value {
    match response.body() {
        Body::Text(text) => serde_json::from_str(text).unwrap(),
        other => panic!("unexpected body {other:?}"),
    }
}

const ENABLED: &str = r#"{"isFeatureXEnabled": true, "useSubmissionsGsi": true,
  "lockstepMetadata": {"lastModifiedTimestamp": "2026-11-21T10:00:00Z", "deploymentDurationSeconds": 60}}"#;

#[tokio::test]
async fn get_config_shows_public_flags_consistency_version_stamp_and_p() {
    let cache = cache(Some(ENABLED), Overrides::none(), "2026-11-21T10:05:00Z").await;

    let response = config::handle(
        &cache,
        &event(include_str!("../../../events/config-get.json")),
    )
    .await;
    let body = json(&response);

    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    assert_eq!(body["isFeatureXEnabled"], true);
    assert_eq!(body["isBackendConsistent"], true);
    assert_eq!(body["consistentAt"], "2026-11-21T10:01:50Z");
    assert_eq!(body["flags"]["isFeatureXEnabled"]["value"], true);
    assert_eq!(body["flags"]["isFeatureXEnabled"]["consistent"], true);
    assert_eq!(
        body["flags"]["isFeatureXEnabled"]["consistentAt"],
        "2026-11-21T10:01:50Z"
    );
    assert_eq!(body["flags"]["isFeatureXEnabled"]["forced"], false);
    assert_eq!(body["configurationVersion"], "7");
    assert_eq!(body["lastModifiedTimestamp"], "2026-11-21T10:00:00Z");
    assert_eq!(body["pollIntervalSeconds"], 45);
    assert_eq!(body["serverTime"], "2026-11-21T10:05:00Z");
    assert_eq!(body["degraded"], Value::Null);
}

#[tokio::test]
async fn internal_flags_never_appear() {
    let cache = cache(Some(ENABLED), Overrides::none(), "2026-11-21T10:05:00Z").await;

    let body = json(
        &config::handle(
            &cache,
            &event(include_str!("../../../events/config-get.json")),
        )
        .await,
    );

    assert!(body.get("useSubmissionsGsi").is_none());
    assert!(body["flags"].get("useSubmissionsGsi").is_none());
    assert!(!body.to_string().contains("useSubmissionsGsi"));
}

#[tokio::test]
async fn before_consistent_at_the_backend_is_not_consistent_and_says_when_it_will_be() {
    let cache = cache(Some(ENABLED), Overrides::none(), "2026-11-21T10:01:49.999Z").await;

    let body = json(
        &config::handle(
            &cache,
            &event(include_str!("../../../events/config-get.json")),
        )
        .await,
    );

    assert_eq!(body["isFeatureXEnabled"], true);
    assert_eq!(body["isBackendConsistent"], false);
    assert_eq!(body["consistentAt"], "2026-11-21T10:01:50Z");
}

#[tokio::test]
async fn a_forced_flag_is_reported_forced() {
    let cache = cache(
        Some(ENABLED),
        Overrides::none().force("isFeatureXEnabled", false),
        "2026-11-21T10:05:00Z",
    )
    .await;

    let body = json(
        &config::handle(
            &cache,
            &event(include_str!("../../../events/config-get.json")),
        )
        .await,
    );

    assert_eq!(body["isFeatureXEnabled"], false);
    assert_eq!(body["flags"]["isFeatureXEnabled"]["forced"], true);
    assert_eq!(
        body["flags"]["isFeatureXEnabled"]["consistentAt"],
        Value::Null
    );
}

#[tokio::test]
async fn an_instance_on_bundled_defaults_is_degraded_and_never_consistent() {
    let cache = cache(None, Overrides::none(), "2026-11-21T10:05:00Z").await;

    let body = json(
        &config::handle(
            &cache,
            &event(include_str!("../../../events/config-get.json")),
        )
        .await,
    );

    assert_eq!(body["isFeatureXEnabled"], false);
    assert_eq!(body["isBackendConsistent"], false);
    assert_eq!(body["consistentAt"], Value::Null);
    assert_eq!(body["configurationVersion"], "defaults");
    assert_eq!(body["degraded"], "never_fetched");
}

#[tokio::test]
async fn a_wrong_method_answers_405_and_an_unknown_route_404_as_problem_json() {
    let cache = cache(Some(ENABLED), Overrides::none(), "2026-11-21T10:05:00Z").await;

    let post = config::handle(
        &cache,
        &event(include_str!("../../../events/config-post.json")),
    )
    .await;
    let unknown = config::handle(
        &cache,
        &event(include_str!("../../../events/unknown-route.json")),
    )
    .await;

    assert_eq!(post.status(), 405);
    assert_eq!(post.headers()["allow"], "GET");
    assert_eq!(post.headers()["content-type"], "application/problem+json");
    assert_eq!(unknown.status(), 404);
    assert_eq!(json(&unknown)["status"], 404);
}

/// An API Gateway event for `POST {path}` with `body`, from the `config-post.json` fixture.
fn post_event(path: &str, body: &str) -> lambda_http::Request {
    let mut value: Value =
        serde_json::from_str(include_str!("../../../events/config-post.json")).unwrap();
    value["rawPath"] = Value::from(path);
    value["requestContext"]["http"]["path"] = Value::from(path);
    value["body"] = Value::from(body);
    event(&value.to_string())
}

#[tokio::test]
async fn the_config_function_serves_ofrep_bulk_and_single_flag_evaluation() {
    let cache = cache(Some(ENABLED), Overrides::none(), "2026-11-21T10:05:00Z").await;

    let bulk = config::handle(
        &cache,
        &post_event("/ofrep/v1/evaluate/flags", r#"{"context": {}}"#),
    )
    .await;
    let one = config::handle(
        &cache,
        &post_event(
            "/ofrep/v1/evaluate/flags/isFeatureXEnabled",
            r#"{"context": {"targetingKey": "u1"}}"#,
        ),
    )
    .await;
    let private = config::handle(
        &cache,
        &post_event("/ofrep/v1/evaluate/flags/useSubmissionsGsi", "{}"),
    )
    .await;

    assert_eq!(bulk.status(), 200);
    assert!(bulk.headers()["etag"].to_str().unwrap().starts_with("W/\""));
    let flags = json(&bulk)["flags"].clone();
    assert_eq!(flags.as_array().unwrap().len(), 1);
    assert_eq!(flags[0]["key"], "isFeatureXEnabled");
    assert_eq!(flags[0]["value"], true);
    assert_eq!(flags[0]["reason"], "CACHED");
    assert_eq!(json(&one)["value"], true);
    assert_eq!(
        json(&one)["metadata"]["consistentAt"],
        "2026-11-21T10:01:50Z"
    );
    assert_eq!(private.status(), 404);
    assert_eq!(json(&private)["errorCode"], "FLAG_NOT_FOUND");
}

/// A cache that served [`ENABLED`] (stamped 10:00:00) from 10:05:00, then fetched `next` at
/// 10:05:45 (P = 45 s, ε = 5 s).
async fn after_fetching(next: &str) -> FlagCache {
    let (source, handle) = MemorySource::new();
    handle.publish("7", ENABLED);
    let clock = ManualClock::new(
        DateTime::parse_from_rfc3339("2026-11-21T10:05:00Z")
            .unwrap()
            .with_timezone(&Utc),
    );
    let options = CacheOptions {
        catalog: lockstep_sample::product::catalog(),
        overrides: Overrides::none(),
        settings: Settings::default(),
        clock: Arc::new(clock.clone()),
    };
    let cache = FlagCache::new(Box::new(source), options).await;
    handle.publish("8", next);
    clock.advance(chrono::TimeDelta::seconds(45));
    cache
}

#[tokio::test]
async fn after_a_rollback_config_says_when_it_was_seen_and_waits_p_plus_epsilon_from_it() {
    // The rollback restores the content before ENABLED: X off, stamped the day before.
    let cache = after_fetching(
        r#"{"isFeatureXEnabled": false, "useSubmissionsGsi": true,
  "lockstepMetadata": {"lastModifiedTimestamp": "2026-11-20T10:00:00Z", "deploymentDurationSeconds": 0}}"#,
    )
    .await;

    let body = json(
        &config::handle(
            &cache,
            &event(include_str!("../../../events/config-get.json")),
        )
        .await,
    );

    assert_eq!(body["isFeatureXEnabled"], false);
    assert_eq!(body["rolledBackAt"], "2026-11-21T10:05:45Z");
    let x = &body["flags"]["isFeatureXEnabled"];
    assert_eq!(x["rolledBackAt"], "2026-11-21T10:05:45Z");
    // Not the old stamp's 2026-11-20T10:00:50Z: the fetch that saw the rollback + P + ε.
    assert_eq!(x["consistentAt"], "2026-11-21T10:06:35Z");
    assert_eq!(x["journeyOpensAt"], "2026-11-21T10:06:35Z");
    assert_eq!(x["consistent"], false);
    assert_eq!(body["isBackendConsistent"], false);
    assert_eq!(body["consistentAt"], "2026-11-21T10:06:35Z");
}

#[tokio::test]
async fn after_a_roll_forward_config_has_no_rolled_back_at() {
    let cache = after_fetching(
        r#"{"isFeatureXEnabled": false, "useSubmissionsGsi": true,
  "lockstepMetadata": {"lastModifiedTimestamp": "2026-11-21T10:05:10Z", "deploymentDurationSeconds": 0}}"#,
    )
    .await;

    let body = json(
        &config::handle(
            &cache,
            &event(include_str!("../../../events/config-get.json")),
        )
        .await,
    );

    assert_eq!(body["isFeatureXEnabled"], false);
    assert!(body.get("rolledBackAt").is_none(), "{body}");
    assert!(
        body["flags"]["isFeatureXEnabled"]
            .get("rolledBackAt")
            .is_none(),
        "{body}"
    );
    assert_eq!(
        body["flags"]["isFeatureXEnabled"]["consistentAt"],
        "2026-11-21T10:06:00Z"
    );
}
