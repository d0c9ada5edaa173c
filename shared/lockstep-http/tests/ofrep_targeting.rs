//! OFREP evaluates a flag defined by rules with the request's own context (design rule 10): the
//! rule that matched or the split bucket is the variant, with OpenFeature's reason, and the
//! answer is the evaluator's (`lockstep_targeting`) for that context. `/config`, which has no
//! caller, evaluates the empty context.

use chrono::{DateTime, Utc};
use lambda_http::{Body, Request};
use lockstep::cache::CacheOptions;
use lockstep::memory::MemorySource;
use lockstep::{FlagCache, FlagCatalog, FlagDecl, ManualClock, Overrides, Settings};
use lockstep_http::config_routes::serve;
use lockstep_targeting::{Context, Definition};
use serde_json::{json, Value};
use std::sync::Arc;

const X: &str = "isFeatureXEnabled";
const T1: &str = "2026-11-21T10:00:00Z";
/// Well after T1 + Δ + P + ε: every journey is open.
const LATER: &str = "2026-11-21T10:05:00Z";

fn definition() -> Value {
    json!({
        "default": false,
        "rules": {
            "pro plan": {"when_match": true, "conditions": [{"action": "EQUALS", "key": "plan", "value": "pro"}]},
            "a quarter": {"split": [
                {"variant": "in", "value": true, "weight": 25},
                {"variant": "out", "value": false, "weight": 75}
            ]}
        }
    })
}

fn content() -> String {
    json!({
        X: definition(),
        "lockstepMetadata": {"lastModifiedTimestamp": T1, "deploymentDurationSeconds": 0}
    })
    .to_string()
}

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

async fn instance() -> FlagCache {
    let clock = ManualClock::new(t(LATER));
    let (source, handle) = MemorySource::new();
    handle.publish("v1", content());
    let options = CacheOptions {
        catalog: FlagCatalog::new(vec![FlagDecl::public(X)]).unwrap(),
        overrides: Overrides::none(),
        settings: Settings::default(),
        clock: Arc::new(clock),
    };
    FlagCache::new(Box::new(source), options).await
}

async fn call(cache: &FlagCache, method: &str, path: &str, body: &str) -> Value {
    let request: Request = http::Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/json")
        .body(Body::Text(body.to_owned()))
        .unwrap();
    let response = serve(cache, &request).await;
    assert_eq!(response.status(), 200, "{path} {body}");
    match response.body() {
        Body::Text(text) => serde_json::from_str(text).unwrap(),
        other => panic!("unexpected body {other:?}"),
    }
}

async fn evaluate(cache: &FlagCache, context: Value) -> Value {
    let body = json!({"context": context}).to_string();
    call(
        cache,
        "POST",
        &format!("/ofrep/v1/evaluate/flags/{X}"),
        &body,
    )
    .await
}

#[tokio::test]
async fn a_matching_rule_is_the_variant_with_reason_targeting_match() {
    let cache = instance().await;
    let answer = evaluate(&cache, json!({"targetingKey": "u1", "plan": "pro"})).await;
    assert_eq!(answer["value"], true);
    assert_eq!(answer["reason"], "TARGETING_MATCH");
    assert_eq!(answer["variant"], "pro plan");
}

#[tokio::test]
async fn a_split_answers_each_user_as_the_evaluator_buckets_them() {
    let cache = instance().await;
    let definition = Definition::parse(X, &definition()).unwrap();
    let (mut ins, mut outs) = (0, 0);
    for user in 0..40 {
        let context = json!({"targetingKey": format!("user-{user}"), "plan": "basic"});
        let expected = lockstep_targeting::evaluate(
            &definition,
            &context.as_object().cloned().unwrap(),
            t(LATER),
        );
        let answer = evaluate(&cache, context).await;
        assert_eq!(answer["reason"], "SPLIT");
        assert_eq!(&answer["value"], expected.value, "user-{user}");
        assert_eq!(answer["variant"], expected.variant, "user-{user}");
        if expected.variant == "in" {
            ins += 1
        } else {
            outs += 1
        }
    }
    assert!(
        ins > 0 && outs > 0,
        "both buckets are seen: {ins} in, {outs} out"
    );
}

#[tokio::test]
async fn without_a_targeting_key_the_split_is_passed_over_for_the_default() {
    let cache = instance().await;
    let answer = evaluate(&cache, json!({"plan": "basic"})).await;
    assert_eq!(answer["value"], false);
    assert_eq!(answer["reason"], "DEFAULT");
    assert_eq!(answer["variant"], "default");
}

#[tokio::test]
async fn the_bulk_answer_and_the_flag_answer_agree_for_one_context() {
    let cache = instance().await;
    let context = json!({"targetingKey": "u1", "plan": "pro"});
    let bulk = call(
        &cache,
        "POST",
        "/ofrep/v1/evaluate/flags",
        &json!({"context": context}).to_string(),
    )
    .await;
    let flag = &bulk["flags"][0];
    assert_eq!(flag["key"], X);
    assert_eq!(flag["variant"], "pro plan");
    assert_eq!(flag["value"], true);
}

#[tokio::test]
async fn config_has_no_caller_and_evaluates_the_empty_context() {
    let cache = instance().await;
    let config = call(&cache, "GET", "/config", "").await;
    assert_eq!(config[X], false);
    assert_eq!(config["flags"][X]["value"], false);
    // ...while the same flag is on for a caller the rule matches: /config did not pick a user.
    let pro = evaluate(&cache, json!({"targetingKey": "u1", "plan": "pro"})).await;
    assert_eq!(pro["value"], true);
    let d = Definition::parse(X, &definition()).unwrap();
    assert_eq!(
        lockstep_targeting::evaluate(&d, &Context::new(), t(LATER)).value,
        &json!(false)
    );
}

#[tokio::test]
async fn a_flag_defined_by_rules_opens_journeys_at_consistent_at_not_before() {
    // The journey token claims such a flag off (no catch-up on it), so /config/me and OFREP
    // must not promise a journey at T + Δ + Q + ε: only at T + Δ + P + ε.
    let cache = instance().await;
    let config = call(&cache, "GET", "/config", "").await;
    let flag = &config["flags"][X];
    assert_eq!(flag["journeyOpensAt"], flag["consistentAt"]);
    assert!(flag["consistentAt"].is_string());
}
