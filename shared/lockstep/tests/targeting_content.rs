//! Flags defined by rules on an instance (design rules 2 and 10): a definition that does not
//! validate never replaces the last-known-good version (the instance is degraded, with a reason
//! naming the flag and the rule), a valid one is served per caller, and a `FORCE_` override wins
//! over the rules.

use chrono::{DateTime, TimeDelta, Utc};
use lockstep::cache::{CacheOptions, Degraded};
use lockstep::memory::MemorySource;
use lockstep::targeted::{anonymous, Context};
use lockstep::{FlagCache, FlagCatalog, FlagDecl, ManualClock, Overrides, Settings};
use serde_json::{json, Value};
use std::sync::Arc;

const X: &str = "isFeatureXEnabled";
const T1: &str = "2026-11-21T10:00:00Z";

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn content(x: Value, stamp: &str) -> String {
    json!({X: x, "lockstepMetadata": {"lastModifiedTimestamp": stamp, "deploymentDurationSeconds": 0}})
        .to_string()
}

fn pro_only() -> Value {
    json!({"default": false, "rules": {"pro plan": {"when_match": true, "conditions": [
        {"action": "EQUALS", "key": "plan", "value": "pro"}
    ]}}})
}

fn caller(plan: &str) -> Context {
    json!({"targetingKey": "u1", "plan": plan})
        .as_object()
        .cloned()
        .unwrap()
}

async fn cache(overrides: Overrides) -> (FlagCache, lockstep::memory::MemoryHandle, ManualClock) {
    let clock = ManualClock::new(t("2026-11-21T10:05:00Z"));
    let (source, handle) = MemorySource::new();
    handle.publish("v1", content(pro_only(), T1));
    let options = CacheOptions {
        catalog: FlagCatalog::new(vec![FlagDecl::public(X)]).unwrap(),
        overrides,
        settings: Settings::default(),
        clock: Arc::new(clock.clone()),
    };
    (
        FlagCache::new(Box::new(source), options).await,
        handle,
        clock,
    )
}

#[tokio::test]
async fn an_invalid_definition_keeps_the_last_good_version_and_names_the_flag_and_rule() {
    let (cache, source, clock) = cache(Overrides::none()).await;
    let bad = json!({"default": false, "rules": {"pro plan": {"when_match": true, "conditions": [
        {"action": "EQUALZ", "key": "plan", "value": "pro"}
    ]}}});
    source.publish("v2", content(bad, "2026-11-21T10:06:00Z"));
    clock.advance(TimeDelta::seconds(120));
    let view = cache.read().await;
    assert_eq!(
        view.snapshot().version,
        "v1",
        "the last-known-good version stays"
    );
    match view.degraded() {
        Some(Degraded::InvalidContent { version, reason }) => {
            assert_eq!(version, "v2");
            assert!(
                reason.contains(r#"flag "isFeatureXEnabled", rule "pro plan""#),
                "{reason}"
            );
            assert!(reason.contains("EQUALZ"), "{reason}");
        }
        other => panic!("expected invalid_content, got {other:?}"),
    }
    // v1's rules still answer per caller.
    let flag = view.snapshot().flag(X).unwrap();
    assert!(
        flag.status_for(&caller("pro"), view.now().timestamp_millis(), true)
            .value
    );
    assert!(
        !flag
            .status_for(&caller("basic"), view.now().timestamp_millis(), true)
            .value
    );
}

#[tokio::test]
async fn a_definition_answers_each_caller_and_the_anonymous_read_gets_the_default() {
    let (cache, _, _) = cache(Overrides::none()).await;
    let view = cache.read().await;
    let handle = cache.handle(X).unwrap();
    assert!(!view.enabled(handle), "anonymous: the default");
    assert!(!view.is_enabled(X), "by name, anonymous too");
    let pro = view.evaluate(X, &caller("pro")).unwrap();
    assert_eq!((pro.value, pro.variant), (&json!(true), "pro plan"));
    assert!(view.evaluate(X, anonymous()).is_some());
    let decided = cache.decide_for(handle, None, &caller("pro")).await;
    assert!(decided.is_open());
    assert!(!cache
        .decide_for(handle, None, &caller("basic"))
        .await
        .is_open());
    assert!(
        !cache.decide(handle, None).await.is_open(),
        "no caller: closed"
    );
}

#[tokio::test]
async fn a_force_override_wins_over_the_rules() {
    let (cache, _, _) = cache(Overrides::none().force(X, false)).await;
    let view = cache.read().await;
    assert!(
        view.evaluate(X, &caller("pro")).is_none(),
        "a forced flag is not evaluated"
    );
    let handle = cache.handle(X).unwrap();
    assert!(!cache
        .decide_for(handle, None, &caller("pro"))
        .await
        .is_open());
}

/// The plain read (`FlagCache::flag`, a handle resolved at init) of a flag defined by rules is
/// the anonymous caller's value: fixed per version when no rule reads the clock, evaluated per
/// read when one does (the schedule changes it without a deployment).
#[tokio::test]
async fn the_plain_read_of_a_flag_defined_by_rules_is_the_anonymous_callers_value() {
    let (cache, source, clock) = cache(Overrides::none()).await;
    let handle = cache.handle(X).unwrap();
    let everyone_but_basic = json!({"default": true, "rules": {"basic plan": {
        "when_match": false,
        "conditions": [{"action": "EQUALS", "key": "plan", "value": "basic"}]
    }}});
    source.publish("v2", content(everyone_but_basic, "2026-11-21T10:06:00Z"));
    clock.advance(TimeDelta::seconds(120));
    let status = cache.flag(handle).await.unwrap();
    assert!(status.value, "the anonymous caller gets the default, true");
    let view = cache.read().await;
    let now_ms = view.now().timestamp_millis();
    let x = view.snapshot().flag(X).unwrap();
    assert!(!x.status_for(&caller("basic"), now_ms, false).value);
    assert_eq!(
        x.status(now_ms, false),
        x.status_for(anonymous(), now_ms, false)
    );

    let office_hours = json!({"default": false, "rules": {"office hours": {
        "when_match": true,
        "conditions": [{"action": "SCHEDULE_BETWEEN_TIME_RANGE", "key": "CURRENT_TIME",
            "value": {"START": "10:00", "END": "10:59", "TIMEZONE": "UTC"}}]
    }}});
    source.publish("v3", content(office_hours, "2026-11-21T10:08:00Z"));
    clock.set(t("2026-11-21T10:10:00Z"));
    assert!(cache.flag(handle).await.unwrap().value, "10:10: inside");
    clock.set(t("2026-11-21T10:59:59Z"));
    let view = cache.read().await;
    assert_eq!(view.snapshot().version, "v3");
    assert!(view.is_enabled(X), "by name too");
    assert!(cache.flag(handle).await.unwrap().value, "10:59:59: inside");
    // Less than P later: the same version, evaluated again for the new instant (Powertools'
    // range takes in the END minute whole: its times keep the clock's seconds).
    clock.advance(TimeDelta::seconds(2));
    assert!(
        !cache.flag(handle).await.unwrap().value,
        "11:00:01: outside"
    );
    assert_eq!(cache.read().await.snapshot().version, "v3");
}
