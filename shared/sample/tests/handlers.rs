//! Feature X's handlers end to end on the in-memory submission store and the `events/`
//! fixtures: the gate on `isFeatureXEnabled`, idempotent creates, the bad-input statuses, the
//! listing's read method, paging, a store outage and a flag switched off by a new version. No
//! DynamoDB Local: every test runs in virtual time on `lockstep_testkit::MemoryStore`.

use chrono::{DateTime, TimeDelta, Utc};
use lambda_http::{Body, Request, Response};
use lockstep_sample::auth::as_user;
use lockstep_sample::product::catalog;
use lockstep_sample::submissions::QueryMethod;
use lockstep_sample::FeatureX;
use lockstep_testkit::fixtures::{
    self, deployed_at, event, flags_document, percent_encode, TestCache,
};
use lockstep_testkit::MemoryStore;
use serde_json::{json, Value};
use std::sync::Arc;

/// Feature X over a fresh memory store and a cache holding `flags_document(feature_x, use_gsi)`
/// as version `1`, at [`deployed_at`].
struct Harness {
    feature_x: FeatureX,
    store: Arc<MemoryStore>,
    flags: TestCache,
}

async fn harness(feature_x: bool, use_gsi: bool) -> Harness {
    let flags = TestCache::new(
        catalog(),
        &flags_document(feature_x, use_gsi),
        deployed_at(),
    )
    .await;
    let store = Arc::new(MemoryStore::new());
    let feature_x = FeatureX::new(
        flags.cache.clone(),
        store.clone(),
        Arc::new(flags.clock.clone()),
    )
    .expect("the product catalog declares feature X's flags");
    Harness {
        feature_x,
        store,
        flags,
    }
}

impl Harness {
    async fn serve(&self, request: Request) -> Response<Body> {
        self.feature_x.serve(request).await
    }
}

fn body_json(response: &Response<Body>) -> Value {
    match response.body() {
        Body::Text(text) => serde_json::from_str(text).expect("a JSON body"),
        other => panic!("expected a text body, got {other:?}"),
    }
}

/// Asserts an `application/problem+json` answer of `status` and kind `kind`; returns its body.
#[track_caller]
fn assert_problem(response: &Response<Body>, status: u16, kind: &str) -> Value {
    assert_eq!(response.status(), status, "{:?}", response.body());
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let body = body_json(response);
    assert_eq!(body["status"], status);
    assert_eq!(body["type"], format!("urn:lockstep:problem:{kind}"));
    body
}

/// Asserts the 503 of a closed gate: it names the flag and asks to retry after P (45 s).
#[track_caller]
fn assert_gate_closed(response: &Response<Body>) {
    let body = assert_problem(response, 503, "feature-disabled");
    assert_eq!(body["flag"], "isFeatureXEnabled");
    assert_eq!(response.headers()["retry-after"], "45");
}

/// `request` with `body` as its body (headers, method and path kept).
fn with_body(request: Request, body: &str) -> Request {
    let (parts, _) = request.into_parts();
    Request::from_parts(parts, Body::Text(body.to_owned()))
}

/// `request` with the header `name` set to `value`.
fn with_header(mut request: Request, name: &'static str, value: &str) -> Request {
    request
        .headers_mut()
        .insert(name, value.parse().expect("a valid header value"));
    request
}

/// `request` at `path_and_query` (a valid one: the tests write it).
fn with_uri(request: Request, path_and_query: &str) -> Request {
    fixtures::with_uri(request, path_and_query).expect("a valid path and query")
}

/// The `feature-x-list` fixture with `query` as its query string.
fn list(query: &str) -> Request {
    with_uri(
        event("feature-x-list"),
        &format!("/feature-x/submissions?{query}"),
    )
}

/// The `feature-x-get` fixture for submission `id`, signed in as `user`.
fn get(id: &str, user: &str) -> Request {
    as_user(
        with_uri(
            event("feature-x-get"),
            &format!("/feature-x/submissions/{id}"),
        ),
        user,
    )
}

/// `request` without the authorizer's claims: as it would reach a function deployed without
/// the JWT authorizer.
fn anonymous(request: Request) -> Request {
    let (parts, body) = request.into_parts();
    let mut fresh = Request::new(body);
    *fresh.method_mut() = parts.method;
    *fresh.uri_mut() = parts.uri;
    *fresh.headers_mut() = parts.headers;
    fresh
}

/// The `feature-x-create` fixture with its own `Idempotency-Key`.
fn create(key: &str) -> Request {
    with_header(event("feature-x-create"), "idempotency-key", key)
}

#[tokio::test]
async fn a_create_answers_201_and_a_replay_with_the_same_key_answers_200_with_the_same_submission()
{
    let x = harness(true, false).await;

    let first = x.serve(event("feature-x-create")).await;
    // A replay a second later: a new submission would get another id and createdAt.
    x.flags.clock.advance(TimeDelta::seconds(1));
    let replay = x.serve(event("feature-x-create")).await;

    assert_eq!(first.status(), 201, "{:?}", first.body());
    assert_eq!(first.headers()["content-type"], "application/json");
    let created = body_json(&first);
    assert_eq!(created["userId"], "user-1");
    assert_eq!(created["journeyId"], "journey-1");
    assert_eq!(created["plan"], "premium");
    assert_eq!(created["quantity"], 2);
    assert_eq!(created["note"], "from the events fixture");
    assert_eq!(created["id"].as_str().map(str::len), Some(28));
    let created_at: DateTime<Utc> = created["createdAt"]
        .as_str()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .expect("an RFC 3339 createdAt")
        .with_timezone(&Utc);
    assert_eq!(created_at, deployed_at());

    assert_eq!(replay.status(), 200, "{:?}", replay.body());
    assert_eq!(body_json(&replay), created, "the original submission");
    assert_eq!(x.store.writes(), 1);
    let stored = x.store.all();
    assert_eq!(stored.len(), 1);
    assert_eq!(json!(stored[0].id), created["id"]);
}

#[tokio::test]
async fn the_same_idempotency_key_with_a_different_body_answers_409_and_writes_nothing() {
    let x = harness(true, false).await;
    let first = x.serve(event("feature-x-create")).await;
    assert_eq!(first.status(), 201);
    let different = with_body(
        event("feature-x-create"),
        r#"{"userId": "user-1", "journeyId": "journey-1", "plan": "premium", "quantity": 3}"#,
    );

    let response = x.serve(different).await;

    assert_problem(&response, 409, "conflict");
    assert_eq!(x.store.writes(), 1);
    assert_eq!(x.store.all()[0].quantity, 2, "the original is kept");
}

#[tokio::test]
async fn with_the_flag_off_every_feature_x_route_answers_503_naming_the_flag_and_touches_no_storage(
) {
    // With the GSI flag on, so a listing that got through would be recorded as Gsi.
    let x = harness(false, true).await;

    for name in [
        "feature-x-create",
        "feature-x-get",
        "feature-x-list",
        "feature-x-list-journey",
    ] {
        let response = x.serve(event(name)).await;

        assert_gate_closed(&response);
    }
    assert_eq!(x.store.writes(), 0);
    assert!(x.store.all().is_empty());
    assert_eq!(x.store.methods(), Vec::<QueryMethod>::new(), "no listing");
}

#[tokio::test]
async fn with_the_flag_off_a_bad_body_answers_503_because_the_gate_decides_before_the_body_is_read()
{
    let x = harness(false, false).await;

    for name in [
        "feature-x-malformed-json",
        "feature-x-wrong-types",
        "feature-x-missing-fields",
        "feature-x-too-large",
        "feature-x-wrong-content-type",
    ] {
        let response = x.serve(event(name)).await;

        assert_gate_closed(&response);
    }
    assert_eq!(x.store.writes(), 0);
}

#[tokio::test]
async fn each_bad_input_fixture_answers_its_status_and_writes_nothing() {
    let x = harness(true, false).await;
    let cases = [
        ("feature-x-malformed-json", 400, "bad-request"),
        ("feature-x-wrong-types", 400, "bad-request"),
        ("feature-x-missing-fields", 400, "bad-request"),
        ("feature-x-too-large", 413, "payload-too-large"),
        (
            "feature-x-wrong-content-type",
            415,
            "unsupported-media-type",
        ),
        ("feature-x-wrong-method", 405, "method-not-allowed"),
        ("feature-x-unknown-route", 404, "not-found"),
    ];

    for (name, status, kind) in cases {
        let response = x.serve(event(name)).await;

        let body = assert_problem(&response, status, kind);
        assert!(
            response.headers().get("retry-after").is_none(),
            "{name}: no Retry-After on a client error"
        );
        if status == 405 {
            assert_eq!(response.headers()["allow"], "GET, POST");
        }
        if status == 400 {
            let detail = body["detail"].as_str().unwrap_or_default();
            assert!(detail.starts_with("The body"), "{name}: {detail}");
        }
    }
    assert_eq!(x.store.writes(), 0);
    assert!(x.store.all().is_empty());
}

#[tokio::test]
async fn no_400_repeats_any_part_of_the_body_wherever_the_caller_put_it() {
    let x = harness(true, false).await;
    // A page that tricks a browser into sending this must not get it reflected back.
    let marker = "<script>alert('QZJ')</script>";
    let long = marker.repeat(15 * 1024 / marker.len());
    let m = serde_json::to_string(marker).unwrap();
    let l = serde_json::to_string(&long).unwrap();
    let valid = r#""journeyId": "j1", "plan": "basic", "quantity": 1"#;
    let bodies = [
        // An unknown field's name.
        format!(r#"{{{valid}, {m}: 1}}"#),
        format!(r#"{{{l}: 1, {valid}}}"#),
        // Values of the wrong type.
        format!(r#"{{"journeyId": "j1", "plan": "basic", "quantity": {l}}}"#),
        format!(r#"{{"journeyId": {{{m}: {m}}}, "plan": "basic", "quantity": 1}}"#),
        format!(r#"{{"journeyId": "j1", "plan": "basic", "quantity": 1, "note": [{m}]}}"#),
        // Values not among the accepted ones.
        format!(r#"{{"journeyId": "j1", "plan": {l}, "quantity": 1}}"#),
        format!(r#"{{"journeyId": "j1", "plan": {m}, "quantity": 1}}"#),
        // Over-long or ill-formed strings.
        format!(r#"{{"journeyId": {l}, "plan": "basic", "quantity": 1}}"#),
        format!(r#"{{"journeyId": {m}, "plan": "basic", "quantity": 1}}"#),
        format!(r#"{{{valid}, "note": {l}}}"#),
        // Not JSON, with the marker before and after the fault.
        format!(r#"{{{valid}, "note": {m} {m}}}"#),
        format!(r#"{{{valid}, "note": {m}"#),
    ];

    for body in &bodies {
        let response = x.serve(with_body(create("marker"), body)).await;

        let problem = assert_problem(&response, 400, "bad-request");
        let text = problem.to_string();
        for part in ["QZJ", "<script", "alert", "script>"] {
            assert!(!text.contains(part), "{part} echoed: {text:.300}");
        }
        let detail = problem["detail"].as_str().unwrap();
        assert!(
            detail.starts_with("The body") || detail.contains("must be"),
            "{detail}"
        );
    }
    assert_eq!(x.store.writes(), 0);
}

#[tokio::test]
async fn routing_answers_404_and_405_even_while_the_flag_is_off() {
    let x = harness(false, false).await;

    let wrong_method = x.serve(event("feature-x-wrong-method")).await;
    let unknown_route = x.serve(event("feature-x-unknown-route")).await;

    assert_problem(&wrong_method, 405, "method-not-allowed");
    assert_eq!(wrong_method.headers()["allow"], "GET, POST");
    assert_problem(&unknown_route, 404, "not-found");
    assert!(wrong_method.headers().get("retry-after").is_none());
    assert!(unknown_route.headers().get("retry-after").is_none());
}

#[tokio::test]
async fn a_created_submission_is_read_back_by_id_for_its_user_only() {
    let x = harness(true, false).await;
    let created = body_json(&x.serve(event("feature-x-create")).await);
    let id = created["id"].as_str().expect("an id");

    let own = x.serve(get(id, "user-1")).await;
    let other_user = x.serve(get(id, "user-2")).await;
    let unknown_id = x.serve(event("feature-x-get")).await;

    assert_eq!(own.status(), 200, "{:?}", own.body());
    assert_eq!(body_json(&own), created);
    assert_problem(&other_user, 404, "not-found");
    assert_problem(&unknown_id, 404, "not-found");
}

#[tokio::test]
async fn a_journey_listing_reads_the_gsi_when_use_submissions_gsi_is_on() {
    let x = harness(true, true).await;
    let created = body_json(&x.serve(event("feature-x-create")).await);

    let response = x.serve(event("feature-x-list-journey")).await;

    assert_eq!(response.status(), 200, "{:?}", response.body());
    let page = body_json(&response);
    assert_eq!(page["items"], json!([created]));
    assert_eq!(page["nextCursor"], Value::Null);
    assert_eq!(x.store.methods(), [QueryMethod::Gsi]);
}

#[tokio::test]
async fn a_journey_listing_reads_with_the_filter_expression_when_use_submissions_gsi_is_off() {
    let x = harness(true, false).await;
    let created = body_json(&x.serve(event("feature-x-create")).await);

    let response = x.serve(event("feature-x-list-journey")).await;

    assert_eq!(response.status(), 200, "{:?}", response.body());
    let page = body_json(&response);
    assert_eq!(page["items"], json!([created]));
    assert_eq!(page["nextCursor"], Value::Null);
    assert_eq!(x.store.methods(), [QueryMethod::FilterExpression]);
}

#[tokio::test]
async fn a_user_listing_reads_the_base_key_whatever_use_submissions_gsi_says() {
    for use_gsi in [true, false] {
        let x = harness(true, use_gsi).await;
        let created = body_json(&x.serve(event("feature-x-create")).await);

        let response = x.serve(event("feature-x-list")).await;

        assert_eq!(response.status(), 200, "{:?}", response.body());
        assert_eq!(body_json(&response)["items"], json!([created]));
        assert_eq!(
            x.store.methods(),
            [QueryMethod::KeyQuery],
            "useSubmissionsGsi={use_gsi}"
        );
    }
}

#[tokio::test]
async fn paging_with_limit_1_returns_the_other_submission_on_the_page_after_the_cursor() {
    let x = harness(true, true).await;
    let older = body_json(&x.serve(create("page-key-1")).await);
    x.flags.clock.advance(TimeDelta::milliseconds(1));
    let newer = body_json(&x.serve(create("page-key-2")).await);
    assert_ne!(older["id"], newer["id"]);
    assert_eq!(x.store.writes(), 2);
    let query = "userId=user-1&journeyId=journey-1&limit=1";

    let first = x.serve(list(query)).await;
    let first_page = body_json(&first);
    let cursor = first_page["nextCursor"]
        .as_str()
        .expect("a nextCursor on the first page");
    let second = x
        .serve(list(&format!("{query}&cursor={}", percent_encode(cursor))))
        .await;
    let second_page = body_json(&second);

    assert_eq!(first.status(), 200, "{:?}", first.body());
    assert_eq!(first_page["items"], json!([older]), "oldest first");
    assert_eq!(second.status(), 200, "{:?}", second.body());
    assert_eq!(second_page["items"], json!([newer]));
    assert_eq!(second_page["nextCursor"], Value::Null, "the end");
    assert_eq!(x.store.methods(), [QueryMethod::Gsi, QueryMethod::Gsi]);
}

#[tokio::test]
async fn a_cursor_or_limit_the_listing_cannot_use_answers_400() {
    let x = harness(true, true).await;

    let bad_cursor = x
        .serve(list("userId=user-1&journeyId=journey-1&cursor=not-ours"))
        .await;
    let zero_limit = x.serve(list("userId=user-1&limit=0")).await;

    assert_problem(&bad_cursor, 400, "bad-request");
    assert_problem(&zero_limit, 400, "bad-request");
}

#[tokio::test]
async fn a_cursor_is_refused_for_another_user_or_journey_and_when_edited_in_any_way() {
    let x = harness(true, true).await;
    for key in ["c-1", "c-2"] {
        assert_eq!(x.serve(create(key)).await.status(), 201);
        x.flags.clock.advance(TimeDelta::milliseconds(1));
    }
    let first = body_json(&x.serve(list("journeyId=journey-1&limit=1")).await);
    let cursor = first["nextCursor"].as_str().expect("a cursor").to_owned();
    let (inner, tag) = cursor
        .rsplit_once('.')
        .expect("the store's cursor, then its tag");
    let reads_before = x.store.methods().len();

    let ok = x
        .serve(list(&format!(
            "journeyId=journey-1&limit=1&cursor={cursor}"
        )))
        .await;
    assert_eq!(ok.status(), 200, "{:?}", ok.body());
    let flipped_inner = format!(
        "{}{}",
        &inner[..inner.len() - 1],
        if inner.ends_with('0') { '1' } else { '0' }
    );
    let refused = [
        // Another user, same listing.
        as_user(
            list(&format!("journeyId=journey-1&limit=1&cursor={cursor}")),
            "user-2",
        ),
        // Another journey, or the user's whole listing.
        list(&format!("journeyId=journey-2&limit=1&cursor={cursor}")),
        list(&format!("limit=1&cursor={cursor}")),
        // The store's cursor without its tag, with an edited key, with another tag.
        list(&format!("journeyId=journey-1&limit=1&cursor={inner}")),
        list(&format!(
            "journeyId=journey-1&limit=1&cursor={flipped_inner}.{tag}"
        )),
        list(&format!(
            "journeyId=journey-1&limit=1&cursor={inner}.{}",
            "A".repeat(tag.len())
        )),
    ];
    for request in refused {
        let uri = request.uri().to_string();
        let response = x.serve(request).await;
        let body = assert_problem(&response, 400, "bad-request");
        assert!(body["detail"].as_str().unwrap().contains("cursor"), "{uri}");
    }
    assert_eq!(
        x.store.methods().len(),
        reads_before + 1,
        "only the valid cursor reached the store"
    );
}

#[tokio::test]
async fn without_the_authorizers_claims_every_route_answers_401_even_while_the_flag_is_off() {
    for feature_x in [true, false] {
        let x = harness(feature_x, true).await;
        for name in ["feature-x-create", "feature-x-get", "feature-x-list"] {
            let response = x.serve(anonymous(event(name))).await;
            assert_problem(&response, 401, "unauthorized");
            assert_eq!(response.headers()["www-authenticate"], "Bearer", "{name}");
        }
        assert_eq!(x.store.writes(), 0);
        assert!(x.store.methods().is_empty(), "no read either");
    }
}

#[tokio::test]
async fn the_user_is_the_token_subject_and_a_user_id_naming_another_user_answers_403() {
    let x = harness(true, true).await;
    // The fixture's body names no user: the submission is the caller's (user-1).
    let created = body_json(&x.serve(event("feature-x-create")).await);
    assert_eq!(created["userId"], "user-1");
    let id = created["id"].as_str().unwrap();

    // Signed in as user-2, naming user-1 anywhere: 403, nothing read or written.
    let body_names_other = x
        .serve(as_user(
            with_body(
                create("other-key"),
                r#"{"userId":"user-1","journeyId":"journey-1","plan":"basic","quantity":1}"#,
            ),
            "user-2",
        ))
        .await;
    let list_names_other = x.serve(as_user(list("userId=user-1"), "user-2")).await;
    let get_names_other = x
        .serve(as_user(
            with_uri(
                event("feature-x-get"),
                &format!("/feature-x/submissions/{id}?userId=user-1"),
            ),
            "user-2",
        ))
        .await;
    for response in [&body_names_other, &list_names_other, &get_names_other] {
        assert_problem(response, 403, "forbidden");
    }
    assert_eq!(x.store.writes(), 1, "only user-1's own create");

    // Without naming anyone, user-2 sees nothing of user-1's: the id answers 404 as an
    // unknown one would (no existence oracle), the listing is empty.
    let get_other = x.serve(get(id, "user-2")).await;
    let list_own = x
        .serve(as_user(list("journeyId=journey-1"), "user-2"))
        .await;
    let unknown = x.serve(get("00ff", "user-2")).await;
    assert_eq!(
        assert_problem(&get_other, 404, "not-found"),
        assert_problem(&unknown, 404, "not-found"),
        "another user's submission and an unknown id answer alike"
    );
    assert_eq!(list_own.status(), 200);
    assert_eq!(body_json(&list_own)["items"], json!([]));
}

#[tokio::test]
async fn a_store_outage_answers_503_with_retry_after_1_and_writes_nothing() {
    let x = harness(true, true).await;
    x.store.set_failing(true);

    let responses = [
        x.serve(event("feature-x-create")).await,
        x.serve(event("feature-x-get")).await,
        x.serve(event("feature-x-list-journey")).await,
    ];

    for response in &responses {
        let body = assert_problem(response, 503, "storage-unavailable");
        assert_eq!(response.headers()["retry-after"], "1");
        assert_eq!(body["flag"], Value::Null, "not the gate");
    }
    assert_eq!(x.store.writes(), 0);
    // Nothing of the failed create was kept: the same key creates once the store is back.
    x.store.set_failing(false);
    let after = x.serve(event("feature-x-create")).await;
    assert_eq!(after.status(), 201, "{:?}", after.body());
    assert_eq!(x.store.writes(), 1);
}

#[tokio::test]
async fn a_flag_switched_off_by_a_new_version_closes_the_gate_at_the_first_request_after_p() {
    let x = harness(true, false).await;
    assert_eq!(x.serve(create("switch-1")).await.status(), 201);
    x.flags
        .source
        .publish("2", flags_document(false, false).as_str());

    // Within P of the fetch the instance still serves version 1, without fetching.
    x.flags.clock.advance(TimeDelta::seconds(44));
    let within_p = x.serve(create("switch-2")).await;
    let calls_within_p = x.flags.source.calls();
    // Past P the next request refreshes first, and sees the flag off.
    x.flags.clock.advance(TimeDelta::seconds(2));
    let past_p = x.serve(create("switch-3")).await;

    assert_eq!(within_p.status(), 201, "{:?}", within_p.body());
    assert_eq!(calls_within_p, 1, "no fetch within P");
    assert_gate_closed(&past_p);
    assert_eq!(x.flags.source.calls(), 2, "one refresh, on access");
    assert_eq!(x.store.writes(), 2);
}
