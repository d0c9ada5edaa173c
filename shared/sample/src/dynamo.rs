//! The DynamoDB adapter of feature X's storage port, and the item <-> model conversions.
//!
//! Table layout (one table, on demand):
//!
//! | item | `pk` | `sk` | other attributes |
//! | --- | --- | --- | --- |
//! | submission | `USER#<userId>` | `SUB#<id>` | `userJourney` = `<userId>#<journeyId>` (key of the `byUserJourney` GSI), `id`, `userId`, `journeyId`, `plan`, `quantity`, `note`, `createdAt` |
//! | idempotency record | `IDEMPOTENCY#<userId>#<key>` | `IDEMPOTENCY` | `fingerprint`, `submissionId`, `userId`, `createdAt` |
//!
//! A submission with an idempotency key is written with its record in one transaction, both
//! conditional on not existing, so a retry can never store a duplicate and a failure leaves
//! nothing half-written. Throttling and unavailability map to [`StoreError::Unavailable`] (503,
//! nothing written). Every query logs the method it used and the consumed read capacity; a GSI
//! listing happens only while the index is `ACTIVE` ([`crate::index_status`]).

use crate::index_status::IndexGuard;
use crate::submissions::{
    Created, Ident, ListQuery, Page, Plan, QueryMethod, StoreError, Submission, SubmissionStore,
};
use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, Put, ReturnConsumedCapacity, TransactWriteItem};
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

/// Feature X's submissions in DynamoDB.
#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
    index: Arc<IndexGuard>,
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
        let item = to_item(s);
        let Some((key, fingerprint)) = idempotency else {
            self.client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(pk)")
                .send()
                .await
                .map_err(classify)?;
            return Ok(Created::New(s.clone()));
        };
        let record_pk = idempotency_pk(&s.user_id, key);
        let record: Item = HashMap::from([
            ("pk".into(), AttributeValue::S(record_pk.clone())),
            ("sk".into(), AttributeValue::S("IDEMPOTENCY".into())),
            ("fingerprint".into(), AttributeValue::S(fingerprint.clone())),
            ("submissionId".into(), AttributeValue::S(s.id.clone())),
            (
                "userId".into(),
                AttributeValue::S(s.user_id.as_str().into()),
            ),
            (
                "createdAt".into(),
                AttributeValue::S(s.created_at.to_rfc3339()),
            ),
        ]);
        let put = |item: Item| -> Result<TransactWriteItem, StoreError> {
            let put = Put::builder()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(pk)")
                .build()
                .map_err(|e| StoreError::Internal(Box::new(e)))?;
            Ok(TransactWriteItem::builder().put(put).build())
        };
        let result = self
            .client
            .transact_write_items()
            .transact_items(put(record)?)
            .transact_items(put(item)?)
            .send()
            .await;
        match result {
            Ok(_) => Ok(Created::New(s.clone())),
            Err(err) => {
                let key_taken = err
                    .as_service_error()
                    .and_then(|e| match e {
                        TransactWriteItemsError::TransactionCanceledException(t) => Some(t),
                        _ => None,
                    })
                    .is_some_and(|e| {
                        e.cancellation_reasons().first().and_then(|r| r.code())
                            == Some("ConditionalCheckFailed")
                    });
                if !key_taken {
                    return Err(classify(err));
                }
                self.replay(&s.user_id, &record_pk, &fingerprint).await
            }
        }
    }

    /// The original submission of an idempotency key, if the request is the same.
    async fn replay(
        &self,
        user_id: &Ident,
        record_pk: &str,
        fingerprint: &str,
    ) -> Result<Created, StoreError> {
        let record = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(record_pk.into()))
            .key("sk", AttributeValue::S("IDEMPOTENCY".into()))
            .consistent_read(true)
            .send()
            .await
            .map_err(classify)?
            .item
            .ok_or_else(|| StoreError::Internal("idempotency record vanished".into()))?;
        if string(&record, "fingerprint")? != fingerprint {
            return Err(StoreError::KeyReused);
        }
        let id = string(&record, "submissionId")?;
        let original = self.get_inner(user_id, &id).await?.ok_or_else(|| {
            StoreError::Internal("idempotency record points at no submission".into())
        })?;
        tracing::info!(
            path = "idempotent_replay",
            "idempotency key replayed; original returned"
        );
        Ok(Created::Replayed(original))
    }

    async fn get_inner(&self, user_id: &Ident, id: &str) -> Result<Option<Submission>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(user_pk(user_id)))
            .key("sk", AttributeValue::S(format!("SUB#{id}")))
            .send()
            .await
            .map_err(classify)?;
        out.item.as_ref().map(from_item).transpose()
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
        let method = self.effective_method(q, method).await;
        let use_gsi = method == QueryMethod::Gsi;
        // With a FilterExpression, Limit counts items read, not items returned; keep reading
        // until the page is full so both methods return the same pages.
        while more && (items.len() as u32) < q.limit {
            let mut query = self
                .client
                .query()
                .table_name(&self.table)
                .limit((q.limit - items.len() as u32) as i32)
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
            let out = query.send().await.map_err(classify)?;
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
        tracing::info!(method = method.as_str(), consumed_rcu = capacity, items = items.len(), table = %self.table, "submissions listed");
        let next_cursor = match items.last() {
            Some(last) if more || items.len() as u32 == q.limit => Some(encode_cursor(last)),
            _ => None,
        };
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
        user_id: &'a Ident,
        id: &'a str,
    ) -> BoxFuture<'a, Result<Option<Submission>, StoreError>> {
        Box::pin(self.get_inner(user_id, id))
    }

    fn list<'a>(
        &'a self,
        query: &'a ListQuery,
        method: QueryMethod,
    ) -> BoxFuture<'a, Result<Page, StoreError>> {
        Box::pin(self.list_inner(query, method))
    }
}

fn user_pk(user: &Ident) -> String {
    format!("USER#{}", user.as_str())
}

fn user_journey(user: &Ident, journey: &Ident) -> String {
    format!("{}#{}", user.as_str(), journey.as_str())
}

fn idempotency_pk(user: &Ident, key: &Ident) -> String {
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
    Ok(Submission {
        id: string(item, "id")?,
        user_id: ident("userId")?,
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
    let json = serde_json::json!({
        "pk": user_pk(&last.user_id),
        "sk": format!("SUB#{}", last.id),
        "userJourney": user_journey(&last.user_id, &last.journey_id),
    })
    .to_string();
    json.bytes().map(|b| format!("{b:02x}")).collect()
}

/// The keys a cursor names, refused unless it is one of ours for this user (and this journey,
/// when the listing is a journey's). Never panics, whatever the string: hex is ASCII, so a
/// non-ASCII cursor is refused before any slicing.
fn decode_cursor(cursor: &str, user: &Ident, journey: Option<&Ident>) -> Result<Item, StoreError> {
    if !cursor.is_ascii() || !cursor.len().is_multiple_of(2) || cursor.len() > 1024 {
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
            None => uj.starts_with(&format!("{}#", user.as_str())),
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

/// Maps SDK errors by their modelled codes: throttling and server faults are transient.
fn classify<E>(err: SdkError<E, HttpResponse>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let transient = match &err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ServiceError(ctx) => {
            matches!(
                ctx.err().code(),
                Some(
                    "ProvisionedThroughputExceededException"
                        | "ThrottlingException"
                        | "RequestLimitExceeded"
                        | "InternalServerError"
                        | "ServiceUnavailable"
                        | "TransactionInProgressException"
                        | "TransactionConflictException"
                )
            ) || ctx.raw().status().is_server_error()
        }
        _ => false,
    };
    let boxed: BoxError = Box::new(err);
    if transient {
        StoreError::Unavailable(boxed)
    } else {
        StoreError::Internal(boxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn submission(note: Option<&str>) -> Submission {
        Submission {
            id: "0190000000000abcdef0123456789".into(),
            user_id: Ident::parse("userId", "u1").unwrap(),
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
        let other = Ident::parse("userId", "u2").unwrap();
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

    proptest::proptest! {
        #[test]
        fn decoding_any_cursor_never_panics(cursor in "\\PC{0,80}") {
            let user = Ident::parse("userId", "u1").unwrap();
            let _ = decode_cursor(&cursor, &user, None);
        }

        #[test]
        fn decoding_any_hex_cursor_never_panics(cursor in "[0-9a-fA-F]{0,200}") {
            let user = Ident::parse("userId", "u1").unwrap();
            let _ = decode_cursor(&cursor, &user, None);
        }
    }
}
