//! The local alarm loop (docs/local.md, "Alarms"), end to end through the runner: the
//! template's alarms are created in ministack's CloudWatch and made the AppConfig environment's
//! monitors; `Runner::check_alarms` evaluates them on the instances' EMF documents at the
//! runner's clock and pushes each change of state; ministack's AppConfig rolls a baking
//! deployment back when one goes to ALARM, and the instances serve the old value after their
//! next poll.
//!
//! Two clocks: the runner's instances stamp their documents with the runner's (manual) clock, so
//! the test decides which 60-second periods are complete; ministack's deployments progress on
//! wall time, so the deployment under test bakes for 2 minutes of wall time
//! (`lockstep-all-at-once-bake-2min`), far longer than the test runs. Feature X's storage is the
//! test kit's in-memory store, made to fail. A missing ministack venv fails the tests loudly.

use aws_sdk_appconfig::types::{DeploymentEventType, DeploymentState, TriggeredBy};
use chrono::{DateTime, TimeDelta, Utc};
use lockstep::{Clock, ManualClock, Overrides, Settings};
use lockstep_local::fleet::FleetOptions;
use lockstep_local::Runner;
use lockstep_testkit::ministack::TestAppConfig;
use lockstep_testkit::MemoryStore;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

mod support;

const DISABLED: &str = r#"{"isFeatureXEnabled": false, "useSubmissionsGsi": false, "lockstepMetadata": {"lastModifiedTimestamp": "2026-11-21T09:00:00Z"}}"#;
const INSTANCES: usize = 2;
const ALARMS: [&str; 5] = [
    "FeatureXServerErrorsAlarm",
    "FeatureXStorageErrorsAlarm",
    "GateBehindAlarm",
    "GateDrainEndedAlarm",
    "DegradedAlarm",
];

struct Env {
    runner: Arc<Runner>,
    clock: ManualClock,
    store: Arc<MemoryStore>,
    appconfig: TestAppConfig,
    cloudwatch: aws_sdk_cloudwatch::Client,
}

/// 10:00:00, the start of a minute: the runner's periods are the clock's minutes.
fn start_time() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-21T10:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

async fn env() -> Env {
    env_at(start_time()).await
}

/// The runner with its clock at `start` (the start of a minute: its alarm periods are the clock's
/// minutes).
async fn env_at(start: DateTime<Utc>) -> Env {
    let appconfig = support::appconfig(DISABLED).await;
    let clock = ManualClock::new(start);
    let settings = Settings {
        poll_interval: Duration::from_secs(15),
        epsilon: Duration::from_secs(5),
        ..Settings::default()
    };
    let store = Arc::new(MemoryStore::new());
    let runner = Runner::new(
        support::local(&appconfig, &settings),
        settings,
        Overrides::none(),
        Arc::new(clock.clone()),
        store.clone(),
        None,
        FleetOptions {
            instances: INSTANCES,
            stagger: Duration::ZERO,
        },
    )
    .await
    .unwrap();
    let cloudwatch = support::cloudwatch(&appconfig.stack.endpoint);
    Env {
        runner: Arc::new(runner),
        clock,
        store,
        appconfig,
        cloudwatch,
    }
}

impl Env {
    async fn send(&self, method: &str, uri: &str, body: &str) -> (u16, Value) {
        let auth = support::bearer(&self.runner, "u1");
        let headers = [
            ("content-type", "application/json"),
            ("authorization", auth.as_str()),
        ];
        let (status, _, bytes) = support::exchange(&self.runner, method, uri, &headers, body).await;
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    async fn fleet(&self) -> Value {
        self.send("GET", "/local/fleet", "").await.1
    }

    /// Each alarm's state in ministack's CloudWatch, and its ARN.
    async fn in_cloudwatch(&self) -> BTreeMap<String, (String, String)> {
        let described = self.cloudwatch.describe_alarms().send().await.unwrap();
        described
            .metric_alarms()
            .iter()
            .map(|a| {
                (
                    a.alarm_name().unwrap().to_owned(),
                    (
                        a.state_value().unwrap().as_str().to_owned(),
                        a.alarm_arn().unwrap().to_owned(),
                    ),
                )
            })
            .collect()
    }

    /// One request to every instance (round robin): `/config`, and a listing of feature X
    /// (each refreshes first when its configuration is P old).
    async fn touch_every_instance(&self) {
        for _ in 0..INSTANCES {
            self.send("GET", "/config", "").await;
            self.send("GET", "/feature-x/submissions", "").await;
        }
    }

    /// `isFeatureXEnabled` as every instance holds it, read without refreshing.
    async fn held_by_every_instance(&self) -> Vec<(String, Value)> {
        self.fleet().await["functions"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|f| f["instances"].as_array().unwrap().clone())
            .map(|i| {
                let name = i["name"].as_str().unwrap().to_owned();
                (name, i["flags"]["isFeatureXEnabled"]["value"].clone())
            })
            .collect()
    }
}

fn states(statuses: &[lockstep_local::alarms::watch::AlarmStatus]) -> Vec<(String, &str)> {
    statuses
        .iter()
        .map(|s| (s.name.clone(), s.state.as_str()))
        .collect()
}

#[tokio::test]
async fn storage_failing_during_a_baking_deployment_fires_the_storage_alarm_and_ministack_rolls_it_back(
) {
    let e = env().await;
    e.runner.check_alarms().await;
    let deploy =
        json!({"flags": {"isFeatureXEnabled": true}, "strategy": "lockstep-all-at-once-bake-2min"});
    let (status, started) = e
        .send("POST", "/local/deployments", &deploy.to_string())
        .await;
    assert_eq!(status, 201, "{started}");
    let number = started["deploymentNumber"].as_i64().unwrap() as i32;
    e.clock.advance(TimeDelta::seconds(15));
    e.touch_every_instance().await;
    let enabled = e.held_by_every_instance().await;

    e.store.set_failing(true);
    let mut answers = Vec::new();
    for i in 0..3 {
        let body = json!({"journeyId": format!("journey-{i}"), "plan": "basic", "quantity": 1});
        answers.push(
            e.send("POST", "/feature-x/submissions", &body.to_string())
                .await
                .0,
        );
    }
    let within_the_minute = e.runner.check_alarms().await;
    let baking = e.fleet().await["deployed"]["deployment"]["state"].clone();
    e.clock.advance(TimeDelta::seconds(45));
    let after_the_minute = e.runner.check_alarms().await;
    let fleet = e.fleet().await;
    let deployment = e
        .appconfig
        .control
        .get_deployment()
        .application_id(&e.appconfig.layout.application)
        .environment_id(&e.appconfig.layout.environment)
        .deployment_number(number)
        .send()
        .await
        .unwrap();
    let before_polling = e.held_by_every_instance().await;
    e.clock.advance(TimeDelta::seconds(15));
    e.touch_every_instance().await;
    let after_polling = e.held_by_every_instance().await;

    assert!(
        enabled.iter().all(|(_, value)| *value == true),
        "every instance had the new value: {enabled:?}"
    );
    assert_eq!(answers, [503, 503, 503], "the storage failed each time");
    assert_eq!(e.store.writes(), 0, "nothing was half-written");
    assert_eq!(baking, "BAKING");
    assert!(
        within_the_minute.iter().all(|s| s.state.as_str() == "OK"),
        "the minute with the failures is not complete yet: {within_the_minute:?}"
    );
    let expected: Vec<(String, &str)> = ALARMS
        .iter()
        .map(|name| {
            let state = if *name == "FeatureXStorageErrorsAlarm" {
                "ALARM"
            } else {
                "OK"
            };
            (name.to_string(), state)
        })
        .collect();
    assert_eq!(states(&after_the_minute), expected);
    let fired = &after_the_minute[1];
    assert_eq!(fired.since, start_time() + TimeDelta::seconds(60));
    assert!(
        fired.reason.contains("[3 (10:00:00)]"),
        "the reason names the datapoint: {}",
        fired.reason
    );
    let shown = &fleet["alarms"][1];
    assert_eq!(shown["name"], "FeatureXStorageErrorsAlarm");
    assert_eq!(shown["state"], "ALARM");
    assert_eq!(shown["since"], "2026-11-21T10:01:00Z");
    let arn = e.in_cloudwatch().await["FeatureXStorageErrorsAlarm"]
        .1
        .clone();
    assert_eq!(deployment.state(), Some(&DeploymentState::RolledBack));
    let rollback = deployment
        .event_log()
        .iter()
        .find(|event| event.event_type() == Some(&DeploymentEventType::RollbackStarted))
        .expect("a rollback event");
    assert_eq!(rollback.triggered_by(), Some(&TriggeredBy::CloudwatchAlarm));
    assert_eq!(
        rollback.description(),
        Some(format!("Rollback initiated by {arn}").as_str())
    );
    assert!(
        before_polling.iter().all(|(_, value)| *value == true),
        "no instance knows before it polls (rule 7): {before_polling:?}"
    );
    assert_eq!(after_polling.len(), 2 * INSTANCES);
    assert!(
        after_polling.iter().all(|(_, value)| *value == false),
        "within P of the rollback every instance serves the old value: {after_polling:?}"
    );
}

#[tokio::test]
async fn an_idle_runner_leaves_every_alarm_ok() {
    let e = env().await;

    let first = e.runner.check_alarms().await;
    e.touch_every_instance().await;
    e.clock.advance(TimeDelta::minutes(3));
    e.touch_every_instance().await;
    let later = e.runner.check_alarms().await;
    let in_cloudwatch = e.in_cloudwatch().await;

    let all_ok: Vec<(String, &str)> = ALARMS.iter().map(|n| (n.to_string(), "OK")).collect();
    assert_eq!(states(&first), all_ok);
    assert_eq!(states(&later), all_ok);
    assert!(
        later.iter().all(|s| s.since == start_time()),
        "nothing changed after the first check: {later:?}"
    );
    for name in ALARMS {
        assert_eq!(in_cloudwatch[name].0, "OK", "{name} in ministack");
    }
}

#[tokio::test]
async fn the_fleet_view_shows_every_alarm_with_its_state_since_and_reason() {
    let e = env().await;

    let unchecked = e.fleet().await["alarms"].clone();
    e.clock.advance(TimeDelta::seconds(30));
    e.runner.check_alarms().await;
    let checked = e.fleet().await;

    let names: Vec<&str> = unchecked
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ALARMS);
    assert!(unchecked
        .as_array()
        .unwrap()
        .iter()
        .all(|a| a["state"] == "INSUFFICIENT_DATA"));
    for alarm in checked["alarms"].as_array().unwrap() {
        assert_eq!(alarm["state"], "OK", "{alarm}");
        assert_eq!(alarm["since"], checked["serverTime"], "{alarm}");
        assert!(
            alarm["reason"]
                .as_str()
                .unwrap()
                .starts_with("0 of the last"),
            "{alarm}"
        );
    }
}

/// The `lockstep` command-line tool next to this test's binary: `cargo test --workspace` builds
/// it (its own package's tests need it); a run of this test alone must build it first.
fn lockstep_cli() -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    let cli = exe
        .parent()
        .and_then(|deps| deps.parent())
        .map(|dir| dir.join("lockstep"))
        .unwrap();
    assert!(
        cli.is_file(),
        "{} is missing: run `cargo build -p lockstep-cli --bin lockstep` (cargo test --workspace does)",
        cli.display()
    );
    cli
}

/// The whole loop a pipeline meets, as one story (issue 22): `lockstep deploy --wait` enables
/// feature X with a strategy that bakes; submissions succeed; then feature X's storage fails; the
/// template's storage alarm fires on the instances' own metrics; ministack rolls the deployment
/// back; the command exits 1 naming the alarm; within P of the rollback every instance serves the
/// old value, and each config instance reports the rollback with the documented bound
/// (`rolledBackAt` + P + ε); no accepted submission is lost and no refused one half-written.
///
/// The runner's clock starts at the next whole minute of wall time, so the stamp the command
/// makes (wall time, as in a pipeline) is before every instance's clock.
#[tokio::test]
async fn lockstep_deploy_wait_exits_1_naming_the_alarm_that_rolled_back_a_deployment_whose_storage_failed(
) {
    let now = Utc::now();
    let start = DateTime::from_timestamp(now.timestamp() - now.timestamp() % 60 + 60, 0).unwrap();
    let e = env_at(start).await;
    e.runner.check_alarms().await;
    let endpoint = e.appconfig.stack.endpoint.clone();
    let cli = lockstep_cli();
    let command = tokio::task::spawn_blocking(move || {
        std::process::Command::new(cli)
            .args([
                "deploy",
                "--application",
                "lockstep",
                "--environment",
                "local",
                "--profile",
                "flags",
                "--strategy",
                "lockstep-all-at-once-bake-2min",
                "--set",
                "isFeatureXEnabled=true",
                "--wait",
                "--json",
            ])
            .env("AWS_ENDPOINT_URL", endpoint)
            .env("AWS_ACCESS_KEY_ID", "local")
            .env("AWS_SECRET_ACCESS_KEY", "local")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_APPCONFIG_EXTENSION_POLL_INTERVAL_SECONDS", "15")
            .env("LOCKSTEP_EPSILON_SECONDS", "5")
            .output()
            .unwrap()
    });

    // The deployment bakes (its content is what a fresh session gets) ...
    let mut waited = 0;
    let number = loop {
        let listed = e
            .appconfig
            .control
            .list_deployments()
            .application_id(&e.appconfig.layout.application)
            .environment_id(&e.appconfig.layout.environment)
            .send()
            .await
            .unwrap();
        let baking = listed
            .items()
            .iter()
            .find(|d| d.state() == Some(&DeploymentState::Baking));
        if let Some(deployment) = baking {
            break deployment.deployment_number();
        }
        assert!(waited < 600, "the command's deployment never baked");
        waited += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // ... and every instance takes it at its next poll; users submit.
    e.clock.advance(TimeDelta::seconds(15));
    e.touch_every_instance().await;
    let enabled = e.held_by_every_instance().await;
    let mut accepted = Vec::new();
    for i in 0..2 {
        let body = json!({"journeyId": format!("before-{i}"), "plan": "basic", "quantity": 1});
        let (status, answer) = e
            .send("POST", "/feature-x/submissions", &body.to_string())
            .await;
        assert_eq!(status, 201, "{answer}");
        accepted.push(answer["id"].as_str().unwrap().to_owned());
    }

    // The storage fails: the alarm's minute completes, the runner pushes ALARM, ministack rolls
    // the deployment back, and the command reports it.
    e.store.set_failing(true);
    let mut refused = Vec::new();
    for i in 0..3 {
        let body = json!({"journeyId": format!("during-{i}"), "plan": "basic", "quantity": 1});
        refused.push(
            e.send("POST", "/feature-x/submissions", &body.to_string())
                .await
                .0,
        );
    }
    e.clock.advance(TimeDelta::seconds(45));
    let checked = e.runner.check_alarms().await;
    let rolled_back_at = e.clock.now();
    let output = command.await.unwrap();
    let arn = e.in_cloudwatch().await["FeatureXStorageErrorsAlarm"]
        .1
        .clone();

    // Within P of the rollback every instance has polled again.
    e.clock.advance(TimeDelta::seconds(15));
    let mut configs = Vec::new();
    for _ in 0..INSTANCES {
        configs.push(e.send("GET", "/config", "").await);
        e.send("GET", "/feature-x/submissions", "").await;
    }
    let after_polling = e.held_by_every_instance().await;
    e.store.set_failing(false);
    let body = json!({"journeyId": "after-0", "plan": "basic", "quantity": 1});
    let after_rollback = e
        .send("POST", "/feature-x/submissions", &body.to_string())
        .await
        .0;

    assert!(
        enabled.iter().all(|(_, value)| *value == true),
        "every instance had the new value: {enabled:?}"
    );
    assert_eq!(refused, [503, 503, 503], "the storage failed each time");
    let fired: Vec<_> = checked
        .iter()
        .filter(|s| s.state.as_str() == "ALARM")
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(fired, ["FeatureXStorageErrorsAlarm"]);

    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stderr.contains(&format!(
            "deployment {number} was rolled back by alarm \"FeatureXStorageErrorsAlarm\" ({arn})"
        )),
        "{stderr}"
    );
    let rollback: Value =
        serde_json::from_str(&stdout[stdout.rfind("\n{").unwrap() + 1..]).unwrap();
    assert_eq!(rollback["state"], "ROLLED_BACK");
    assert_eq!(
        rollback["rolledBackBy"]["alarmName"],
        "FeatureXStorageErrorsAlarm"
    );

    assert_eq!(after_polling.len(), 2 * INSTANCES);
    assert!(
        after_polling.iter().all(|(_, value)| *value == false),
        "within P of the rollback every instance serves the old value: {after_polling:?}"
    );
    let p_and_epsilon = TimeDelta::seconds(15 + 5);
    for (status, config) in &configs {
        assert_eq!(*status, 200, "{config}");
        let flag = &config["flags"]["isFeatureXEnabled"];
        assert_eq!(flag["value"], false, "{config}");
        let seen: DateTime<Utc> = flag["rolledBackAt"].as_str().unwrap().parse().unwrap();
        let consistent: DateTime<Utc> = flag["consistentAt"].as_str().unwrap().parse().unwrap();
        assert!(
            seen >= rolled_back_at && seen <= e.clock.now(),
            "the rollback is seen at the poll after it: {config}"
        );
        assert_eq!(consistent, seen + p_and_epsilon, "{config}");
        assert_eq!(config["rolledBackAt"], flag["rolledBackAt"], "{config}");
    }

    assert_eq!(
        after_rollback, 503,
        "feature X is off again: the gate refuses"
    );
    // The same manual-clock millisecond: the ids' order is their random part's.
    let mut stored: Vec<String> = e.store.all().into_iter().map(|s| s.id).collect();
    stored.sort();
    accepted.sort();
    assert_eq!(
        stored, accepted,
        "every accepted submission is kept, nothing else written"
    );
    assert_eq!(e.store.writes(), 2);
}
