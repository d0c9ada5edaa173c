//! The DynamoDB adapter of feature X's storage port, [`DynamoStore`], by responsibility (each
//! file's public items re-exported here):
//!
//! - `store`: the store itself, its client ([`client`]), its reads by key, and the port's
//!   implementation;
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
//! `userId` is the issuer's `sub` as written ([`crate::submissions::UserId`]: `#`, `|`, `@`, any
//! Unicode); journey ids and idempotency keys are [`crate::submissions::Ident`]s, which never hold
//! `#`. So every composite key ends with the one part that cannot hold `#`, and splits at its last
//! `#` one way only: `a#b` + `c` and `a` + `b#c` cannot both exist.
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
//!
//! [`StoreError::Contended`]: crate::submissions::StoreError::Contended
//! [`StoreError::OutcomeUnknown`]: crate::submissions::StoreError::OutcomeUnknown
//! [`StoreError::Unavailable`]: crate::submissions::StoreError::Unavailable

mod errors;
mod items;
mod listing;
mod store;
mod writes;

pub use errors::CONFLICT_RETRIES;
pub use items::{from_item, to_item, GSI_NAME, TTL_ATTRIBUTE};
pub use listing::{FILTER_BATCH, LISTING_MAX_EVALUATED, LISTING_MAX_QUERIES, MAX_STORE_CURSOR_LEN};
pub use store::{client, DynamoStore, DEFAULT_INDEX_REFRESH, OPERATION_TIMEOUT};
pub use writes::IDEMPOTENCY_TTL;
