//! Per-user consistency (design rule 10, `lockstep::history`), from stamping to what an
//! instance reports: a deployment that changes a flag's definition moves `consistentAt` only
//! for the users whose value it changes. Each deployment is stamped as the extension and
//! `lockstep deploy` stamp it (`lockstep::stamp::stamp`, the previous content as deployed), and
//! read by a cache as an instance reads it.

mod rollouts;

use chrono::{DateTime, TimeDelta, Utc};
use lockstep::cache::CacheOptions;
use lockstep::consistency::{Stamp, Window};
use lockstep::history::MAX_KEPT;
use lockstep::memory::MemorySource;
use lockstep::targeted::Context;
use lockstep::{FlagCache, FlagCatalog, FlagDecl, ManualClock, Overrides, Settings};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

use rollouts::{find, inside, rollout, t, X};

const DELTA: Duration = Duration::from_secs(60);

fn settings() -> Settings {
    Settings {
        poll_interval: Duration::from_secs(45),
        epsilon: Duration::from_secs(5),
        ..Settings::default()
    }
}

/// `T + Δ + P + ε` for a deployment at `at`.
fn consistent_at(at: &str) -> DateTime<Utc> {
    let window = Window {
        poll_interval: settings().poll_interval,
        epsilon: settings().epsilon,
    };
    lockstep::consistency::consistent_at(
        Some(Stamp {
            at: t(at),
            deployment_duration: DELTA,
        }),
        false,
        window,
    )
    .unwrap()
}

/// Stamps each `(flags, T)` as one deployment after the other; the last content, stamped.
fn deployments(steps: &[(Value, &str)]) -> Vec<u8> {
    let mut deployed: Option<Vec<u8>> = None;
    for (flags, at) in steps {
        let stamped = lockstep::stamp::stamp(
            flags.to_string().as_bytes(),
            deployed.as_deref(),
            t(at),
            DELTA,
        )
        .unwrap();
        deployed = Some(stamped.content);
    }
    deployed.unwrap()
}

/// An instance holding `content` at `now`: each user's `consistentAt` for the flag.
async fn instance(content: Vec<u8>, now: &str) -> impl Fn(&Context) -> Option<DateTime<Utc>> {
    let (source, handle) = MemorySource::new();
    handle.publish("v", content);
    let options = CacheOptions {
        catalog: FlagCatalog::new(vec![FlagDecl::public(X), FlagDecl::public("other")]).unwrap(),
        overrides: Overrides::none(),
        settings: settings(),
        clock: Arc::new(ManualClock::new(t(now))),
    };
    let cache = FlagCache::new(Box::new(source), options).await;
    let view = cache.read().await;
    move |context: &Context| {
        view.public_flags_for(context)
            .find(|(name, _)| *name == X)
            .and_then(|(_, status)| status.consistent_at)
    }
}

const T0: &str = "2026-12-01T08:00:00Z";
const T1: &str = "2026-12-01T09:00:00Z";
const T2: &str = "2026-12-01T10:00:00Z";
const T3: &str = "2026-12-01T11:00:00Z";

#[tokio::test]
async fn widening_keeps_the_users_already_in_consistent_and_only_the_newly_included_wait() {
    let already_in = find(|u| inside(25, u));
    let newly_in = find(|u| !inside(25, u) && inside(50, u));
    let still_out = find(|u| !inside(50, u));
    let content = deployments(&[
        (json!({X: false, "other": true}), T0),
        (json!({X: rollout(25, "r"), "other": true}), T1),
        (json!({X: rollout(50, "r"), "other": true}), T2),
    ]);
    let at = instance(content.clone(), "2026-12-01T10:00:30Z").await;

    assert_eq!(
        at(&already_in),
        Some(consistent_at(T1)),
        "in since the 25 % step"
    );
    assert_eq!(
        at(&newly_in),
        Some(consistent_at(T2)),
        "included by this step"
    );
    assert_eq!(
        at(&still_out),
        Some(consistent_at(T0)),
        "off under every kept definition: the oldest kept counts as a change"
    );
    let metadata: Value = serde_json::from_slice(&content).unwrap();
    let previous = &metadata["lockstepMetadata"]["flags"][X]["previous"];
    assert_eq!(previous[0]["value"], rollout(25, "r"));
    assert_eq!(
        previous[0]["lastModifiedTimestamp"],
        "2026-12-01T09:00:00.000Z"
    );
    assert_eq!(previous[1]["value"], json!(false));
    assert_eq!(previous.as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn narrowing_moves_the_dropped_users_and_keeps_the_others() {
    let kept_in = find(|u| inside(25, u));
    let dropped = find(|u| !inside(25, u) && inside(50, u));
    let content = deployments(&[
        (json!({X: false, "other": true}), T0),
        (json!({X: rollout(50, "r"), "other": true}), T1),
        (json!({X: rollout(25, "r"), "other": true}), T2),
    ]);
    let at = instance(content, "2026-12-01T10:00:30Z").await;
    assert_eq!(at(&kept_in), Some(consistent_at(T1)));
    assert_eq!(
        at(&dropped),
        Some(consistent_at(T2)),
        "switched off by this step"
    );
}

#[tokio::test]
async fn a_rule_edit_that_changes_nobodys_value_moves_nobody() {
    let in_user = find(|u| inside(25, u));
    let out_user = find(|u| !inside(25, u));
    // The rule renamed and a condition-less rule serving the default added after it: a new
    // definition (a new stamp for the flag), the same value for everyone.
    let edited = json!({"default": false, "rules": {
        "r": rollout(25, "r")["rules"]["r"].clone(),
        "nobody": {"when_match": true, "conditions": [{"action": "EQUALS", "key": "plan", "value": "none"}]}
    }});
    let content = deployments(&[
        (json!({X: false, "other": true}), T0),
        (json!({X: rollout(25, "r"), "other": true}), T1),
        (json!({X: edited, "other": true}), T2),
    ]);
    let stamped: Value = serde_json::from_slice(&content).unwrap();
    assert_eq!(
        stamped["lockstepMetadata"]["flags"][X]["lastModifiedTimestamp"],
        "2026-12-01T10:00:00.000Z",
        "the definition changed: the flag has a new stamp"
    );
    let at = instance(content, "2026-12-01T10:00:30Z").await;
    assert_eq!(at(&in_user), Some(consistent_at(T1)));
    assert_eq!(at(&out_user), Some(consistent_at(T0)));
}

#[tokio::test]
async fn a_definition_no_longer_kept_counts_as_different() {
    let never_in = find(|u| !inside(30, u));
    let mut steps = vec![(json!({X: false, "other": true}), T0.to_owned())];
    for i in 1..=6u32 {
        let at = (t(T0) + TimeDelta::hours(i64::from(i))).to_rfc3339();
        steps.push((json!({X: rollout(5 * i, "r"), "other": true}), at));
    }
    let steps: Vec<(Value, &str)> = steps
        .iter()
        .map(|(v, at)| (v.clone(), at.as_str()))
        .collect();
    let content = deployments(&steps);
    let stamped: Value = serde_json::from_slice(&content).unwrap();
    let previous = stamped["lockstepMetadata"]["flags"][X]["previous"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(previous.len(), MAX_KEPT, "bounded");
    let oldest = previous.last().unwrap()["lastModifiedTimestamp"]
        .as_str()
        .unwrap()
        .to_owned();
    let at = instance(content, "2026-12-01T14:00:30Z").await;
    assert_eq!(
        at(&never_in),
        Some(consistent_at(&oldest)),
        "off under every kept definition, and the one before the oldest is unknown"
    );
    assert!(consistent_at(&oldest) > consistent_at(T0));
}

#[tokio::test]
async fn a_deployment_of_other_flags_keeps_the_history_and_a_forced_flag_has_no_consistent_at() {
    let in_user = find(|u| inside(25, u));
    let content = deployments(&[
        (json!({X: false, "other": true}), T0),
        (json!({X: rollout(25, "r"), "other": true}), T1),
        (json!({X: rollout(25, "r"), "other": false}), T3),
    ]);
    let at = instance(content.clone(), "2026-12-01T11:00:30Z").await;
    assert_eq!(
        at(&in_user),
        Some(consistent_at(T1)),
        "the flag kept its stamp"
    );
    let stamped: Value = serde_json::from_slice(&content).unwrap();
    assert_eq!(
        stamped["lockstepMetadata"]["flags"][X]["previous"][0]["value"],
        json!(false)
    );
}

#[tokio::test]
async fn content_with_a_malformed_history_is_refused() {
    let content = deployments(&[
        (json!({X: false, "other": true}), T0),
        (json!({X: rollout(25, "r"), "other": true}), T1),
    ]);
    let mut doc: Value = serde_json::from_slice(&content).unwrap();
    doc["lockstepMetadata"]["flags"][X]["previous"][0]["lastModifiedTimestamp"] =
        json!("2026-12-01T09:30:00Z");
    let error = lockstep::document::parse(doc.to_string().as_bytes()).unwrap_err();
    assert!(error.to_string().contains("older"), "{error}");
    doc["lockstepMetadata"]["flags"][X]["previous"] =
        json!([{"lastModifiedTimestamp": T0, "value": {"default": 1, "rules": {}}}]);
    assert!(lockstep::document::parse(doc.to_string().as_bytes()).is_err());
    doc["lockstepMetadata"]["flags"][X]["previous"] = Value::Array(vec![
        json!({"lastModifiedTimestamp": T0, "value": false});
        5
    ]);
    assert!(
        lockstep::document::parse(doc.to_string().as_bytes()).is_err(),
        "at most {MAX_KEPT}"
    );
}

#[tokio::test]
async fn after_a_rollback_every_caller_waits_for_the_rollbacks_bound_not_their_history() {
    let in_user = find(|u| inside(25, u));
    let mut deployed = Vec::new();
    let mut previous: Option<Vec<u8>> = None;
    for (flags, at) in [
        (json!({X: false, "other": true}), T0),
        (json!({X: rollout(25, "r"), "other": true}), T1),
        (json!({X: rollout(50, "r"), "other": true}), T2),
    ] {
        let stamped = lockstep::stamp::stamp(
            flags.to_string().as_bytes(),
            previous.as_deref(),
            t(at),
            DELTA,
        )
        .unwrap();
        previous = Some(stamped.content.clone());
        deployed.push(stamped.content);
    }
    let clock = ManualClock::new(t("2026-12-01T10:05:00Z"));
    let (source, handle) = MemorySource::new();
    handle.publish("3", deployed[2].clone());
    let options = CacheOptions {
        catalog: FlagCatalog::new(vec![FlagDecl::public(X), FlagDecl::public("other")]).unwrap(),
        overrides: Overrides::none(),
        settings: settings(),
        clock: Arc::new(clock.clone()),
    };
    let cache = FlagCache::new(Box::new(source), options).await;
    // An alarm rolls the 50 % step back: the 25 % content, with its older stamp, comes back.
    handle.publish("2", deployed[1].clone());
    clock.advance(TimeDelta::seconds(45));
    let view = cache.read().await;
    let (_, status) = view
        .public_flags_for(&in_user)
        .find(|(name, _)| *name == X)
        .unwrap();

    let seen = t("2026-12-01T10:05:45Z");
    assert_eq!(status.rolled_back_at, Some(seen));
    assert_eq!(
        status.consistent_at,
        Some(seen + TimeDelta::seconds(45 + 5)),
        "the rollback's bound (rule 7), though the user's value never changed"
    );
    assert!(!status.consistent);
}
