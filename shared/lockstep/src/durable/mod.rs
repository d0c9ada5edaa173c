//! The durable last-known-good configuration: the port ([`SnapshotStore`]), and with the cargo
//! feature `dynamodb` its adapter, one item per AppConfig target in DynamoDB (`DynamoSnapshots`).
//!
//! Rule 5 of the design: when AppConfig cannot be reached at cold start, a new instance has no
//! last-known-good of its own. With a durable snapshot configured, it loads the newest
//! configuration any instance fetched (degraded: it cannot vouch for it), and only without one
//! falls back to the bundled defaults.
//!
//! Writes: after an instance accepts a *new* version from its source, it writes the raw content
//! with its version label and deployment stamp, **conditionally**: the write succeeds only when no
//! snapshot exists, or the stored one has an older stamp `T` (or the same stamp, another version
//! and an earlier fetch — unstamped content carries no order of its own). So an instance still
//! serving an older version (frozen and thawed, or on the old side of a gradual deployment) never
//! overwrites a newer snapshot; a refused write is logged, not an error.
//!
//! Honest limit (design rule 7): an automatic AppConfig rollback serves content with an *older*
//! stamp, which by this rule never replaces the snapshot of the rolled-back deployment. A
//! roll-forward (a new deployment, a new stamp) replaces it; see `docs/runbook-gsi.md`.
//!
//! The DynamoDB item (`pk` only, in its own table): `pk` = `<application>/<environment>/<profile>`,
//! `content` (binary, the document as fetched), `version`, `stampMillis` (T, 0 when unstamped),
//! `fetchedAtMillis`, `writtenAt`.

use crate::source::{BoxError, BoxFuture};
use crate::target::Target;
use chrono::{DateTime, Utc};
use thiserror::Error;

#[cfg(feature = "dynamodb")]
pub mod dynamodb;
#[cfg(feature = "dynamodb")]
pub use dynamodb::DynamoSnapshots;

/// Names `LOCKSTEP_SNAPSHOT_TABLE`: the table holding durable snapshots (unset: none).
pub const SNAPSHOT_TABLE_VAR: &str = "LOCKSTEP_SNAPSHOT_TABLE";

/// Content larger than this is not snapshotted (DynamoDB items stop at 400 KB).
pub const MAX_SNAPSHOT_BYTES: usize = 350 * 1024;

/// A configuration as stored for cold starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredConfig {
    /// The version label it was fetched with.
    pub version: String,
    /// The document, byte for byte as fetched (validated again when loaded).
    pub content: Vec<u8>,
    /// The profile stamp T in milliseconds (0 when unstamped): the write order.
    pub stamp_millis: i64,
    /// When the writing instance fetched it (its clock).
    pub fetched_at: DateTime<Utc>,
}

/// What a save did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaveOutcome {
    /// The snapshot now holds this configuration.
    Written,
    /// A snapshot as new or newer was already stored: left as it was.
    KeptNewer,
}

/// Why a snapshot could not be read or written.
#[derive(Debug, Error)]
pub enum DurableError {
    /// DynamoDB refused or could not be reached.
    #[error("snapshot store unavailable ({code})")]
    Unavailable {
        /// The error code, or `unreachable`.
        code: String,
        /// The SDK error.
        #[source]
        source: BoxError,
    },
    /// The stored item is not one of ours.
    #[error("snapshot item malformed: {0}")]
    Malformed(String),
    /// The content is too large for one item.
    #[error("content of {0} bytes is too large to snapshot")]
    TooLarge(usize),
}

/// Where durable snapshots live.
pub trait SnapshotStore: Send + Sync {
    /// The stored snapshot, if any.
    fn load(&self) -> BoxFuture<'_, Result<Option<StoredConfig>, DurableError>>;
    /// Stores `config` unless an equal or newer one is stored.
    fn save<'a>(
        &'a self,
        config: &'a StoredConfig,
    ) -> BoxFuture<'a, Result<SaveOutcome, DurableError>>;
    /// Where, for logs.
    fn describe(&self) -> String;
}

/// The item key of a target's snapshot: `<application>/<environment>/<profile>`.
pub fn snapshot_key(target: &Target) -> String {
    format!(
        "{}/{}/{}",
        target.application, target.environment, target.profile
    )
}
