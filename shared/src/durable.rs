//! The durable last-known-good configuration: one item per AppConfig target, in DynamoDB.
//!
//! Rule 5 of the design: when AppConfig cannot be reached at cold start, a new instance has no
//! last-known-good of its own. With a durable snapshot configured, it loads the newest
//! configuration any instance fetched (degraded: it cannot vouch for it), and only without one
//! falls back to the bundled defaults.
//!
//! Writes: after an instance accepts a *new* version from its source, it writes the raw content
//! with its version label and deployment stamp, **conditionally**: the write succeeds only when no
//! snapshot exists, or the stored one has an older stamp `T` (or the same stamp, another version
//! and an earlier fetch — unstamped content carries no order of its own). So an instance still
//! serving an older version (frozen and thawed, or on the old side of a gradual deployment) never
//! overwrites a newer snapshot; a refused write is logged, not an error.
//!
//! Honest limit (design rule 7): an automatic AppConfig rollback serves content with an *older*
//! stamp, which by this rule never replaces the snapshot of the rolled-back deployment. A
//! roll-forward (a new deployment, a new stamp) replaces it; see `docs/runbook-gsi.md`.
//!
//! Item (`pk` only, in its own table): `pk` = `<application>/<environment>/<profile>`,
//! `content` (binary, the document as fetched), `version`, `stampMillis` (T, 0 when unstamped),
//! `fetchedAtMillis`, `writtenAt`.

use crate::appconfig::Target;
use crate::http::BoxError;
use crate::source::BoxFuture;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use thiserror::Error;

/// Names `LOCKSTEP_SNAPSHOT_TABLE`: the table holding durable snapshots (unset: none).
pub const SNAPSHOT_TABLE_VAR: &str = "LOCKSTEP_SNAPSHOT_TABLE";

/// Content larger than this is not snapshotted (DynamoDB items stop at 400 KB).
pub const MAX_SNAPSHOT_BYTES: usize = 350 * 1024;

/// A configuration as stored for cold starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredConfig {
    /// The version label it was fetched with.
    pub version: String,
    /// The document, byte for byte as fetched (validated again when loaded).
    pub content: Vec<u8>,
    /// The profile stamp T in milliseconds (0 when unstamped): the write order.
    pub stamp_millis: i64,
    /// When the writing instance fetched it (its clock).
    pub fetched_at: DateTime<Utc>,
}

/// What a save did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaveOutcome {
    /// The snapshot now holds this configuration.
    Written,
    /// A snapshot as new or newer was already stored: left as it was.
    KeptNewer,
}

/// Why a snapshot could not be read or written.
#[derive(Debug, Error)]
pub enum DurableError {
    /// DynamoDB refused or could not be reached.
    #[error("snapshot store unavailable ({code})")]
    Unavailable {
        /// The error code, or `unreachable`.
        code: String,
        /// The SDK error.
        #[source]
        source: BoxError,
    },
    /// The stored item is not one of ours.
    #[error("snapshot item malformed: {0}")]
    Malformed(String),
    /// The content is too large for one item.
    #[error("content of {0} bytes is too large to snapshot")]
    TooLarge(usize),
}

/// Where durable snapshots live.
pub trait SnapshotStore: Send + Sync {
    /// The stored snapshot, if any.
    fn load(&self) -> BoxFuture<'_, Result<Option<StoredConfig>, DurableError>>;
    /// Stores `config` unless an equal or newer one is stored.
    fn save<'a>(
        &'a self,
        config: &'a StoredConfig,
    ) -> BoxFuture<'a, Result<SaveOutcome, DurableError>>;
    /// Where, for logs.
    fn describe(&self) -> String;
}

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

/// The item key of a target's snapshot: `<application>/<environment>/<profile>`.
pub fn snapshot_key(target: &Target) -> String {
    format!(
        "{}/{}/{}",
        target.application, target.environment, target.profile
    )
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
