//! The idempotent create: a submission without a key is one conditional put; with a key, the
//! submission and its idempotency record are one transaction, both conditional, so a retry never
//! stores a duplicate and a failure leaves nothing half-written. A taken key replays the
//! original; the SDK's own retry of a stored first attempt is recognised as ours.

use super::errors::{cancellation, classify, conflict_backoff, Cancelled, Op, CONFLICT_RETRIES};
use super::items::{
    idempotency_key, idempotency_record, string, submission_key, to_item, Item, TTL_ATTRIBUTE,
};
use super::store::DynamoStore;
use crate::submissions::{Created, Ident, StoreError, Submission};
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem,
};
use std::time::Duration;

/// How long an idempotency key holds: its record's [`TTL_ATTRIBUTE`] is this after `createdAt`.
/// An expired record no longer replays (its key can be used again) even before TTL deletes it.
pub const IDEMPOTENCY_TTL: Duration = Duration::from_secs(24 * 60 * 60);

impl DynamoStore {
    pub(super) async fn create_inner(
        &self,
        s: &Submission,
        idempotency: Option<(&Ident, String)>,
    ) -> Result<Created, StoreError> {
        match idempotency {
            None => self.create_without_key(s).await,
            Some((key, fingerprint)) => self.create_with_key(s, key, &fingerprint).await,
        }
    }

    /// One conditional put. The SDK retries it after a lost response or a server error; a retry
    /// whose first attempt was stored meets its own item, returned with the failed condition
    /// (`ALL_OLD`), and is recognised as ours.
    async fn create_without_key(&self, s: &Submission) -> Result<Created, StoreError> {
        let item = to_item(s);
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item.clone()))
            .condition_expression("attribute_not_exists(pk)")
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        let err = match result {
            Ok(_) => return Ok(Created::New(s.clone())),
            Err(err) => err,
        };
        let Some(PutItemError::ConditionalCheckFailedException(failed)) = err.as_service_error()
        else {
            return Err(classify(err, Op::Write));
        };
        let old = match failed.item() {
            Some(old) => Some(old.clone()),
            // Not every DynamoDB returns the old item: read it, strongly consistent.
            None => {
                self.get_item(&submission_key(&s.user_id, &s.id), true)
                    .await?
            }
        };
        if old.as_ref() == Some(&item) {
            tracing::info!(
                path = "put_retry_found_own_item",
                "a retried put met the item its first attempt stored; answered as created"
            );
            return Ok(Created::New(s.clone()));
        }
        tracing::error!(
            path = "put_condition_failed_other_item",
            "a new submission's key holds another item"
        );
        Err(StoreError::Internal(Box::new(err)))
    }

    /// The submission and its idempotency record in one transaction, both conditional. A
    /// transaction cancelled by a concurrent one (`TransactionConflict`: another request with the
    /// same key in flight) is retried after a short backoff, [`CONFLICT_RETRIES`] times at most,
    /// then answered [`StoreError::Contended`]; a taken key replays the original.
    async fn create_with_key(
        &self,
        s: &Submission,
        key: &Ident,
        fingerprint: &str,
    ) -> Result<Created, StoreError> {
        let now = s.created_at.timestamp();
        let expires_at = now + IDEMPOTENCY_TTL.as_secs() as i64;
        let record = idempotency_record(s, key, fingerprint, expires_at);
        let build = |put: aws_sdk_dynamodb::types::builders::PutBuilder| {
            put.build()
                .map(|put| TransactWriteItem::builder().put(put).build())
                .map_err(|e| StoreError::Internal(Box::new(e)))
        };
        // An expired record that TTL has not deleted yet (deletion lags expiry) counts as gone.
        let record_put = build(
            Put::builder()
                .table_name(&self.table)
                .set_item(Some(record))
                .condition_expression(format!(
                    "attribute_not_exists(pk) OR {TTL_ATTRIBUTE} < :now"
                ))
                .expression_attribute_values(":now", AttributeValue::N(now.to_string()))
                .return_values_on_condition_check_failure(
                    ReturnValuesOnConditionCheckFailure::AllOld,
                ),
        )?;
        let item_put = build(
            Put::builder()
                .table_name(&self.table)
                .set_item(Some(to_item(s)))
                .condition_expression("attribute_not_exists(pk)"),
        )?;
        let mut attempt = 0;
        loop {
            let result = self
                .client
                .transact_write_items()
                .transact_items(record_put.clone())
                .transact_items(item_put.clone())
                .send()
                .await;
            let err = match result {
                Ok(_) => return Ok(Created::New(s.clone())),
                Err(err) => err,
            };
            let cancelled = match err.as_service_error() {
                Some(TransactWriteItemsError::TransactionCanceledException(t)) => {
                    cancellation(t.cancellation_reasons())
                }
                _ => return Err(classify(err, Op::Write)),
            };
            match cancelled {
                Cancelled::KeyTaken(old) => {
                    if let Some(created) = self.replay(s, key, fingerprint, old).await? {
                        return Ok(created);
                    }
                    // The record was gone by the time it was read: try again.
                }
                Cancelled::Throttled => {
                    // Cancelled, so nothing was written.
                    tracing::warn!(
                        path = "transaction_throttled",
                        "the idempotent create was throttled; nothing written"
                    );
                    return Err(StoreError::Unavailable(Box::new(err)));
                }
                Cancelled::Other => return Err(classify(err, Op::Write)),
                Cancelled::Conflict => {}
            }
            if attempt >= CONFLICT_RETRIES {
                tracing::warn!(
                    path = "transaction_conflict_gave_up",
                    attempts = attempt + 1,
                    "concurrent requests with one idempotency key kept conflicting; answering 409"
                );
                return Err(StoreError::Contended);
            }
            let backoff = conflict_backoff(attempt);
            tracing::info!(
                path = "transaction_conflict_retry",
                attempt = attempt + 1,
                backoff_ms = backoff.as_millis() as u64,
                "the idempotent create met a concurrent transaction; retrying"
            );
            tokio::time::sleep(backoff).await;
            attempt += 1;
        }
    }

    /// The original submission of a taken idempotency key, if the request is the same; `None` if
    /// the record is gone (expired and deleted since the condition failed). `old` is the record as
    /// the failed condition saw it, when DynamoDB returned it. Both reads are strongly consistent:
    /// the original may have been written milliseconds ago.
    async fn replay(
        &self,
        s: &Submission,
        key: &Ident,
        fingerprint: &str,
        old: Option<Item>,
    ) -> Result<Option<Created>, StoreError> {
        let record = match old {
            Some(record) => record,
            None => match self
                .get_item(&idempotency_key(&s.user_id, key), true)
                .await?
            {
                Some(record) => record,
                None => {
                    tracing::warn!(
                        path = "idempotency_record_vanished",
                        "the idempotency record was gone when read; retrying the create"
                    );
                    return Ok(None);
                }
            },
        };
        if string(&record, "fingerprint")? != fingerprint {
            tracing::info!(
                path = "idempotency_key_reused",
                "idempotency key reused with a different request"
            );
            return Err(StoreError::KeyReused);
        }
        let id = string(&record, "submissionId")?;
        let original = self
            .get_inner(&s.user_id, &id, true)
            .await?
            .ok_or_else(|| {
                StoreError::Internal("idempotency record points at no submission".into())
            })?;
        if original.id == s.id {
            // The SDK retried a transaction whose first attempt was stored: this request's own.
            tracing::info!(
                path = "idempotent_retry_found_own_write",
                "a retried transaction met its own first attempt; answered as created"
            );
            return Ok(Some(Created::New(original)));
        }
        tracing::info!(
            path = "idempotent_replay",
            "idempotency key replayed; original returned"
        );
        Ok(Some(Created::Replayed(original)))
    }
}
