//! DynamoDB throttling and outages through the real store and handlers (aws-smithy-mocks, the
//! SDK's own test support): 503 with Retry-After, and nothing half-written.

use aws_sdk_dynamodb::error::ErrorMetadata;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::error::{InternalServerError, ProvisionedThroughputExceededException};
use aws_sdk_dynamodb::Client;
use aws_smithy_mocks::{mock, mock_client, RuleMode};
use lockstep::cache::CacheOptions;
use lockstep::memory::MemorySource;
use lockstep::{FlagCache, Overrides, Settings, SystemClock};
use lockstep_sample::dynamo::DynamoStore;
use lockstep_sample::FeatureX;
use std::sync::Arc;

async fn feature_x(client: Client) -> FeatureX {
    let (source, handle) = MemorySource::new();
    handle.publish("1", r#"{"isFeatureXEnabled": true}"#);
    let options = CacheOptions {
        catalog: lockstep_sample::product::catalog(),
        overrides: Overrides::none(),
        settings: Settings::default(),
        clock: Arc::new(SystemClock),
    };
    FeatureX::new(
        Arc::new(FlagCache::new(Box::new(source), options).await),
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
    builder
        .body(lambda_http::Body::Text(
            r#"{"userId":"u1","journeyId":"j1","plan":"basic","quantity":1}"#.into(),
        ))
        .unwrap()
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
    assert_eq!(throttled.num_calls(), 1);
}

#[tokio::test]
async fn a_failed_idempotent_transaction_answers_503_and_writes_nothing() {
    // A transaction is all or nothing: a server error leaves neither the record nor the item.
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
}
