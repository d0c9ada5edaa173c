//! The cache's side of the durable last-known-good snapshot ([`crate::durable`], rule 5): load
//! it when the source fails before anything was fetched, save every newly accepted version.
//!
//! A load is bounded by the fetch timeout and happens under the refresh lock (a cold start's
//! readers wait for it, as for the fetch); a save is bounded by [`DURABLE_SAVE_TIMEOUT`] and is
//! made after the lock is released, so only the request that refreshed waits for it. Neither
//! ever fails a read: every failure is logged and the cache carries on with what it has.

use crate::cache::refresh::Resolve;
use crate::document;
use crate::durable::{SaveOutcome, SnapshotStore, StoredConfig};
use crate::snapshot::Snapshot;
use chrono::{DateTime, Utc};
use std::time::Duration;

/// The timeout of one durable snapshot write (made after the refresh lock is released).
pub const DURABLE_SAVE_TIMEOUT: Duration = Duration::from_millis(500);

/// The durable snapshot as a resolved snapshot, or `None` (none stored, unreachable, or
/// invalid: each logged). `now` is read after the load, to refuse a future-dated stamp.
pub(crate) async fn load(
    durable: &dyn SnapshotStore,
    timeout: Duration,
    now: impl Fn() -> DateTime<Utc>,
    resolve: &Resolve<'_>,
) -> Option<Snapshot> {
    let stored = match tokio::time::timeout(timeout, durable.load()).await {
        Ok(Ok(Some(stored))) => stored,
        Ok(Ok(None)) => {
            tracing::warn!(
                path = "durable_snapshot_none",
                "no durable snapshot stored; serving bundled defaults"
            );
            return None;
        }
        Ok(Err(error)) => {
            tracing::warn!(error = %error, path = "durable_snapshot_unavailable", "durable snapshot unreadable; serving bundled defaults");
            return None;
        }
        Err(_) => {
            tracing::warn!(
                timeout_ms = timeout.as_millis() as u64,
                path = "durable_snapshot_timeout",
                "durable snapshot timed out; serving bundled defaults"
            );
            return None;
        }
    };
    let now = now();
    match document::parse(&stored.content)
        .and_then(|doc| document::check_not_future(&doc, now, resolve.window.epsilon).map(|()| doc))
    {
        Ok(doc) => {
            let snapshot = Snapshot::from_document(
                stored.version,
                &doc,
                resolve.catalog,
                resolve.overrides,
                resolve.window,
            )
            .loaded_from_durable();
            tracing::warn!(
                version = %snapshot.version,
                fetched_at = %stored.fetched_at.to_rfc3339(),
                path = "durable_snapshot_loaded",
                "source unreachable at cold start; serving the durable snapshot (degraded)"
            );
            Some(snapshot)
        }
        Err(error) => {
            tracing::error!(version = %stored.version, reason = %error, path = "durable_snapshot_invalid", "durable snapshot does not validate; serving bundled defaults");
            None
        }
    }
}

/// Writes a newly accepted version to the durable store; failures are logged, never served.
pub(crate) async fn save(durable: &dyn SnapshotStore, config: &StoredConfig) {
    match tokio::time::timeout(DURABLE_SAVE_TIMEOUT, durable.save(config)).await {
        Ok(Ok(SaveOutcome::Written)) => {
            tracing::info!(version = %config.version, stamp_ms = config.stamp_millis, path = "durable_snapshot_written", "durable snapshot written");
        }
        Ok(Ok(SaveOutcome::KeptNewer)) => {
            tracing::info!(version = %config.version, stamp_ms = config.stamp_millis, path = "durable_snapshot_kept", "durable snapshot already as new or newer; left as it was");
        }
        Ok(Err(error)) => {
            tracing::warn!(version = %config.version, error = %error, path = "durable_snapshot_write_failed", "durable snapshot not written");
        }
        Err(_) => {
            tracing::warn!(version = %config.version, timeout_ms = DURABLE_SAVE_TIMEOUT.as_millis() as u64, path = "durable_snapshot_write_timeout", "durable snapshot write timed out");
        }
    }
}
