//! The gate on a flag defined by rules decides for the verified caller (design rule 10): the
//! JWT authorizer's claims, `sub` as the targeting key, never a context the client chose; a
//! request without a verified caller is decided for the empty context. A 1 % rollout opens the
//! route for the 1 %, not for everyone.

use chrono::{DateTime, Utc};
use lambda_http::{Body, Request};
use lockstep::cache::CacheOptions;
use lockstep::memory::MemorySource;
use lockstep::{FlagCache, FlagCatalog, FlagDecl, ManualClock, Overrides, Settings};
use lockstep_http::GateLayer;
use lockstep_targeting::{Context, Definition};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;

const FLAG: &str = "isCheckoutV2Enabled";

fn definition() -> Value {
    json!({
        "default": false,
        "rules": {
            "beta testers": {"when_match": true, "conditions": [
                {"action": "IN", "key": "sub", "value": ["alice"]}
            ]},
            "one percent": {"split": [
                {"variant": "in", "value": true, "weight": 1},
                {"variant": "out", "value": false, "weight": 99}
            ]}
        }
    })
}

async fn gate() -> GateLayer {
    GateLayer::new(cache().await, FLAG).unwrap()
}

async fn cache() -> Arc<FlagCache> {
    let now = DateTime::parse_from_rfc3339("2026-11-21T10:05:00Z")
        .unwrap()
        .with_timezone(&Utc);
    let (source, handle) = MemorySource::new();
    handle.publish(
        "1",
        json!({FLAG: definition(), "lockstepMetadata": {"lastModifiedTimestamp": "2026-11-21T10:00:00Z", "deploymentDurationSeconds": 0}})
            .to_string(),
    );
    let options = CacheOptions {
        catalog: FlagCatalog::new(vec![FlagDecl::public(FLAG)]).unwrap(),
        overrides: Overrides::none(),
        settings: Settings::default(),
        clock: Arc::new(ManualClock::new(now)),
    };
    Arc::new(FlagCache::new(Box::new(source), options).await)
}

/// A request as API Gateway's JWT authorizer hands it on, with these verified claims; the
/// client's own body and headers say "alice".
fn request(claims: Option<&[(&str, &str)]>) -> Request {
    to(
        http::Request::builder()
            .method("POST")
            .uri("/checkout?sub=alice"),
        claims,
    )
}

fn to(builder: http::request::Builder, claims: Option<&[(&str, &str)]>) -> Request {
    let request: Request = builder
        .header("x-user", "alice")
        .body(Body::Text(
            r#"{"sub": "alice", "targetingKey": "alice"}"#.into(),
        ))
        .unwrap();
    let Some(claims) = claims else {
        return request;
    };
    let claims = claims
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect::<HashMap<_, _>>();
    lockstep_http::identity::with_claims(request, claims)
}

#[tokio::test]
async fn the_verified_caller_a_rule_names_is_let_through() {
    let gate = gate().await;
    assert!(gate
        .check_request(&request(Some(&[("sub", "alice")])))
        .await
        .is_ok());
}

#[tokio::test]
async fn another_verified_caller_is_refused_whatever_the_request_claims() {
    let gate = gate().await;
    // Bob's request names alice in its query, a header and its body: none of it is the caller.
    let bob = request(Some(&[("sub", "bob"), ("email", "bob@example.com")]));
    let definition = Definition::parse(FLAG, &definition()).unwrap();
    let bob_context: Context =
        json!({"targetingKey": "bob", "sub": "bob", "email": "bob@example.com"})
            .as_object()
            .cloned()
            .unwrap();
    let now = "2026-11-21T10:05:00Z".parse().unwrap();
    assert_eq!(
        lockstep_targeting::evaluate(&definition, &bob_context, now).value,
        &json!(false),
        "bob is outside the 1 % (else this test proves nothing)"
    );
    let refused = gate.check_request(&bob).await.unwrap_err();
    assert_eq!(refused.into_response::<String>().status(), 503);
}

#[tokio::test]
async fn a_request_without_a_verified_caller_is_decided_for_the_empty_context() {
    let gate = gate().await;
    let refused = gate.check_request(&request(None)).await.unwrap_err();
    assert_eq!(refused.into_response::<String>().status(), 503);
    // The anonymous checks agree.
    assert!(gate.check(None).await.is_err());
}

#[tokio::test]
async fn a_small_rollout_opens_the_route_only_for_the_users_in_it() {
    let gate = gate().await;
    let definition = Definition::parse(FLAG, &definition()).unwrap();
    let now = "2026-11-21T10:05:00Z".parse().unwrap();
    let (mut open, mut expected_open) = (0, 0);
    for user in 0..300 {
        let sub = format!("user-{user}");
        let context: Context = json!({"targetingKey": sub, "sub": sub})
            .as_object()
            .cloned()
            .unwrap();
        let expected =
            lockstep_targeting::evaluate(&definition, &context, now).value == &json!(true);
        let decided = gate
            .check_request(&request(Some(&[("sub", &sub)])))
            .await
            .is_ok();
        assert_eq!(decided, expected, "{sub}");
        open += usize::from(decided);
        expected_open += usize::from(expected);
    }
    assert_eq!(open, expected_open);
    assert!(open < 30, "{open} of 300 let through by a 1 % rollout");
}

fn json(response: &lambda_http::Response<Body>) -> Value {
    match response.body() {
        Body::Text(text) => serde_json::from_str(text).unwrap(),
        other => panic!("unexpected body {other:?}"),
    }
}

#[tokio::test]
async fn config_me_shows_each_verified_caller_what_the_gate_decides_for_them() {
    let cache = cache().await;
    let gate = GateLayer::new(cache.clone(), FLAG).unwrap();
    let get = || {
        http::Request::builder()
            .method("GET")
            .uri("/config/me?sub=alice")
    };
    for sub in ["alice", "bob", "user-1", "user-2", "user-3"] {
        let claims = [("sub", sub)];
        let config = lockstep_http::config_routes::serve(&cache, &to(get(), Some(&claims))).await;
        assert_eq!(config.status(), 200, "{sub}");
        let shown = json(&config)[FLAG].as_bool().unwrap();
        let decided = gate.check_request(&request(Some(&claims))).await.is_ok();
        assert_eq!(shown, decided, "{sub}: /config/me and the gate agree");
        assert_eq!(json(&config)["flags"][FLAG]["value"], shown);
    }
    let alice =
        lockstep_http::config_routes::serve(&cache, &to(get(), Some(&[("sub", "alice")]))).await;
    assert_eq!(json(&alice)[FLAG], true);
}

#[tokio::test]
async fn config_me_without_a_verified_caller_is_refused_not_answered_anonymously() {
    let cache = cache().await;
    let get = http::Request::builder()
        .method("GET")
        .uri("/config/me?sub=alice");
    let response = lockstep_http::config_routes::serve(&cache, &to(get, None)).await;
    assert_eq!(response.status(), 401);
    // The public /config is the anonymous caller's.
    let public = http::Request::builder().method("GET").uri("/config");
    let response = lockstep_http::config_routes::serve(&cache, &to(public, None)).await;
    assert_eq!(json(&response)[FLAG], false);
}
