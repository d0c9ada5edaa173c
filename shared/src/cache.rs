//! The flag cache: refresh on access when due, single flight, last-known-good, degraded state.
//!
//! Lambda freezes an execution environment between invocations, so nothing here runs in the
//! background. Every read checks, with the injected clock, whether the configuration it holds is
//! due for a refresh, and if so refreshes *before* answering (design rule 1). Concurrent readers
//! share one refresh: the first takes the refresh lock, the others wait for it and then read what
//! it stored.
//!
//! When a refresh is due (`next_refresh_at`):
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
//! With a durable snapshot store ([`FlagCache::with_durable_snapshot`], [`crate::durable`]): every
//! new version accepted from the source is written there (conditionally, newest stamp wins),
//! and an instance that has neither fetched nor loaded anything yet loads it when its source
//! fails, before falling back to the bundled defaults (rule 5); it stays degraded until its own
//! source answers.
//!
//! Reading a flag on a fresh cache is a clock read, an atomic pointer load and a binary search:
//! no I/O, no parsing, no lock.

use crate::catalog::{FlagCatalog, Visibility};
use crate::clock::Clock;
use crate::consistency::{is_consistent, Window};
use crate::document;
use crate::durable::{SaveOutcome, SnapshotStore, StoredConfig};
use crate::overrides::Overrides;
use crate::settings::Settings;
use crate::snapshot::{FlagStatus, Origin, Snapshot};
use crate::source::ConfigSource;
use arc_swap::ArcSwap;
use chrono::{DateTime, TimeDelta, Utc};
use std::sync::Arc;
use std::time::Duration;

/// Why an instance cannot vouch for its configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Degraded {
    /// Nothing was ever fetched: serving bundled defaults.
    NeverFetched {
        /// The kind of the last failure.
        kind: &'static str,
    },
    /// The last refresh failed: serving last-known-good.
    FetchFailed {
        /// The kind of failure (`throttled`, `unavailable`, `refused`, `io`, `too_early`).
        kind: &'static str,
    },
    /// The last refresh timed out: serving last-known-good.
    Timeout,
    /// The latest content did not validate: serving the version before it.
    InvalidContent {
        /// The rejected version's label.
        version: String,
        /// Why it was rejected.
        reason: String,
    },
    /// The service asks for a longer poll interval than P: configuration may be older than P.
    PollIntervalTooLong {
        /// What the service asked for, seconds.
        service_seconds: u64,
    },
    /// Nothing was ever fetched: serving the durable snapshot another instance wrote.
    DurableSnapshot {
        /// The kind of the last failure.
        kind: &'static str,
    },
}

impl Degraded {
    /// A short, stable name for logs and `/config`.
    pub fn reason(&self) -> &'static str {
        match self {
            Degraded::NeverFetched { .. } => "never_fetched",
            Degraded::FetchFailed { .. } => "fetch_failed",
            Degraded::Timeout => "timeout",
            Degraded::InvalidContent { .. } => "invalid_content",
            Degraded::PollIntervalTooLong { .. } => "poll_interval_too_long",
            Degraded::DurableSnapshot { .. } => "durable_snapshot",
        }
    }
}

/// What a read sees: one snapshot, its health and its timing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheState {
    /// The configuration served.
    pub snapshot: Arc<Snapshot>,
    /// When the last successful fetch started (this instance's clock).
    pub fetched_at: Option<DateTime<Utc>>,
    /// When the next read must refresh first.
    pub next_refresh_at: DateTime<Utc>,
    /// Why the instance cannot vouch for its configuration, if it cannot.
    pub degraded: Option<Degraded>,
}

/// Everything a cache needs besides its source.
#[derive(Clone)]
pub struct CacheOptions {
    /// The declared flags.
    pub catalog: FlagCatalog,
    /// `FORCE_` overrides.
    pub overrides: Overrides,
    /// P, ε and the fetch timeout.
    pub settings: Settings,
    /// The clock.
    pub clock: Arc<dyn Clock>,
}

struct Refresher {
    source: Box<dyn ConfigSource>,
    consecutive_failures: u32,
    rejected: Option<(String, String)>,
}

/// A freeze-safe, single-flight flag cache.
pub struct FlagCache {
    state: ArcSwap<CacheState>,
    refresher: tokio::sync::Mutex<Refresher>,
    clock: Arc<dyn Clock>,
    window: Window,
    fetch_timeout: Duration,
    catalog: FlagCatalog,
    overrides: Overrides,
    durable: Option<Arc<dyn SnapshotStore>>,
}

impl std::fmt::Debug for FlagCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlagCache")
            .field("state", &self.state.load())
            .field("window", &self.window)
            .finish_non_exhaustive()
    }
}

impl FlagCache {
    /// Builds the cache and fetches once (the prefetch at init, rule 5). If that fetch fails the
    /// cache serves the bundled defaults, degraded.
    pub async fn new(source: Box<dyn ConfigSource>, options: CacheOptions) -> Self {
        Self::build(source, options, None).await
    }

    /// Like [`FlagCache::new`], with a durable snapshot store: new versions are written to it,
    /// and when the source cannot be reached at cold start the stored snapshot is served
    /// (degraded) before the bundled defaults.
    pub async fn with_durable_snapshot(
        source: Box<dyn ConfigSource>,
        options: CacheOptions,
        durable: Arc<dyn SnapshotStore>,
    ) -> Self {
        Self::build(source, options, Some(durable)).await
    }

    async fn build(
        source: Box<dyn ConfigSource>,
        options: CacheOptions,
        durable: Option<Arc<dyn SnapshotStore>>,
    ) -> Self {
        let CacheOptions {
            catalog,
            overrides,
            settings,
            clock,
        } = options;
        let now = clock.now();
        let window = Window {
            poll_interval: settings.poll_interval,
            epsilon: settings.epsilon,
        };
        let initial = CacheState {
            snapshot: Arc::new(Snapshot::defaults(&catalog, &overrides, window)),
            fetched_at: None,
            next_refresh_at: now,
            degraded: Some(Degraded::NeverFetched { kind: "not_yet" }),
        };
        tracing::info!(
            source = %source.describe(),
            durable = durable.as_ref().map(|d| d.describe()).unwrap_or_else(|| "none".into()),
            poll_interval_s = settings.poll_interval.as_secs(),
            "flag cache prefetch"
        );
        let cache = Self {
            state: ArcSwap::from_pointee(initial),
            refresher: tokio::sync::Mutex::new(Refresher {
                source,
                consecutive_failures: 0,
                rejected: None,
            }),
            clock,
            window,
            fetch_timeout: settings.fetch_timeout,
            catalog,
            overrides,
            durable,
        };
        cache.refresh_if_due().await;
        cache
    }

    /// Reads the flags, refreshing first when the configuration is due (rule 1).
    pub async fn read(&self) -> FlagView {
        let now_ms = self.clock.now_millis();
        let state = self.state.load_full();
        if now_ms < state.next_refresh_at.timestamp_millis() {
            return self.view(state, now_ms);
        }
        self.refresh_if_due().await
    }

    /// Reads what the cache holds without refreshing (for health and fleet views, never for
    /// deciding a request).
    pub fn peek(&self) -> FlagView {
        self.view(self.state.load_full(), self.clock.now_millis())
    }

    /// P and ε.
    pub fn window(&self) -> Window {
        self.window
    }

    fn view(&self, state: Arc<CacheState>, now_ms: i64) -> FlagView {
        FlagView {
            state,
            now_ms,
            window: self.window,
        }
    }

    async fn refresh_if_due(&self) -> FlagView {
        let mut refresher = self.refresher.lock().await;
        // Another reader may have refreshed (or failed and backed off) while this one waited.
        let current = self.state.load_full();
        let start = self.clock.now();
        if start < current.next_refresh_at {
            tracing::debug!(path = "shared_refresh", "served by a concurrent refresh");
            return self.view(current, start.timestamp_millis());
        }
        let result = tokio::time::timeout(self.fetch_timeout, refresher.source.fetch(start)).await;
        let end = self.clock.now();
        let next = match result {
            Ok(Ok(fetched)) => self.on_success(&mut refresher, &current, fetched, start, end),
            Ok(Err(error)) => {
                tracing::warn!(error = %error, kind = error.kind(), version = %current.snapshot.version, path = "refresh_failed", "refresh failed; keeping last-known-good");
                (
                    self.on_failure(&mut refresher, &current, error.kind(), end),
                    None,
                )
            }
            Err(_elapsed) => {
                tracing::warn!(timeout_ms = self.fetch_timeout.as_millis() as u64, version = %current.snapshot.version, path = "refresh_timeout", "refresh timed out; keeping last-known-good");
                (
                    self.on_failure(&mut refresher, &current, "timeout", end),
                    None,
                )
            }
        };
        // (The state to store, and a newly accepted version for the durable store.)
        let (mut next, to_save) = next;
        // Rule 5: nothing of its own yet and the source failed: the durable snapshot, if any.
        if next.snapshot.origin == Origin::Defaults {
            if let Some(kind) = next.degraded.as_ref().and_then(never_fetched_kind) {
                if let Some(loaded) = self.load_durable().await {
                    next.snapshot = Arc::new(loaded);
                    next.degraded = Some(Degraded::DurableSnapshot { kind });
                }
            }
        }
        let next = Arc::new(next);
        self.state.store(next.clone());
        if let Some(config) = to_save {
            self.save_durable(&config).await;
        }
        self.view(next, end.timestamp_millis())
    }

    /// The durable snapshot as a resolved snapshot, or `None` (none configured, none stored,
    /// unreachable, or invalid: each logged).
    async fn load_durable(&self) -> Option<Snapshot> {
        let durable = self.durable.as_ref()?;
        let stored = match tokio::time::timeout(self.fetch_timeout, durable.load()).await {
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
                    timeout_ms = self.fetch_timeout.as_millis() as u64,
                    path = "durable_snapshot_timeout",
                    "durable snapshot timed out; serving bundled defaults"
                );
                return None;
            }
        };
        match document::parse(&stored.content) {
            Ok(doc) => {
                let mut snapshot = Snapshot::from_document(
                    stored.version,
                    &doc,
                    &self.catalog,
                    &self.overrides,
                    self.window,
                );
                snapshot.origin = Origin::Durable;
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
    async fn save_durable(&self, config: &StoredConfig) {
        let Some(durable) = self.durable.as_ref() else {
            return;
        };
        match tokio::time::timeout(self.fetch_timeout, durable.save(config)).await {
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
                tracing::warn!(version = %config.version, path = "durable_snapshot_write_timeout", "durable snapshot write timed out");
            }
        }
    }

    fn on_success(
        &self,
        refresher: &mut Refresher,
        current: &CacheState,
        fetched: crate::source::Fetched,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> (CacheState, Option<StoredConfig>) {
        refresher.consecutive_failures = 0;
        let mut snapshot = current.snapshot.clone();
        let mut to_save = None;
        match fetched.content {
            Some(content) => match document::parse(&content.bytes) {
                Ok(doc) => {
                    let next = Snapshot::from_document(
                        content.version.clone(),
                        &doc,
                        &self.catalog,
                        &self.overrides,
                        self.window,
                    );
                    log_accepted(&current.snapshot, &next);
                    if self.durable.is_some() {
                        to_save = Some(StoredConfig {
                            version: content.version,
                            content: content.bytes,
                            stamp_millis: next.profile_stamp.map_or(0, |s| s.at.timestamp_millis()),
                            fetched_at: start,
                        });
                    }
                    snapshot = Arc::new(next);
                    refresher.rejected = None;
                }
                Err(error) => {
                    tracing::error!(version = %content.version, reason = %error, kept_version = %current.snapshot.version, path = "content_rejected", "configuration rejected; keeping last-known-good");
                    refresher.rejected = Some((content.version, error.to_string()));
                }
            },
            None => {
                tracing::debug!(version = %snapshot.version, path = "refreshed_unchanged", "configuration unchanged");
            }
        }
        let service_interval = fetched.next_poll_interval.unwrap_or(Duration::ZERO);
        let degraded = if let Some((version, reason)) = &refresher.rejected {
            Some(Degraded::InvalidContent {
                version: version.clone(),
                reason: reason.clone(),
            })
        } else if snapshot.origin == Origin::Defaults {
            // A source that answered "unchanged" to its very first call delivered nothing.
            Some(Degraded::NeverFetched { kind: "no_content" })
        } else if snapshot.origin == Origin::Durable {
            Some(Degraded::DurableSnapshot { kind: "no_content" })
        } else if service_interval > self.window.poll_interval {
            tracing::warn!(
                service_interval_s = service_interval.as_secs(),
                poll_interval_s = self.window.poll_interval.as_secs(),
                path = "poll_interval_too_long",
                "service poll interval exceeds P; instance degraded"
            );
            Some(Degraded::PollIntervalTooLong {
                service_seconds: service_interval.as_secs(),
            })
        } else {
            None
        };
        let state = CacheState {
            snapshot,
            fetched_at: Some(start),
            next_refresh_at: (start + delta(self.window.poll_interval))
                .max(end + delta(service_interval)),
            degraded,
        };
        (state, to_save)
    }

    fn on_failure(
        &self,
        refresher: &mut Refresher,
        current: &CacheState,
        kind: &'static str,
        end: DateTime<Utc>,
    ) -> CacheState {
        refresher.consecutive_failures = refresher.consecutive_failures.saturating_add(1);
        let exponent = (refresher.consecutive_failures - 1).min(16);
        let backoff = Duration::from_secs(1u64 << exponent).min(self.window.poll_interval);
        let degraded = match (current.fetched_at, current.snapshot.origin) {
            (None, Origin::Durable) => Degraded::DurableSnapshot { kind },
            (None, _) => Degraded::NeverFetched { kind },
            (Some(_), _) if kind == "timeout" => Degraded::Timeout,
            (Some(_), _) => Degraded::FetchFailed { kind },
        };
        CacheState {
            snapshot: current.snapshot.clone(),
            fetched_at: current.fetched_at,
            next_refresh_at: end + delta(backoff),
            degraded: Some(degraded),
        }
    }
}

fn log_accepted(old: &Snapshot, new: &Snapshot) {
    let changed: Vec<&str> = new
        .flags()
        .iter()
        .filter(|f| old.flag(&f.name).map(|o| o.value) != Some(f.value))
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

fn never_fetched_kind(degraded: &Degraded) -> Option<&'static str> {
    match degraded {
        Degraded::NeverFetched { kind } => Some(kind),
        _ => None,
    }
}

fn delta(d: Duration) -> TimeDelta {
    TimeDelta::from_std(d).unwrap_or(TimeDelta::MAX)
}

/// One read of the cache: a consistent picture of one snapshot at one moment.
#[derive(Debug, Clone)]
pub struct FlagView {
    state: Arc<CacheState>,
    now_ms: i64,
    window: Window,
}

impl FlagView {
    /// A flag's value and consistency, or `None` for a flag neither declared nor configured.
    pub fn status(&self, name: &str) -> Option<FlagStatus> {
        let flag = self.state.snapshot.flag(name)?;
        let degraded = self.state.degraded.is_some();
        Some(FlagStatus {
            value: flag.value,
            consistent: is_consistent(flag.consistent_at, flag.forced, self.now_ms, degraded),
            consistent_at: flag.consistent_at,
            forced: flag.forced,
        })
    }

    /// A flag's value; an unknown flag is disabled.
    pub fn is_enabled(&self, name: &str) -> bool {
        self.state.snapshot.flag(name).is_some_and(|f| f.value)
    }

    /// The public flags with their status, sorted by name.
    pub fn public_flags(&self) -> impl Iterator<Item = (&str, FlagStatus)> + '_ {
        self.state
            .snapshot
            .flags()
            .iter()
            .filter(|f| f.visibility == Visibility::Public)
            .filter_map(|f| self.status(&f.name).map(|s| (f.name.as_str(), s)))
    }

    /// True only when every public flag is consistent (and so the instance is not degraded).
    pub fn is_backend_consistent(&self) -> bool {
        self.state.degraded.is_none() && self.public_flags().all(|(_, s)| s.consistent)
    }

    /// Why the instance cannot vouch for its configuration, if it cannot.
    pub fn degraded(&self) -> Option<&Degraded> {
        self.state.degraded.as_ref()
    }

    /// The snapshot served.
    pub fn snapshot(&self) -> &Snapshot {
        &self.state.snapshot
    }

    /// The cache state behind this view.
    pub fn state(&self) -> &CacheState {
        &self.state
    }

    /// The moment of the read (this instance's clock).
    pub fn now(&self) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(self.now_ms).unwrap_or_default()
    }

    /// P and ε.
    pub fn window(&self) -> Window {
        self.window
    }
}
