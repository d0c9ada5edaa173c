//! DynamoDB throttling, outages and races through the real store and handlers (aws-smithy-mocks,
//! the SDK's own test support): 503 with Retry-After, nothing half-written, a 503 that says a
//! write may have happened when it may have, conflicting transactions retried then 409, and the
//! SDK's own retries recognising what their first attempt stored. Never a 500.

use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::config::timeout::TimeoutConfig;
use aws_sdk_dynamodb::error::ErrorMetadata;
use aws_sdk_dynamodb::operation::get_item::{GetItemInput, GetItemOutput};
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::error::{
    ConditionalCheckFailedException, InternalServerError, ProvisionedThroughputExceededException,
    TransactionCanceledException,
};
use aws_sdk_dynamodb::types::{AttributeValue, CancellationReason};
use aws_sdk_dynamodb::Client;
use aws_smithy_mocks::{mock, mock_client, RuleMode};
use chrono::{DateTime, Utc};
use lockstep::SystemClock;
use lockstep_sample::dynamo::{to_item, DynamoStore, CONFLICT_RETRIES};
use lockstep_sample::submissions::{
    Created, Ident, Plan, StoreError, Submission, SubmissionBody, SubmissionRequest,
    SubmissionStore, UserId,
};
use lockstep_sample::FeatureX;
use lockstep_testkit::fixtures::cache_holding;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

const BODY: &str = r#"{"userId":"u1","journeyId":"j1","plan":"basic","quantity":1}"#;

async fn feature_x(client: Client) -> FeatureX {
    let (flags, _) = cache_holding(
        lockstep_sample::product::catalog(),
        r#"{"isFeatureXEnabled": true}"#,
        Arc::new(SystemClock),
    )
    .await;
    FeatureX::new(
        flags,
        Arc::new(DynamoStore::new(client, "submissions")),
        Arc::new(SystemClock),
    )
    .unwrap()
}

fn post(key: Option<&str>) -> lambda_http::Request {
    let mut builder = http::Request::builder()
        .method("POST")
        .uri("/feature-x/submissions")
        .header("content-type", "application/json");
    if let Some(key) = key {
        builder = builder.header("idempotency-key", key);
    }
    let request = builder.body(lambda_http::Body::Text(BODY.into())).unwrap();
    lockstep_sample::auth::as_user(request, "u1")
}

fn detail(response: &lambda_http::Response<lambda_http::Body>) -> String {
    match response.body() {
        lambda_http::Body::Text(text) => {
            let problem: serde_json::Value = serde_json::from_str(text).unwrap();
            problem["detail"].as_str().unwrap().to_owned()
        }
        other => panic!("expected a text body, got {other:?}"),
    }
}

/// The submission `BODY` describes, stored earlier with id `id`.
fn original(id: &str) -> Submission {
    let request = SubmissionRequest::parse(
        serde_json::from_str::<SubmissionBody>(BODY).unwrap(),
        &UserId::parse("sub", "u1").unwrap(),
    )
    .unwrap();
    Submission {
        id: id.into(),
        user_id: request.user_id,
        journey_id: request.journey_id,
        plan: request.plan,
        quantity: request.quantity,
        note: request.note,
        created_at: DateTime::parse_from_rfc3339("2026-11-21T10:00:00.123Z")
            .unwrap()
            .with_timezone(&Utc),
    }
}

fn fingerprint() -> String {
    SubmissionRequest::parse(
        serde_json::from_str::<SubmissionBody>(BODY).unwrap(),
        &UserId::parse("sub", "u1").unwrap(),
    )
    .unwrap()
    .fingerprint()
}

/// A transaction cancelled with one reason per item (record first, then the submission).
fn cancelled(reasons: [&str; 2]) -> TransactWriteItemsError {
    let mut error = TransactionCanceledException::builder()
        .message("Transaction cancelled")
        .meta(
            ErrorMetadata::builder()
                .code("TransactionCanceledException")
                .build(),
        );
    for code in reasons {
        error = error.cancellation_reasons(CancellationReason::builder().code(code).build());
    }
    TransactWriteItemsError::TransactionCanceledException(error.build())
}

fn condition_failed(old: Option<HashMap<String, AttributeValue>>) -> PutItemError {
    PutItemError::ConditionalCheckFailedException(
        ConditionalCheckFailedException::builder()
            .message("The conditional request failed")
            .set_item(old)
            .meta(
                ErrorMetadata::builder()
                    .code("ConditionalCheckFailedException")
                    .build(),
            )
            .build(),
    )
}

fn submission() -> Submission {
    Submission {
        id: "019000000000aaaaaaaaaaaaaaaa".into(),
        user_id: UserId::parse("userId", "u1").unwrap(),
        journey_id: Ident::parse("journeyId", "j1").unwrap(),
        plan: Plan::Premium,
        quantity: 2,
        note: None,
        created_at: DateTime::parse_from_rfc3339("2026-11-21T10:00:00.123Z")
            .unwrap()
            .with_timezone(&Utc),
    }
}

fn fast_retries() -> RetryConfig {
    RetryConfig::standard().with_initial_backoff(Duration::from_millis(1))
}

fn is_consistent_get_of(sk: &'static str) -> impl Fn(&GetItemInput) -> bool {
    move |input| {
        input.consistent_read() == Some(true)
            && input.key().and_then(|k| k.get("sk")) == Some(&AttributeValue::S(sk.into()))
    }
}

#[tokio::test]
async fn a_throttled_write_answers_503_with_retry_after() {
    let throttled = mock!(Client::put_item).then_error(|| {
        PutItemError::ProvisionedThroughputExceededException(
            ProvisionedThroughputExceededException::builder()
                .message("slow down")
                .meta(
                    ErrorMetadata::builder()
                        .code("ProvisionedThroughputExceededException")
                        .build(),
                )
                .build(),
        )
    });
    let client = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, &[&throttled], |c| c
        .retry_config(aws_sdk_dynamodb::config::retry::RetryConfig::disabled()));

    let response = feature_x(client).await.serve(post(None)).await;

    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["retry-after"], "1");
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    // Throttling refuses the write before doing it: nothing was written, and the answer says so.
    assert!(detail(&response).contains("Nothing was written"));
    assert_eq!(throttled.num_calls(), 1);
}

#[tokio::test]
async fn a_failed_idempotent_transaction_answers_503_and_writes_nothing() {
    // A transaction is all or nothing: never the record without the item. A server error may
    // still have committed it, so the answer must not claim nothing was written.
    let failed = mock!(Client::transact_write_items).then_error(|| {
        TransactWriteItemsError::InternalServerError(
            InternalServerError::builder()
                .message("boom")
                .meta(ErrorMetadata::builder().code("InternalServerError").build())
                .build(),
        )
    });
    let client = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, &[&failed], |c| c
        .retry_config(aws_sdk_dynamodb::config::retry::RetryConfig::disabled()));

    let response = feature_x(client).await.serve(post(Some("k1"))).await;

    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["retry-after"], "1");
    assert_eq!(failed.num_calls(), 1, "one transaction, no separate writes");
    // DynamoDB documents a 500 on a write as "may or may not have succeeded".
    let detail = detail(&response);
    assert!(detail.contains("may have been stored"), "{detail}");
    assert!(detail.contains("same Idempotency-Key"), "{detail}");
}

#[tokio::test]
async fn a_put_whose_first_answer_was_lost_meets_its_own_item_and_is_created() {
    // The first attempt stored the item, its answer was lost (a 500); the SDK's retry meets the
    // condition and DynamoDB returns the item it holds (ALL_OLD): ours.
    let s = submission();
    let old = to_item(&s);
    let put = mock!(Client::put_item)
        .sequence()
        .http_status(500, None)
        .error(move || condition_failed(Some(old.clone())))
        .build();
    let client = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, &[&put], |c| c
        .retry_config(fast_retries()));

    let created = DynamoStore::new(client, "submissions")
        .create(&s, None)
        .await
        .unwrap();

    assert_eq!(created, Created::New(s));
    assert_eq!(put.num_calls(), 2, "the SDK retried once");
}

#[tokio::test]
async fn a_put_condition_failure_without_the_old_item_reads_it_strongly_consistent() {
    let s = submission();
    let item = to_item(&s);
    let put = mock!(Client::put_item).then_error(|| condition_failed(None));
    let get = mock!(Client::get_item)
        .match_requests(is_consistent_get_of("SUB#019000000000aaaaaaaaaaaaaaaa"))
        .then_output(move || {
            GetItemOutput::builder()
                .set_item(Some(item.clone()))
                .build()
        });
    let client = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, &[&put, &get], |c| c
        .retry_config(RetryConfig::disabled()));
    let store = DynamoStore::new(client, "submissions");

    assert_eq!(
        store.create(&s, None).await.unwrap(),
        Created::New(s.clone())
    );
    assert_eq!(get.num_calls(), 1);

    // Another item under the key (an id collision): a fault, not a silent success.
    let mut other = s.clone();
    other.quantity = 9;
    assert!(matches!(
        store.create(&other, None).await,
        Err(StoreError::Internal(_))
    ));
}

#[tokio::test]
async fn transaction_conflicts_are_retried_then_the_original_is_replayed_strongly_consistent() {
    // Two conflicts with a concurrent request holding the same key, then its record is there.
    let tx = mock!(Client::transact_write_items)
        .sequence()
        .error(|| cancelled(["TransactionConflict", "None"]))
        .times(2)
        .error(|| cancelled(["ConditionalCheckFailed", "None"]))
        .build();
    let record = HashMap::from([
        (
            "pk".to_owned(),
            AttributeValue::S("IDEMPOTENCY#u1#k1".into()),
        ),
        ("sk".to_owned(), AttributeValue::S("IDEMPOTENCY".into())),
        ("fingerprint".to_owned(), AttributeValue::S(fingerprint())),
        (
            "submissionId".to_owned(),
            AttributeValue::S("019000000000bbbbbbbbbbbbbbbb".into()),
        ),
    ]);
    let get_record = mock!(Client::get_item)
        .match_requests(is_consistent_get_of("IDEMPOTENCY"))
        .then_output(move || {
            GetItemOutput::builder()
                .set_item(Some(record.clone()))
                .build()
        });
    let stored = to_item(&original("019000000000bbbbbbbbbbbbbbbb"));
    let get_original = mock!(Client::get_item)
        .match_requests(is_consistent_get_of("SUB#019000000000bbbbbbbbbbbbbbbb"))
        .then_output(move || {
            GetItemOutput::builder()
                .set_item(Some(stored.clone()))
                .build()
        });
    let client = mock_client!(
        aws_sdk_dynamodb,
        RuleMode::MatchAny,
        &[&tx, &get_record, &get_original],
        |c| c.retry_config(RetryConfig::disabled())
    );

    let response = feature_x(client).await.serve(post(Some("k1"))).await;

    assert_eq!(response.status(), 200, "{:?}", response.body());
    let body: serde_json::Value = match response.body() {
        lambda_http::Body::Text(text) => serde_json::from_str(text).unwrap(),
        other => panic!("{other:?}"),
    };
    assert_eq!(body["id"], "019000000000bbbbbbbbbbbbbbbb");
    assert_eq!(tx.num_calls(), 3, "two retries after the conflicts");
    assert_eq!(get_record.num_calls(), 1);
    assert_eq!(get_original.num_calls(), 1);
}

#[tokio::test]
async fn transaction_conflicts_that_persist_answer_409_with_retry_after() {
    let tx = mock!(Client::transact_write_items)
        .then_error(|| cancelled(["TransactionConflict", "None"]));
    let client = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, &[&tx], |c| c
        .retry_config(RetryConfig::disabled()));

    let response = feature_x(client).await.serve(post(Some("k1"))).await;

    assert_eq!(response.status(), 409, "{:?}", response.body());
    assert_eq!(response.headers()["retry-after"], "1");
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    assert!(detail(&response).contains("same key"));
    assert_eq!(tx.num_calls() as u32, CONFLICT_RETRIES + 1);
}

#[tokio::test]
async fn a_write_that_times_out_answers_503_saying_it_may_have_been_stored() {
    // A DynamoDB that accepts connections and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            open.push(socket);
        }
    });
    let client = lockstep_testkit::dynamo_local::client(&endpoint);
    let client = Client::from_conf(
        client
            .config()
            .to_builder()
            .timeout_config(
                TimeoutConfig::builder()
                    .operation_timeout(Duration::from_millis(300))
                    .build(),
            )
            .retry_config(RetryConfig::disabled())
            .build(),
    );
    let feature_x = feature_x(client).await;

    let with_key = feature_x.serve(post(Some("k1"))).await;
    assert_eq!(with_key.status(), 503);
    assert_eq!(with_key.headers()["retry-after"], "1");
    let said = detail(&with_key);
    assert!(!said.contains("Nothing was written"), "{said}");
    assert!(said.contains("may have been stored"), "{said}");
    assert!(
        said.contains("Retry with the same Idempotency-Key"),
        "{said}"
    );

    let without_key = feature_x.serve(post(None)).await;
    assert_eq!(without_key.status(), 503);
    let said = detail(&without_key);
    assert!(said.contains("may have been stored"), "{said}");
    assert!(said.contains("send an Idempotency-Key"), "{said}");
    held.abort();
}

#[tokio::test]
async fn a_transaction_cancelled_for_throttling_answers_503_nothing_written() {
    let tx =
        mock!(Client::transact_write_items).then_error(|| cancelled(["ThrottlingError", "None"]));
    let client = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, &[&tx], |c| c
        .retry_config(RetryConfig::disabled()));

    let response = feature_x(client).await.serve(post(Some("k1"))).await;

    assert_eq!(response.status(), 503, "{:?}", response.body());
    assert_eq!(response.headers()["retry-after"], "1");
    assert!(detail(&response).contains("Nothing was written"));
    assert_eq!(tx.num_calls(), 1);
}

#[tokio::test]
async fn a_retried_transaction_meeting_its_own_first_attempt_is_created_not_replayed() {
    // The first attempt committed, its answer was lost (a 500), and the SDK's retry (past the
    // ClientRequestToken's window) meets the record pointing at this very submission.
    let s = submission();
    let record = HashMap::from([
        ("fingerprint".to_owned(), AttributeValue::S("f1".into())),
        ("submissionId".to_owned(), AttributeValue::S(s.id.clone())),
    ]);
    let tx = mock!(Client::transact_write_items)
        .sequence()
        .http_status(500, None)
        .error(|| cancelled(["ConditionalCheckFailed", "ConditionalCheckFailed"]))
        .build();
    let get_record = mock!(Client::get_item)
        .match_requests(is_consistent_get_of("IDEMPOTENCY"))
        .then_output(move || {
            GetItemOutput::builder()
                .set_item(Some(record.clone()))
                .build()
        });
    let stored = to_item(&s);
    let get_original = mock!(Client::get_item)
        .match_requests(is_consistent_get_of("SUB#019000000000aaaaaaaaaaaaaaaa"))
        .then_output(move || {
            GetItemOutput::builder()
                .set_item(Some(stored.clone()))
                .build()
        });
    let client = mock_client!(
        aws_sdk_dynamodb,
        RuleMode::MatchAny,
        &[&tx, &get_record, &get_original],
        |c| c.retry_config(fast_retries())
    );
    let key = Ident::parse("Idempotency-Key", "k1").unwrap();

    let created = DynamoStore::new(client, "submissions")
        .create(&s, Some((&key, "f1".into())))
        .await
        .unwrap();

    assert_eq!(created, Created::New(s));
    assert_eq!(tx.num_calls(), 2, "the SDK retried once");
}
