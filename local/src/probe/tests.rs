//! The probe's per-instance answer: a caller's value and their own consistency as the instance
//! computes it from what its cache holds (design rule 10), through a real cache over content
//! stamped by the stamping code itself.

use super::*;
use chrono::TimeDelta;
use lockstep::cache::CacheOptions;
use lockstep::memory::MemorySource;
use lockstep::{FlagCache, ManualClock, Overrides, Settings};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

const FLAG: &str = "isFeatureXEnabled";
const P: i64 = 15;
const EPSILON: i64 = 2;

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

fn split(weight: u32, ramp: Option<Value>) -> Vec<u8> {
    let mut rule = json!({"split": [
        {"variant": "in", "value": true, "weight": weight},
        {"variant": "out", "value": false, "weight": 10_000 - weight},
    ]});
    if let Some(ramp) = ramp {
        rule["ramp"] = ramp;
    }
    json!({
        FLAG: {"default": false, "rules": {"rollout": rule}},
        "useSubmissionsGsi": false,
    })
    .to_string()
    .into_bytes()
}

fn user(key: &str) -> Context {
    let mut context = Context::new();
    context.insert("targetingKey".into(), json!(key));
    context
}

/// The first of `user-0`, `user-1`… whose value in `content` is `value`.
fn someone(content: &[u8], value: bool, now: DateTime<Utc>) -> Context {
    (0..1000)
        .map(|i| user(&format!("user-{i}")))
        .find(|c| eval::evaluate(content, FLAG, c, now).unwrap().value == json!(value))
        .expect("someone on each side of the split")
}

/// A cache holding `content` (version `v2`), read at `now`.
async fn view_of(content: &[u8], now: DateTime<Utc>) -> FlagView {
    let (source, handle) = MemorySource::new();
    handle.publish("v2", content.to_vec());
    let options = CacheOptions {
        catalog: lockstep_sample::product::catalog(),
        overrides: Overrides::none(),
        settings: Settings {
            poll_interval: Duration::from_secs(P as u64),
            epsilon: Duration::from_secs(EPSILON as u64),
            ..Settings::default()
        },
        clock: Arc::new(ManualClock::new(now)),
    };
    FlagCache::new(Box::new(source), options).await.peek()
}

#[tokio::test]
async fn a_widening_keeps_the_users_in_consistent_and_the_newly_included_wait() {
    let t1 = at("2026-12-01T10:00:00Z");
    let t2 = at("2026-12-01T10:05:00Z");
    let quarter = lockstep::stamp::stamp(&split(2500, None), None, t1, Duration::ZERO).unwrap();
    let whole = lockstep::stamp::stamp(
        &split(10_000, None),
        Some(&quarter.content),
        t2,
        Duration::ZERO,
    )
    .unwrap();
    let now = t2 + TimeDelta::seconds(5);
    let view = view_of(&whole.content, now).await;
    let inside = someone(&quarter.content, true, t1);
    let newly = someone(&quarter.content, false, t1);
    let bound = |t: DateTime<Utc>| Some(t + TimeDelta::seconds(P + EPSILON));

    let a = answer("feature-x-1", &view, FLAG, &inside).unwrap();
    let b = answer("feature-x-1", &view, FLAG, &newly).unwrap();

    assert_eq!(
        (a.value.clone(), a.reason, a.variant.as_str()),
        (json!(true), "SPLIT", "in")
    );
    assert_eq!(a.configuration_version, "v2");
    // In since the quarter: its step, long consistent.
    assert_eq!(a.consistent_at, bound(t1));
    assert_eq!(a.journey_opens_at, bound(t1));
    assert!(a.consistent);
    assert_eq!(a.changes_at, None);
    // Newly included by the widening: its bound (Q = P here), not yet reached.
    assert_eq!(b.value, json!(true));
    assert_eq!(b.consistent_at, bound(t2));
    assert_eq!(b.journey_opens_at, bound(t2));
    assert!(!b.consistent);
    // The body the fleet view reads names them in camelCase, absent times as null.
    let shown = serde_json::to_value(&a).unwrap();
    for key in ["consistent", "consistentAt", "journeyOpensAt", "changesAt"] {
        assert!(shown.get(key).is_some(), "{key} in {shown}");
    }
    assert_eq!(shown["changesAt"], Value::Null);
}

#[tokio::test]
async fn a_ramp_tells_a_user_not_yet_in_when_their_value_changes() {
    let t = at("2026-12-01T10:00:00Z");
    let (start, end) = (t + TimeDelta::hours(1), t + TimeDelta::hours(2));
    let ramp = json!({"weight": 10_000, "start": start.to_rfc3339(), "end": end.to_rfc3339()});
    let ramped = lockstep::stamp::stamp(&split(2500, Some(ramp)), None, t, Duration::ZERO).unwrap();
    let now = t + TimeDelta::minutes(1);
    let view = view_of(&ramped.content, now).await;
    let out = someone(&ramped.content, false, now);
    let inside = someone(&ramped.content, true, now);

    let waiting = answer("config-1", &view, FLAG, &out).unwrap();
    let already = answer("config-1", &view, FLAG, &inside).unwrap();

    assert_eq!(waiting.value, json!(false));
    let changes = waiting.changes_at.expect("a user the ramp lets in later");
    assert!(start < changes && changes <= end, "{changes}");
    assert_eq!(
        already.changes_at, None,
        "a ramp never moves a user already in"
    );
    assert!(answer("config-1", &view, "noSuchFlag", &out).is_none());
    // A plain flag answers STATIC, with the flag's own consistency.
    let plain = answer("config-1", &view, "useSubmissionsGsi", &out).unwrap();
    assert_eq!((plain.value, plain.reason), (json!(false), "STATIC"));
    assert_eq!(
        plain.consistent_at,
        Some(t + TimeDelta::seconds(P + EPSILON))
    );
}
