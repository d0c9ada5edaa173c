//! Fleet mode of the local runner, through its router: round robin with the serving instance
//! named in a header, freeze and thaw (a thawed instance refreshes on its first request when
//! due, and not before), staggered cold starts, the fleet view's read-only peek, the local
//! deployment endpoints, and the static files. Flags come from ministack, the local AppConfig,
//! one session per instance, exactly as the runner reads them; time is a manual clock; feature
//! X's storage is the test kit's in-memory store, so no DynamoDB is needed here (tests/e2e.rs
//! covers DynamoDB Local). A missing ministack venv fails the tests loudly.

use chrono::{DateTime, TimeDelta, Utc};
use lockstep::{Clock, ManualClock, Overrides, Settings};
use lockstep_local::fleet::{FleetOptions, INSTANCE_HEADER};
use lockstep_local::Runner;
use lockstep_testkit::ministack::TestAppConfig;
use lockstep_testkit::MemoryStore;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

mod support;

const DISABLED: &str = r#"{"isFeatureXEnabled": false, "useSubmissionsGsi": false, "lockstepMetadata": {"lastModifiedTimestamp": "2026-11-21T09:00:00Z"}}"#;
const ENABLED_LATER: &str = r#"{"isFeatureXEnabled": true, "useSubmissionsGsi": false, "lockstepMetadata": {"lastModifiedTimestamp": "2026-11-21T10:00:05Z"}}"#;

struct Env {
    runner: Arc<Runner>,
    clock: ManualClock,
    appconfig: TestAppConfig,
}

struct Reply {
    status: u16,
    headers: http::HeaderMap,
    text: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or(Value::Null)
    }

    fn instance(&self) -> &str {
        self.headers
            .get(INSTANCE_HEADER)
            .map(|v| v.to_str().unwrap())
            .unwrap_or("")
    }
}

fn start_time() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-21T10:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

async fn env(flags: &str, fleet: FleetOptions) -> Env {
    let appconfig = support::appconfig(flags).await;
    let clock = ManualClock::new(start_time());
    let settings = Settings {
        poll_interval: Duration::from_secs(15),
        epsilon: Duration::from_secs(5),
        ..Settings::default()
    };
    let runner = Runner::new(
        support::local(&appconfig, &settings),
        settings,
        Overrides::none(),
        Arc::new(clock.clone()),
        Arc::new(MemoryStore::default()),
        None,
        fleet,
    )
    .await
    .unwrap();
    Env {
        runner: Arc::new(runner),
        clock,
        appconfig,
    }
}

fn fleet(instances: usize) -> FleetOptions {
    FleetOptions {
        instances,
        stagger: Duration::ZERO,
    }
}

impl Env {
    async fn send(&self, method: &str, uri: &str, headers: &[(&str, &str)], body: &str) -> Reply {
        let (status, headers, bytes) =
            support::exchange(&self.runner, method, uri, headers, body).await;
        Reply {
            status,
            headers,
            text: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    /// GET `uri`; feature-x routes signed in as `u1`.
    async fn get(&self, uri: &str) -> Reply {
        if uri.starts_with("/feature-x") {
            let auth = support::bearer(&self.runner, "u1");
            return self.send("GET", uri, &[("authorization", &auth)], "").await;
        }
        self.send("GET", uri, &[], "").await
    }

    async fn post(&self, uri: &str, body: &Value) -> Reply {
        self.send(
            "POST",
            uri,
            &[("content-type", "application/json")],
            &body.to_string(),
        )
        .await
    }

    async fn instance_view(&self, name: &str) -> Value {
        let fleet = self.get("/local/fleet").await.json();
        fleet["functions"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|f| f["instances"].as_array().unwrap().clone())
            .find(|i| i["name"] == name)
            .unwrap_or_else(|| panic!("no instance {name}"))
    }

    /// Deploys `flags` as they are, all at once, labelled `label`.
    async fn publish(&self, flags: &str, label: &str) {
        self.appconfig.publish(flags, label).await.unwrap();
    }
}

#[tokio::test]
async fn requests_are_spread_round_robin_and_each_response_names_its_instance() {
    let e = env(DISABLED, fleet(3)).await;

    let mut config = Vec::new();
    let mut feature = Vec::new();
    for _ in 0..6 {
        config.push(e.get("/config").await.instance().to_owned());
        feature.push(
            e.get("/feature-x/submissions?userId=u1")
                .await
                .instance()
                .to_owned(),
        );
    }

    assert_eq!(
        config,
        ["config-1", "config-2", "config-3", "config-1", "config-2", "config-3"]
    );
    assert_eq!(
        feature,
        [
            "feature-x-1",
            "feature-x-2",
            "feature-x-3",
            "feature-x-1",
            "feature-x-2",
            "feature-x-3"
        ],
        "every function answers, 503 included, with its instance named"
    );
}

#[tokio::test]
async fn a_frozen_instance_serves_nothing_and_refreshes_on_its_first_request_after_thawing() {
    let e = env(DISABLED, fleet(2)).await;
    let frozen = e
        .send("POST", "/local/instances/config-2/freeze", &[], "")
        .await;
    e.publish(ENABLED_LATER, "enabled-later").await;
    e.clock.advance(TimeDelta::seconds(40));

    let while_frozen: Vec<Reply> = config_reads(&e, 4).await;
    let view = e.instance_view("config-2").await;
    let thawed = e
        .send("POST", "/local/instances/config-2/thaw", &[], "")
        .await;
    let first_after_thaw = e.get("/config").await;
    let second_after_thaw = e.get("/config").await;

    assert_eq!(frozen.status, 200);
    assert_eq!(frozen.json()["state"], "frozen");
    assert!(while_frozen.iter().all(|r| r.instance() == "config-1"));
    assert!(while_frozen
        .iter()
        .all(|r| r.json()["isFeatureXEnabled"] == true));
    assert_eq!(
        view["flags"]["isFeatureXEnabled"]["value"], false,
        "a frozen instance does not refresh"
    );
    assert_eq!(view["fetchAgeSeconds"], 40.0);
    assert_eq!(view["refreshDue"], true);
    assert_eq!(thawed.json()["state"], "warm");
    let thawed_reply = [&first_after_thaw, &second_after_thaw]
        .into_iter()
        .find(|r| r.instance() == "config-2")
        .expect("config-2 serves again after thawing");
    assert_eq!(
        thawed_reply.json()["isFeatureXEnabled"],
        true,
        "the thawed instance refreshed before deciding"
    );
}

/// Sends `n` `GET /config` one after the other.
async fn config_reads(e: &Env, n: usize) -> Vec<Reply> {
    let mut replies = Vec::new();
    for _ in 0..n {
        replies.push(e.get("/config").await);
    }
    replies
}

#[tokio::test]
async fn when_every_instance_is_frozen_the_next_request_thaws_one() {
    let e = env(DISABLED, fleet(2)).await;
    for name in ["feature-x-1", "feature-x-2"] {
        let reply = e
            .send("POST", &format!("/local/instances/{name}/freeze"), &[], "")
            .await;
        assert_eq!(reply.status, 200);
    }

    let reply = e.get("/feature-x/submissions?userId=u1").await;
    let states: Vec<Value> = vec![
        e.instance_view("feature-x-1").await["state"].clone(),
        e.instance_view("feature-x-2").await["state"].clone(),
    ];

    assert_eq!(reply.status, 503, "the flag is disabled: the gate answers");
    assert!(reply.instance().starts_with("feature-x-"));
    assert_eq!(
        states.iter().filter(|s| *s == "warm").count(),
        1,
        "exactly one instance was thawed: {states:?}"
    );
}

#[tokio::test]
async fn later_instances_cold_start_on_their_staggered_schedule() {
    let e = env(
        DISABLED,
        FleetOptions {
            instances: 2,
            stagger: Duration::from_millis(300),
        },
    )
    .await;

    let before = e.instance_view("config-2").await;
    let served_before: Vec<String> = {
        let mut names = Vec::new();
        for _ in 0..4 {
            names.push(e.get("/config").await.instance().to_owned());
        }
        names
    };
    tokio::time::sleep(Duration::from_millis(600)).await;
    let after = e.instance_view("config-2").await;

    assert_eq!(before["state"], "starting");
    assert!(before["configurationVersion"].is_null());
    assert!(served_before.iter().all(|n| n == "config-1"));
    assert_eq!(after["state"], "warm");
    assert_eq!(
        after["configurationVersion"], "v1",
        "its own session's first fetch"
    );
}

#[tokio::test]
async fn the_fleet_view_reads_without_refreshing() {
    let e = env(DISABLED, fleet(1)).await;
    e.clock.advance(TimeDelta::seconds(20));

    let first = e.instance_view("config-1").await;
    let second = e.instance_view("config-1").await;

    assert_eq!(first["refreshDue"], true);
    assert_eq!(first["fetchedAt"], second["fetchedAt"]);
    assert_eq!(second["fetchAgeSeconds"], 20.0);
}

#[tokio::test]
async fn a_deployment_from_the_fleet_view_is_stamped_and_served_after_p_with_its_consistent_at() {
    let e = env(DISABLED, fleet(1)).await;

    let started = e
        .post(
            "/local/deployments",
            &json!({"flags": {"isFeatureXEnabled": true}, "strategy": "lockstep-all-at-once"}),
        )
        .await;
    e.clock.advance(TimeDelta::seconds(14));
    let before_p = e.get("/config").await.json();
    e.clock.advance(TimeDelta::seconds(1));
    let at_p = e.get("/config").await.json();
    let deployed = e.get("/local/fleet").await.json()["deployed"].clone();

    assert_eq!(started.status, 201, "{}", started.text);
    let flag = &started.json()["flags"]["isFeatureXEnabled"];
    assert_eq!(flag["change"], "changed");
    assert_eq!(flag["lastModifiedTimestamp"], "2026-11-21T10:00:00Z");
    assert_eq!(started.json()["strategy"]["deploymentDurationSeconds"], 0);
    assert_eq!(
        flag["consistentAt"], "2026-11-21T10:00:20Z",
        "T + Δ (AllAtOnce: 0) + P + ε"
    );
    assert_eq!(
        started.json()["flags"]["useSubmissionsGsi"]["change"],
        "kept"
    );
    assert_eq!(before_p["isFeatureXEnabled"], false);
    assert_eq!(at_p["isFeatureXEnabled"], true);
    assert_eq!(at_p["isBackendConsistent"], false);
    assert_eq!(at_p["consistentAt"], "2026-11-21T10:00:20Z");
    assert_eq!(at_p["configurationVersion"], started.json()["versionLabel"]);
    assert_eq!(deployed["flags"]["isFeatureXEnabled"]["value"], true);
    assert_eq!(deployed["deployment"]["state"], "COMPLETE");
}

#[tokio::test]
async fn refused_deployments_answer_400_problem_json_and_deploy_nothing() {
    let e = env(DISABLED, fleet(1)).await;
    let before = e.get("/local/fleet").await.json()["deployed"].clone();
    let cases = [
        json!({"flags": {"isFeatureYEnabled": true}}),
        json!({"flags": {"isFeatureXEnabled": "true"}}),
        json!({"flags": {"isFeatureXEnabled": 1}}),
        json!({"flags": {}}),
        json!({"flags": {"isFeatureXEnabled": true}, "strategy": "canary"}),
        json!({"flags": {"isFeatureXEnabled": true}, "strategy": 5}),
        json!({"flags": {"isFeatureXEnabled": true}, "durationSeconds": 60}),
        json!({"flag": "isFeatureXEnabled"}),
        json!([1]),
    ];

    for body in cases {
        let reply = e.post("/local/deployments", &body).await;
        assert_eq!(reply.status, 400, "{body}: {}", reply.text);
        assert_eq!(reply.headers["content-type"], "application/problem+json");
    }
    let not_json = e
        .send(
            "POST",
            "/local/deployments",
            &[("content-type", "text/plain")],
            "isFeatureXEnabled=true",
        )
        .await;
    let wrong_method = e.get("/local/deployments").await;

    assert_eq!(not_json.status, 415);
    assert_eq!(wrong_method.status, 405);
    let after = e.get("/local/fleet").await.json()["deployed"].clone();
    assert_eq!(after, before, "nothing was deployed");
    assert_eq!(after["deployment"]["deploymentNumber"], 1);
}

#[tokio::test]
async fn a_second_deployment_while_one_is_in_progress_answers_409_and_stop_rolls_it_back() {
    let e = env(DISABLED, fleet(1)).await;
    let linear =
        json!({"flags": {"isFeatureXEnabled": true}, "strategy": "lockstep-linear-25pct-1min"});

    let started = e.post("/local/deployments", &linear).await;
    let second = e
        .post(
            "/local/deployments",
            &json!({"flags": {"useSubmissionsGsi": true}}),
        )
        .await;
    let stopped = e.post("/local/deployments/stop", &json!(null)).await;
    let nothing_to_stop = e.post("/local/deployments/stop", &json!(null)).await;
    let deployed = e.get("/local/fleet").await.json()["deployed"].clone();

    assert_eq!(started.status, 201, "{}", started.text);
    assert_eq!(started.json()["strategy"]["deploymentDurationSeconds"], 60);
    assert_eq!(second.status, 409, "{}", second.text);
    assert!(second.json()["detail"]
        .as_str()
        .unwrap()
        .contains("already in progress"));
    assert_eq!(stopped.status, 200, "{}", stopped.text);
    assert_eq!(stopped.json()["state"], "ROLLED_BACK");
    assert_eq!(nothing_to_stop.status, 409);
    assert_eq!(
        deployed["flags"]["isFeatureXEnabled"]["value"], false,
        "the previous content is deployed"
    );
    assert_eq!(deployed["deployment"]["state"], "ROLLED_BACK");
}

#[tokio::test]
async fn a_cross_origin_page_cannot_drive_the_control_endpoints() {
    let e = env(DISABLED, fleet(1)).await;
    let evil = [
        ("content-type", "application/json"),
        ("origin", "http://evil.example"),
        ("host", "127.0.0.1:3000"),
    ];
    let own = [
        ("content-type", "application/json"),
        ("origin", "http://127.0.0.1:3000"),
        ("host", "127.0.0.1:3000"),
    ];
    let body = json!({"flags": {"isFeatureXEnabled": true}}).to_string();

    let deploy = e.send("POST", "/local/deployments", &evil, &body).await;
    let freeze = e
        .send("POST", "/local/instances/config-1/freeze", &evil, "")
        .await;
    let same_origin = e.send("POST", "/local/deployments", &own, &body).await;

    assert_eq!(deploy.status, 400);
    assert_eq!(freeze.status, 400);
    assert_eq!(e.instance_view("config-1").await["state"], "warm");
    assert_eq!(same_origin.status, 201);
}

#[tokio::test]
async fn a_rebound_name_cannot_read_or_drive_the_control_endpoints() {
    // DNS rebinding: evil.example resolves to 127.0.0.1; the browser sends its own name in Host
    // and a matching Origin, which the same-origin check alone would accept.
    let e = env(DISABLED, fleet(1)).await;
    let rebound = [
        ("content-type", "application/json"),
        ("origin", "http://evil.example:3000"),
        ("host", "evil.example:3000"),
    ];
    let body = json!({"flags": {"isFeatureXEnabled": true}}).to_string();

    let read = e.send("GET", "/local/fleet", &rebound, "").await;
    let deploy = e.send("POST", "/local/deployments", &rebound, &body).await;
    let freeze = e
        .send("POST", "/local/instances/config-1/freeze", &rebound, "")
        .await;
    let localhost = e
        .send("GET", "/local/fleet", &[("host", "localhost:3000")], "")
        .await;

    assert_eq!((read.status, deploy.status, freeze.status), (400, 400, 400));
    assert!(read.text.contains("localhost"), "{}", read.text);
    assert_eq!(e.instance_view("config-1").await["state"], "warm");
    assert_eq!(localhost.status, 200);
}

#[tokio::test]
async fn only_the_listed_web_files_are_served() {
    let e = env(DISABLED, fleet(1)).await;

    let index = e.get("/").await;
    let app = e.get("/app.js").await;
    let fleet_view = e.get("/fleet").await;
    let post = e.send("POST", "/app.js", &[], "").await;

    assert_eq!(index.status, 200);
    assert!(index.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert!(index.text.contains("app.js"));
    assert!(index.headers.contains_key("content-security-policy"));
    assert_eq!(app.status, 200);
    assert!(app.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/javascript"));
    assert_eq!(fleet_view.status, 200);
    assert_eq!(post.status, 405);
    for path in [
        "/../Cargo.toml",
        "/web/index.html",
        "/%2e%2e/Cargo.toml",
        "/fleet/../../Cargo.toml",
        "/local/config/lockstep:local:flags.json",
        "/.lockstep/local/appconfig-endpoint",
        "/app.js.map",
    ] {
        let reply = e.get(path).await;
        assert_eq!(reply.status, 404, "{path}");
        assert_eq!(reply.headers["content-type"], "application/problem+json");
    }
}

#[tokio::test]
async fn every_invocation_writes_one_metrics_document_per_function_read_back_at_local_metrics() {
    let e = env(DISABLED, fleet(2)).await;
    let before = e.clock.now_millis();
    e.clock.advance(TimeDelta::seconds(1));
    for _ in 0..2 {
        assert_eq!(e.get("/config").await.status, 200);
    }
    let closed = e
        .send(
            "POST",
            "/feature-x/submissions",
            &[
                ("authorization", &support::bearer(&e.runner, "u1")),
                ("content-type", "application/json"),
            ],
            r#"{"userId":"u1","journeyId":"j1","plan":"basic","quantity":1}"#,
        )
        .await;
    assert_eq!(closed.status, 503);

    let reply = e.get(&format!("/local/metrics?after={before}")).await;
    assert_eq!(reply.status, 200);
    let documents = reply.json();
    let documents = documents.as_array().unwrap();
    assert_eq!(documents.len(), 3, "one per invocation: {documents:?}");
    for document in documents {
        let text = document.to_string();
        lockstep_testkit::emf_spec::check(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
        assert!(!text.contains("\"u1\""), "no user id: {text}");
    }
    let config: Vec<&Value> = documents
        .iter()
        .filter(|d| d["function_name"] == "config")
        .collect();
    assert_eq!(config.len(), 2);
    assert!(
        config.iter().all(|d| d["ColdStart"] == 1),
        "two instances, each its cold start in its first document"
    );
    let feature_x = documents
        .iter()
        .find(|d| d["function_name"] == "feature-x")
        .unwrap();
    assert_eq!(feature_x["GateDisabled"], 1);
    assert_eq!(feature_x["Http5xx"], 1);
    // The route dimension is the template's route key, as API Gateway passes it.
    assert_eq!(feature_x["route"], "POST /feature-x/submissions");
    assert!(config.iter().all(|d| d["route"] == "GET /config"));

    assert_eq!(
        e.get("/local/metrics?after=soon").await.status,
        400,
        "a timestamp that is not a number is refused"
    );
    let none = e
        .get(&format!("/local/metrics?after={}", e.clock.now_millis()))
        .await;
    assert_eq!(none.json(), json!([]));
}
