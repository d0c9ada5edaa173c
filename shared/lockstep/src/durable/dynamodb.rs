//! The DynamoDB adapter of the durable snapshot port (cargo feature `dynamodb`): one item per
//! target, written conditionally so that a newer stamp is never overwritten by an older one (see
//! [`super`] for the item and the write order).

use super::{
    snapshot_key, DurableError, SaveOutcome, SnapshotStore, StoredConfig, MAX_SNAPSHOT_BYTES,
};
use crate::source::BoxFuture;
use crate::target::Target;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, Utc};
use std::collections::HashMap;

/// Snapshots in a DynamoDB table keyed by `pk` (string).
#[derive(Debug, Clone)]
pub struct DynamoSnapshots {
    client: Client,
    table: String,
    key: String,
}

impl DynamoSnapshots {
    /// The snapshot of `target` in `table`.
    pub fn new(client: Client, table: impl Into<String>, target: &Target) -> Self {
        Self {
            client,
            table: table.into(),
            key: snapshot_key(target),
        }
    }

    async fn load_inner(&self) -> Result<Option<StoredConfig>, DurableError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(self.key.clone()))
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?;
        let Some(item) = out.item else {
            return Ok(None);
        };
        let content = match item.get("content") {
            Some(AttributeValue::B(blob)) => blob.clone().into_inner(),
            _ => return Err(DurableError::Malformed("content".into())),
        };
        let version = match item.get("version") {
            Some(AttributeValue::S(v)) => v.clone(),
            _ => return Err(DurableError::Malformed("version".into())),
        };
        let number = |field: &str| match item.get(field) {
            Some(AttributeValue::N(n)) => n
                .parse::<i64>()
                .map_err(|_| DurableError::Malformed(field.into())),
            _ => Err(DurableError::Malformed(field.into())),
        };
        let stamp_millis = number("stampMillis")?;
        let fetched_at = DateTime::from_timestamp_millis(number("fetchedAtMillis")?)
            .ok_or_else(|| DurableError::Malformed("fetchedAtMillis".into()))?;
        Ok(Some(StoredConfig {
            version,
            content,
            stamp_millis,
            fetched_at,
        }))
    }

    async fn save_inner(&self, config: &StoredConfig) -> Result<SaveOutcome, DurableError> {
        if config.content.len() > MAX_SNAPSHOT_BYTES {
            return Err(DurableError::TooLarge(config.content.len()));
        }
        let item: HashMap<String, AttributeValue> = HashMap::from([
            ("pk".into(), AttributeValue::S(self.key.clone())),
            (
                "content".into(),
                AttributeValue::B(Blob::new(config.content.clone())),
            ),
            ("version".into(), AttributeValue::S(config.version.clone())),
            (
                "stampMillis".into(),
                AttributeValue::N(config.stamp_millis.to_string()),
            ),
            (
                "fetchedAtMillis".into(),
                AttributeValue::N(config.fetched_at.timestamp_millis().to_string()),
            ),
            (
                "writtenAt".into(),
                AttributeValue::S(Utc::now().to_rfc3339()),
            ),
        ]);
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(
                "attribute_not_exists(pk) OR stampMillis < :stamp OR \
                 (stampMillis = :stamp AND #version <> :version AND fetchedAtMillis < :fetched)",
            )
            .expression_attribute_names("#version", "version")
            .expression_attribute_values(
                ":stamp",
                AttributeValue::N(config.stamp_millis.to_string()),
            )
            .expression_attribute_values(":version", AttributeValue::S(config.version.clone()))
            .expression_attribute_values(
                ":fetched",
                AttributeValue::N(config.fetched_at.timestamp_millis().to_string()),
            )
            .send()
            .await;
        match result {
            Ok(_) => Ok(SaveOutcome::Written),
            Err(error)
                if matches!(
                    error.as_service_error(),
                    Some(PutItemError::ConditionalCheckFailedException(_))
                ) =>
            {
                Ok(SaveOutcome::KeptNewer)
            }
            Err(error) => Err(unavailable(error)),
        }
    }
}

impl SnapshotStore for DynamoSnapshots {
    fn load(&self) -> BoxFuture<'_, Result<Option<StoredConfig>, DurableError>> {
        Box::pin(self.load_inner())
    }

    fn save<'a>(
        &'a self,
        config: &'a StoredConfig,
    ) -> BoxFuture<'a, Result<SaveOutcome, DurableError>> {
        Box::pin(self.save_inner(config))
    }

    fn describe(&self) -> String {
        format!("dynamodb://{}/{}", self.table, self.key)
    }
}

fn unavailable<E>(error: SdkError<E, aws_sdk_dynamodb::config::http::HttpResponse>) -> DurableError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    DurableError::Unavailable {
        code: error.code().unwrap_or("unreachable").to_owned(),
        source: Box::new(error),
    }
}
