//! One call to the source and the state that follows it (design rules 1 and 2): what a
//! successful fetch, a failure or a timeout makes of the current [`CacheState`].
//!
//! When the next refresh is due (`next_refresh_at`):
//! - after a successful fetch starting at `s` and ending at `e`: `max(s + P, e + I)` where `I` is
//!   the service's `NextPollIntervalInSeconds`. With `I ≤ P` this is P after the fetch began, up
//!   to one fetch latency later (the service counts its interval from its answer, and a call
//!   before it is refused); that latency, bounded by the fetch timeout, is part of what ε covers.
//!   With `I > P` the instance cannot keep rule 1 and is degraded until `I` fits again;
//! - after a failed fetch: a backoff of 1 s, 2 s, 4 s … capped at P, so an outage costs at most one
//!   call per backoff step and a request never waits on more than one attempt.
//!
//! Failures never obliterate (rule 2): a failed, timed-out or rejected fetch keeps the snapshot it
//! had and marks the instance degraded. Content that does not validate is remembered as rejected:
//! AppConfig will answer "unchanged" to the next polls of the same session, and those must not
//! look like a recovery while the instance still serves the older version.
//!
//! The [`Refresher`] is only ever used under the cache's refresh lock (single flight); the cache
//! stores what it returns.

use crate::cache::view::{CacheState, Degraded};
use crate::catalog::FlagCatalog;
use crate::consistency::{Window, CATCH_UP_INTERVAL};
use crate::document;
use crate::durable::StoredConfig;
use crate::metrics::{Count, Metrics, Millis};
use crate::overrides::Overrides;
use crate::rollback::{self, RolledBack};
use crate::snapshot::{Origin, Snapshot};
use crate::source::{ConfigSource, FailureKind, Fetched};
use chrono::{DateTime, TimeDelta, Utc};
use std::sync::Arc;
use std::time::Duration;

/// What resolving fetched content needs: the catalog, the overrides, P and ε.
pub(crate) struct Resolve<'a> {
    /// The declared flags.
    pub(crate) catalog: &'a FlagCatalog,
    /// `FORCE_` overrides.
    pub(crate) overrides: &'a Overrides,
    /// P and ε.
    pub(crate) window: Window,
    /// Whether a newly accepted version is kept for the durable store.
    pub(crate) keep_for_durable: bool,
    /// Where the refresh's outcome is counted.
    pub(crate) metrics: &'a Metrics,
}

/// The source and what the refresh remembers between calls.
pub(crate) struct Refresher {
    source: Box<dyn ConfigSource>,
    consecutive_failures: u32,
    rejected: Option<(String, String)>,
}

impl Refresher {
    /// A refresher over `source`, with no failures and nothing rejected yet.
    pub(crate) fn new(source: Box<dyn ConfigSource>) -> Self {
        Self {
            source,
            consecutive_failures: 0,
            rejected: None,
        }
    }

    /// Calls the source once, at `start`, under `timeout`, and returns the state that follows
    /// `current`, a newly accepted version for the durable store, and the moment the call
    /// returned (read from `now`).
    pub(crate) async fn poll(
        &mut self,
        current: &CacheState,
        start: DateTime<Utc>,
        timeout: Duration,
        now: impl Fn() -> DateTime<Utc>,
        resolve: &Resolve<'_>,
    ) -> (CacheState, Option<StoredConfig>, DateTime<Utc>) {
        let result = tokio::time::timeout(timeout, self.source.fetch(start)).await;
        let end = now();
        let (state, to_save) = match result {
            Ok(Ok(fetched)) => self.on_success(current, fetched, start, end, resolve),
            Ok(Err(error)) => {
                resolve.metrics.count(Count::RefreshFailed);
                tracing::warn!(error = %error, kind = %error.kind(), version = %current.snapshot.version, path = "refresh_failed", "refresh failed; keeping last-known-good");
                (
                    self.on_failure(current, error.kind(), end, resolve.window),
                    None,
                )
            }
            Err(_elapsed) => {
                resolve.metrics.count(Count::RefreshTimedOut);
                tracing::warn!(timeout_ms = timeout.as_millis() as u64, version = %current.snapshot.version, path = "refresh_timeout", "refresh timed out; keeping last-known-good");
                (
                    self.on_failure(current, FailureKind::Timeout, end, resolve.window),
                    None,
                )
            }
        };
        (state, to_save, end)
    }

    fn on_success(
        &mut self,
        current: &CacheState,
        fetched: Fetched,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        resolve: &Resolve<'_>,
    ) -> (CacheState, Option<StoredConfig>) {
        let window = resolve.window;
        self.consecutive_failures = 0;
        let mut snapshot = current.snapshot.clone();
        let mut to_save = None;
        match fetched.content {
            Some(content) => match document::parse(&content.bytes).and_then(|doc| {
                document::check_not_future(&doc, start, window.epsilon).map(|()| doc)
            }) {
                Ok(doc) => {
                    let mut next = Snapshot::from_document(
                        content.version.clone(),
                        &doc,
                        resolve.catalog,
                        resolve.overrides,
                        window,
                    );
                    log_accepted(&current.snapshot, &next);
                    resolve.metrics.count(Count::RefreshNewVersion);
                    let rolled_back = rollback::apply(&current.snapshot, &mut next, end, window);
                    if rolled_back.is_empty() {
                        record_lag(resolve.metrics, current, &next, end);
                    } else {
                        // A reverted version's T is an old deployment's: no lag to measure.
                        resolve.metrics.count(Count::RollbackSeen);
                        log_rollback(&current.snapshot, &next, &rolled_back, end, window);
                    }
                    if resolve.keep_for_durable {
                        to_save = Some(StoredConfig {
                            version: content.version,
                            content: content.bytes,
                            stamp_millis: next.profile_stamp.map_or(0, |s| s.at.timestamp_millis()),
                            fetched_at: start,
                        });
                    }
                    snapshot = Arc::new(next);
                    self.rejected = None;
                }
                Err(error) => {
                    resolve.metrics.count(Count::RefreshContentRejected);
                    tracing::error!(version = %content.version, reason = %error, kept_version = %current.snapshot.version, path = "content_rejected", "configuration rejected; keeping last-known-good");
                    self.rejected = Some((content.version, error.to_string()));
                }
            },
            None => {
                resolve.metrics.count(Count::RefreshUnchanged);
                tracing::debug!(version = %snapshot.version, path = "refreshed_unchanged", "configuration unchanged");
            }
        }
        let service_interval = fetched.next_poll_interval.unwrap_or(Duration::ZERO);
        let degraded = if let Some((version, reason)) = &self.rejected {
            Some(Degraded::InvalidContent {
                version: version.clone(),
                reason: reason.clone(),
            })
        } else if snapshot.origin == Origin::Defaults {
            // A source that answered "unchanged" to its very first call delivered nothing.
            Some(Degraded::NeverFetched {
                kind: FailureKind::NoContent,
            })
        } else if snapshot.origin == Origin::Durable {
            Some(Degraded::DurableSnapshot {
                kind: FailureKind::NoContent,
            })
        } else if service_interval > window.poll_interval {
            tracing::warn!(
                service_interval_s = service_interval.as_secs(),
                poll_interval_s = window.poll_interval.as_secs(),
                path = "poll_interval_too_long",
                "service poll interval exceeds P; instance degraded"
            );
            Some(Degraded::PollIntervalTooLong {
                service_seconds: service_interval.as_secs(),
            })
        } else {
            None
        };
        // The session asked for Q: even a source that states no interval is not called again
        // sooner (a catch-up is the only call that could come that early).
        let may_poll_at = end + delta(service_interval.max(CATCH_UP_INTERVAL));
        let state = CacheState::new(
            snapshot,
            Some(start),
            (start + delta(window.poll_interval)).max(may_poll_at),
            may_poll_at,
            degraded,
        );
        (state, to_save)
    }

    fn on_failure(
        &mut self,
        current: &CacheState,
        kind: FailureKind,
        end: DateTime<Utc>,
        window: Window,
    ) -> CacheState {
        self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        let exponent = (self.consecutive_failures - 1).min(16);
        let backoff = Duration::from_secs(1u64 << exponent).min(window.poll_interval);
        let degraded = match (current.fetched_at, current.snapshot.origin) {
            (None, Origin::Durable) => Degraded::DurableSnapshot { kind },
            (None, _) => Degraded::NeverFetched { kind },
            (Some(_), _) if kind == FailureKind::Timeout => Degraded::Timeout,
            (Some(_), _) => Degraded::FetchFailed { kind },
        };
        CacheState::new(
            current.snapshot.clone(),
            current.fetched_at,
            end + delta(backoff),
            end + delta(backoff),
            Some(degraded),
        )
    }
}

fn log_accepted(old: &Snapshot, new: &Snapshot) {
    let changed: Vec<&str> = new
        .flags()
        .iter()
        .filter(|f| {
            old.flag(&f.name).map(|o| (o.value, &o.definition)) != Some((f.value, &f.definition))
        })
        .map(|f| f.name.as_str())
        .collect();
    tracing::info!(
        version = %new.version,
        previous_version = %old.version,
        format = ?new.format,
        changed = ?changed,
        path = "refreshed_new_version",
        "configuration accepted"
    );
}

/// The `rollback_seen` line: which flags went back, from which stamp to which, and from when
/// this instance vouches for them again.
fn log_rollback(
    old: &Snapshot,
    new: &Snapshot,
    rolled_back: &[RolledBack],
    seen: DateTime<Utc>,
    window: Window,
) {
    let rfc3339 = |at: DateTime<Utc>| at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let flags: Vec<&str> = rolled_back.iter().map(|r| r.flag.as_str()).collect();
    let previous_stamps: Vec<String> = rolled_back.iter().map(|r| rfc3339(r.from)).collect();
    let stamps: Vec<String> = rolled_back.iter().map(|r| rfc3339(r.to)).collect();
    tracing::warn!(
        version = %new.version,
        previous_version = %old.version,
        flags = ?flags,
        previous_stamps = ?previous_stamps,
        stamps = ?stamps,
        seen_at = %rfc3339(seen),
        consistent_at = %rfc3339(rollback::consistent_after(seen, window)),
        path = "rollback_seen",
        "a flag's stamp went backwards: rolled back no later than this fetch"
    );
}

/// Records how long after its deployment's stamp `T` this instance first serves `next`
/// ([`Millis::DeploymentLag`]): only for an instance that already served a version (a cold start
/// is not a deployment reaching it) and a stamped document; a clock behind the stamper's counts
/// as no lag.
fn record_lag(metrics: &Metrics, current: &CacheState, next: &Snapshot, served_at: DateTime<Utc>) {
    if current.fetched_at.is_none() {
        return;
    }
    if let Some(stamp) = next.profile_stamp {
        let lag = (served_at - stamp.at).num_milliseconds().max(0);
        metrics.record(Millis::DeploymentLag, lag as f64);
    }
}

fn delta(d: Duration) -> TimeDelta {
    TimeDelta::from_std(d).unwrap_or(TimeDelta::MAX)
}
