//! Gradual deployments reaching the runner's instances through ministack, in real time: a
//! LINEAR deployment over 60 s reaches the fleet session by session (mid-rollout the fleet holds
//! two versions), `/config`'s `consistentAt` is T + Δ(strategy) + P + ε, and after it every
//! instance serves the new value; a deployment stopped mid-way rolls back on every instance
//! within the documented rule-7 bound (P after the rollback). Each test starts its own
//! ministack; they take about 90 s and 40 s of wall time, side by side.

use chrono::{DateTime, TimeDelta, Utc};
use lockstep::{Overrides, Settings, SystemClock};
use lockstep_local::fleet::{FleetOptions, INSTANCE_HEADER};
use lockstep_local::Runner;
use lockstep_testkit::MemoryStore;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

mod support;

const INSTANCES: usize = 8;
const P: i64 = 15;
const EPSILON: i64 = 5;
const DISABLED: &str = r#"{"isFeatureXEnabled": false, "useSubmissionsGsi": false, "lockstepMetadata": {"lastModifiedTimestamp": "2026-11-21T09:00:00Z", "deploymentDurationSeconds": 0}}"#;

async fn runner(appconfig: &lockstep_testkit::ministack::TestAppConfig) -> Arc<Runner> {
    let settings = Settings {
        poll_interval: Duration::from_secs(P as u64),
        epsilon: Duration::from_secs(EPSILON as u64),
        ..Settings::default()
    };
    let runner = Runner::new(
        support::local(appconfig, &settings),
        settings,
        Overrides::none(),
        Arc::new(SystemClock),
        Arc::new(MemoryStore::new()),
        None,
        FleetOptions {
            instances: INSTANCES,
            stagger: Duration::ZERO,
        },
    )
    .await
    .unwrap();
    Arc::new(runner)
}

async fn post(runner: &Arc<Runner>, uri: &str, body: &Value) -> (u16, Value) {
    let (status, _, bytes) = support::exchange(
        runner,
        "POST",
        uri,
        &[("content-type", "application/json")],
        &body.to_string(),
    )
    .await;
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// One `/config` per instance (round robin): instance → (version, isFeatureXEnabled, consistent).
async fn round(runner: &Arc<Runner>) -> BTreeMap<String, (String, bool, bool)> {
    let mut seen = BTreeMap::new();
    for _ in 0..INSTANCES {
        let (status, headers, bytes) = support::exchange(runner, "GET", "/config", &[], "").await;
        assert_eq!(status, 200);
        let body: Value = serde_json::from_slice(&bytes).unwrap();
        let instance = headers[INSTANCE_HEADER].to_str().unwrap().to_owned();
        seen.insert(
            instance,
            (
                body["configurationVersion"].as_str().unwrap().to_owned(),
                body["isFeatureXEnabled"].as_bool().unwrap(),
                body["isBackendConsistent"].as_bool().unwrap(),
            ),
        );
    }
    assert_eq!(seen.len(), INSTANCES, "round robin reached every instance");
    seen
}

fn at(value: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(value.as_str().unwrap())
        .unwrap()
        .with_timezone(&Utc)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_linear_deployment_reaches_the_fleet_gradually_and_every_instance_after_consistent_at() {
    let appconfig = support::appconfig(DISABLED).await;
    let runner = runner(&appconfig).await;

    let (status, started) = post(
        &runner,
        "/local/deployments",
        &json!({"flags": {"isFeatureXEnabled": true}, "strategy": "lockstep-linear-25pct-1min"}),
    )
    .await;
    assert_eq!(status, 201, "{started}");
    let t = at(&started["lastModifiedTimestamp"]);
    let consistent_at = at(&started["flags"]["isFeatureXEnabled"]["consistentAt"]);
    let new_version = started["versionLabel"].as_str().unwrap().to_owned();

    let mut mixed_rounds = 0;
    let mut config_consistent_at = None;
    while Utc::now() < consistent_at + TimeDelta::seconds(2) {
        let seen = round(&runner).await;
        let versions: BTreeSet<&String> = seen.values().map(|(v, ..)| v).collect();
        if versions.len() == 2 {
            mixed_rounds += 1;
        }
        // No instance vouches for the new value before consistentAt.
        for (instance, (version, enabled, consistent)) in &seen {
            if *version == new_version && Utc::now() < consistent_at {
                assert!(*enabled);
                assert!(
                    !consistent,
                    "{instance} reported consistent before consistentAt"
                );
            }
        }
        if config_consistent_at.is_none() {
            let (_, _, bytes) = support::exchange(&runner, "GET", "/config", &[], "").await;
            let body: Value = serde_json::from_slice(&bytes).unwrap();
            if body["configurationVersion"] == new_version.as_str() {
                config_consistent_at = Some(at(&body["consistentAt"]));
            }
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    let after = round(&runner).await;

    assert_eq!(
        started["strategy"]["deploymentDurationSeconds"], 60,
        "Δ is the strategy's own duration"
    );
    assert_eq!(consistent_at, t + TimeDelta::seconds(60 + P + EPSILON));
    assert_eq!(
        config_consistent_at,
        Some(consistent_at),
        "/config reports the same consistentAt"
    );
    assert!(
        mixed_rounds > 0,
        "mid-rollout the fleet held two versions at once"
    );
    for (instance, (version, enabled, consistent)) in &after {
        assert_eq!(version, &new_version, "{instance}");
        assert!(*enabled, "{instance}");
        assert!(*consistent, "{instance}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_deployment_rolls_back_on_every_instance_within_p() {
    let appconfig = support::appconfig(DISABLED).await;
    let runner = runner(&appconfig).await;
    let (status, started) = post(
        &runner,
        "/local/deployments",
        &json!({"flags": {"isFeatureXEnabled": true}, "strategy": "lockstep-linear-25pct-1min"}),
    )
    .await;
    assert_eq!(status, 201, "{started}");
    let new_version = started["versionLabel"].as_str().unwrap().to_owned();
    // Until some instance serves the new version (the first 25 % step comes at 15 s).
    let reached = loop {
        let seen = round(&runner).await;
        if seen.values().any(|(v, ..)| *v == new_version) {
            break seen;
        }
        assert!(Utc::now() < at(&started["lastModifiedTimestamp"]) + TimeDelta::seconds(75));
        tokio::time::sleep(Duration::from_secs(1)).await;
    };

    let (status, stopped) = post(&runner, "/local/deployments/stop", &json!(null)).await;
    let rolled_back_at = Utc::now();
    assert_eq!(status, 200, "{stopped}");
    assert_eq!(stopped["state"], "ROLLED_BACK");
    let mut last_new = rolled_back_at;
    while Utc::now() < rolled_back_at + TimeDelta::seconds(P + 2) {
        let seen = round(&runner).await;
        if seen.values().any(|(v, ..)| *v == new_version) {
            last_new = Utc::now();
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let after = round(&runner).await;

    assert!(reached.values().any(|(_, enabled, _)| *enabled));
    // Rule 7: an instance that polled before the rollback holds the rolled-back value until its
    // next poll, at most P (plus one fetch) after the rollback.
    assert!(
        last_new - rolled_back_at <= TimeDelta::seconds(P + 1),
        "an instance served the rolled-back version {} s after the rollback",
        (last_new - rolled_back_at).num_seconds()
    );
    for (instance, (version, enabled, _)) in &after {
        assert_eq!(
            version, "v1",
            "{instance} serves the previous content again"
        );
        assert!(!enabled, "{instance}");
    }
}
