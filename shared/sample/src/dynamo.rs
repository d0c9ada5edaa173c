//! The DynamoDB adapter of feature X's storage port, and the item <-> model conversions.
//!
//! Table layout (one table, on demand):
//!
//! | item | `pk` | `sk` | other attributes |
//! | --- | --- | --- | --- |
//! | submission | `USER#<userId>` | `SUB#<id>` | `userJourney` = `<userId>#<journeyId>` (key of the `byUserJourney` GSI), `id`, `userId`, `journeyId`, `plan`, `quantity`, `note`, `createdAt` |
//! | idempotency record | `IDEMPOTENCY#<userId>#<key>` | `IDEMPOTENCY` | `fingerprint`, `submissionId`, `userId`, `createdAt`, `expiresAt` (TTL, epoch seconds, [`IDEMPOTENCY_TTL`] later) |
//!
//! `userId` is the issuer's `sub` as written ([`UserId`]: `#`, `|`, `@`, any Unicode); journey ids
//! and idempotency keys are [`Ident`]s, which never hold `#`. So every composite key ends with
//! the one part that cannot hold `#`, and splits at its last `#` one way only: `a#b` + `c` and
//! `a` + `b#c` cannot both exist.
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

use crate::index_status::IndexGuard;
use crate::submissions::{
    Created, Ident, ListQuery, Page, Plan, QueryMethod, StoreError, Submission, SubmissionStore,
    UserId,
};
use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, Put, ReturnConsumedCapacity, ReturnValuesOnConditionCheckFailure,
    TransactWriteItem,
};
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, Utc};
use lockstep::clock::{Clock, SystemClock};
use lockstep::source::BoxError;
use lockstep::source::BoxFuture;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// The GSI a journey listing uses when the flag allows it.
pub const GSI_NAME: &str = "byUserJourney";

type Item = HashMap<String, AttributeValue>;

/// How often the GSI's status is described by default: the extension's default P.
pub const DEFAULT_INDEX_REFRESH: Duration = Duration::from_secs(45);

/// How long an idempotency key holds: its record's [`TTL_ATTRIBUTE`] is this after `createdAt`.
/// An expired record no longer replays (its key can be used again) even before TTL deletes it.
pub const IDEMPOTENCY_TTL: Duration = Duration::from_secs(24 * 60 * 60);

/// The table's TTL attribute (epoch seconds), written on idempotency records only; the template
/// enables TTL on it (`TimeToLiveSpecification`).
pub const TTL_ATTRIBUTE: &str = "expiresAt";

/// Retries of an idempotent create cancelled by a concurrent transaction (`TransactionConflict`)
/// before it answers [`StoreError::Contended`] (409, Retry-After).
pub const CONFLICT_RETRIES: u32 = 3;

/// DynamoDB Queries one listing request may issue; past it the page ends early with a cursor.
pub const LISTING_MAX_QUERIES: u32 = 5;

/// Items one listing request may read (evaluate, before the FilterExpression); past it the page
/// ends early with a cursor.
pub const LISTING_MAX_EVALUATED: u32 = 250;

/// Items a FilterExpression query reads at least, whatever the page size: one Query per
/// non-matching item would be the costliest way to skip them.
pub const FILTER_BATCH: u32 = 25;

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

    async fn create_inner(
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
            None => self.get_item(&item_key(s), true).await?,
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
        let record_pk = idempotency_pk(&s.user_id, key);
        let now = s.created_at.timestamp();
        let expires_at = now + IDEMPOTENCY_TTL.as_secs() as i64;
        let record: Item = HashMap::from([
            ("pk".into(), AttributeValue::S(record_pk.clone())),
            ("sk".into(), AttributeValue::S("IDEMPOTENCY".into())),
            ("fingerprint".into(), AttributeValue::S(fingerprint.into())),
            ("submissionId".into(), AttributeValue::S(s.id.clone())),
            (
                "userId".into(),
                AttributeValue::S(s.user_id.as_str().into()),
            ),
            (
                "createdAt".into(),
                AttributeValue::S(s.created_at.to_rfc3339()),
            ),
            (
                TTL_ATTRIBUTE.into(),
                AttributeValue::N(expires_at.to_string()),
            ),
        ]);
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
            let reasons = match err.as_service_error() {
                Some(TransactWriteItemsError::TransactionCanceledException(t)) => {
                    t.cancellation_reasons()
                }
                _ => return Err(classify(err, Op::Write)),
            };
            let code = |i: usize| reasons.get(i).and_then(|r| r.code());
            if code(0) == Some("ConditionalCheckFailed") {
                let old = reasons[0].item().cloned();
                if let Some(created) = self.replay(s, &record_pk, fingerprint, old).await? {
                    return Ok(created);
                }
                // The record was gone by the time it was read: try again.
            } else if reasons.iter().any(|r| {
                matches!(
                    r.code(),
                    Some("ThrottlingError" | "ProvisionedThroughputExceeded")
                )
            }) {
                // Cancelled, so nothing was written.
                tracing::warn!(
                    path = "transaction_throttled",
                    "the idempotent create was throttled; nothing written"
                );
                return Err(StoreError::Unavailable(Box::new(err)));
            } else if !reasons
                .iter()
                .any(|r| r.code() == Some("TransactionConflict"))
            {
                // A validation error, or the submission's own fresh key taken: a fault of ours.
                return Err(classify(err, Op::Write));
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
        record_pk: &str,
        fingerprint: &str,
        old: Option<Item>,
    ) -> Result<Option<Created>, StoreError> {
        let record = match old {
            Some(record) => record,
            None => {
                let key = HashMap::from([
                    ("pk".into(), AttributeValue::S(record_pk.into())),
                    ("sk".into(), AttributeValue::S("IDEMPOTENCY".into())),
                ]);
                match self.get_item(&key, true).await? {
                    Some(record) => record,
                    None => {
                        tracing::warn!(
                            path = "idempotency_record_vanished",
                            "the idempotency record was gone when read; retrying the create"
                        );
                        return Ok(None);
                    }
                }
            }
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

    async fn get_inner(
        &self,
        user_id: &UserId,
        id: &str,
        consistent: bool,
    ) -> Result<Option<Submission>, StoreError> {
        let key = HashMap::from([
            ("pk".into(), AttributeValue::S(user_pk(user_id))),
            ("sk".into(), AttributeValue::S(format!("SUB#{id}"))),
        ]);
        self.get_item(&key, consistent)
            .await?
            .as_ref()
            .map(from_item)
            .transpose()
    }

    async fn list_inner(&self, q: &ListQuery, method: QueryMethod) -> Result<Page, StoreError> {
        let mut start = q
            .cursor
            .as_deref()
            .map(|c| decode_cursor(c, &q.user_id, q.journey_id.as_ref()))
            .transpose()?;
        let mut items = Vec::new();
        let mut capacity = 0.0;
        let mut more = true;
        let mut queries = 0u32;
        let mut evaluated = 0u32;
        let method = self.effective_method(q, method).await;
        let use_gsi = method == QueryMethod::Gsi;
        let filtered = method == QueryMethod::FilterExpression;
        // With a FilterExpression, Limit counts items read, not items returned; keep reading
        // until the page is full so both methods return the same pages, but never more than
        // LISTING_MAX_QUERIES queries or LISTING_MAX_EVALUATED items read: past that, the page
        // ends early with a cursor to continue.
        while more && (items.len() as u32) < q.limit {
            if queries >= LISTING_MAX_QUERIES || evaluated >= LISTING_MAX_EVALUATED {
                break;
            }
            let remaining = q.limit - items.len() as u32;
            let wanted = if filtered {
                remaining.max(FILTER_BATCH)
            } else {
                remaining
            };
            let read = wanted.min(LISTING_MAX_EVALUATED - evaluated);
            let mut query = self
                .client
                .query()
                .table_name(&self.table)
                .limit(read as i32)
                .return_consumed_capacity(ReturnConsumedCapacity::Total);
            query = match (&q.journey_id, use_gsi) {
                (Some(journey), true) => query
                    .index_name(GSI_NAME)
                    .key_condition_expression("userJourney = :uj")
                    .expression_attribute_values(
                        ":uj",
                        AttributeValue::S(user_journey(&q.user_id, journey)),
                    ),
                (Some(journey), false) => query
                    .key_condition_expression("pk = :pk AND begins_with(sk, :sub)")
                    .filter_expression("journeyId = :j")
                    .expression_attribute_values(":pk", AttributeValue::S(user_pk(&q.user_id)))
                    .expression_attribute_values(":sub", AttributeValue::S("SUB#".into()))
                    .expression_attribute_values(":j", AttributeValue::S(journey.as_str().into())),
                (None, _) => query
                    .key_condition_expression("pk = :pk AND begins_with(sk, :sub)")
                    .expression_attribute_values(":pk", AttributeValue::S(user_pk(&q.user_id)))
                    .expression_attribute_values(":sub", AttributeValue::S("SUB#".into())),
            };
            if let Some(key) = start.take() {
                let key = if use_gsi {
                    key
                } else {
                    key.into_iter()
                        .filter(|(k, _)| k == "pk" || k == "sk")
                        .collect()
                };
                query = query.set_exclusive_start_key(Some(key));
            }
            let out = query.send().await.map_err(|e| classify(e, Op::Read))?;
            queries += 1;
            evaluated = evaluated.saturating_add(
                u32::try_from(out.scanned_count().max(out.count())).unwrap_or(read),
            );
            capacity += out
                .consumed_capacity
                .as_ref()
                .and_then(|c| c.capacity_units)
                .unwrap_or(0.0);
            for item in out.items.unwrap_or_default() {
                items.push(from_item(&item)?);
            }
            more = out.last_evaluated_key.is_some();
            if more {
                start = out.last_evaluated_key;
            }
        }
        // A FilterExpression batch may match more than the page holds: the page ends at its last
        // item, and the cursor continues right after it.
        items.truncate(q.limit as usize);
        let next_cursor = match (items.last(), &start) {
            (Some(last), _) if items.len() as u32 == q.limit => Some(encode_cursor(last)),
            (_, Some(last_read)) if more => {
                tracing::info!(
                    path = "listing_read_cap",
                    queries,
                    evaluated,
                    items = items.len(),
                    "the listing reached its read cap before the page was full; nextCursor continues"
                );
                Some(cursor_after(last_read, q)?)
            }
            _ => None,
        };
        tracing::info!(method = method.as_str(), consumed_rcu = capacity, queries, evaluated, items = items.len(), table = %self.table, "submissions listed");
        Ok(Page {
            items,
            next_cursor,
            method,
        })
    }

    /// The interlock: what the listing actually does. A listing without a journey reads the base
    /// key; a GSI listing happens only while the index is `ACTIVE`, else it falls back (warned).
    async fn effective_method(&self, q: &ListQuery, requested: QueryMethod) -> QueryMethod {
        if q.journey_id.is_none() {
            return QueryMethod::KeyQuery;
        }
        if requested != QueryMethod::Gsi {
            return QueryMethod::FilterExpression;
        }
        let state = self.index.state().await;
        if state.is_active() {
            return QueryMethod::Gsi;
        }
        tracing::warn!(
            requested = "GSI",
            method = "FilterExpression",
            index = GSI_NAME,
            index_status = state.as_str(),
            path = "index_not_active",
            "the flag asks for the GSI but it is not ACTIVE; using the FilterExpression path"
        );
        QueryMethod::FilterExpression
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

fn user_pk(user: &UserId) -> String {
    format!("USER#{}", user.as_str())
}

/// `<user>#<journey>`: the journey (no `#`) is what follows the last `#`.
fn user_journey(user: &UserId, journey: &Ident) -> String {
    format!("{}#{}", user.as_str(), journey.as_str())
}

fn item_key(s: &Submission) -> Item {
    HashMap::from([
        ("pk".into(), AttributeValue::S(user_pk(&s.user_id))),
        ("sk".into(), AttributeValue::S(format!("SUB#{}", s.id))),
    ])
}

/// The wait before retry `attempt` (0-based) of a conflicting transaction: 20 ms doubling, with
/// jitter (half fixed, half random) so concurrent requests do not meet again.
fn conflict_backoff(attempt: u32) -> Duration {
    use std::hash::{BuildHasher, Hasher};
    let ceiling = 20u64 << attempt.min(6);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(attempt);
    Duration::from_millis(ceiling / 2 + h.finish() % (ceiling / 2 + 1))
}

/// `IDEMPOTENCY#<user>#<key>`: the key (no `#`) is what follows the last `#`.
fn idempotency_pk(user: &UserId, key: &Ident) -> String {
    format!("IDEMPOTENCY#{}#{}", user.as_str(), key.as_str())
}

/// A submission as a DynamoDB item.
pub fn to_item(s: &Submission) -> Item {
    let mut item: Item = HashMap::from([
        ("pk".into(), AttributeValue::S(user_pk(&s.user_id))),
        ("sk".into(), AttributeValue::S(format!("SUB#{}", s.id))),
        (
            "userJourney".into(),
            AttributeValue::S(user_journey(&s.user_id, &s.journey_id)),
        ),
        ("id".into(), AttributeValue::S(s.id.clone())),
        (
            "userId".into(),
            AttributeValue::S(s.user_id.as_str().into()),
        ),
        (
            "journeyId".into(),
            AttributeValue::S(s.journey_id.as_str().into()),
        ),
        ("plan".into(), AttributeValue::S(s.plan.as_str().into())),
        ("quantity".into(), AttributeValue::N(s.quantity.to_string())),
        (
            "createdAt".into(),
            AttributeValue::S(
                s.created_at
                    .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            ),
        ),
    ]);
    if let Some(note) = &s.note {
        item.insert("note".into(), AttributeValue::S(note.clone()));
    }
    item
}

/// A DynamoDB item as a submission; a malformed item is an internal error, never a panic.
pub fn from_item(item: &Item) -> Result<Submission, StoreError> {
    let plan = match string(item, "plan")?.as_str() {
        "basic" => Plan::Basic,
        "premium" => Plan::Premium,
        other => return Err(corrupt(format!("plan {other:?}"))),
    };
    let quantity = match item.get("quantity") {
        Some(AttributeValue::N(n)) => n
            .parse::<u8>()
            .map_err(|_| corrupt(format!("quantity {n:?}")))?,
        _ => return Err(corrupt("quantity missing".into())),
    };
    let created_at = DateTime::parse_from_rfc3339(&string(item, "createdAt")?)
        .map_err(|_| corrupt("createdAt".into()))?
        .with_timezone(&Utc);
    let ident = |field: &str| {
        string(item, field).and_then(|v| Ident::parse(field, &v).map_err(|_| corrupt(field.into())))
    };
    let user_id = string(item, "userId")
        .and_then(|v| UserId::parse("userId", &v).map_err(|_| corrupt("userId".into())))?;
    Ok(Submission {
        id: string(item, "id")?,
        user_id,
        journey_id: ident("journeyId")?,
        plan,
        quantity,
        note: match item.get("note") {
            Some(AttributeValue::S(note)) => Some(note.clone()),
            _ => None,
        },
        created_at,
    })
}

fn string(item: &Item, field: &str) -> Result<String, StoreError> {
    match item.get(field) {
        Some(AttributeValue::S(s)) => Ok(s.clone()),
        _ => Err(corrupt(format!("{field} missing or not a string"))),
    }
}

fn corrupt(what: String) -> StoreError {
    StoreError::Internal(format!("malformed stored item: {what}").into())
}

/// The keys of the last item of a page, hex-encoded JSON (opaque to clients).
fn encode_cursor(last: &Submission) -> String {
    encode_cursor_keys(
        &user_pk(&last.user_id),
        &format!("SUB#{}", last.id),
        &user_journey(&last.user_id, &last.journey_id),
    )
}

fn encode_cursor_keys(pk: &str, sk: &str, user_journey: &str) -> String {
    let json = serde_json::json!({
        "pk": pk,
        "sk": sk,
        "userJourney": user_journey,
    })
    .to_string();
    json.bytes().map(|b| format!("{b:02x}")).collect()
}

/// A cursor continuing after the last item a capped listing read (`LastEvaluatedKey`), which
/// may be an item of another journey: the cursor names the listed journey, so it stays bound
/// to this user and journey, and a GSI listing continues from it as well (the index's sort key
/// is the base table's `sk`).
fn cursor_after(last_read: &Item, q: &ListQuery) -> Result<String, StoreError> {
    let key = |name: &str| match last_read.get(name) {
        Some(AttributeValue::S(s)) => Ok(s.as_str()),
        _ => Err(StoreError::Internal(
            format!("LastEvaluatedKey without {name}").into(),
        )),
    };
    let (pk, sk) = (key("pk")?, key("sk")?);
    if pk != user_pk(&q.user_id) || !sk.starts_with("SUB#") {
        return Err(StoreError::Internal(
            "LastEvaluatedKey outside the listing".into(),
        ));
    }
    let uj = match &q.journey_id {
        Some(journey) => user_journey(&q.user_id, journey),
        // A listing of all journeys never reads the index: any journey of the user decodes.
        None => match last_read.get("userJourney") {
            Some(AttributeValue::S(uj)) => uj.clone(),
            _ => format!("{}#", q.user_id.as_str()),
        },
    };
    Ok(encode_cursor_keys(pk, sk, &uj))
}

/// The longest store cursor (hex characters). The longest keys it can name: a user of
/// [`crate::submissions::MAX_USER_ID_BYTES`] bytes, each a character JSON escapes (`"` or `\`,
/// two bytes), twice (`pk`, `userJourney`), a 64-byte journey and a 28-byte id, in 1156 bytes
/// of JSON: 2312 in hex.
pub const MAX_STORE_CURSOR_LEN: usize = 2560;

/// The keys a cursor names, refused unless it is one of ours for this user (and this journey,
/// when the listing is a journey's). Never panics, whatever the string: hex is ASCII, so a
/// non-ASCII cursor is refused before any slicing.
fn decode_cursor(cursor: &str, user: &UserId, journey: Option<&Ident>) -> Result<Item, StoreError> {
    if !cursor.is_ascii() || !cursor.len().is_multiple_of(2) || cursor.len() > MAX_STORE_CURSOR_LEN
    {
        return Err(StoreError::BadCursor);
    }
    let bytes: Vec<u8> = (0..cursor.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&cursor[i..i + 2], 16))
        .collect::<Result<_, _>>()
        .map_err(|_| StoreError::BadCursor)?;
    let map: HashMap<String, String> =
        serde_json::from_slice(&bytes).map_err(|_| StoreError::BadCursor)?;
    let fits = map.get("pk") == Some(&user_pk(user))
        && map.get("sk").is_some_and(|sk| sk.starts_with("SUB#"))
        && map.get("userJourney").is_some_and(|uj| match journey {
            Some(journey) => *uj == user_journey(user, journey),
            // This user's, of any journey: the part before the last `#` is the user (a prefix
            // test would take `a#b#c`, user `a#b`'s, for user `a`'s).
            None => uj
                .rsplit_once('#')
                .is_some_and(|(owner, _)| owner == user.as_str()),
        })
        && map.len() == 3;
    if !fits {
        return Err(StoreError::BadCursor);
    }
    Ok(map
        .into_iter()
        .map(|(k, v)| (k, AttributeValue::S(v)))
        .collect())
}

/// Whether a failed call may have written anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Read,
    Write,
}

/// Maps SDK errors by their modelled codes. Refusals before any work (throttling, a conflict
/// with a transaction) are [`StoreError::Unavailable`]: nothing was written. A write that timed
/// out, whose answer was lost or that met a server fault (DynamoDB: "may or may not have
/// succeeded") is [`StoreError::OutcomeUnknown`]; on a read those are `Unavailable` too.
fn classify<E>(err: SdkError<E, HttpResponse>, op: Op) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    enum Kind {
        Refused,
        Unknown,
        Internal,
    }
    let kind = match &err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            Kind::Unknown
        }
        SdkError::ServiceError(ctx) => match ctx.err().code() {
            Some(
                "ProvisionedThroughputExceededException"
                | "ThrottlingException"
                | "RequestLimitExceeded"
                | "TransactionConflictException",
            ) => Kind::Refused,
            // A transaction with this request's token still running: an earlier attempt of ours.
            Some(
                "InternalServerError" | "ServiceUnavailable" | "TransactionInProgressException",
            ) => Kind::Unknown,
            _ if ctx.raw().status().is_server_error() => Kind::Unknown,
            _ => Kind::Internal,
        },
        _ => Kind::Internal,
    };
    let boxed: BoxError = Box::new(err);
    match (kind, op) {
        (Kind::Unknown, Op::Write) => {
            tracing::warn!(
                path = "write_outcome_unknown",
                error = %boxed,
                "the write was not confirmed; it may have been stored"
            );
            StoreError::OutcomeUnknown(boxed)
        }
        (Kind::Refused | Kind::Unknown, _) => StoreError::Unavailable(boxed),
        (Kind::Internal, _) => StoreError::Internal(boxed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::submissions::MAX_USER_ID_BYTES;

    fn submission(note: Option<&str>) -> Submission {
        Submission {
            id: "0190000000000abcdef0123456789".into(),
            user_id: UserId::parse("userId", "u1").unwrap(),
            journey_id: Ident::parse("journeyId", "j1").unwrap(),
            plan: Plan::Premium,
            quantity: 3,
            note: note.map(str::to_owned),
            created_at: DateTime::parse_from_rfc3339("2026-11-21T10:00:00.123Z")
                .unwrap()
                .with_timezone(&Utc),
        }
    }

    #[test]
    fn a_submission_round_trips_through_its_item() {
        for s in [submission(Some("hello")), submission(None)] {
            let item = to_item(&s);
            assert_eq!(item["pk"], AttributeValue::S("USER#u1".into()));
            assert_eq!(item["userJourney"], AttributeValue::S("u1#j1".into()));
            assert_eq!(from_item(&item).unwrap(), s);
        }
    }

    #[test]
    fn a_malformed_item_is_an_error_not_a_panic() {
        let mut item = to_item(&submission(None));
        item.insert("quantity".into(), AttributeValue::S("three".into()));
        assert!(matches!(from_item(&item), Err(StoreError::Internal(_))));
        item.remove("quantity");
        assert!(from_item(&item).is_err());
    }

    #[test]
    fn a_cursor_round_trips_and_refuses_another_users_another_journeys_or_garbage() {
        let s = submission(None);
        let cursor = encode_cursor(&s);
        let key = decode_cursor(&cursor, &s.user_id, None).unwrap();
        assert_eq!(key["sk"], AttributeValue::S(format!("SUB#{}", s.id)));
        assert!(decode_cursor(&cursor, &s.user_id, Some(&s.journey_id)).is_ok());
        let other = UserId::parse("userId", "u2").unwrap();
        let other_journey = Ident::parse("journeyId", "j2").unwrap();
        for refused in [
            decode_cursor(&cursor, &other, None),
            decode_cursor(&cursor, &s.user_id, Some(&other_journey)),
            decode_cursor("zz", &s.user_id, None),
            decode_cursor("a\u{e9}b", &s.user_id, None),
            decode_cursor("a\u{e9}", &s.user_id, None),
        ] {
            assert!(matches!(refused, Err(StoreError::BadCursor)));
        }
    }

    #[test]
    fn a_cursor_after_the_last_item_read_is_bound_to_the_listed_user_and_journey() {
        // The last item read belongs to another journey (j9): the cursor names the listed one.
        let last_read: Item = HashMap::from([
            ("pk".into(), AttributeValue::S("USER#u1".into())),
            ("sk".into(), AttributeValue::S("SUB#0190000000000ff".into())),
        ]);
        let user = UserId::parse("userId", "u1").unwrap();
        let journey = Ident::parse("journeyId", "j1").unwrap();
        let q = ListQuery {
            user_id: user.clone(),
            journey_id: Some(journey.clone()),
            limit: 1,
            cursor: None,
        };
        let cursor = cursor_after(&last_read, &q).unwrap();
        let key = decode_cursor(&cursor, &user, Some(&journey)).unwrap();
        assert_eq!(key["sk"], last_read["sk"]);
        assert_eq!(key["userJourney"], AttributeValue::S("u1#j1".into()));
        let other = Ident::parse("journeyId", "j2").unwrap();
        assert!(decode_cursor(&cursor, &user, Some(&other)).is_err());
        let other_user = ListQuery {
            user_id: UserId::parse("userId", "u2").unwrap(),
            ..q
        };
        assert!(cursor_after(&last_read, &other_user).is_err());
    }

    #[test]
    fn keys_and_cursors_of_users_with_any_subject_are_theirs_alone() {
        let user = |sub: &str| UserId::parse("userId", sub).unwrap();
        let journey = |id: &str| Ident::parse("journeyId", id).unwrap();
        // `a#b` in journey `c` and `a` in journey `b#c` would share `a#b#c`: the second cannot
        // exist (a journey holds no `#`). User `a`'s listing of all journeys refuses a cursor of
        // `a#b`'s, though its `userJourney` starts with `a#`.
        let mut s = submission(None);
        s.user_id = user("a#b");
        s.journey_id = journey("c");
        let cursor = encode_cursor(&s);
        assert!(decode_cursor(&cursor, &user("a#b"), None).is_ok());
        let forged = encode_cursor_keys(&user_pk(&user("a")), &format!("SUB#{}", s.id), "a#b#c");
        assert!(matches!(
            decode_cursor(&forged, &user("a"), None),
            Err(StoreError::BadCursor)
        ));
        assert_eq!(
            idempotency_pk(&user("a#b"), &journey("c")),
            "IDEMPOTENCY#a#b#c"
        );
        assert!(Ident::parse("Idempotency-Key", "b#c").is_err());
        // The longest cursor: a 255-byte subject of characters JSON escapes, a 64-byte journey.
        for sub in [
            "\"".repeat(MAX_USER_ID_BYTES),
            "\\".repeat(MAX_USER_ID_BYTES),
        ] {
            s.user_id = user(&sub);
            s.journey_id = journey(&"j".repeat(64));
            let cursor = encode_cursor(&s);
            assert!(cursor.len() <= MAX_STORE_CURSOR_LEN, "{}", cursor.len());
            let key = decode_cursor(&cursor, &s.user_id, Some(&s.journey_id)).unwrap();
            assert_eq!(key["pk"], AttributeValue::S(format!("USER#{sub}")));
        }
        // Unicode and the separators of other issuers round-trip through the item.
        for sub in ["auth0|abc", "alice@example.com", "Zoë ☃"] {
            s.user_id = user(sub);
            assert_eq!(from_item(&to_item(&s)).unwrap(), s);
        }
    }

    #[test]
    fn the_conflict_backoff_grows_with_jitter_and_stays_short() {
        for attempt in 0..CONFLICT_RETRIES {
            let ceiling = 20u64 << attempt;
            for _ in 0..50 {
                let ms = conflict_backoff(attempt).as_millis() as u64;
                assert!((ceiling / 2..=ceiling).contains(&ms), "{attempt}: {ms}");
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn decoding_any_cursor_never_panics(cursor in "\\PC{0,80}") {
            let user = UserId::parse("userId", "u1").unwrap();
            let _ = decode_cursor(&cursor, &user, None);
        }

        #[test]
        fn decoding_any_hex_cursor_never_panics(cursor in "[0-9a-fA-F]{0,200}") {
            let user = UserId::parse("userId", "u1").unwrap();
            let _ = decode_cursor(&cursor, &user, None);
        }
    }
}
