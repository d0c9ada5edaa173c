//! OFREP (`POST /ofrep/v1/evaluate/flags[/{key}]`) through the config function's router, on the
//! real cache over an in-memory source in virtual time: every answer validated against the
//! vendored OFREP OpenAPI definition (`tests/ofrep/openapi.yaml`, its `$ref`s resolved by the
//! validator), the ETag / 304 round trip, the error codes, public flags only, the reasons, the
//! journey-safe value before and after `journeyOpensAt` and `consistentAt`, with and without a
//! journey token, and a stale instance behind a token (catch-up, or 429 with Retry-After).

use chrono::{DateTime, TimeDelta, Utc};
use http::{HeaderMap, StatusCode};
use lambda_http::{Body, Request};
use lockstep::cache::CacheOptions;
use lockstep::memory::{MemoryHandle, MemorySource};
use lockstep::{FlagCache, FlagCatalog, FlagDecl, ManualClock, Overrides, Settings};
use lockstep_http::config_routes::serve;
use serde_json::{json, Value};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

const X: &str = "isFeatureXEnabled";
const Y: &str = "isFeatureYEnabled";
/// Declared, internal: never in an OFREP answer.
const PRIVATE: &str = "useSubmissionsGsi";
const BULK: &str = "/ofrep/v1/evaluate/flags";
const Q: Duration = Duration::from_secs(15);

const T0: &str = "2026-11-21T09:00:00Z";
/// The deployment that switches X on (AllAtOnce): with P = 45 s, ε = 5 s and Q = 15 s,
/// journeyOpensAt = T1 + 20 s and consistentAt = T1 + 50 s.
const T1: &str = "2026-11-21T10:00:00Z";
const OPENS: &str = "2026-11-21T10:00:20Z";
const CONSISTENT: &str = "2026-11-21T10:00:50Z";
/// A later deployment switching X off.
const T2: &str = "2026-11-21T10:02:00Z";

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn secs(s: i64) -> TimeDelta {
    TimeDelta::seconds(s)
}

/// Freeform content: X stamped `x.1`, Y off since T0, the private flag on.
fn doc(x: (bool, &str)) -> String {
    let profile = x.1.max(T0);
    format!(
        r#"{{"{X}": {}, "{Y}": false, "{PRIVATE}": true,
            "lockstepMetadata": {{"lastModifiedTimestamp": "{profile}", "deploymentDurationSeconds": 0,
              "flags": {{"{X}": {{"lastModifiedTimestamp": "{}", "deploymentDurationSeconds": 0}},
                         "{Y}": {{"lastModifiedTimestamp": "{T0}", "deploymentDurationSeconds": 0}},
                         "{PRIVATE}": {{"lastModifiedTimestamp": "{T0}", "deploymentDurationSeconds": 0}}}}}}}}"#,
        x.0, x.1
    )
}

fn old() -> String {
    doc((false, T0))
}

fn new() -> String {
    doc((true, T1))
}

struct Instance {
    cache: FlagCache,
    source: MemoryHandle,
    clock: ManualClock,
}

/// An instance cold-starting at `at` on `content` (none: a source that fails), P = 45 s, ε = 5 s,
/// its session enforcing Q like AppConfigData.
async fn instance(content: Option<&str>, at: DateTime<Utc>, overrides: Overrides) -> Instance {
    labelled("v1", content, at, overrides).await
}

/// The same, the first version delivered labelled `version`.
async fn labelled(
    version: &str,
    content: Option<&str>,
    at: DateTime<Utc>,
    overrides: Overrides,
) -> Instance {
    let clock = ManualClock::new(at);
    let (source, handle) = MemorySource::new();
    handle.set_session_interval(Some(Q));
    match content {
        Some(content) => handle.publish(version, content),
        None => handle.set_failing(true),
    }
    let catalog = FlagCatalog::new(vec![
        FlagDecl::public(X),
        FlagDecl::public(Y),
        FlagDecl::internal(PRIVATE),
    ])
    .unwrap();
    let options = CacheOptions {
        catalog,
        overrides,
        settings: Settings::default(),
        clock: Arc::new(clock.clone()),
    };
    Instance {
        cache: FlagCache::new(Box::new(source), options).await,
        source: handle,
        clock,
    }
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Option<Value>,
}

impl Reply {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .unwrap_or_else(|| panic!("no {name} header"))
            .to_str()
            .unwrap()
    }

    fn json(&self) -> &Value {
        self.body.as_ref().expect("a JSON body")
    }

    /// A flag of a bulk answer.
    fn flag(&self, key: &str) -> &Value {
        self.json()["flags"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["key"] == key)
            .unwrap_or_else(|| panic!("{key} not in {}", self.json()))
    }
}

async fn call(
    cache: &FlagCache,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Reply {
    let mut builder = http::Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/json; charset=utf-8");
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let request: Request = builder.body(Body::Text(body.to_owned())).unwrap();
    let response = serve(cache, &request).await;
    let body = match response.body() {
        Body::Text(text) => Some(serde_json::from_str(text).unwrap()),
        Body::Empty => None,
        other => panic!("unexpected body {other:?}"),
    };
    Reply {
        status: response.status(),
        headers: response.headers().clone(),
        body,
    }
}

async fn post(cache: &FlagCache, path: &str, headers: &[(&str, &str)]) -> Reply {
    call(
        cache,
        "POST",
        path,
        headers,
        r#"{"context": {"targetingKey": "u1", "plan": "basic"}}"#,
    )
    .await
}

fn one(key: &str) -> String {
    format!("{BULK}/{key}")
}

// ---- the vendored OpenAPI definition ----------------------------------------------------------

/// The vendored definition as published, parsed from its YAML.
fn published() -> Value {
    serde_norway::from_str(include_str!("ofrep/openapi.yaml")).expect("the vendored YAML parses")
}

/// The definition with the two errata of `tests/ofrep/SOURCE.md`, each applied only after
/// checking the exact upstream text it replaces (a re-vendored file that changed fails here).
fn patched() -> Value {
    let mut doc = published();
    let reason = doc
        .pointer_mut("/components/schemas/evaluationSuccess/allOf/0/properties/reason/enum")
        .expect("evaluationSuccess's reason enum");
    assert_eq!(
        *reason,
        json!(["STATIC", "TARGETING_MATCH", "SPLIT", "DISABLED", "UNKNOWN"]),
        "erratum 1 no longer matches the vendored file: see tests/ofrep/SOURCE.md"
    );
    // The OpenFeature specification's standard resolution reasons.
    *reason = json!([
        "STATIC",
        "DEFAULT",
        "TARGETING_MATCH",
        "SPLIT",
        "CACHED",
        "DISABLED",
        "UNKNOWN",
        "STALE",
        "ERROR"
    ]);
    let code_default = doc
        .pointer_mut("/components/schemas/codeDefaultFlag")
        .and_then(Value::as_object_mut)
        .expect("codeDefaultFlag");
    assert_eq!(code_default.get("type"), Some(&json!("object")));
    assert_eq!(code_default.get("properties"), Some(&json!({})));
    assert_eq!(
        code_default.get("not"),
        None,
        "erratum 2 no longer matches the vendored file: see tests/ofrep/SOURCE.md"
    );
    code_default.insert("not".into(), json!({"required": ["value"]}));
    doc
}

/// A validator for one of the definition's component schemas: the whole document is the root
/// (so every `$ref` resolves inside it), pointing at the component.
fn validator(doc: &Value, component: &str) -> jsonschema::Validator {
    let mut root = doc.clone();
    let root_object = root.as_object_mut().unwrap();
    root_object.insert(
        "$schema".into(),
        json!("https://json-schema.org/draft/2020-12/schema"),
    );
    root_object.insert(
        "$ref".into(),
        json!(format!("#/components/schemas/{component}")),
    );
    jsonschema::validator_for(&root).expect("the component compiles")
}

fn schemas() -> &'static Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(patched)
}

#[track_caller]
fn assert_matches(component: &str, instance: &Value) {
    let validator = validator(schemas(), component);
    let errors: Vec<String> = validator
        .iter_errors(instance)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{instance} does not match {component}: {errors:#?}"
    );
}

#[track_caller]
fn assert_not_matches(component: &str, instance: &Value) {
    assert!(
        !validator(schemas(), component).is_valid(instance),
        "{instance} should not match {component}"
    );
}

#[test]
fn the_published_schema_rejects_every_answer_with_a_value() {
    let answer = json!({"key": "k", "value": true, "reason": "STATIC", "variant": "on"});
    // As published: booleanFlag and codeDefaultFlag both match, so oneOf fails (erratum 2).
    assert!(!validator(&published(), "evaluationSuccess").is_valid(&answer));
    // Patched, it matches; and the schema still refuses what it must.
    assert_matches("evaluationSuccess", &answer);
    assert_matches(
        "evaluationSuccess",
        &json!({"key": "k", "reason": "DEFAULT"}),
    );
    assert_not_matches(
        "evaluationSuccess",
        &json!({"key": "k", "value": true, "reason": "MAYBE"}),
    );
    assert_not_matches("evaluationSuccess", &json!({"key": "k", "value": true}));
    assert_not_matches(
        "evaluationSuccess",
        &json!({"key": "k", "value": true, "reason": "CACHED", "metadata": {"nested": {}}}),
    );
    assert_not_matches(
        "bulkEvaluationSuccess",
        &json!({"flags": [{"key": "k", "value": null, "reason": "CACHED"}]}),
    );
}

// ---- the answers ------------------------------------------------------------------------------

#[tokio::test]
async fn bulk_and_single_answers_match_the_ofrep_schema_for_every_reason() {
    let healthy = instance(Some(&new()), t(T1) + secs(60), Overrides::none()).await;
    let forced = instance(
        Some(&new()),
        t(T1) + secs(60),
        Overrides::none().force(X, true),
    )
    .await;
    let cold = instance(None, t(T1) + secs(60), Overrides::none()).await;
    let stale = instance(Some(&new()), t(T1) + secs(60), Overrides::none()).await;
    stale.source.set_failing(true);
    stale.clock.advance(secs(45));

    let token = journey_token(&healthy.cache).await;
    for (who, cache, reason_x, tokens) in [
        (
            "healthy",
            &healthy.cache,
            "CACHED",
            vec![None, Some(&token)],
        ),
        ("forced", &forced.cache, "STATIC", vec![None, Some(&token)]),
        // Its defaults are unstamped, older than any token: a token client gets 429 (below).
        (
            "cold start, AppConfig unreachable",
            &cold.cache,
            "DEFAULT",
            vec![None],
        ),
        ("degraded", &stale.cache, "STALE", vec![None, Some(&token)]),
    ] {
        for token in tokens {
            let headers: Vec<(&str, &str)> = token
                .iter()
                .map(|t| ("lockstep-journey", t.as_str()))
                .collect();
            let bulk = post(cache, BULK, &headers).await;
            assert_eq!(bulk.status, 200, "{who}");
            assert_eq!(bulk.header("content-type"), "application/json");
            assert_matches("bulkEvaluationSuccess", bulk.json());
            for flag in bulk.json()["flags"].as_array().unwrap() {
                assert_matches("evaluationSuccess", flag);
            }
            assert_eq!(bulk.flag(X)["reason"], reason_x, "{who}");

            let single = post(cache, &one(X), &headers).await;
            assert_eq!(single.status, 200, "{who}");
            assert_matches("serverEvaluationSuccess", single.json());
            assert_eq!(single.json(), bulk.flag(X), "{who}: single = bulk");
        }
    }

    // What each reason says about the value.
    let x = |reply: Reply| reply.flag(X).clone();
    let healthy_x = x(post(&healthy.cache, BULK, &[]).await);
    assert_eq!(healthy_x["value"], true);
    assert_eq!(healthy_x["variant"], "on");
    let forced_x = x(post(&forced.cache, BULK, &[]).await);
    assert_eq!(forced_x["value"], true);
    assert_eq!(forced_x["metadata"]["forced"], true);
    assert!(forced_x["metadata"].get("consistentAt").is_none());
    let cold_x = x(post(&cold.cache, BULK, &[]).await);
    assert_eq!(cold_x["value"], false);
    assert_eq!(cold_x["metadata"]["degraded"], "never_fetched");
    // A client holding a token never gets the defaults (older than what it holds) from it:
    // while the backoff runs (no call), nor after a catch-up that fails.
    let with = [("lockstep-journey", token.as_str())];
    let calls = cold.source.calls();
    let limited = post(&cold.cache, BULK, &with).await;
    assert_eq!(limited.status, 429);
    assert_eq!(limited.header("retry-after"), "1");
    assert_eq!(cold.source.calls(), calls);
    cold.clock.advance(secs(2));
    let failed = post(&cold.cache, &one(X), &with).await;
    assert_eq!(failed.status, 429);
    assert_eq!(cold.source.calls(), calls + 1, "it did try");
    assert_eq!(failed.json()["key"], X);
    // Degraded: raw value on, old stamp, yet never journey-open (it vouches for nothing).
    let stale_x = x(post(&stale.cache, BULK, &[]).await);
    assert_eq!(stale_x["metadata"]["degraded"], "fetch_failed");
    assert_eq!(stale_x["metadata"]["rawValue"], true);
    assert_eq!(stale_x["value"], false);
    assert_eq!(stale_x["variant"], "off");
    assert!(stale_x["metadata"].get("opensAt").is_none());
}

async fn journey_token(cache: &FlagCache) -> String {
    let reply = post(cache, &one(X), &[]).await;
    reply.json()["metadata"]["journeyToken"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn the_journey_safe_value_opens_at_journey_opens_at_with_a_token_and_at_consistent_at_without(
) {
    // An instance that polled the deployment 1 s after T1.
    let i = instance(Some(&new()), t(T1) + secs(1), Overrides::none()).await;
    let token = journey_token(&i.cache).await;
    let with = [("lockstep-journey", token.as_str())];

    // T1 + 10 s: on, but no journey may open yet, for anyone.
    i.clock.set(t(T1) + secs(10));
    let blind = post(&i.cache, BULK, &[]).await;
    let carrying = post(&i.cache, BULK, &with).await;
    for (reply, rule, opens_at) in [
        (&blind, "consistentAt", CONSISTENT),
        (&carrying, "journeyOpensAt", OPENS),
    ] {
        let x = reply.flag(X);
        assert_eq!(x["value"], false, "{rule}");
        assert_eq!(x["variant"], "off");
        assert_eq!(x["reason"], "CACHED");
        let m = &x["metadata"];
        assert_eq!(m["rawValue"], true);
        assert_eq!(m["consistent"], false);
        assert_eq!(m["consistentAt"], CONSISTENT);
        assert_eq!(m["journeyOpensAt"], OPENS);
        assert_eq!(m["openRule"], rule);
        assert_eq!(m["opensAt"], opens_at, "when to re-evaluate");
        assert!(m["journeyToken"].as_str().unwrap().starts_with("v2."));
        assert_eq!(m["serverTime"], "2026-11-21T10:00:10Z");
        assert_eq!(m["configurationVersion"], "v1");
        // Y is off: never open, nothing to wait for.
        assert_eq!(reply.flag(Y)["value"], false);
        assert!(reply.flag(Y)["metadata"].get("opensAt").is_none());
    }

    // At journeyOpensAt: open for a client that sends the token, still closed without.
    i.clock.set(t(OPENS));
    assert_eq!(post(&i.cache, BULK, &with).await.flag(X)["value"], true);
    assert_eq!(post(&i.cache, &one(X), &with).await.json()["value"], true);
    let blind = post(&i.cache, &one(X), &[]).await;
    assert_eq!(blind.json()["value"], false);
    assert_eq!(blind.json()["metadata"]["opensAt"], CONSISTENT);
    // One millisecond before, closed for the token client too.
    i.clock.set(t(OPENS) - TimeDelta::milliseconds(1));
    assert_eq!(post(&i.cache, &one(X), &with).await.json()["value"], false);

    // At consistentAt: open for everyone, nothing left to wait for.
    i.clock.set(t(CONSISTENT));
    for headers in [&with[..], &[]] {
        let reply = post(&i.cache, &one(X), headers).await;
        assert_eq!(reply.json()["value"], true);
        assert_eq!(reply.json()["variant"], "on");
        assert_eq!(reply.json()["metadata"]["consistent"], true);
        assert!(reply.json()["metadata"].get("opensAt").is_none());
    }
    // A malformed token is no token: the client is judged by consistentAt.
    let garbage = post(&i.cache, BULK, &[("lockstep-journey", "v1.garbage.")]).await;
    assert_eq!(garbage.flag(X)["metadata"]["openRule"], "consistentAt");
}

#[tokio::test]
async fn the_etag_answers_304_until_the_journey_safe_value_the_token_or_the_content_changes() {
    let i = instance(Some(&new()), t(T1) + secs(1), Overrides::none()).await;
    let token = journey_token(&i.cache).await;
    let token_of = |reply: &Reply| reply.flag(X)["metadata"]["journeyToken"].clone();

    for (headers, opens) in [
        (vec![("lockstep-journey", token.as_str())], t(OPENS)),
        (vec![], t(CONSISTENT)),
    ] {
        i.clock.set(t(T1) + secs(5));
        let first = post(&i.cache, BULK, &headers).await;
        assert_eq!(first.status, 200);
        let tag = first.header("etag").to_owned();
        assert!(tag.starts_with("W/\"") && tag.ends_with('"'), "{tag}");
        assert_eq!(first.header("vary"), "Lockstep-Journey");

        // Later in the same second, the same answer (only the server time differs): 304, no
        // body, the same tag.
        i.clock.set(t(T1) + secs(5) + TimeDelta::milliseconds(900));
        let mut conditional = headers.clone();
        conditional.push(("if-none-match", tag.as_str()));
        let again = post(&i.cache, BULK, &conditional).await;
        assert_eq!(again.status, 304);
        assert!(again.body.is_none());
        assert_eq!(again.header("etag"), tag);
        // Without If-None-Match, the same tag and the same token on a 200.
        let plain = post(&i.cache, BULK, &headers).await;
        assert_eq!(plain.header("etag"), tag);
        assert_eq!(token_of(&plain), token_of(&first));

        // Seconds later nothing was deployed, but the token the answer hands out is a new one
        // (it says when it was issued, which a drain checks): the old tag no longer matches, so
        // a client that polls keeps a fresh token instead of the one of its first 200.
        i.clock.set(opens - secs(1));
        let refreshed = post(&i.cache, BULK, &conditional).await;
        assert_eq!(refreshed.status, 200);
        assert_ne!(token_of(&refreshed), token_of(&first));
        assert_ne!(refreshed.header("etag"), tag);
        let tag = refreshed.header("etag").to_owned();
        let mut conditional = headers.clone();
        conditional.push(("if-none-match", tag.as_str()));

        // The clock passes the opening moment: the journey-safe value turned true, so the
        // tag no longer matches.
        i.clock.set(opens);
        let opened = post(&i.cache, BULK, &conditional).await;
        assert_eq!(opened.status, 200);
        assert_eq!(opened.flag(X)["value"], true);
        assert_ne!(opened.header("etag"), tag);
    }

    // The two kinds of client never share a tag (their answers differ in openRule).
    i.clock.set(t(CONSISTENT) + secs(1));
    let blind = post(&i.cache, BULK, &[]).await;
    let carrying = post(&i.cache, BULK, &[("lockstep-journey", token.as_str())]).await;
    assert_ne!(blind.header("etag"), carrying.header("etag"));

    // A deployment (X off at T2): once the instance holds it, the old tag answers 200.
    let tag = blind.header("etag").to_owned();
    let off = doc((false, T2));
    i.source.publish("v2", off.as_str());
    i.clock.set(t(T2) + secs(6));
    let deployed = post(&i.cache, BULK, &[("if-none-match", tag.as_str())]).await;
    assert_eq!(deployed.status, 200);
    assert_eq!(deployed.json()["metadata"]["configurationVersion"], "v2");
    assert_eq!(deployed.flag(X)["metadata"]["rawValue"], false);
    assert_ne!(deployed.header("etag"), tag);
    // Another instance serving the same version at the same moment gives the same tag, so a
    // client spread over the fleet still gets its 304s.
    let twin = labelled("v2", Some(&off), t(T2) + secs(6), Overrides::none()).await;
    let tag = deployed.header("etag");
    assert_eq!(post(&twin.cache, BULK, &[]).await.header("etag"), tag);
    let conditional = post(&twin.cache, BULK, &[("if-none-match", tag)]).await;
    assert_eq!(conditional.status, 304);
}

#[tokio::test]
async fn if_none_match_star_answers_412_precondition_failed_and_a_matching_tag_still_304() {
    let i = instance(Some(&new()), t(T1) + secs(60), Overrides::none()).await;
    let first = post(&i.cache, BULK, &[]).await;
    let tag = first.header("etag").to_owned();

    // RFC 9110 §13.1.2: `*` fails when there is a current answer, and for a POST that is 412.
    for star in ["*", "W/\"other\", *"] {
        let refused = post(&i.cache, BULK, &[("if-none-match", star)]).await;
        assert_eq!(refused.status, 412, "{star}");
        assert!(refused.body.is_none());
        assert_eq!(refused.header("cache-control"), "no-store");
    }
    // The tag of the current answer: 304 as OFREP defines.
    let conditional = post(&i.cache, BULK, &[("if-none-match", tag.as_str())]).await;
    assert_eq!(conditional.status, 304);
}

#[tokio::test]
async fn only_public_flags_are_evaluated() {
    let i = instance(Some(&new()), t(T1) + secs(60), Overrides::none()).await;

    let bulk = post(&i.cache, BULK, &[]).await;
    let keys: Vec<&str> = bulk.json()["flags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, [X, Y]);
    assert!(!bulk.json().to_string().contains(PRIVATE));

    for key in [PRIVATE, "noSuchFlag"] {
        let reply = post(&i.cache, &one(key), &[]).await;
        assert_eq!(reply.status, 404, "{key}");
        assert_eq!(reply.json()["errorCode"], "FLAG_NOT_FOUND");
        assert_eq!(reply.json()["key"], key);
        assert_matches("flagNotFound", reply.json());
        assert!(!reply.json().to_string().contains("true"));
    }
    // A percent-encoded key names the same flag.
    let encoded = post(&i.cache, &one("%69sFeatureXEnabled"), &[]).await;
    assert_eq!(encoded.status, 200);
    assert_eq!(encoded.json()["key"], X);
}

#[tokio::test]
async fn no_400_repeats_any_part_of_the_body_wherever_the_caller_put_it() {
    let i = instance(Some(&new()), t(T1) + secs(60), Overrides::none()).await;
    let marker = "<script>alert('QZJ')</script>";
    let long = marker.repeat(15 * 1024 / marker.len());
    let m = serde_json::to_string(marker).unwrap();
    let l = serde_json::to_string(&long).unwrap();
    let bodies = [
        format!(r#"{{"context": {m}}}"#),
        format!(r#"{{"context": {l}}}"#),
        format!(r#"{{"context": [{m}]}}"#),
        format!(r#"{{"context": {{"targetingKey": {{{m}: {m}}}}}}}"#),
        format!(r#"{{"context": {{"targetingKey": [{l}]}}}}"#),
        format!("[{m}]"),
        format!(r#"{{"context": {{{m}: {m}}} {m}"#),
        format!(r#"{{{m}: {m}"#),
    ];
    for body in &bodies {
        for path in [BULK.to_owned(), one(X)] {
            let reply = call(&i.cache, "POST", &path, &[], body).await;
            assert_eq!(reply.status, 400, "{body:.60}");
            let text = reply.json().to_string();
            for part in ["QZJ", "<script", "alert", "script>"] {
                assert!(!text.contains(part), "{part} echoed: {text:.300}");
            }
        }
    }
}

#[tokio::test]
async fn bad_requests_answer_the_protocols_error_codes() {
    let i = instance(Some(&new()), t(T1) + secs(60), Overrides::none()).await;

    for (body, code) in [
        ("{not json", "PARSE_ERROR"),
        ("", "PARSE_ERROR"),
        ("[1, 2]", "PARSE_ERROR"),
        (r#"{"context": "user-1"}"#, "INVALID_CONTEXT"),
        (r#"{"context": null}"#, "INVALID_CONTEXT"),
        (r#"{"context": {"targetingKey": 42}}"#, "INVALID_CONTEXT"),
    ] {
        let bulk = call(&i.cache, "POST", BULK, &[], body).await;
        assert_eq!(bulk.status, 400, "{body:?}");
        assert_eq!(bulk.json()["errorCode"], code, "{body:?}");
        assert!(bulk.json()["errorDetails"].is_string());
        assert_matches("bulkEvaluationFailure", bulk.json());
        assert!(bulk.headers.get("etag").is_none());

        let single = call(&i.cache, "POST", &one(X), &[], body).await;
        assert_eq!(single.status, 400, "{body:?}");
        assert_eq!(single.json()["errorCode"], code);
        assert_eq!(single.json()["key"], X);
        assert_matches("evaluationFailure", single.json());
    }

    // targetingKey is optional, and a request without a context is an empty context (the
    // OFREP JavaScript core sends `{}` when it has none).
    for body in [
        r#"{"context": {}}"#,
        "{}",
        r#"{"context": {"plan": "basic"}}"#,
    ] {
        assert_eq!(call(&i.cache, "POST", BULK, &[], body).await.status, 200);
        assert_eq!(call(&i.cache, "POST", &one(X), &[], body).await.status, 200);
    }

    // Only POST.
    let get = call(&i.cache, "GET", BULK, &[], "").await;
    assert_eq!(get.status, 405);
    assert_eq!(get.header("allow"), "POST");
    assert_eq!(call(&i.cache, "GET", &one(X), &[], "").await.status, 405);
    // Other paths under /ofrep are not routes.
    assert_eq!(post(&i.cache, "/ofrep/v1/evaluate", &[]).await.status, 404);
    assert_eq!(
        post(&i.cache, &format!("{}/a/b", BULK), &[]).await.status,
        404
    );
}

#[tokio::test]
async fn a_stale_instance_behind_the_token_catches_up_or_answers_429_with_retry_after() {
    // The token of an instance that already serves the deployment, taken at T1 + 5 s.
    let fresh = instance(Some(&new()), t(T1) + secs(5), Overrides::none()).await;
    let token = journey_token(&fresh.cache).await;
    let with = [("lockstep-journey", token.as_str())];

    // An instance that polled 1 s before T1: its session allows a call from T1 + 14 s.
    let stale = instance(Some(&old()), t(T1) - secs(1), Overrides::none()).await;
    stale.source.publish("v2", new());
    stale.clock.set(t(T1) + secs(6));
    let calls = stale.source.calls();

    // Without a token it cannot know it is behind: what it holds.
    let blind = post(&stale.cache, BULK, &[]).await;
    assert_eq!(blind.status, 200);
    assert_eq!(blind.flag(X)["metadata"]["rawValue"], false);
    // With it: 429, Retry-After = the 8 s until the session allows a call, nothing polled.
    for path in [BULK.to_owned(), one(X)] {
        let limited = post(&stale.cache, &path, &with).await;
        assert_eq!(limited.status, 429, "{path}");
        assert_eq!(limited.header("retry-after"), "8");
        assert_eq!(limited.json()["errorCode"], "GENERAL");
    }
    assert_eq!(stale.source.calls(), calls);
    assert_eq!(stale.source.early_calls(), 0);
    // Y's stamp is not behind the token: the single-flag endpoint answers it at once.
    assert_eq!(post(&stale.cache, &one(Y), &with).await.status, 200);

    // When the session allows it, the token's request polls first and is answered with the
    // new version (on, not yet journey-open: opensAt says when).
    stale.clock.set(t(T1) + secs(14));
    let caught = post(&stale.cache, BULK, &with).await;
    assert_eq!(caught.status, 200);
    assert_eq!(stale.source.calls(), calls + 1);
    assert_eq!(caught.json()["metadata"]["configurationVersion"], "v2");
    assert_eq!(caught.flag(X)["metadata"]["rawValue"], true);
    assert_eq!(caught.flag(X)["metadata"]["opensAt"], OPENS);
    stale.clock.set(t(OPENS));
    assert_eq!(post(&stale.cache, BULK, &with).await.flag(X)["value"], true);
    assert_eq!(stale.source.early_calls(), 0);
}

#[tokio::test]
async fn an_instance_that_polled_after_the_token_was_issued_answers_with_what_it_holds() {
    // A gradual deployment (or a rollback): this instance's session still gets the older
    // version, and it polled after the token was issued, so it answers with it rather than
    // making the client wait for a version AppConfig does not give it.
    let fresh = instance(Some(&new()), t(T1) + secs(5), Overrides::none()).await;
    let token = journey_token(&fresh.cache).await;
    let behind = instance(Some(&old()), t(T1) + secs(10), Overrides::none()).await;
    behind.clock.set(t(T1) + secs(12));
    let calls = behind.source.calls();

    let reply = post(&behind.cache, BULK, &[("lockstep-journey", token.as_str())]).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.flag(X)["value"], false);
    assert_eq!(reply.flag(X)["metadata"]["rawValue"], false);
    assert_eq!(behind.source.calls(), calls);
}
