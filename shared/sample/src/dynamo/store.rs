//! The store: [`DynamoStore`] (a table, its client and the GSI interlock), the client with its
//! operation timeout, the reads by key, and the storage port's implementation, which hands each
//! operation to its file (`writes`, `listing`).

use super::errors::{classify, Op};
use super::items::{from_item, submission_key, Item, GSI_NAME};
use crate::index_status::IndexGuard;
use crate::submissions::{
    Created, Ident, ListQuery, Page, QueryMethod, StoreError, Submission, SubmissionStore, UserId,
};
use aws_sdk_dynamodb::Client;
use lockstep::clock::{Clock, SystemClock};
use lockstep::source::BoxFuture;
use std::sync::Arc;
use std::time::Duration;

/// How often the GSI's status is described by default: the extension's default P.
pub const DEFAULT_INDEX_REFRESH: Duration = Duration::from_secs(45);

/// Feature X's submissions in DynamoDB.
#[derive(Debug, Clone)]
pub struct DynamoStore {
    // Read by the operations' files (`writes`, `listing`).
    pub(super) client: Client,
    pub(super) table: String,
    pub(super) index: Arc<IndexGuard>,
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
    pub(super) async fn get_item(
        &self,
        key: &Item,
        consistent: bool,
    ) -> Result<Option<Item>, StoreError> {
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
    pub(super) async fn get_inner(
        &self,
        user_id: &UserId,
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
        user_id: &'a UserId,
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
