//! Ramps and scheduled changes (design rule 10): a rollout that grows with time needs no
//! deployment per step; each user's inclusion instant follows from their bucket, every instance
//! knows it, and `/config` says it (`changesAt`). Around it, within ε (instances' clocks differ
//! by up to that), the user's value is reported inconsistent; users already in are never
//! affected. The ramp is stamped as the extension and `lockstep deploy` stamp it, and read
//! through the cache as an instance reads it.

use chrono::{DateTime, TimeDelta, Utc};
use lockstep::cache::CacheOptions;
use lockstep::memory::MemorySource;
use lockstep::targeted::Context;
use lockstep::{FlagCache, FlagCatalog, FlagDecl, FlagStatus, ManualClock, Overrides, Settings};
use lockstep_targeting::split::murmur3_x86_32;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

const X: &str = "checkout";
const TOTAL: u64 = 10_000;

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

const T0: &str = "2026-12-01T08:00:00Z";
const T1: &str = "2026-12-01T09:00:00Z";
const START: &str = "2026-12-01T12:00:00Z";
const END: &str = "2026-12-01T14:00:00Z";

/// 25 %, growing to 100 % between `start` and `end` (basis points).
fn ramp(start: &str, end: &str) -> Value {
    json!({"default": false, "rules": {"rollout": {
        "split": [{"variant": "on", "value": true, "weight": 2_500},
                  {"variant": "off", "value": false, "weight": 7_500}],
        "ramp": {"weight": TOTAL, "start": start, "end": end}}}})
}

fn user(key: &str) -> Context {
    json!({"targetingKey": key}).as_object().cloned().unwrap()
}

/// A user's bucket position, computed here from flagd's definition (MurmurHash3 x86_32 of the
/// flag key and the targeting key, times the total, shifted by 32), not by the library's split.
fn position(key: &str) -> u64 {
    (u64::from(murmur3_x86_32(&[X, key])) * TOTAL) >> 32
}

/// The first millisecond at which the ramp's first weight exceeds `position`.
fn inclusion(position: u64) -> Option<DateTime<Utc>> {
    inclusion_in(position, START, END)
}

fn inclusion_in(position: u64, start: &str, end: &str) -> Option<DateTime<Utc>> {
    let (from, to) = (2_500u64, TOTAL);
    if position < from {
        return None;
    }
    let length = (t(end) - t(start)).num_milliseconds() as u64;
    let after = ((position + 1 - from) * length).div_ceil(to - from);
    Some(t(start) + TimeDelta::milliseconds(after as i64))
}

/// An instance holding the stamped ramp from START to END (deployed at T1 over a plain `false`
/// at T0), reading at the clock's moment.
async fn instance(clock: &ManualClock) -> FlagCache {
    instance_of(clock, ramp(START, END)).await
}

async fn instance_of(clock: &ManualClock, ramp: Value) -> FlagCache {
    let first = lockstep::stamp::stamp(
        json!({X: false}).to_string().as_bytes(),
        None,
        t(T0),
        Duration::from_secs(60),
    )
    .unwrap();
    let ramped = lockstep::stamp::stamp(
        json!({X: ramp}).to_string().as_bytes(),
        Some(&first.content),
        t(T1),
        Duration::from_secs(60),
    )
    .unwrap();
    let (source, handle) = MemorySource::new();
    handle.publish("v", ramped.content);
    let options = CacheOptions {
        catalog: FlagCatalog::new(vec![FlagDecl::public(X)]).unwrap(),
        overrides: Overrides::none(),
        settings: Settings::default(),
        clock: Arc::new(clock.clone()),
    };
    FlagCache::new(Box::new(source), options).await
}

async fn status(
    cache: &FlagCache,
    clock: &ManualClock,
    at: DateTime<Utc>,
    who: &Context,
) -> FlagStatus {
    clock.set(at);
    let view = cache.read().await;
    let status = view.public_flags_for(who).find(|(n, _)| *n == X).unwrap().1;
    status
}

#[tokio::test]
async fn a_ramps_per_user_instants_match_their_buckets() {
    let clock = ManualClock::new(t("2026-12-01T11:00:00Z"));
    let cache = instance(&clock).await;
    let epsilon = TimeDelta::seconds(5);
    let mut ramped = 0;
    for i in 0..300 {
        let key = format!("user-{i}");
        let who = user(&key);
        let Some(at) = inclusion(position(&key)) else {
            continue;
        };
        ramped += 1;
        let before = status(&cache, &clock, t("2026-12-01T11:00:00Z"), &who).await;
        assert!(!before.value, "{key}");
        assert!(before.consistent, "{key}");
        assert_eq!(
            before.changes_at,
            Some(at),
            "{key}: changesAt is their instant"
        );

        // Within ε of it, on either side: instances may disagree.
        let near = status(&cache, &clock, at - TimeDelta::seconds(2), &who).await;
        assert!(!near.value && !near.consistent, "{key}");
        assert_eq!(near.consistent_at, Some(at + epsilon), "{key}");
        let just_in = status(&cache, &clock, at, &who).await;
        assert!(just_in.value && !just_in.consistent, "{key}");
        assert_eq!(just_in.changes_at, None, "{key}: in for good");

        let settled = status(&cache, &clock, at + epsilon, &who).await;
        assert!(settled.value && settled.consistent, "{key}");
        assert_eq!(
            settled.journey_opens_at.map(|o| o <= at + epsilon),
            Some(true)
        );
    }
    assert!(
        ramped > 150,
        "most of 300 users enter during the ramp: {ramped}"
    );
}

#[tokio::test]
async fn users_in_before_the_ramp_are_never_affected_by_it() {
    let clock = ManualClock::new(t("2026-12-01T11:00:00Z"));
    let cache = instance(&clock).await;
    let in_already: Vec<String> = (0..300)
        .map(|i| format!("user-{i}"))
        .filter(|key| position(key) < 2_500)
        .collect();
    assert!(in_already.len() > 40);
    // Probe the whole ramp, including every other user's inclusion instant.
    let mut moments: Vec<DateTime<Utc>> = (0..300)
        .filter_map(|i| inclusion(position(&format!("user-{i}"))))
        .collect();
    moments.extend([t(START), t(END), t("2026-12-01T11:00:00Z")]);
    for key in &in_already {
        for at in &moments {
            let s = status(&cache, &clock, *at, &user(key)).await;
            assert!(
                s.value && s.consistent && s.changes_at.is_none(),
                "{key} at {at}"
            );
        }
    }
}

#[tokio::test]
async fn a_ramp_starting_before_its_deployment_is_consistent_waits_for_the_deployment() {
    // Deployed at T1, starting at once over ten minutes: a user whose instant falls before
    // T1 + Δ + P + ε is served `true` here, while an instance that has not polled since still
    // holds the plain `false`.
    let end = "2026-12-01T09:10:00Z";
    let clock = ManualClock::new(t(T1));
    let cache = instance_of(&clock, ramp(T1, end)).await;
    let consistent_from = t(T1) + TimeDelta::seconds(60 + 45 + 5);
    let key = (0..2_000)
        .map(|i| format!("user-{i}"))
        .find(|k| {
            inclusion_in(position(k), T1, end).is_some_and(|at| at < t(T1) + TimeDelta::seconds(40))
        })
        .unwrap();
    let s = status(&cache, &clock, t(T1) + TimeDelta::seconds(61), &user(&key)).await;
    assert!(s.value);
    assert!(!s.consistent);
    assert_eq!(s.consistent_at, Some(consistent_from));
    // A user still outside is served `false` by every definition kept: consistent.
    let outside = (0..2_000)
        .map(|i| format!("user-{i}"))
        .find(|k| {
            inclusion_in(position(k), T1, end)
                .is_some_and(|at| at > t(T1) + TimeDelta::seconds(300))
        })
        .unwrap();
    let s = status(
        &cache,
        &clock,
        t(T1) + TimeDelta::seconds(61),
        &user(&outside),
    )
    .await;
    assert!(!s.value && s.consistent);
}

#[tokio::test]
async fn a_time_based_condition_says_when_it_changes_and_is_inconsistent_only_within_epsilon() {
    // On 09:00–17:00 Berlin time (UTC+1 in December), deployed long before.
    let hours = json!({"default": false, "rules": {"office hours": {"when_match": true,
        "conditions": [{"action": "SCHEDULE_BETWEEN_TIME_RANGE", "key": "CURRENT_TIME",
            "value": {"START": "09:00", "END": "17:00", "TIMEZONE": "Europe/Berlin"}}]}}});
    let clock = ManualClock::new(t("2026-12-01T10:00:00Z"));
    let cache = instance_of(&clock, hours).await;
    let anyone = Context::new();
    let opens = t("2026-12-02T08:00:00Z");
    let closes = t("2026-12-02T16:01:00Z");
    let epsilon = TimeDelta::seconds(5);

    let night = status(&cache, &clock, t("2026-12-02T03:00:00Z"), &anyone).await;
    assert!(!night.value && night.consistent);
    assert_eq!(night.changes_at, Some(opens));
    let just_before = status(&cache, &clock, opens - TimeDelta::seconds(3), &anyone).await;
    assert!(!just_before.value && !just_before.consistent);
    assert_eq!(just_before.consistent_at, Some(opens + epsilon));
    let just_after = status(&cache, &clock, opens + TimeDelta::seconds(4), &anyone).await;
    assert!(just_after.value && !just_after.consistent);
    let day = status(&cache, &clock, opens + epsilon, &anyone).await;
    assert!(day.value && day.consistent);
    assert_eq!(
        day.changes_at,
        Some(closes),
        "the minute after its last one"
    );
    // The anonymous /config read says the same (the flag reads the clock, so it is evaluated
    // per read).
    clock.set(closes - TimeDelta::seconds(1));
    let view = cache.read().await;
    let anonymous = view
        .snapshot()
        .flag(X)
        .unwrap()
        .status(view.now().timestamp_millis(), false);
    assert!(anonymous.value && !anonymous.consistent);
    assert_eq!(anonymous.changes_at, Some(closes));
}
