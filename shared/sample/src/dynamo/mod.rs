//! The DynamoDB adapter of feature X's storage port: [`DynamoStore`], its client and its reads by
//! key. The rest lives by responsibility, its public items re-exported here:
//!
//! - `items`: the table's layout, submissions and idempotency records as items and back
//!   ([`to_item`], [`from_item`]);
//! - `writes`: the idempotent create (a conditional put, or a transaction with its record);
//! - `listing`: listings, the GSI-or-FilterExpression query, its read caps and its cursors;
//! - `errors`: what a failed call means (by modelled code) and the conflict retry's backoff.
//!
//! Table layout (one table, on demand):
//!
//! | item | `pk` | `sk` | other attributes |
//! | --- | --- | --- | --- |
//! | submission | `USER#<userId>` | `SUB#<id>` | `userJourney` = `<userId>#<journeyId>` (key of the `byUserJourney` GSI), `id`, `userId`, `journeyId`, `plan`, `quantity`, `note`, `createdAt` |
//! | idempotency record | `IDEMPOTENCY#<userId>#<key>` | `IDEMPOTENCY` | `fingerprint`, `submissionId`, `userId`, `createdAt`, `expiresAt` (TTL, epoch seconds, [`IDEMPOTENCY_TTL`] later) |
//!
//! A submission with an idempotency key is written with its record in one transaction, both
//! conditional on not existing (or, for the record, on having expired), so a retry can never
//! store a duplicate and a failure leaves nothing half-written. Races never answer 500:
//!
//! - a transaction cancelled by a concurrent one with the same key (`TransactionConflict`) is
//!   retried with backoff, then answered [`StoreError::Contended`] (409, Retry-After);
//! - a taken key replays the original, read strongly consistent (it may be milliseconds old);
//! - the SDK's own retry of a write whose first attempt was stored (lost response, server fault)
//!   meets its own item or record and answers as created;
//! - a write that was not confirmed (timeout, lost answer, server fault) is
//!   [`StoreError::OutcomeUnknown`] (503: it may have been stored, retry with the same key);
//!   throttling is [`StoreError::Unavailable`] (503, nothing written).
//!
//! A listing issues at most [`LISTING_MAX_QUERIES`] queries reading at most
//! [`LISTING_MAX_EVALUATED`] items; past that the page ends early with a cursor. Every query logs
//! the method it used and the consumed read capacity; a GSI listing happens only while the index
//! is `ACTIVE` ([`crate::index_status`]).

mod errors;
mod items;
mod listing;
mod writes;

pub use errors::CONFLICT_RETRIES;
pub use items::{from_item, to_item, GSI_NAME, TTL_ATTRIBUTE};
pub use listing::{FILTER_BATCH, LISTING_MAX_EVALUATED, LISTING_MAX_QUERIES};
pub use writes::IDEMPOTENCY_TTL;

use crate::index_status::IndexGuard;
use crate::submissions::{
    Created, Ident, ListQuery, Page, QueryMethod, StoreError, Submission, SubmissionStore,
};
use aws_sdk_dynamodb::Client;
use errors::{classify, Op};
use items::{submission_key, Item};
use lockstep::clock::{Clock, SystemClock};
use lockstep::source::BoxFuture;
use std::sync::Arc;
use std::time::Duration;

/// How often the GSI's status is described by default: the extension's default P.
pub const DEFAULT_INDEX_REFRESH: Duration = Duration::from_secs(45);

/// Feature X's submissions in DynamoDB.
#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
    index: Arc<IndexGuard>,
}

/// How long one DynamoDB operation may take, retries included, before the request answers 503
/// (well inside the function's 10 s timeout, so the client hears why).
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(3);

/// A DynamoDB client from the function's one AWS configuration, with [`OPERATION_TIMEOUT`]: a
/// stalled call ends as a 503 that says whether the write may have happened, not as a Lambda
/// timeout.
pub fn client(aws: &aws_config::SdkConfig) -> Client {
    let timeouts = aws_sdk_dynamodb::config::timeout::TimeoutConfig::builder()
        .operation_timeout(OPERATION_TIMEOUT)
        .build();
    Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(aws)
            .timeout_config(timeouts)
            .build(),
    )
}

impl DynamoStore {
    /// A store over `table`; the GSI's status is refreshed every [`DEFAULT_INDEX_REFRESH`] on the
    /// system clock (see [`DynamoStore::with_index_refresh`]).
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        let table = table.into();
        let index = IndexGuard::new(
            client.clone(),
            table.clone(),
            GSI_NAME,
            DEFAULT_INDEX_REFRESH,
            Arc::new(SystemClock),
        );
        Self {
            client,
            table,
            index: Arc::new(index),
        }
    }

    /// Refreshes the GSI's status every `refresh` (the flags' P) on `clock`.
    pub fn with_index_refresh(self, refresh: Duration, clock: Arc<dyn Clock>) -> Self {
        let index = IndexGuard::new(
            self.client.clone(),
            self.table.clone(),
            GSI_NAME,
            refresh,
            clock,
        );
        Self {
            index: Arc::new(index),
            ..self
        }
    }

    /// The table's name.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// The item under `key`, if any; `consistent` for a strongly consistent read (the writes'
    /// replay: the original may be milliseconds old).
    async fn get_item(&self, key: &Item, consistent: bool) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key.clone()))
            .consistent_read(consistent)
            .send()
            .await
            .map_err(|e| classify(e, Op::Read))?;
        Ok(out.item)
    }

    /// Submission `id` of `user_id`, if stored.
    async fn get_inner(
        &self,
        user_id: &Ident,
        id: &str,
        consistent: bool,
    ) -> Result<Option<Submission>, StoreError> {
        self.get_item(&submission_key(user_id, id), consistent)
            .await?
            .as_ref()
            .map(from_item)
            .transpose()
    }
}

impl SubmissionStore for DynamoStore {
    fn create<'a>(
        &'a self,
        submission: &'a Submission,
        idempotency: Option<(&'a Ident, String)>,
    ) -> BoxFuture<'a, Result<Created, StoreError>> {
        Box::pin(self.create_inner(submission, idempotency))
    }

    fn get<'a>(
        &'a self,
        user_id: &'a Ident,
        id: &'a str,
    ) -> BoxFuture<'a, Result<Option<Submission>, StoreError>> {
        Box::pin(self.get_inner(user_id, id, false))
    }

    fn list<'a>(
        &'a self,
        query: &'a ListQuery,
        method: QueryMethod,
    ) -> BoxFuture<'a, Result<Page, StoreError>> {
        Box::pin(self.list_inner(query, method))
    }
}
