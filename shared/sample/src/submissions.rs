//! Feature X's domain: a submission, parsed once from the request body into typed values, and the
//! per-operation storage port its handlers use.
//!
//! Parse, don't validate: [`SubmissionRequest::parse`] is the only way to get a request, so
//! nothing downstream can see an invalid one. Validation failures are this domain's own
//! [`InvalidInput`]; the HTTP side ([`crate::feature_x`]) turns them into 400s.

use chrono::{DateTime, Utc};
use lockstep::source::{BoxError, BoxFuture};
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Input that breaks a rule of the domain; the message names the field and is safe to show.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[error("{0}")]
pub struct InvalidInput(pub String);

/// Largest page a listing returns.
pub const MAX_PAGE: u32 = 100;
/// Page size when the caller does not say.
pub const DEFAULT_PAGE: u32 = 25;

/// An identifier this service chooses the shape of (journey, idempotency key): 1–64 of
/// `[A-Za-z0-9_-]`. Never holds `#` or a control character, which the storage keys and cursors
/// rely on (see [`UserId`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Ident(String);

impl Ident {
    /// Validates `value`; `field` names it in the error.
    pub fn parse(field: &str, value: &str) -> Result<Self, InvalidInput> {
        let ok = !value.is_empty()
            && value.len() <= 64
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if ok {
            Ok(Self(value.to_owned()))
        } else {
            Err(InvalidInput(format!(
                "{field} must be 1 to 64 characters of letters, digits, '_' or '-'."
            )))
        }
    }

    /// The identifier.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The longest user id accepted, in bytes: OpenID Connect caps `sub` at 255 ASCII characters.
pub const MAX_USER_ID_BYTES: usize = 255;

/// A user: the verified `sub` of the caller's token as the issuer wrote it, whatever the issuer
/// (Cognito's UUIDs, Auth0's `auth0|…`, e-mail addresses, other Unicode): 1 to
/// [`MAX_USER_ID_BYTES`] bytes of UTF-8 with no control character.
///
/// It may hold `#`, `|`, `@`, quotes or any Unicode, so wherever it is joined with something
/// else it comes first and an [`Ident`] (no `#`, no control character) comes last: a storage key
/// `<user>#<ident>` splits at its last `#` in one way only, and a cursor's signed bytes join with
/// U+001F, which neither holds. It is never logged (an e-mail address is personal data).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct UserId(String);

impl UserId {
    /// Validates `value`; `field` names it in the error.
    pub fn parse(field: &str, value: &str) -> Result<Self, InvalidInput> {
        let ok = !value.is_empty()
            && value.len() <= MAX_USER_ID_BYTES
            && !value.chars().any(char::is_control);
        if ok {
            Ok(Self(value.to_owned()))
        } else {
            Err(InvalidInput(format!(
                "{field} must be 1 to {MAX_USER_ID_BYTES} bytes with no control characters."
            )))
        }
    }

    /// The user id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The plan chosen in journey X.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Plan {
    /// The basic plan.
    Basic,
    /// The premium plan.
    Premium,
}

impl Plan {
    /// Its stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Plan::Basic => "basic",
            Plan::Premium => "premium",
        }
    }
}

/// The `POST /feature-x/submissions` body as sent, before validation.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SubmissionBody {
    /// Optional: the user is the caller (the token's `sub`); when sent it must be the caller.
    #[serde(default)]
    user_id: Option<String>,
    journey_id: String,
    plan: Plan,
    quantity: u32,
    #[serde(default)]
    note: Option<String>,
}

impl SubmissionBody {
    /// The `userId` the body names, if any (the handler refuses one that is not the caller).
    pub fn user_id(&self) -> Option<&str> {
        self.user_id.as_deref()
    }
}

/// A validated `POST /feature-x/submissions` body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubmissionRequest {
    /// Who submits.
    pub user_id: UserId,
    /// Which journey instance.
    pub journey_id: Ident,
    /// The plan.
    pub plan: Plan,
    /// 1 to 10.
    pub quantity: u8,
    /// Up to 500 characters.
    pub note: Option<String>,
}

impl SubmissionRequest {
    /// Validates a body sent by `caller` (the verified user: the submission is theirs). A
    /// `userId` in the body is only checked to be well formed here; that it is the caller is
    /// the handler's check (403), made before this.
    pub fn parse(raw: SubmissionBody, caller: &UserId) -> Result<Self, InvalidInput> {
        if let Some(named) = &raw.user_id {
            UserId::parse("userId", named)?;
        }
        let quantity = u8::try_from(raw.quantity)
            .ok()
            .filter(|q| (1..=10).contains(q))
            .ok_or_else(|| InvalidInput("quantity must be between 1 and 10.".into()))?;
        let note = match raw.note {
            Some(note) if note.chars().count() > 500 => {
                return Err(InvalidInput("note must be at most 500 characters.".into()))
            }
            Some(note) if note.trim().is_empty() => None,
            other => other,
        };
        Ok(Self {
            user_id: caller.clone(),
            journey_id: Ident::parse("journeyId", &raw.journey_id)?,
            plan: raw.plan,
            quantity,
            note,
        })
    }

    /// A fingerprint of the request, to tell a retry from a different request reusing an
    /// idempotency key (FNV-1a over the canonical fields).
    pub fn fingerprint(&self) -> String {
        let canonical = format!(
            "{}\u{1f}{}\u{1f}{}\u{1f}{}\u{1f}{}",
            self.user_id.as_str(),
            self.journey_id.as_str(),
            self.plan.as_str(),
            self.quantity,
            self.note.as_deref().unwrap_or("")
        );
        format!("{:016x}", fnv1a(canonical.as_bytes()))
    }
}

/// FNV-1a, 64 bits: stable across builds, so fingerprints stored with idempotency records stay
/// comparable (not for security).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, b| {
        (hash ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// A stored submission.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Submission {
    /// Time-ordered identifier (creation milliseconds, then randomness).
    pub id: String,
    /// Who submitted.
    pub user_id: UserId,
    /// Which journey instance.
    pub journey_id: Ident,
    /// The plan.
    pub plan: Plan,
    /// The quantity.
    pub quantity: u8,
    /// The note, if any.
    pub note: Option<String>,
    /// When it was stored.
    pub created_at: DateTime<Utc>,
}

impl Submission {
    /// A new submission from a request, with a fresh time-ordered id.
    pub fn new(request: SubmissionRequest, created_at: DateTime<Utc>) -> Self {
        // Stored with millisecond precision: the response must equal what a replay reads back.
        let created_at =
            DateTime::from_timestamp_millis(created_at.timestamp_millis()).unwrap_or(created_at);
        let random: u64 = {
            use std::hash::{BuildHasher, Hasher};
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_i64(created_at.timestamp_nanos_opt().unwrap_or_default());
            h.finish()
        };
        Self {
            id: format!("{:012x}{:016x}", created_at.timestamp_millis(), random),
            user_id: request.user_id,
            journey_id: request.journey_id,
            plan: request.plan,
            quantity: request.quantity,
            note: request.note,
            created_at,
        }
    }
}

/// A listing request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListQuery {
    /// Whose submissions.
    pub user_id: UserId,
    /// Only this journey's, when given.
    pub journey_id: Option<Ident>,
    /// Page size.
    pub limit: u32,
    /// Where the previous page ended.
    pub cursor: Option<String>,
}

/// How a journey listing reads the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryMethod {
    /// The `byUserJourney` index.
    Gsi,
    /// The base key (the user) with a FilterExpression on the journey: works while the index
    /// backfills, reads more.
    FilterExpression,
    /// The base key alone: a listing of all of a user's submissions (no journey), whatever the
    /// flag says.
    KeyQuery,
}

impl QueryMethod {
    /// As logged: `method=GSI`, `method=FilterExpression` or `method=KeyQuery`.
    pub fn as_str(self) -> &'static str {
        match self {
            QueryMethod::Gsi => "GSI",
            QueryMethod::FilterExpression => "FilterExpression",
            QueryMethod::KeyQuery => "KeyQuery",
        }
    }
}

/// One page of a listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Page {
    /// The submissions, oldest first.
    pub items: Vec<Submission>,
    /// Pass as `cursor` for the next page; none at the end.
    pub next_cursor: Option<String>,
    /// How the store read it (logged; not part of the response).
    #[serde(skip)]
    pub method: QueryMethod,
}

/// What storing a submission did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Created {
    /// Stored now.
    New(Submission),
    /// The idempotency key was used before with the same request: the original submission.
    Replayed(Submission),
}

/// Storage failures, by what the caller should do.
#[derive(Debug, Error)]
pub enum StoreError {
    /// Throttled or unreachable: retry later; nothing was written.
    #[error("storage unavailable")]
    Unavailable(#[source] BoxError),
    /// A write was not confirmed (it timed out, its answer was lost, the storage failed while
    /// doing it): it may have been stored. A retry with the same idempotency key returns it.
    #[error("storage did not confirm the write")]
    OutcomeUnknown(#[source] BoxError),
    /// Concurrent requests with the same idempotency key kept conflicting: retry shortly (the
    /// retry returns whichever was stored).
    #[error("concurrent requests with one idempotency key")]
    Contended,
    /// The idempotency key was used with a different request.
    #[error("idempotency key reused with a different request")]
    KeyReused,
    /// A cursor that is not one of ours.
    #[error("invalid cursor")]
    BadCursor,
    /// Anything else (misconfiguration, corrupt item).
    #[error("storage failure")]
    Internal(#[source] BoxError),
}

/// The storage port of feature X, one method per operation.
pub trait SubmissionStore: Send + Sync {
    /// Stores a submission exactly once; with an idempotency key, a retry returns the original.
    fn create<'a>(
        &'a self,
        submission: &'a Submission,
        idempotency: Option<(&'a Ident, String)>,
    ) -> BoxFuture<'a, Result<Created, StoreError>>;

    /// One submission of a user.
    fn get<'a>(
        &'a self,
        user_id: &'a UserId,
        id: &'a str,
    ) -> BoxFuture<'a, Result<Option<Submission>, StoreError>>;

    /// A page of a user's submissions (of one journey when asked, read with `method` when the
    /// store can: an index that is not `ACTIVE` is never queried).
    fn list<'a>(
        &'a self,
        query: &'a ListQuery,
        method: QueryMethod,
    ) -> BoxFuture<'a, Result<Page, StoreError>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The body as the handler reads it: serde's parse, then the domain's validation, for the
    /// caller `u-1`.
    fn parse(body: &str) -> Result<SubmissionRequest, String> {
        let raw: SubmissionBody = serde_json::from_str(body).map_err(|e| e.to_string())?;
        SubmissionRequest::parse(raw, &UserId::parse("sub", "u-1").unwrap())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn a_valid_body_parses_into_typed_values() {
        let r = parse(
            r#"{"userId":"u-1","journeyId":"j_1","plan":"premium","quantity":3,"note":"hi"}"#,
        )
        .unwrap();
        assert_eq!(r.user_id.as_str(), "u-1");
        assert_eq!(r.plan, Plan::Premium);
        assert_eq!(r.quantity, 3);
        assert_eq!(r.note.as_deref(), Some("hi"));
    }

    #[test]
    fn invalid_bodies_are_400_naming_the_problem() {
        let cases = [
            (
                r#"{"userId":"u","journeyId":"j","plan":"gold","quantity":1}"#,
                "unknown variant",
            ),
            (
                r#"{"userId":"u","journeyId":"j","plan":"basic","quantity":0}"#,
                "quantity",
            ),
            (
                r#"{"userId":"u","journeyId":"j","plan":"basic","quantity":"2"}"#,
                "invalid type",
            ),
            (
                r#"{"userId":"u\u0001u","journeyId":"j","plan":"basic","quantity":1}"#,
                "userId",
            ),
            (
                r#"{"userId":"u","plan":"basic","quantity":1}"#,
                "missing field",
            ),
            (
                r#"{"userId":"u","journeyId":"j","plan":"basic","quantity":1,"admin":true}"#,
                "unknown field",
            ),
        ];
        for (body, expected) in cases {
            let err = parse(body).unwrap_err();
            assert!(err.contains(expected), "{body}: {err}");
        }
        let long = format!(
            r#"{{"userId":"u","journeyId":"j","plan":"basic","quantity":1,"note":"{}"}}"#,
            "x".repeat(501)
        );
        assert!(parse(&long).unwrap_err().contains("note"));
    }

    #[test]
    fn the_submission_is_the_callers_with_or_without_a_user_id_in_the_body() {
        let without = parse(r#"{"journeyId":"j","plan":"basic","quantity":1}"#).unwrap();
        let with =
            parse(r#"{"userId":"u-1","journeyId":"j","plan":"basic","quantity":1}"#).unwrap();
        assert_eq!(without.user_id.as_str(), "u-1");
        assert_eq!(without, with);
        assert_eq!(without.fingerprint(), with.fingerprint());
    }

    #[test]
    fn the_fingerprint_tells_a_retry_from_a_different_request() {
        let a = parse(r#"{"userId":"u","journeyId":"j","plan":"basic","quantity":1}"#).unwrap();
        let b = parse(r#"{"quantity":1,"plan":"basic","journeyId":"j","userId":"u"}"#).unwrap();
        let c = parse(r#"{"userId":"u","journeyId":"j","plan":"basic","quantity":2}"#).unwrap();
        assert_eq!(a.fingerprint(), b.fingerprint());
        assert_ne!(a.fingerprint(), c.fingerprint());
    }

    #[test]
    fn a_user_id_is_any_subject_an_issuer_writes_without_control_characters() {
        for sub in [
            "a",
            "3f1c2a9e-7b7d-4c8e-9a52-0d6f1e2b3c4d",
            "auth0|5f7c8ec7c33c6c004bbafe82",
            "google-oauth2|104225316213155781522",
            "alice@example.com",
            "a#b",
            "\"quoted\" \\ back",
            "Zoë ☃ 用户",
            &"x".repeat(MAX_USER_ID_BYTES),
        ] {
            assert_eq!(UserId::parse("sub", sub).unwrap().as_str(), sub);
        }
        for sub in [
            String::new(),
            "x".repeat(MAX_USER_ID_BYTES + 1),
            // 254 bytes and a two-byte character: 256 bytes.
            format!("{}é", "x".repeat(MAX_USER_ID_BYTES - 1)),
            "a\u{1f}b".into(),
            "line\nbreak".into(),
            "nul\0".into(),
            "del\u{7f}".into(),
            "c1\u{85}".into(),
        ] {
            assert!(UserId::parse("sub", &sub).is_err(), "{sub:?}");
        }
    }

    #[test]
    fn ids_are_time_ordered() {
        let r = || parse(r#"{"userId":"u","journeyId":"j","plan":"basic","quantity":1}"#).unwrap();
        let t = Utc::now();
        let a = Submission::new(r(), t);
        let b = Submission::new(r(), t + chrono::TimeDelta::milliseconds(1));
        assert!(a.id < b.id);
        assert_eq!(a.id.len(), 28);
    }
}
