//! End to end through the local runner's router (HTTP in, HTTP out) against DynamoDB Local and
//! ministack (the local AppConfig, read through the real AppConfigData client), which each test
//! starts on free ports. A missing Java, `npm ci` or ministack venv fails the test loudly. The
//! `events/` fixtures (API Gateway HTTP API payload v2) run through the same handlers.

use chrono::{DateTime, TimeDelta, Utc};
use lockstep::durable::{DynamoSnapshots, SnapshotStore};
use lockstep::{ManualClock, Overrides, Settings};
use lockstep_local::fleet::FleetOptions;
use lockstep_local::Runner;
use lockstep_sample::dynamo::DynamoStore;
use lockstep_testkit::dynamo_local::{client, ensure_snapshot_table, ensure_table, DynamoLocal};
use lockstep_testkit::ministack::{appconfigdata_client, TestAppConfig};
use serde_json::{json, Value};
use std::path::Path;
use std::sync::Arc;

mod support;

const TABLE: &str = "submissions";
const ENABLED: &str = r#"{"isFeatureXEnabled": true, "useSubmissionsGsi": true, "lockstepMetadata": {"lastModifiedTimestamp": "2026-11-21T09:00:00Z"}}"#;
const DISABLED: &str = r#"{"isFeatureXEnabled": false, "useSubmissionsGsi": true, "lockstepMetadata": {"lastModifiedTimestamp": "2026-11-21T10:00:01Z"}}"#;

struct Env {
    _dynamo: DynamoLocal,
    db: aws_sdk_dynamodb::Client,
    appconfig: TestAppConfig,
    runner: Arc<Runner>,
    clock: ManualClock,
}

fn settings() -> Settings {
    Settings {
        poll_interval: std::time::Duration::from_secs(15),
        ..Settings::default()
    }
}

async fn env(flags: &str, overrides: Overrides) -> Env {
    let dynamo = DynamoLocal::start_from(Path::new(env!("CARGO_MANIFEST_DIR")), &[])
        .await
        .expect("DynamoDB Local must start (Java 17 and `npm ci` in the project root)");
    let db = client(&dynamo.endpoint);
    ensure_table(&db, TABLE, true).await.unwrap();
    let appconfig = support::appconfig(flags).await;
    let clock = ManualClock::new(
        DateTime::parse_from_rfc3339("2026-11-21T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc),
    );
    let runner = Runner::new(
        support::local(&appconfig, &settings()),
        settings(),
        overrides,
        Arc::new(clock.clone()),
        Arc::new(DynamoStore::new(db.clone(), TABLE)),
        None,
        FleetOptions::single(),
    )
    .await
    .unwrap();
    Env {
        _dynamo: dynamo,
        db,
        appconfig,
        runner: Arc::new(runner),
        clock,
    }
}

struct Reply {
    status: u16,
    headers: http::HeaderMap,
    body: Value,
}

impl Env {
    async fn send(&self, method: &str, uri: &str, headers: &[(&str, &str)], body: &str) -> Reply {
        let (status, headers, bytes) =
            support::exchange(&self.runner, method, uri, headers, body).await;
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap()
        };
        Reply {
            status,
            headers,
            body,
        }
    }

    /// `send` signed in as `user` (a bearer token of the runner's local issuer).
    async fn send_as(
        &self,
        user: &str,
        method: &str,
        uri: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Reply {
        let auth = support::bearer(&self.runner, user);
        let mut headers = headers.to_vec();
        headers.push(("authorization", &auth));
        self.send(method, uri, &headers, body).await
    }

    /// Creates `body`, signed in as the user it names.
    async fn submit(&self, key: Option<&str>, body: &Value) -> Reply {
        let mut headers = vec![("content-type", "application/json")];
        if let Some(key) = key {
            headers.push(("idempotency-key", key));
        }
        let user = body["userId"].as_str().expect("the body names its user");
        self.send_as(
            user,
            "POST",
            "/feature-x/submissions",
            &headers,
            &body.to_string(),
        )
        .await
    }

    /// Items in the table whose sort key starts with `prefix`, consistently read.
    async fn count(&self, prefix: &str) -> usize {
        let mut total = 0;
        let mut start = None;
        loop {
            let out = self
                .db
                .scan()
                .table_name(TABLE)
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .unwrap();
            total += out
                .items()
                .iter()
                .filter(|i| {
                    i.get("sk")
                        .and_then(|v| v.as_s().ok())
                        .is_some_and(|sk| sk.starts_with(prefix))
                })
                .count();
            match out.last_evaluated_key {
                Some(k) => start = Some(k),
                None => return total,
            }
        }
    }
}

/// Method, path, headers, body, expected status.
type BadCase<'a> = (&'a str, &'a str, Vec<(&'a str, &'a str)>, String, u16);

fn submission(user: &str, n: u32) -> Value {
    json!({"userId": user, "journeyId": "journey-1", "plan": "basic", "quantity": (n % 10) + 1})
}

#[tokio::test]
async fn the_config_route_shows_the_public_flags_and_consistency() {
    let e = env(ENABLED, Overrides::none()).await;

    let reply = e.send("GET", "/config", &[], "").await;

    assert_eq!(reply.status, 200);
    assert_eq!(reply.headers["cache-control"], "no-store");
    assert_eq!(reply.body["isFeatureXEnabled"], true);
    assert_eq!(reply.body["isBackendConsistent"], true);
    assert_eq!(reply.body["pollIntervalSeconds"], 15);
    assert!(reply.body["flags"].get("useSubmissionsGsi").is_none());
}

#[tokio::test]
async fn a_force_override_closes_the_gate_with_503_problem_json_and_writes_nothing() {
    let catalog = lockstep_sample::product::catalog();
    let overrides = Overrides::from_vars(
        &catalog,
        &[("FORCE_IS_FEATURE_X_ENABLED".into(), "false".into())],
    )
    .unwrap();
    let e = env(ENABLED, overrides).await;

    let reply = e.submit(Some("k1"), &submission("u1", 1)).await;
    let config = e.send("GET", "/config", &[], "").await;

    assert_eq!(reply.status, 503);
    assert_eq!(reply.headers["content-type"], "application/problem+json");
    assert_eq!(reply.headers["retry-after"], "15");
    assert_eq!(reply.body["flag"], "isFeatureXEnabled");
    assert_eq!(e.count("").await, 0);
    assert_eq!(config.body["isFeatureXEnabled"], false);
    assert_eq!(config.body["flags"]["isFeatureXEnabled"]["forced"], true);
}

#[tokio::test]
async fn a_deployment_closes_the_gate_after_p_and_not_before() {
    let e = env(ENABLED, Overrides::none()).await;
    let first = e.submit(None, &submission("u1", 1)).await;
    e.appconfig.publish(DISABLED, "disabled").await.unwrap();

    e.clock.advance(TimeDelta::seconds(14));
    let before_p = e.submit(None, &submission("u1", 2)).await;
    e.clock.advance(TimeDelta::seconds(1));
    let at_p = e.submit(None, &submission("u1", 3)).await;

    assert_eq!(first.status, 201);
    assert_eq!(
        before_p.status, 201,
        "within P the instance still holds the enabled value"
    );
    assert_eq!(
        at_p.status, 503,
        "at P the instance refreshes before deciding"
    );
    assert_eq!(e.count("SUB#").await, 2);
}

#[tokio::test]
async fn an_idempotent_retry_returns_the_same_submission_and_stores_one_item() {
    let e = env(ENABLED, Overrides::none()).await;

    let first = e.submit(Some("retry-1"), &submission("u1", 1)).await;
    let retry = e.submit(Some("retry-1"), &submission("u1", 1)).await;
    let reused = e.submit(Some("retry-1"), &submission("u1", 5)).await;
    let id = first.body["id"].as_str().unwrap().to_owned();
    let fetched = e
        .send_as(
            "u1",
            "GET",
            &format!("/feature-x/submissions/{id}"),
            &[],
            "",
        )
        .await;

    assert_eq!(first.status, 201);
    assert_eq!(retry.status, 200);
    assert_eq!(retry.body, first.body);
    assert_eq!(
        reused.status, 409,
        "a key reused with another body is refused"
    );
    assert_eq!(fetched.body, first.body);
    assert_eq!(e.count("SUB#").await, 1);
}

#[tokio::test]
async fn feature_x_needs_a_valid_token_while_config_stays_public() {
    let e = env(ENABLED, Overrides::none()).await;
    let now = lockstep_local::auth::now_seconds();
    let expired = format!(
        "Bearer {}",
        e.runner.auth().issue_between("u1", now - 7200, now - 3600)
    );
    // Another issuer's key pair (another run of the runner): its kid and signature are unknown.
    let foreign = format!(
        "Bearer {}",
        lockstep_local::auth::LocalAuth::generate()
            .unwrap()
            .issue("u1")
    );
    let good = e.runner.auth().issue("u1");
    let parts: Vec<&str> = good.split('.').collect();
    // The same header and signature over claims naming another user.
    let swapped = {
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        use base64::Engine as _;
        let claims = String::from_utf8(URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        assert!(claims.contains(r#""sub":"u1""#));
        let other = URL_SAFE_NO_PAD.encode(claims.replace(r#""sub":"u1""#, r#""sub":"u2""#));
        format!("Bearer {}.{other}.{}", parts[0], parts[2])
    };
    let body = submission("u1", 1).to_string();
    let json_ct = ("content-type", "application/json");
    for auth in [
        None,
        Some("Bearer"),
        Some("Basic dTE6cA=="),
        Some(expired.as_str()),
        Some(foreign.as_str()),
        Some(swapped.as_str()),
    ] {
        let mut headers = vec![json_ct];
        if let Some(auth) = auth {
            headers.push(("authorization", auth));
        }
        for (method, uri) in [
            ("POST", "/feature-x/submissions"),
            ("GET", "/feature-x/submissions"),
            ("GET", "/feature-x/submissions/0190000000000000000000000000"),
        ] {
            let reply = e.send(method, uri, &headers, &body).await;
            assert_eq!(reply.status, 401, "{method} {uri} with {auth:?}");
            assert_eq!(reply.body, json!({"message": "Unauthorized"}));
            assert!(reply.headers["www-authenticate"]
                .to_str()
                .unwrap()
                .starts_with("Bearer"));
        }
    }
    assert_eq!(e.count("").await, 0, "a refused request wrote");

    // /config needs no token; a token from the dev sign-in endpoint opens feature X.
    assert_eq!(e.send("GET", "/config", &[], "").await.status, 200);
    let signed_in = e
        .send(
            "POST",
            "/local/auth/sign-in",
            &[json_ct],
            r#"{"user":"u1"}"#,
        )
        .await;
    assert_eq!(signed_in.status, 200, "{}", signed_in.body);
    assert_eq!(signed_in.body["tokenType"], "Bearer");
    assert_eq!(signed_in.body["expiresIn"], 3600);
    let token = format!("Bearer {}", signed_in.body["accessToken"].as_str().unwrap());
    let created = e
        .send(
            "POST",
            "/feature-x/submissions",
            &[json_ct, ("authorization", &token)],
            r#"{"journeyId":"journey-1","plan":"basic","quantity":1}"#,
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(
        created.body["userId"], "u1",
        "the user is the token's subject"
    );
    let jwks = e.send("GET", "/local/auth/jwks.json", &[], "").await;
    assert_eq!(jwks.body["keys"][0]["kty"], "RSA");
    assert_eq!(jwks.body["keys"][0]["alg"], "RS256");
    assert!(jwks.body["keys"][0].get("d").is_none(), "no private part");
    for bad in [r#"{"user":""}"#, r#"{"user":"a/b"}"#, r#"{"name":"u1"}"#] {
        let reply = e.send("POST", "/local/auth/sign-in", &[json_ct], bad).await;
        assert_eq!(reply.status, 400, "{bad}");
    }
}

#[tokio::test]
async fn one_user_cannot_read_list_or_write_anothers_submissions() {
    let e = env(ENABLED, Overrides::none()).await;
    let bobs = e.submit(Some("bob-1"), &submission("bob", 1)).await;
    assert_eq!(bobs.status, 201);
    let bob_id = bobs.body["id"].as_str().unwrap().to_owned();
    let before = e.count("").await;
    let json_ct = [("content-type", "application/json")];

    // Alice, signed in, names Bob: 403 for the listing and for a write; nothing is written.
    let list_bob = e
        .send_as("alice", "GET", "/feature-x/submissions?userId=bob", &[], "")
        .await;
    let get_bob = e
        .send_as(
            "alice",
            "GET",
            &format!("/feature-x/submissions/{bob_id}?userId=bob"),
            &[],
            "",
        )
        .await;
    let write_as_bob = e
        .send_as(
            "alice",
            "POST",
            "/feature-x/submissions",
            &json_ct,
            &submission("bob", 2).to_string(),
        )
        .await;
    let replay_bobs_key = e
        .send_as(
            "alice",
            "POST",
            "/feature-x/submissions",
            &[
                ("content-type", "application/json"),
                ("idempotency-key", "bob-1"),
            ],
            &submission("bob", 1).to_string(),
        )
        .await;
    for reply in [&list_bob, &get_bob, &write_as_bob, &replay_bobs_key] {
        assert_eq!(reply.status, 403, "{}", reply.body);
        assert_eq!(reply.headers["content-type"], "application/problem+json");
    }
    assert_eq!(e.count("").await, before, "a refused request wrote");

    // Naming nobody, Alice sees none of Bob's: his id answers 404 exactly as an unknown id does.
    let by_id = e
        .send_as(
            "alice",
            "GET",
            &format!("/feature-x/submissions/{bob_id}"),
            &[],
            "",
        )
        .await;
    let unknown = e
        .send_as(
            "alice",
            "GET",
            "/feature-x/submissions/0190000000000000000000000000",
            &[],
            "",
        )
        .await;
    assert_eq!(by_id.status, 404);
    assert_eq!(by_id.body, unknown.body, "no existence oracle");
    let listed = e
        .send_as("alice", "GET", "/feature-x/submissions", &[], "")
        .await;
    assert_eq!(listed.status, 200);
    assert_eq!(listed.body["items"], json!([]));
    // Bob's own key under Alice's name is Alice's key: no replay of Bob's submission.
    let alice_same_key = e
        .send_as(
            "alice",
            "POST",
            "/feature-x/submissions",
            &[
                ("content-type", "application/json"),
                ("idempotency-key", "bob-1"),
            ],
            r#"{"journeyId":"journey-1","plan":"basic","quantity":2}"#,
        )
        .await;
    assert_eq!(alice_same_key.status, 201, "{}", alice_same_key.body);
    assert_eq!(alice_same_key.body["userId"], "alice");
    assert_ne!(alice_same_key.body["id"], bobs.body["id"]);
    // Bob still reads his own.
    let bob_reads = e
        .send_as(
            "bob",
            "GET",
            &format!("/feature-x/submissions/{bob_id}"),
            &[],
            "",
        )
        .await;
    assert_eq!(bob_reads.body, bobs.body);
}

#[tokio::test]
async fn bad_input_never_becomes_a_500_and_writes_nothing() {
    let e = env(ENABLED, Overrides::none()).await;
    let json_ct = vec![("content-type", "application/json")];
    let with_bad_key = vec![
        ("content-type", "application/json"),
        ("idempotency-key", "has space"),
    ];
    let cases: Vec<BadCase> = vec![
        (
            "POST",
            "/feature-x/submissions",
            json_ct.clone(),
            "{not json".into(),
            400,
        ),
        (
            "POST",
            "/feature-x/submissions",
            json_ct.clone(),
            r#"{"userId":"u","journeyId":"j","plan":"basic","quantity":"1"}"#.into(),
            400,
        ),
        (
            "POST",
            "/feature-x/submissions",
            json_ct.clone(),
            r#"{"userId":"u"}"#.into(),
            400,
        ),
        (
            "POST",
            "/feature-x/submissions",
            json_ct.clone(),
            "x".repeat(20_000),
            413,
        ),
        (
            "POST",
            "/feature-x/submissions",
            vec![("content-type", "text/plain")],
            submission("u", 1).to_string(),
            415,
        ),
        (
            "POST",
            "/feature-x/submissions",
            with_bad_key,
            submission("u", 1).to_string(),
            400,
        ),
        (
            "GET",
            "/feature-x/submissions?userId=someone-else",
            vec![],
            String::new(),
            403,
        ),
        (
            "GET",
            "/feature-x/submissions?userId=u&limit=0",
            vec![],
            String::new(),
            400,
        ),
        (
            "GET",
            "/feature-x/submissions?userId=u&cursor=zz",
            vec![],
            String::new(),
            400,
        ),
        (
            "GET",
            "/feature-x/submissions/abc?userId=u",
            vec![],
            String::new(),
            404,
        ),
        (
            "DELETE",
            "/feature-x/submissions",
            vec![],
            String::new(),
            405,
        ),
        ("PUT", "/config", vec![], String::new(), 405),
        ("GET", "/nowhere", vec![], String::new(), 404),
    ];
    for (method, uri, headers, body, status) in cases {
        let reply = e.send_as("u", method, uri, &headers, &body).await;
        assert_eq!(reply.status, status, "{method} {uri}: {}", reply.body);
        assert_eq!(
            reply.headers["content-type"], "application/problem+json",
            "{method} {uri}"
        );
        assert_eq!(reply.body["status"], status);
        // No answer names a server file or echoes the body sent.
        let text = reply.body.to_string();
        assert!(
            !text.contains(".rs") && !text.contains(env!("CARGO_MANIFEST_DIR")),
            "{method} {uri}: {text}"
        );
        assert!(
            body.len() < 8 || !text.contains(&body),
            "{method} {uri} echoes its body"
        );
    }
    assert_eq!(e.count("").await, 0);
}

#[tokio::test]
async fn two_hundred_concurrent_submissions_are_all_stored_exactly_once() {
    let e = Arc::new(env(ENABLED, Overrides::none()).await);

    // 200 submissions, each sent twice at once with the same key (a client retry racing itself).
    let tasks: Vec<_> = (0..400u32)
        .map(|i| {
            let e = e.clone();
            tokio::spawn(async move {
                let n = i / 2;
                let reply = e
                    .submit(
                        Some(&format!("key-{n}")),
                        &submission(&format!("user-{}", n % 7), n),
                    )
                    .await;
                (
                    n,
                    reply.status,
                    reply.body["id"].as_str().map(str::to_owned),
                )
            })
        })
        .collect();
    let mut ids: std::collections::HashMap<u32, Vec<String>> = Default::default();
    for task in tasks {
        let (n, status, id) = task.await.unwrap();
        assert!(status == 201 || status == 200, "submission {n}: {status}");
        ids.entry(n).or_default().push(id.unwrap());
    }

    assert_eq!(ids.len(), 200);
    assert!(
        ids.values()
            .all(|pair| pair.len() == 2 && pair[0] == pair[1]),
        "a retry got a different submission"
    );
    assert_eq!(e.count("SUB#").await, 200);
}

#[tokio::test]
async fn the_event_fixtures_run_through_the_same_handlers() {
    let e = env(ENABLED, Overrides::none()).await;
    let serve = |json: &'static str| {
        let runner = e.runner.clone();
        async move {
            runner
                .serve_event(lambda_http::request::from_str(json).expect("valid event"))
                .await
        }
    };
    let status = |r: &lambda_http::Response<lambda_http::Body>| r.status().as_u16();

    let created = serve(include_str!("../events/feature-x-create.json")).await;
    let replayed = serve(include_str!("../events/feature-x-create.json")).await;
    let listed = serve(include_str!("../events/feature-x-list.json")).await;
    let by_journey = serve(include_str!("../events/feature-x-list-journey.json")).await;
    let missing = serve(include_str!("../events/feature-x-get.json")).await;

    assert_eq!(status(&created), 201);
    assert_eq!(status(&replayed), 200);
    for listing in [&listed, &by_journey] {
        assert_eq!(status(listing), 200);
        let lambda_http::Body::Text(text) = listing.body() else {
            panic!("text body")
        };
        let page: Value = serde_json::from_str(text).unwrap();
        assert_eq!(page["items"].as_array().unwrap().len(), 1);
    }
    assert_eq!(status(&missing), 404);
    for (fixture, expected) in [
        (include_str!("../events/feature-x-malformed-json.json"), 400),
        (include_str!("../events/feature-x-wrong-types.json"), 400),
        (include_str!("../events/feature-x-missing-fields.json"), 400),
        (include_str!("../events/feature-x-too-large.json"), 413),
        (
            include_str!("../events/feature-x-wrong-content-type.json"),
            415,
        ),
        (include_str!("../events/feature-x-wrong-method.json"), 405),
        (include_str!("../events/feature-x-unknown-route.json"), 404),
        (include_str!("../events/config-post.json"), 405),
        (include_str!("../events/unknown-route.json"), 404),
    ] {
        let reply = serve(fixture).await;
        assert_eq!(status(&reply), expected);
        assert_eq!(reply.headers()["content-type"], "application/problem+json");
    }
    assert_eq!(e.count("SUB#").await, 1);
}

/// A new runner (every instance a cold start) over the same AppConfig (or, with `reachable`
/// false, an AppConfigData endpoint nobody answers), table and clock.
async fn cold_start(e: &Env, durable: Arc<dyn SnapshotStore>, reachable: bool) -> Runner {
    let mut appconfig = support::local(&e.appconfig, &settings());
    if !reachable {
        appconfig.data = appconfigdata_client("http://127.0.0.1:9");
    }
    Runner::new(
        appconfig,
        settings(),
        Overrides::none(),
        Arc::new(e.clock.clone()),
        Arc::new(DynamoStore::new(e.db.clone(), TABLE)),
        Some(durable),
        FleetOptions::single(),
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn a_cold_start_that_cannot_reach_appconfig_serves_the_durable_snapshot_degraded() {
    let mut e = env(ENABLED, Overrides::none()).await;
    ensure_snapshot_table(&e.db, "snapshots").await.unwrap();
    let durable: Arc<dyn SnapshotStore> = Arc::new(DynamoSnapshots::new(
        e.db.clone(),
        "snapshots",
        &lockstep::init::local_target(),
    ));
    // A runner that reads AppConfig writes the snapshot.
    e.runner = Arc::new(cold_start(&e, durable.clone(), true).await);
    e.clock.advance(TimeDelta::minutes(10));
    let healthy = e.send("GET", "/config", &[], "").await;
    assert_eq!(healthy.body["isBackendConsistent"], true);
    assert_eq!(healthy.body["degraded"], Value::Null);

    // AppConfig is out of reach: the next cold start serves the snapshot, degraded.
    e.runner = Arc::new(cold_start(&e, durable.clone(), false).await);
    let config = e.send("GET", "/config", &[], "").await;
    assert_eq!(config.status, 200);
    assert_eq!(config.body["degraded"], "durable_snapshot");
    assert_eq!(config.body["isFeatureXEnabled"], true);
    assert_eq!(config.body["isBackendConsistent"], false);
    assert_eq!(
        config.body["configurationVersion"],
        healthy.body["configurationVersion"]
    );
    // Its gate decides with the snapshot: journey X stays open.
    let created = e.submit(None, &submission("snapshot-user", 1)).await;
    assert_eq!(created.status, 201);

    // Without a snapshot (a fresh table), the same cold start serves the defaults: closed.
    e.db.delete_table()
        .table_name("snapshots")
        .send()
        .await
        .unwrap();
    ensure_snapshot_table(&e.db, "snapshots").await.unwrap();
    e.runner = Arc::new(cold_start(&e, durable.clone(), false).await);
    let config = e.send("GET", "/config", &[], "").await;
    assert_eq!(config.body["degraded"], "never_fetched");
    assert_eq!(config.body["isFeatureXEnabled"], false);
    assert_eq!(
        e.submit(None, &submission("snapshot-user", 2)).await.status,
        503
    );
}

#[tokio::test]
async fn a_cursor_that_is_not_ours_answers_400_whatever_its_bytes() {
    let e = env(ENABLED, Overrides::none()).await;
    e.clock.advance(TimeDelta::minutes(10));
    assert_eq!(
        e.submit(None, &submission("cursor-user", 1)).await.status,
        201
    );

    for cursor in ["a%C3%A9b", "%C3%A9", "zz", "00", "%F0%9F%92%A5%F0%9F%92%A5"] {
        let reply = e
            .send_as(
                "cursor-user",
                "GET",
                &format!("/feature-x/submissions?journeyId=journey-1&cursor={cursor}"),
                &[],
                "",
            )
            .await;

        assert_eq!(reply.status, 400, "cursor {cursor}");
        assert_eq!(reply.headers["content-type"], "application/problem+json");
    }
}

#[tokio::test]
async fn subjects_of_any_oidc_issuer_create_read_and_list_only_their_own() {
    let e = env(ENABLED, Overrides::none()).await;
    // Auth0's, an e-mail address, one that looks like another's key joined with a journey, and
    // Unicode: each is the user as the issuer wrote it.
    let users = [
        "auth0|abc",
        "alice@example.com",
        "auth0|abc#journey-1",
        "Zoë ☃",
    ];
    let mut ids = Vec::new();
    for user in users {
        for n in 0..2 {
            let reply = e
                .submit(Some(&format!("key-{n}")), &submission(user, n))
                .await;
            assert_eq!(reply.status, 201, "{user}: {}", reply.body);
            assert_eq!(reply.body["userId"], user);
            ids.push((user, reply.body["id"].as_str().unwrap().to_owned()));
        }
        // The same key again replays: the idempotency record is this user's.
        let replay = e.submit(Some("key-0"), &submission(user, 0)).await;
        assert_eq!(replay.status, 200, "{user}: {}", replay.body);
    }
    assert_eq!(e.count("SUB#").await, 2 * users.len());

    for user in users {
        let own: Vec<&str> = ids
            .iter()
            .filter(|(u, _)| *u == user)
            .map(|(_, id)| id.as_str())
            .collect();
        for id in &own {
            let read = e
                .send_as(
                    user,
                    "GET",
                    &format!("/feature-x/submissions/{id}"),
                    &[],
                    "",
                )
                .await;
            assert_eq!(read.status, 200, "{user}: {}", read.body);
            assert_eq!(read.body["userId"], user);
        }
        // Others' ids answer 404, like unknown ones.
        for (_, id) in ids.iter().filter(|(u, _)| *u != user) {
            let read = e
                .send_as(
                    user,
                    "GET",
                    &format!("/feature-x/submissions/{id}"),
                    &[],
                    "",
                )
                .await;
            assert_eq!(read.status, 404, "{user} read another's {id}");
        }
        // A journey's listing (the GSI), one item a page, then all journeys: their own only.
        let mut listed = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let uri = match &cursor {
                None => "/feature-x/submissions?journeyId=journey-1&limit=1".to_owned(),
                Some(c) => format!("/feature-x/submissions?journeyId=journey-1&limit=1&cursor={c}"),
            };
            let page = e.send_as(user, "GET", &uri, &[], "").await;
            assert_eq!(page.status, 200, "{user}: {}", page.body);
            for item in page.body["items"].as_array().unwrap() {
                assert_eq!(item["userId"], user);
                listed.push(item["id"].as_str().unwrap().to_owned());
            }
            match page.body["nextCursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => break,
            }
        }
        listed.sort();
        let mut expected: Vec<String> = own.iter().map(|id| (*id).to_owned()).collect();
        expected.sort();
        assert_eq!(listed, expected, "{user}");
        let all = e
            .send_as(user, "GET", "/feature-x/submissions", &[], "")
            .await;
        assert_eq!(all.body["items"].as_array().unwrap().len(), 2, "{user}");
    }

    // A cursor of `auth0|abc#journey-1`'s listing does not continue `auth0|abc`'s.
    let page = e
        .send_as(
            "auth0|abc#journey-1",
            "GET",
            "/feature-x/submissions?limit=1",
            &[],
            "",
        )
        .await;
    let theirs = page.body["nextCursor"].as_str().unwrap();
    let reply = e
        .send_as(
            "auth0|abc",
            "GET",
            &format!("/feature-x/submissions?limit=1&cursor={theirs}"),
            &[],
            "",
        )
        .await;
    assert_eq!(reply.status, 400, "{}", reply.body);
    // Naming oneself in the query string, percent-encoded, is still oneself; another is 403.
    let named = e
        .send_as(
            "auth0|abc",
            "GET",
            "/feature-x/submissions?userId=auth0%7Cabc",
            &[],
            "",
        )
        .await;
    assert_eq!(named.status, 200, "{}", named.body);
    let other = e
        .send_as(
            "auth0|abc",
            "GET",
            "/feature-x/submissions?userId=auth0%7Cabc%23journey-1",
            &[],
            "",
        )
        .await;
    assert_eq!(other.status, 403, "{}", other.body);
}

#[tokio::test]
async fn repeated_parameters_and_headers_reach_the_handlers_as_api_gateway_passes_them() {
    let e = env(ENABLED, Overrides::none()).await;
    for n in 0..3 {
        assert_eq!(e.submit(None, &submission("alice", n)).await.status, 201);
    }
    // API Gateway joins two Authorization headers into one, `Bearer a,Bearer b`, which is not a
    // token: 401 from the authorizer, even when both are valid.
    let token = support::bearer(&e.runner, "alice");
    let twice = e
        .send(
            "GET",
            "/feature-x/submissions",
            &[("authorization", &token), ("authorization", &token)],
            "",
        )
        .await;
    assert_eq!(twice.status, 401, "{}", twice.body);
    assert_eq!(twice.body, json!({"message": "Unauthorized"}));

    // Repeated parameters: API Gateway sends `limit: "1,2"` and the raw query; lambda_http reads
    // the raw query, so the handler's first `limit` is 1, as in AWS.
    let limited = e
        .send_as(
            "alice",
            "GET",
            "/feature-x/submissions?limit=1&limit=2",
            &[],
            "",
        )
        .await;
    assert_eq!(limited.status, 200, "{}", limited.body);
    assert_eq!(limited.body["items"].as_array().unwrap().len(), 1);
    let limit_bad_first = e
        .send_as(
            "alice",
            "GET",
            "/feature-x/submissions?limit=x&limit=2",
            &[],
            "",
        )
        .await;
    assert_eq!(limit_bad_first.status, 400, "{}", limit_bad_first.body);
    // The first userId is the one checked against the caller.
    let mine_first = e
        .send_as(
            "alice",
            "GET",
            "/feature-x/submissions?userId=alice&userId=bob",
            &[],
            "",
        )
        .await;
    assert_eq!(mine_first.status, 200, "{}", mine_first.body);
    assert_eq!(mine_first.body["items"].as_array().unwrap().len(), 3);
    let other_first = e
        .send_as(
            "alice",
            "GET",
            "/feature-x/submissions?userId=bob&userId=alice",
            &[],
            "",
        )
        .await;
    assert_eq!(other_first.status, 403, "{}", other_first.body);
}
