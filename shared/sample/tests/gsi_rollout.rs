//! The GSI rollout against DynamoDB Local started with `-delayTransientStatuses`: a table holding
//! submissions gets the `byUserJourney` index by `UpdateTable`. While the index is `CREATING`
//! (DynamoDB Local answers a Query on it with nothing at all, where real DynamoDB refuses it),
//! a listing with the flag on reads with the FilterExpression; once `ACTIVE`, and once the
//! status is refreshed (on the flags' P), with the GSI. Both paths return exactly the same pages
//! on generated data.
//!
//! A missing Java or `npm ci` fails the test loudly; it never skips.

use aws_sdk_dynamodb::types::{AttributeValue, IndexStatus};
use chrono::{DateTime, TimeDelta, Utc};
use lockstep::cache::CacheOptions;
use lockstep::memory::MemorySource;
use lockstep::{FlagCache, ManualClock, Overrides, Settings};
use lockstep_sample::dynamo::{DynamoStore, GSI_NAME};
use lockstep_sample::submissions::{
    Ident, ListQuery, Plan, QueryMethod, Submission, SubmissionRequest, SubmissionStore, UserId,
};
use lockstep_sample::FeatureX;
use lockstep_testkit::dynamo_local::{
    add_gsi, client, ensure_table, wait_table_active, DynamoLocal,
};
use lockstep_testkit::logs::Logs;
use rand::{Rng, SeedableRng};
use serde_json::Value;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

const TABLE: &str = "submissions";
const P: Duration = Duration::from_secs(15);
const USERS: [&str; 3] = ["u1", "u2", "u3"];
const JOURNEYS: [&str; 4] = ["j1", "j2", "j3", "j-empty"];

/// The `method` field of the listing's log line (exactly one per listing).
fn logged_methods(lines: &[Value]) -> Vec<String> {
    lines
        .iter()
        .filter(|l| l["fields"]["message"] == "submissions listed")
        .map(|l| l["fields"]["method"].as_str().unwrap().to_owned())
        .collect()
}

/// One listing, on the FilterExpression path because the index was `status`, with the warning.
fn assert_fell_back(lines: &[Value], status: &str) {
    assert_eq!(logged_methods(lines), ["FilterExpression"]);
    assert!(
        lines
            .iter()
            .any(|l| l["fields"]["path"] == "index_not_active"
                && l["fields"]["index_status"] == status),
        "no index_not_active warning with index_status={status}"
    );
}

fn start() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-21T10:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

/// Stores generated submissions through the store; returns them oldest first.
async fn generate(store: &DynamoStore) -> Vec<Submission> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(6);
    let mut at = start() - TimeDelta::days(1);
    let mut all = Vec::new();
    for _ in 0..150 {
        at += TimeDelta::milliseconds(rng.random_range(1..5_000));
        let user = USERS[rng.random_range(0..USERS.len())];
        // j-empty never gets a submission; j1 gets most, so filters skip many items.
        let journey = ["j1", "j1", "j1", "j2", "j3"][rng.random_range(0..5)];
        let request = SubmissionRequest {
            user_id: UserId::parse("userId", user).unwrap(),
            journey_id: Ident::parse("journeyId", journey).unwrap(),
            plan: if rng.random_bool(0.5) {
                Plan::Basic
            } else {
                Plan::Premium
            },
            quantity: rng.random_range(1..=10),
            note: rng.random_bool(0.3).then(|| format!("note {}", all.len())),
        };
        let submission = Submission::new(request, at);
        store.create(&submission, None).await.unwrap();
        all.push(submission);
    }
    all
}

/// Every page of one listing, read with `method`; asserts the method each page was read with.
async fn pages(
    store: &DynamoStore,
    user: &str,
    journey: &str,
    limit: u32,
    method: QueryMethod,
) -> Vec<(Vec<Submission>, Option<String>)> {
    let mut cursor = None;
    let mut out = Vec::new();
    loop {
        let query = ListQuery {
            user_id: UserId::parse("userId", user).unwrap(),
            journey_id: Some(Ident::parse("journeyId", journey).unwrap()),
            limit,
            cursor: cursor.clone(),
        };
        let page = store.list(&query, method).await.unwrap();
        assert_eq!(page.method, method, "{user}/{journey} limit {limit}");
        cursor = page.next_cursor.clone();
        out.push((page.items, page.next_cursor));
        if cursor.is_none() {
            return out;
        }
        assert!(out.len() < 200, "paging does not end");
    }
}

async fn index_status(db: &aws_sdk_dynamodb::Client) -> Option<IndexStatus> {
    let out = db.describe_table().table_name(TABLE).send().await.unwrap();
    out.table()?
        .global_secondary_indexes()
        .iter()
        .find(|i| i.index_name() == Some(GSI_NAME))?
        .index_status()
        .cloned()
}

fn list_request(user: &str, journey: &str) -> lambda_http::Request {
    let request = http::Request::builder()
        .method("GET")
        .uri(format!(
            "/feature-x/submissions?userId={user}&journeyId={journey}&limit=100"
        ))
        .body(lambda_http::Body::Empty)
        .unwrap();
    let request = lambda_http::RequestExt::with_query_string_parameters(
        request,
        std::collections::HashMap::from([
            ("userId".to_owned(), user.to_owned()),
            ("journeyId".to_owned(), journey.to_owned()),
            ("limit".to_owned(), "100".to_owned()),
        ]),
    );
    lockstep_sample::auth::as_user(request, user)
}

#[tokio::test]
async fn the_listing_never_queries_a_creating_index_and_both_paths_return_the_same_pages() {
    let (logs, _guard) = Logs::capture();

    let dynamo = DynamoLocal::start_from(
        Path::new(env!("CARGO_MANIFEST_DIR")),
        &["-delayTransientStatuses"],
    )
    .await
    .expect("DynamoDB Local must start (Java 17 and `npm ci` in the project root)");
    let db = client(&dynamo.endpoint);
    ensure_table(&db, TABLE, false).await.unwrap();
    wait_table_active(&db, TABLE).await.unwrap();

    let clock = ManualClock::new(start());
    let store = Arc::new(
        DynamoStore::new(db.clone(), TABLE).with_index_refresh(P, Arc::new(clock.clone())),
    );
    let all = generate(&store).await;
    let expected = |user: &str, journey: &str| -> Vec<Submission> {
        all.iter()
            .filter(|s| s.user_id.as_str() == user && s.journey_id.as_str() == journey)
            .cloned()
            .collect()
    };

    // The flag says GSI (through FORCE_, over content that says FilterExpression).
    let (source, handle) = MemorySource::new();
    handle.publish(
        "1",
        r#"{"isFeatureXEnabled": true, "useSubmissionsGsi": false}"#,
    );
    let catalog = lockstep_sample::product::catalog();
    let overrides = Overrides::from_vars(
        &catalog,
        &[("FORCE_USE_SUBMISSIONS_GSI".into(), "true".into())],
    )
    .unwrap();
    let flags = FlagCache::new(
        Box::new(source),
        CacheOptions {
            catalog,
            overrides,
            settings: Settings {
                poll_interval: P,
                ..Settings::default()
            },
            clock: Arc::new(clock.clone()),
        },
    )
    .await;
    let feature_x = FeatureX::new(Arc::new(flags), store.clone(), Arc::new(clock.clone())).unwrap();
    let list = |user: &'static str, journey: &'static str| {
        let feature_x = feature_x.clone();
        async move {
            let response = feature_x.serve(list_request(user, journey)).await;
            assert_eq!(response.status(), 200);
            let body: Value = serde_json::from_slice(response.body()).unwrap();
            body["items"].clone()
        }
    };
    let json = |items: Vec<Submission>| serde_json::to_value(items).unwrap();

    // Before the index exists: the flag asks for it, the store says MISSING and falls back.
    assert_eq!(list("u1", "j1").await, json(expected("u1", "j1")));
    assert_fell_back(&logs.take(), "MISSING");

    // The rollout: the index is added to the table holding the data.
    add_gsi(&db, TABLE).await.unwrap();
    assert_eq!(index_status(&db).await, Some(IndexStatus::Creating));
    // What the interlock protects against: a query on the CREATING index does not return the
    // items. Real DynamoDB refuses it (ValidationException); DynamoDB Local either answers with
    // nothing or, in the 2026-01-16 jar, fails with a 500 InternalFailure.
    let raw = db
        .query()
        .table_name(TABLE)
        .index_name(GSI_NAME)
        .key_condition_expression("userJourney = :uj")
        .expression_attribute_values(":uj", AttributeValue::S("u1#j1".into()))
        .send()
        .await;
    let returned = raw.as_ref().map_or(0, |out| out.count());
    assert_eq!(
        returned, 0,
        "a query on a CREATING index returns no items: {raw:?}"
    );
    assert!(!expected("u1", "j1").is_empty());

    // P later, the status is described again: CREATING, still the FilterExpression path, and
    // still every item.
    clock.advance(TimeDelta::from_std(P).unwrap());
    assert_eq!(list("u1", "j1").await, json(expected("u1", "j1")));
    assert_fell_back(&logs.take(), "CREATING");

    // DynamoDB Local makes the index ACTIVE about 30 s later.
    let waited = Instant::now();
    while index_status(&db).await != Some(IndexStatus::Active) {
        assert!(
            waited.elapsed() < Duration::from_secs(120),
            "the index never became ACTIVE"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // ACTIVE, but the store's status is cached until P has passed: still FilterExpression.
    assert_eq!(list("u2", "j2").await, json(expected("u2", "j2")));
    assert_eq!(logged_methods(&logs.take()), ["FilterExpression"]);
    // After P: the GSI.
    clock.advance(TimeDelta::from_std(P).unwrap());
    assert_eq!(list("u2", "j2").await, json(expected("u2", "j2")));
    assert_eq!(logged_methods(&logs.take()), ["GSI"]);

    // Both paths, every user and journey, several page sizes: the same pages, the same items.
    let mut compared = 0;
    for user in USERS {
        for journey in JOURNEYS {
            let want = expected(user, journey);
            for limit in [1, 3, 7, 100] {
                let gsi = pages(&store, user, journey, limit, QueryMethod::Gsi).await;
                let filter =
                    pages(&store, user, journey, limit, QueryMethod::FilterExpression).await;
                assert_eq!(gsi, filter, "{user}/{journey} limit {limit}");
                let items: Vec<Submission> = gsi.into_iter().flat_map(|(items, _)| items).collect();
                assert_eq!(items, want, "{user}/{journey} limit {limit}");
                compared += want.len();
            }
        }
    }
    assert!(compared >= 4 * 150, "the data exercised paging: {compared}");
    // A cursor from one path continues on the other.
    let first = pages(&store, "u1", "j1", 3, QueryMethod::Gsi).await;
    let query = ListQuery {
        user_id: UserId::parse("userId", "u1").unwrap(),
        journey_id: Some(Ident::parse("journeyId", "j1").unwrap()),
        limit: 3,
        cursor: first[0].1.clone(),
    };
    let next = store
        .list(&query, QueryMethod::FilterExpression)
        .await
        .unwrap();
    assert_eq!(next.items, first[1].0);

    // Every listing logged its method and the read capacity it consumed.
    let lines = logs.take();
    let listed: Vec<&Value> = lines
        .iter()
        .filter(|l| l["fields"]["message"] == "submissions listed")
        .collect();
    assert!(!listed.is_empty());
    assert!(listed
        .iter()
        .all(|l| l["fields"]["consumed_rcu"].is_number()));
    dynamo.stop().await;
}
