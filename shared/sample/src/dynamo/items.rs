//! The table's layout (see the table in [`super`]): a submission as a DynamoDB item and back, the
//! idempotency record's item, and the keys both are stored under. Pure conversions, no I/O; a
//! malformed stored item is an error ([`StoreError::Internal`]), never a panic.

use crate::submissions::{Ident, Plan, StoreError, Submission, UserId};
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use std::collections::HashMap;

/// One DynamoDB item (or key), by attribute name.
pub(super) type Item = HashMap<String, AttributeValue>;

/// The GSI a journey listing uses when the flag allows it.
pub const GSI_NAME: &str = "byUserJourney";

/// The table's TTL attribute (epoch seconds), written on idempotency records only; the template
/// enables TTL on it (`TimeToLiveSpecification`).
pub const TTL_ATTRIBUTE: &str = "expiresAt";

/// The prefix of every submission's sort key.
pub(super) const SUB_PREFIX: &str = "SUB#";

/// The sort key of every idempotency record.
const RECORD_SK: &str = "IDEMPOTENCY";

/// A submission as a DynamoDB item.
pub fn to_item(s: &Submission) -> Item {
    let mut item: Item = HashMap::from([
        ("pk".into(), AttributeValue::S(user_pk(&s.user_id))),
        ("sk".into(), AttributeValue::S(submission_sk(&s.id))),
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

/// The key of submission `id` of `user`.
pub(super) fn submission_key(user: &UserId, id: &str) -> Item {
    HashMap::from([
        ("pk".into(), AttributeValue::S(user_pk(user))),
        ("sk".into(), AttributeValue::S(submission_sk(id))),
    ])
}

/// The record of idempotency key `key` for submission `s`: the request's `fingerprint`, the
/// submission it created, and its expiry (`expires_at`, epoch seconds, in [`TTL_ATTRIBUTE`]).
pub(super) fn idempotency_record(
    s: &Submission,
    key: &Ident,
    fingerprint: &str,
    expires_at: i64,
) -> Item {
    let mut record = idempotency_key(&s.user_id, key);
    record.extend([
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
    record
}

/// The key of the record of idempotency key `key` of `user`: `IDEMPOTENCY#<user>#<key>`, the key
/// (no `#`) is what follows the last `#`.
pub(super) fn idempotency_key(user: &UserId, key: &Ident) -> Item {
    HashMap::from([
        (
            "pk".into(),
            AttributeValue::S(format!("IDEMPOTENCY#{}#{}", user.as_str(), key.as_str())),
        ),
        ("sk".into(), AttributeValue::S(RECORD_SK.into())),
    ])
}

/// The partition key of `user`'s submissions.
pub(super) fn user_pk(user: &UserId) -> String {
    format!("USER#{}", user.as_str())
}

/// The sort key of submission `id`.
pub(super) fn submission_sk(id: &str) -> String {
    format!("{SUB_PREFIX}{id}")
}

/// The `byUserJourney` GSI's partition key of `user`'s submissions in `journey`:
/// `<user>#<journey>`, the journey (no `#`) is what follows the last `#`.
pub(super) fn user_journey(user: &UserId, journey: &Ident) -> String {
    format!("{}#{}", user.as_str(), journey.as_str())
}

/// A string attribute of a stored item; missing or of another type, the item is malformed.
pub(super) fn string(item: &Item, field: &str) -> Result<String, StoreError> {
    match item.get(field) {
        Some(AttributeValue::S(s)) => Ok(s.clone()),
        _ => Err(corrupt(format!("{field} missing or not a string"))),
    }
}

fn corrupt(what: String) -> StoreError {
    StoreError::Internal(format!("malformed stored item: {what}").into())
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A submission of user `u1` in journey `j1`, with or without a note.
    pub(in crate::dynamo) fn submission(note: Option<&str>) -> Submission {
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
    fn a_submissions_key_is_the_key_of_its_item() {
        let s = submission(None);
        let item = to_item(&s);
        let key = submission_key(&s.user_id, &s.id);
        assert_eq!(key.len(), 2);
        assert_eq!(key["pk"], item["pk"]);
        assert_eq!(key["sk"], item["sk"]);
    }

    #[test]
    fn an_idempotency_record_is_stored_under_its_user_and_key_and_names_its_submission() {
        let s = submission(None);
        let key = Ident::parse("Idempotency-Key", "k1").unwrap();
        let record = idempotency_record(&s, &key, "f1", 1_800_000_000);
        assert_eq!(record["pk"], AttributeValue::S("IDEMPOTENCY#u1#k1".into()));
        assert_eq!(record["sk"], AttributeValue::S("IDEMPOTENCY".into()));
        assert_eq!(string(&record, "fingerprint").unwrap(), "f1");
        assert_eq!(string(&record, "submissionId").unwrap(), s.id);
        assert_eq!(
            record[TTL_ATTRIBUTE],
            AttributeValue::N("1800000000".into())
        );
        let record_key = idempotency_key(&s.user_id, &key);
        assert!(record_key.iter().all(|(k, v)| record.get(k) == Some(v)));
    }
}
