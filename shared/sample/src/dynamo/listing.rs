//! Listings: the caller's submissions, or one journey's, a page at a time. A journey listing
//! reads the `byUserJourney` GSI when the flag asks for it and the index is `ACTIVE` (the
//! interlock, [`crate::index_status`]), else the base key with a FilterExpression; both return
//! the same pages. A listing issues at most [`LISTING_MAX_QUERIES`] queries reading at most
//! [`LISTING_MAX_EVALUATED`] items, then ends early with a cursor. The store's cursors (the last
//! keys read, hex-encoded JSON) are bound to the listed user and journey.

use super::errors::{classify, Op};
use super::items::{from_item, submission_sk, user_journey, user_pk, Item, GSI_NAME, SUB_PREFIX};
use super::store::DynamoStore;
use crate::submissions::{Ident, ListQuery, Page, QueryMethod, StoreError, Submission, UserId};
use aws_sdk_dynamodb::types::{AttributeValue, ReturnConsumedCapacity};
use std::collections::HashMap;

/// DynamoDB Queries one listing request may issue; past it the page ends early with a cursor.
pub const LISTING_MAX_QUERIES: u32 = 5;

/// Items one listing request may read (evaluate, before the FilterExpression); past it the page
/// ends early with a cursor.
pub const LISTING_MAX_EVALUATED: u32 = 250;

/// Items a FilterExpression query reads at least, whatever the page size: one Query per
/// non-matching item would be the costliest way to skip them.
pub const FILTER_BATCH: u32 = 25;

impl DynamoStore {
    pub(super) async fn list_inner(
        &self,
        q: &ListQuery,
        method: QueryMethod,
    ) -> Result<Page, StoreError> {
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
                    .expression_attribute_values(":sub", AttributeValue::S(SUB_PREFIX.into()))
                    .expression_attribute_values(":j", AttributeValue::S(journey.as_str().into())),
                (None, _) => query
                    .key_condition_expression("pk = :pk AND begins_with(sk, :sub)")
                    .expression_attribute_values(":pk", AttributeValue::S(user_pk(&q.user_id)))
                    .expression_attribute_values(":sub", AttributeValue::S(SUB_PREFIX.into())),
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

/// The keys of the last item of a page, hex-encoded JSON (opaque to clients).
fn encode_cursor(last: &Submission) -> String {
    encode_cursor_keys(
        &user_pk(&last.user_id),
        &submission_sk(&last.id),
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
    if pk != user_pk(&q.user_id) || !sk.starts_with(SUB_PREFIX) {
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
        && map.get("sk").is_some_and(|sk| sk.starts_with(SUB_PREFIX))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dynamo::items::tests::submission;
    use crate::dynamo::items::{idempotency_key, to_item};
    use crate::submissions::MAX_USER_ID_BYTES;

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
            idempotency_key(&user("a#b"), &journey("c"))["pk"],
            AttributeValue::S("IDEMPOTENCY#a#b#c".into())
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
        for sub in ["auth0|abc", "alice@example.com", "Zo\u{eb} \u{2603}"] {
            s.user_id = user(sub);
            assert_eq!(from_item(&to_item(&s)).unwrap(), s);
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
