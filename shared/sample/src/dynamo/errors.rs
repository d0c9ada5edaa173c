//! What a failed DynamoDB call means for the client, by the SDK's modelled codes (never by
//! message text): [`classify`] for any call, [`cancellation`] for the idempotent create's
//! cancelled transaction, and the backoff before retrying a transaction that met a concurrent
//! one ([`CONFLICT_RETRIES`], [`conflict_backoff`]).

use super::items::Item;
use crate::submissions::StoreError;
use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::CancellationReason;
use lockstep::source::BoxError;
use std::time::Duration;

/// Retries of an idempotent create cancelled by a concurrent transaction (`TransactionConflict`)
/// before it answers [`StoreError::Contended`] (409, Retry-After).
pub const CONFLICT_RETRIES: u32 = 3;

/// Whether a failed call may have written anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Op {
    Read,
    Write,
}

/// Maps SDK errors by their modelled codes. Refusals before any work (throttling, a conflict
/// with a transaction) are [`StoreError::Unavailable`]: nothing was written. A write that timed
/// out, whose answer was lost or that met a server fault (DynamoDB: "may or may not have
/// succeeded") is [`StoreError::OutcomeUnknown`]; on a read those are `Unavailable` too.
pub(super) fn classify<E>(err: SdkError<E, HttpResponse>, op: Op) -> StoreError
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

/// Why DynamoDB cancelled the idempotent create's transaction (the record's put first, then the
/// submission's). A cancelled transaction wrote nothing.
#[derive(Debug, PartialEq)]
pub(super) enum Cancelled {
    /// The record's condition failed: the key is taken. The record as the condition saw it,
    /// when DynamoDB returned it.
    KeyTaken(Option<Item>),
    /// Throttled.
    Throttled,
    /// A concurrent transaction on the same items (another request with the same key in
    /// flight): retry after [`conflict_backoff`].
    Conflict,
    /// Anything else: a validation error, or the submission's own fresh key taken (a fault of
    /// ours).
    Other,
}

/// Reads a cancelled transaction's reasons, in this order: a taken key (answered by replaying
/// it) before throttling, throttling before a conflict.
pub(super) fn cancellation(reasons: &[CancellationReason]) -> Cancelled {
    match reasons.first() {
        Some(record) if record.code() == Some("ConditionalCheckFailed") => {
            Cancelled::KeyTaken(record.item().cloned())
        }
        _ if reasons.iter().any(|r| {
            matches!(
                r.code(),
                Some("ThrottlingError" | "ProvisionedThroughputExceeded")
            )
        }) =>
        {
            Cancelled::Throttled
        }
        _ if reasons
            .iter()
            .any(|r| r.code() == Some("TransactionConflict")) =>
        {
            Cancelled::Conflict
        }
        _ => Cancelled::Other,
    }
}

/// The wait before retry `attempt` (0-based) of a conflicting transaction: 20 ms doubling, with
/// jitter (half fixed, half random) so concurrent requests do not meet again.
pub(super) fn conflict_backoff(attempt: u32) -> Duration {
    use std::hash::{BuildHasher, Hasher};
    let ceiling = 20u64 << attempt.min(6);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(attempt);
    Duration::from_millis(ceiling / 2 + h.finish() % (ceiling / 2 + 1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::types::AttributeValue;
    use std::collections::HashMap;

    fn reasons(codes: &[&str]) -> Vec<CancellationReason> {
        codes
            .iter()
            .map(|code| CancellationReason::builder().code(*code).build())
            .collect()
    }

    #[test]
    fn a_cancelled_transaction_reads_a_taken_key_before_throttling_and_throttling_before_a_conflict(
    ) {
        let record: Item =
            HashMap::from([("pk".into(), AttributeValue::S("IDEMPOTENCY#u1#k".into()))]);
        let taken = vec![CancellationReason::builder()
            .code("ConditionalCheckFailed")
            .set_item(Some(record.clone()))
            .build()];
        assert_eq!(cancellation(&taken), Cancelled::KeyTaken(Some(record)));
        assert_eq!(
            cancellation(&reasons(&["ConditionalCheckFailed", "ThrottlingError"])),
            Cancelled::KeyTaken(None)
        );
        assert_eq!(
            cancellation(&reasons(&["TransactionConflict", "ThrottlingError"])),
            Cancelled::Throttled
        );
        assert_eq!(
            cancellation(&reasons(&["None", "ProvisionedThroughputExceeded"])),
            Cancelled::Throttled
        );
        assert_eq!(
            cancellation(&reasons(&["None", "TransactionConflict"])),
            Cancelled::Conflict
        );
        // The submission's own fresh key taken is not a taken idempotency key.
        assert_eq!(
            cancellation(&reasons(&["None", "ConditionalCheckFailed"])),
            Cancelled::Other
        );
        assert_eq!(
            cancellation(&reasons(&["ValidationError"])),
            Cancelled::Other
        );
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
}
