//! The races of the create path against DynamoDB Local, through the real store and handlers:
//! concurrent requests with one `Idempotency-Key`, a response lost after the write (the SDK's own
//! retry), and idempotency keys expiring after [`IDEMPOTENCY_TTL`]. None of them answers 500.
//!
//! A missing Java or `npm ci` fails the test loudly; it never skips.

use aws_sdk_dynamodb::config::interceptors::{
    BeforeDeserializationInterceptorContextMut, BeforeTransmitInterceptorContextRef,
};
use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, TimeDelta, Utc};
use lambda_http::{Body, Request, Response};
use lockstep::{Clock, ManualClock, SystemClock};
use lockstep_sample::dynamo::{DynamoStore, IDEMPOTENCY_TTL, TTL_ATTRIBUTE};
use lockstep_sample::FeatureX;
use lockstep_testkit::dynamo_local::{client, ensure_table, DynamoLocal};
use lockstep_testkit::fixtures::cache_holding;
use lockstep_testkit::logs::Logs;
use serde_json::Value;
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const TABLE: &str = "submissions";

async fn dynamo_local() -> (DynamoLocal, Client) {
    let dynamo = DynamoLocal::start_from(Path::new(env!("CARGO_MANIFEST_DIR")), &[])
        .await
        .expect("DynamoDB Local must start (Java 17 and `npm ci` in the project root)");
    let db = client(&dynamo.endpoint);
    ensure_table(&db, TABLE, true).await.unwrap();
    (dynamo, db)
}

async fn feature_x(db: Client, clock: Arc<dyn Clock>) -> FeatureX {
    let (flags, _) = cache_holding(
        lockstep_sample::product::catalog(),
        r#"{"isFeatureXEnabled": true}"#,
        clock.clone(),
    )
    .await;
    FeatureX::new(flags, Arc::new(DynamoStore::new(db, TABLE)), clock).unwrap()
}

fn post(user: &str, key: Option<&str>) -> Request {
    let mut builder = http::Request::builder()
        .method("POST")
        .uri("/feature-x/submissions")
        .header("content-type", "application/json");
    if let Some(key) = key {
        builder = builder.header("idempotency-key", key);
    }
    let request = builder
        .body(Body::Text(format!(
            r#"{{"userId":"{user}","journeyId":"j1","plan":"premium","quantity":2}}"#
        )))
        .unwrap();
    lockstep_sample::auth::as_user(request, user)
}

/// The `path` of each log line that has one.
fn paths(lines: &[Value]) -> Vec<String> {
    lines
        .iter()
        .filter_map(|l| l["fields"]["path"].as_str().map(str::to_owned))
        .collect()
}

fn body_json(response: &Response<Body>) -> Value {
    match response.body() {
        Body::Text(text) => serde_json::from_str(text).expect("a JSON body"),
        other => panic!("expected a text body, got {other:?}"),
    }
}

/// The submissions stored for `user`, read strongly consistent.
async fn stored(db: &Client, user: &str) -> Vec<HashMap<String, AttributeValue>> {
    db.query()
        .table_name(TABLE)
        .key_condition_expression("pk = :pk AND begins_with(sk, :sub)")
        .expression_attribute_values(":pk", AttributeValue::S(format!("USER#{user}")))
        .expression_attribute_values(":sub", AttributeValue::S("SUB#".into()))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .items
        .unwrap_or_default()
}

fn s(item: &HashMap<String, AttributeValue>, field: &str) -> String {
    match &item[field] {
        AttributeValue::S(s) => s.clone(),
        AttributeValue::N(n) => n.clone(),
        other => panic!("{field}: {other:?}"),
    }
}

/// The `X-Amz-Target` operation of a request (`Query`, `PutItem`, ...).
fn operation(request: &aws_sdk_dynamodb::config::http::HttpRequest) -> String {
    request
        .headers()
        .get("x-amz-target")
        .and_then(|t| t.rsplit('.').next())
        .unwrap_or_default()
        .to_owned()
}

/// Counts attempts per operation, as sent to DynamoDB.
#[derive(Debug, Default, Clone)]
struct Attempts(Arc<Mutex<HashMap<String, usize>>>);

impl Attempts {
    fn of(&self, operation: &str) -> usize {
        self.0.lock().unwrap().get(operation).copied().unwrap_or(0)
    }
}

impl Intercept for Attempts {
    fn name(&self) -> &'static str {
        "Attempts"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        *self
            .0
            .lock()
            .unwrap()
            .entry(operation(context.request()))
            .or_default() += 1;
        Ok(())
    }
}

/// Loses the answer to the first `left` attempts of `operation` after DynamoDB did the work: the
/// client sees a 500 instead (what a dropped connection or a server fault after the write looks
/// like) and the SDK retries. For a client making one call at a time (the request is gone once
/// sent, so the operation is noted before).
#[derive(Debug, Default)]
struct LoseFirstAnswers {
    operation: &'static str,
    left: AtomicUsize,
    sent: Mutex<String>,
}

impl LoseFirstAnswers {
    fn new(operation: &'static str, left: usize) -> Self {
        Self {
            operation,
            left: AtomicUsize::new(left),
            sent: Mutex::default(),
        }
    }
}

impl Intercept for LoseFirstAnswers {
    fn name(&self) -> &'static str {
        "LoseFirstAnswers"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        *self.sent.lock().unwrap() = operation(context.request());
        Ok(())
    }

    fn modify_before_deserialization(
        &self,
        context: &mut BeforeDeserializationInterceptorContextMut<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let ours = *self.sent.lock().unwrap() == self.operation;
        let lose = ours
            && self
                .left
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok();
        if lose {
            *context.response_mut().status_mut() = 500.try_into()?;
        }
        Ok(())
    }
}

/// `db` counting its attempts in `attempts`, with `interceptor` if any, standard retries (3
/// attempts) and a short backoff.
fn with_interceptors(
    db: &Client,
    attempts: &Attempts,
    interceptor: Option<LoseFirstAnswers>,
) -> Client {
    let mut config = db
        .config()
        .to_builder()
        .interceptor(attempts.clone())
        .retry_config(RetryConfig::standard().with_initial_backoff(Duration::from_millis(5)));
    if let Some(interceptor) = interceptor {
        config = config.interceptor(interceptor);
    }
    Client::from_conf(config.build())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_creates_with_one_idempotency_key_store_one_item_and_never_answer_500() {
    let (dynamo, db) = dynamo_local().await;
    let attempts = Attempts::default();
    let feature_x = feature_x(
        with_interceptors(&db, &attempts, None),
        Arc::new(SystemClock),
    )
    .await;
    const ROUNDS: usize = 6;
    const CONCURRENT: usize = 12;
    let mut statuses: HashMap<u16, usize> = HashMap::new();
    for round in 0..ROUNDS {
        let user = format!("race-{round}");
        let key = format!("key-{round}");
        let tasks: Vec<_> = (0..CONCURRENT)
            .map(|_| {
                let (feature_x, request) = (feature_x.clone(), post(&user, Some(&key)));
                tokio::spawn(async move { feature_x.serve(request).await })
            })
            .collect();
        let mut ids = Vec::new();
        let mut created = 0;
        for task in tasks {
            let response = task.await.unwrap();
            let status = response.status().as_u16();
            *statuses.entry(status).or_default() += 1;
            match status {
                201 | 200 => {
                    created += usize::from(status == 201);
                    ids.push(body_json(&response)["id"].as_str().unwrap().to_owned());
                }
                409 => {
                    assert_eq!(response.headers()["retry-after"], "1");
                    assert_eq!(
                        body_json(&response)["type"],
                        "urn:lockstep:problem:conflict"
                    );
                }
                other => panic!("round {round}: {other} {:?}", response.body()),
            }
        }
        let items = stored(&db, &user).await;
        assert_eq!(items.len(), 1, "round {round}: exactly one item stored");
        assert_eq!(created, 1, "round {round}: one 201, the others replays");
        let id = s(&items[0], "id");
        assert!(
            ids.iter().all(|i| *i == id),
            "round {round}: every answer names the stored submission"
        );
    }
    let transactions = attempts.of("TransactWriteItems");
    eprintln!(
        "answers {statuses:?}; {transactions} TransactWriteItems attempts for {} requests",
        ROUNDS * CONCURRENT
    );
    assert!(transactions >= ROUNDS * CONCURRENT);
    dynamo.stop().await;
}

#[tokio::test]
async fn a_create_whose_answer_was_lost_answers_201_with_the_submission_it_stored() {
    let (logs, _guard) = Logs::capture();
    let (dynamo, db) = dynamo_local().await;

    // Without a key: the SDK retries the put, which meets the item its first attempt stored.
    let attempts = Attempts::default();
    let lost = with_interceptors(&db, &attempts, Some(LoseFirstAnswers::new("PutItem", 1)));
    let response = feature_x(lost, Arc::new(SystemClock))
        .await
        .serve(post("lost-put", None))
        .await;
    assert_eq!(response.status(), 201, "{:?}", response.body());
    assert_eq!(attempts.of("PutItem"), 2, "the SDK retried once");
    let items = stored(&db, "lost-put").await;
    assert_eq!(items.len(), 1);
    assert_eq!(body_json(&response)["id"], s(&items[0], "id"));
    let paths_put = paths(&logs.take());
    assert!(
        paths_put.ends_with(&[
            "put_retry_found_own_item".into(),
            "submission_created".into()
        ]),
        "{paths_put:?}"
    );

    // With a key: the SDK retries the transaction, which meets its own record and item.
    let attempts = Attempts::default();
    let lost = with_interceptors(
        &db,
        &attempts,
        Some(LoseFirstAnswers::new("TransactWriteItems", 1)),
    );
    let response = feature_x(lost, Arc::new(SystemClock))
        .await
        .serve(post("lost-tx", Some("k1")))
        .await;
    assert_eq!(response.status(), 201, "{:?}", response.body());
    assert!(attempts.of("TransactWriteItems") >= 2, "the SDK retried");
    let items = stored(&db, "lost-tx").await;
    assert_eq!(items.len(), 1);
    assert_eq!(body_json(&response)["id"], s(&items[0], "id"));
    // DynamoDB Local honours the transaction's ClientRequestToken (the SDK keeps it across
    // retries), so the retry succeeds outright; without it, the retry meets its own record.
    let paths = paths(&logs.take());
    eprintln!("transaction retried after a lost answer: {paths:?}");
    assert_eq!(paths.last().map(String::as_str), Some("submission_created"));
    dynamo.stop().await;
}

#[tokio::test]
async fn an_idempotency_record_carries_its_ttl_and_the_key_expires_after_24_hours() {
    let (dynamo, db) = dynamo_local().await;
    let start: DateTime<Utc> = DateTime::parse_from_rfc3339("2026-11-21T10:00:00Z")
        .unwrap()
        .with_timezone(&Utc);
    let clock = ManualClock::new(start);
    let feature_x = feature_x(db.clone(), Arc::new(clock.clone())).await;

    let first = feature_x.serve(post("ttl", Some("k-ttl"))).await;
    assert_eq!(first.status(), 201);
    let record = db
        .get_item()
        .table_name(TABLE)
        .key("pk", AttributeValue::S("IDEMPOTENCY#ttl#k-ttl".into()))
        .key("sk", AttributeValue::S("IDEMPOTENCY".into()))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
        .expect("the idempotency record");
    let expires_at = start.timestamp() + IDEMPOTENCY_TTL.as_secs() as i64;
    assert_eq!(
        record[TTL_ATTRIBUTE],
        AttributeValue::N(expires_at.to_string())
    );
    // Submissions never expire.
    assert!(!stored(&db, "ttl").await[0].contains_key(TTL_ATTRIBUTE));

    // Just before expiry: the original.
    clock.advance(TimeDelta::hours(24) - TimeDelta::seconds(1));
    let replay = feature_x.serve(post("ttl", Some("k-ttl"))).await;
    assert_eq!(replay.status(), 200);
    assert_eq!(body_json(&replay)["id"], body_json(&first)["id"]);

    // Expired, though TTL has not deleted the record yet: the key is free again.
    clock.advance(TimeDelta::seconds(2));
    let again = feature_x.serve(post("ttl", Some("k-ttl"))).await;
    assert_eq!(again.status(), 201);
    assert_ne!(body_json(&again)["id"], body_json(&first)["id"]);
    assert_eq!(stored(&db, "ttl").await.len(), 2);
    dynamo.stop().await;
}
