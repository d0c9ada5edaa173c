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
//! With a durable snapshot store ([`FlagCache::build`], [`crate::durable`]): every new version
//! accepted from the source is written there (conditionally, newest stamp wins) *after* the
//! refresh lock is released and under its own short timeout ([`DURABLE_SAVE_TIMEOUT`]), so
//! readers waiting on a refresh never wait for the write; an instance that has neither fetched
//! nor loaded anything yet loads it when its source fails, before falling back to the bundled
//! defaults (rule 5); it stays degraded until its own source answers.
//!
//! How long a request can wait, with the defaults (fetch timeout F = 3 s, S = 0.5 s):
//! - a request on a fresh cache: never (no I/O, no lock);
//! - a request that finds the cache due, or waits on another's refresh: at most F for the fetch;
//!   at a cold start whose fetch failed, plus at most F for the durable snapshot's read;
//! - the request that made the refresh and received a new version: plus at most S for the
//!   durable snapshot's write, which nobody else waits for.
//!
//! Reading on a fresh cache is a clock read, one atomic load (the state's generation, checked
//! against a per-thread pinned copy of the state) and, by [`FlagHandle`], an index: no I/O, no
//! parsing, no lock, no reference count touched.

use crate::catalog::{FlagCatalog, FlagHandle, Visibility};
use crate::clock::Clock;
use crate::consistency::{self, Backend, FlagStatus, Window, CATCH_UP_INTERVAL};
use crate::decision::{CatchUp, ClosedReason, Decision, Verdict};
use crate::document;
use crate::durable::{SaveOutcome, SnapshotStore, StoredConfig};
use crate::journey::{self, TokenFlag};
use crate::overrides::Overrides;
use crate::settings::Settings;
use crate::snapshot::{Origin, Snapshot};
use crate::source::{ConfigSource, FailureKind};
use arc_swap::ArcSwap;
use chrono::{DateTime, TimeDelta, Utc};
use std::cell::RefCell;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The timeout of one durable snapshot write (made after the refresh lock is released).
pub const DURABLE_SAVE_TIMEOUT: Duration = Duration::from_millis(500);

/// Why an instance cannot vouch for its configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Degraded {
    /// Nothing was ever fetched: serving bundled defaults.
    NeverFetched {
        /// The kind of the last failure.
        kind: FailureKind,
    },
    /// The last refresh failed: serving last-known-good.
    FetchFailed {
        /// The kind of failure.
        kind: FailureKind,
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
        kind: FailureKind,
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
    /// `next_refresh_at` in Unix milliseconds, the read path's form.
    next_refresh_at_ms: i64,
    /// The earliest the source may be called again (Unix milliseconds): the service's interval
    /// after a successful call, the backoff after a failed one. A catch-up never calls earlier.
    may_poll_at_ms: i64,
}

impl CacheState {
    fn new(
        snapshot: Arc<Snapshot>,
        fetched_at: Option<DateTime<Utc>>,
        next_refresh_at: DateTime<Utc>,
        may_poll_at: DateTime<Utc>,
        degraded: Option<Degraded>,
    ) -> Self {
        Self {
            snapshot,
            fetched_at,
            next_refresh_at,
            degraded,
            next_refresh_at_ms: next_refresh_at.timestamp_millis(),
            may_poll_at_ms: may_poll_at.timestamp_millis(),
        }
    }

    /// The earliest the source may be called again (the service's interval or the backoff).
    pub fn may_poll_at(&self) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(self.may_poll_at_ms).unwrap_or_default()
    }

    #[inline]
    fn fresh_at(&self, now_ms: i64) -> bool {
        now_ms < self.next_refresh_at_ms
    }

    #[inline]
    fn status(&self, handle: FlagHandle, now_ms: i64) -> Option<FlagStatus> {
        let flag = self.snapshot.flag_by_handle(handle)?;
        Some(flag.status(now_ms, self.degraded.is_some()))
    }
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
    /// Unique for the life of the process: keys the per-thread pinned state.
    id: u64,
    /// Bumped after every store of `state`: a pinned copy of an older generation is reloaded.
    generation: AtomicU64,
    state: ArcSwap<CacheState>,
    refresher: tokio::sync::Mutex<Refresher>,
    clock: Arc<dyn Clock>,
    window: Window,
    fetch_timeout: Duration,
    catalog: FlagCatalog,
    overrides: Overrides,
    durable: Option<Arc<dyn SnapshotStore>>,
    /// Every call to the source, regular or catch-up.
    polls: AtomicU64,
    /// Calls to the source a journey token asked for (rule 8).
    catch_ups: AtomicU64,
    /// When the last catch-up call started (Unix milliseconds; written under the refresh lock).
    last_catch_up_ms: AtomicI64,
}

/// How many times a cache called its source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PollCounts {
    /// Every call, regular or catch-up.
    pub polls: u64,
    /// Calls a journey token asked for (rule 8): at most one per Q.
    pub catch_ups: u64,
}

impl std::fmt::Debug for FlagCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlagCache")
            .field("state", &self.state.load())
            .field("window", &self.window)
            .finish_non_exhaustive()
    }
}

static CACHE_IDS: AtomicU64 = AtomicU64::new(1);

/// Per-thread pinned copies of caches' states, so a read on a fresh cache touches no shared
/// reference count. Direct-mapped by cache id; a slot holds at most one state, so a thread keeps
/// at most `PINNED_SLOTS` states alive after their caches are gone.
const PINNED_SLOTS: usize = 8;

struct Pinned {
    cache: u64,
    generation: u64,
    state: Arc<CacheState>,
}

thread_local! {
    static PINNED: RefCell<[Option<Pinned>; PINNED_SLOTS]> =
        const { RefCell::new([const { None }; PINNED_SLOTS]) };
}

impl FlagCache {
    /// Builds the cache and fetches once (the prefetch at init, rule 5). If that fetch fails the
    /// cache serves the bundled defaults, degraded.
    pub async fn new(source: Box<dyn ConfigSource>, options: CacheOptions) -> Self {
        Self::build(source, options, None).await
    }

    /// Like [`FlagCache::new`], with an optional durable snapshot store: new versions are
    /// written to it, and when the source cannot be reached at cold start the stored snapshot is
    /// served (degraded) before the bundled defaults.
    pub async fn build(
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
        let window = settings.window();
        let initial = CacheState::new(
            Arc::new(Snapshot::defaults(&catalog, &overrides, window)),
            None,
            now,
            now,
            Some(Degraded::NeverFetched {
                kind: FailureKind::NotYet,
            }),
        );
        tracing::info!(
            source = %source.describe(),
            durable = durable.as_ref().map(|d| d.describe()).unwrap_or_else(|| "none".into()),
            poll_interval_s = settings.poll_interval.as_secs(),
            "flag cache prefetch"
        );
        let cache = Self {
            id: CACHE_IDS.fetch_add(1, Ordering::Relaxed),
            generation: AtomicU64::new(0),
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
            polls: AtomicU64::new(0),
            catch_ups: AtomicU64::new(0),
            last_catch_up_ms: AtomicI64::new(i64::MIN),
        };
        cache.refresh_if_due().await;
        cache
    }

    /// The handle of a declared flag (resolve once, at init), or `None` for an undeclared name.
    pub fn handle(&self, name: &str) -> Option<FlagHandle> {
        self.catalog.handle(name)
    }

    /// The declared flags.
    pub fn catalog(&self) -> &FlagCatalog {
        &self.catalog
    }

    /// One flag's value and consistency, refreshing first when the configuration is due
    /// (rule 1); `None` for a handle of another catalog. The hot path of a decision.
    pub async fn flag(&self, handle: FlagHandle) -> Option<FlagStatus> {
        let now_ms = self.clock.now_millis();
        if let Some(status) =
            self.pinned(|state| state.fresh_at(now_ms).then(|| state.status(handle, now_ms)))
        {
            return status;
        }
        // Boxed, so that the fresh path's future stays small.
        let view = Box::pin(self.refresh_if_due()).await;
        view.flag(handle)
    }

    /// Reads the flags, refreshing first when the configuration is due (rule 1): one consistent
    /// picture for several decisions.
    pub async fn read(&self) -> FlagView {
        let now_ms = self.clock.now_millis();
        if let Some(state) = self.pinned(|state| state.fresh_at(now_ms).then(|| state.clone())) {
            return self.view(state, now_ms);
        }
        Box::pin(self.refresh_if_due()).await
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

    /// Runs `f` on this thread's pinned copy of the current state, reloading it when a newer
    /// state was stored since (the generation moved).
    #[inline]
    fn pinned<R>(&self, f: impl FnOnce(&Arc<CacheState>) -> R) -> R {
        // Stored state first, generation second (release): a reader that sees a generation
        // finds that state or a newer one.
        let generation = self.generation.load(Ordering::Acquire);
        let mut f = Some(f);
        let pinned = PINNED.try_with(|slots| {
            let mut slots = slots.borrow_mut();
            let slot = &mut slots[self.id as usize % PINNED_SLOTS];
            let f = f.take().expect("called once");
            match slot {
                Some(p) if p.cache == self.id && p.generation == generation => f(&p.state),
                _ => {
                    let state = self.state.load_full();
                    let result = f(&state);
                    *slot = Some(Pinned {
                        cache: self.id,
                        generation,
                        state,
                    });
                    result
                }
            }
        });
        match pinned {
            Ok(result) => result,
            // The thread is exiting and its locals are gone: read the shared state.
            Err(_) => (f.take().expect("not called"))(&self.state.load_full()),
        }
    }

    fn store(&self, state: Arc<CacheState>) {
        self.state.store(state);
        self.generation.fetch_add(1, Ordering::Release);
    }

    fn view(&self, state: Arc<CacheState>, now_ms: i64) -> FlagView {
        FlagView {
            state,
            now_ms,
            window: self.window,
        }
    }

    /// How many times this cache called its source, and how many of those a token asked for.
    pub fn poll_counts(&self) -> PollCounts {
        PollCounts {
            polls: self.polls.load(Ordering::Relaxed),
            catch_ups: self.catch_ups.load(Ordering::Relaxed),
        }
    }

    /// Decides one request on a gated flag (rules 1, 4, 8 and 9), with the journey token the
    /// request carried, if any (the `Lockstep-Journey` header's value, unchecked):
    ///
    /// 1. read, refreshing first when due (rule 1);
    /// 2. if the token's stamp for this flag is newer than this instance's, the instance is
    ///    behind: catch up (one poll, if the session allows a call now and no catch-up was made
    ///    in the last Q), then read again;
    /// 3. the flag on here: open. Off here, but the instance is still behind a token that
    ///    carries it on: closed, `Retry-After` = the wait until this instance may poll. Off
    ///    with a drain time, and the token verified, issued under the enabled value and no
    ///    longer than the drain before the switch-off, before `T + Δ + P + ε + drain`: open
    ///    (draining). Otherwise closed, `Retry-After` = P.
    ///
    /// A missing or malformed token is no token; a token never changes a value, only asks for
    /// a poll, and only a verified one opens a drain. A forced flag ignores tokens.
    pub async fn decide(&self, handle: FlagHandle, token: Option<&str>) -> Decision {
        let mut view = self.read().await;
        let epsilon_ms = i64::try_from(self.window.epsilon.as_millis()).unwrap_or(i64::MAX);
        // Read once (the signature is checked only if a drain needs it); the flag's name does
        // not change with a catch-up, so neither does its claim.
        let received = token.and_then(|t| {
            journey::read(t, view.now_ms.saturating_add(epsilon_ms)).map(|claims| (t, claims))
        });
        let claim = received.as_ref().and_then(|(_, claims)| {
            let flag = view.snapshot().flag_by_handle(handle)?;
            claims.flags.get(&flag.name).copied()
        });
        let behind = |view: &FlagView, claim: TokenFlag| -> Option<i64> {
            let flag = view.snapshot().flag_by_handle(handle)?;
            let token_stamp = claim.stamp_ms?;
            (!flag.forced && flag.stamp_millis().is_none_or(|s| s < token_stamp))
                .then_some(token_stamp)
        };
        let mut catch_up = CatchUp::NotNeeded;
        if let Some(token_stamp) = claim.and_then(|claim| behind(&view, claim)) {
            let (caught, outcome) = self.catch_up(handle, token_stamp).await;
            view = caught;
            catch_up = outcome;
        }
        let Some(flag) = view.snapshot().flag_by_handle(handle) else {
            return Decision::closed(
                view,
                ClosedReason::Disabled,
                self.window.poll_interval,
                catch_up,
            );
        };
        if flag.value {
            return Decision {
                view,
                verdict: Verdict::Open,
                catch_up,
            };
        }
        if let Some(claim) = claim {
            if claim.value && behind(&view, claim).is_some() {
                let wait = self.next_catch_up_at(view.state()) - view.now_ms;
                let wait = Duration::from_millis(u64::try_from(wait).unwrap_or(0));
                return Decision::closed(view, ClosedReason::Behind, wait, catch_up);
            }
        }
        if let Some(ends) = flag.drain_ends_at {
            // In flight at the switch-off: issued under the enabled value (its stamp older than
            // the switch-off's), and no longer than the drain before the switch-off (a journey
            // older than that has had its drain's worth of time already).
            let drain_ms = flag
                .drain
                .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
            let issued_under_enabled =
                claim
                    .zip(received.as_ref())
                    .is_some_and(|(claim, (token, claims))| {
                        claim.value
                            && claim
                                .stamp_ms
                                .zip(flag.stamp_millis())
                                .is_some_and(|(at, ours)| {
                                    at < ours
                                        && claims.issued_at_ms >= ours.saturating_sub(drain_ms)
                                })
                            && journey::verify(token, view.snapshot().journey_keys())
                    });
            if issued_under_enabled {
                if view.now_ms < ends.timestamp_millis() {
                    return Decision {
                        view,
                        verdict: Verdict::Draining { until: ends },
                        catch_up,
                    };
                }
                return Decision::closed(
                    view,
                    ClosedReason::DrainEnded,
                    self.window.poll_interval,
                    catch_up,
                );
            }
        }
        Decision::closed(
            view,
            ClosedReason::Disabled,
            self.window.poll_interval,
            catch_up,
        )
    }

    /// The earliest moment a catch-up may call the source: the session's interval (or the
    /// backoff) since the last call, and Q since the last catch-up.
    fn next_catch_up_at(&self, state: &CacheState) -> i64 {
        let q_ms = i64::try_from(CATCH_UP_INTERVAL.as_millis()).unwrap_or(i64::MAX);
        state.may_poll_at_ms.max(
            self.last_catch_up_ms
                .load(Ordering::Acquire)
                .saturating_add(q_ms),
        )
    }

    /// Polls once, now, for a request whose token shows this instance behind on `handle`
    /// (older stamp than `token_stamp_ms`), unless another request already caught up, the
    /// session does not allow a call yet, or a catch-up was made less than Q ago.
    async fn catch_up(&self, handle: FlagHandle, token_stamp_ms: i64) -> (FlagView, CatchUp) {
        let (view, to_save, outcome) = {
            let mut refresher = self.refresher.lock().await;
            let current = self.state.load_full();
            let now = self.clock.now();
            let now_ms = now.timestamp_millis();
            let still_behind = current
                .snapshot
                .flag_by_handle(handle)
                .is_some_and(|f| f.stamp_millis().is_none_or(|s| s < token_stamp_ms));
            if !still_behind {
                tracing::debug!(
                    path = "catch_up_shared",
                    "caught up by a concurrent request"
                );
                (self.view(current, now_ms), None, CatchUp::Shared)
            } else if now_ms < self.next_catch_up_at(&current) {
                let at = self.next_catch_up_at(&current);
                tracing::info!(
                    wait_ms = at - now_ms,
                    path = "catch_up_not_yet",
                    "journey token newer than this instance; the session allows no call yet"
                );
                (self.view(current, now_ms), None, CatchUp::NotYet)
            } else {
                self.last_catch_up_ms.store(now_ms, Ordering::Release);
                self.catch_ups.fetch_add(1, Ordering::Relaxed);
                let (view, to_save) = self.poll_locked(&mut refresher, current, now).await;
                let caught_up = view
                    .snapshot()
                    .flag_by_handle(handle)
                    .is_some_and(|f| f.stamp_millis().is_some_and(|s| s >= token_stamp_ms));
                tracing::info!(
                    version = %view.snapshot().version,
                    caught_up,
                    path = "catch_up_polled",
                    "journey token newer than this instance; polled before deciding"
                );
                (view, to_save, CatchUp::Polled { caught_up })
            }
        };
        if let Some(config) = to_save {
            self.save_durable(&config).await;
        }
        (view, outcome)
    }

    async fn refresh_if_due(&self) -> FlagView {
        let (view, to_save) = self.refresh_locked().await;
        // The lock is released: nobody waits for this write but the request that refreshed.
        if let Some(config) = to_save {
            self.save_durable(&config).await;
        }
        view
    }

    /// The refresh's critical section: fetch, resolve, store. Returns a newly accepted version
    /// for the durable store, written by the caller after the lock is released.
    async fn refresh_locked(&self) -> (FlagView, Option<StoredConfig>) {
        let mut refresher = self.refresher.lock().await;
        // Another reader may have refreshed (or failed and backed off) while this one waited.
        let current = self.state.load_full();
        let start = self.clock.now();
        if start < current.next_refresh_at {
            tracing::debug!(path = "shared_refresh", "served by a concurrent refresh");
            return (self.view(current, start.timestamp_millis()), None);
        }
        self.poll_locked(&mut refresher, current, start).await
    }

    /// One call to the source and what follows (resolve, store), under the refresh lock.
    async fn poll_locked(
        &self,
        refresher: &mut Refresher,
        current: Arc<CacheState>,
        start: DateTime<Utc>,
    ) -> (FlagView, Option<StoredConfig>) {
        self.polls.fetch_add(1, Ordering::Relaxed);
        let result = tokio::time::timeout(self.fetch_timeout, refresher.source.fetch(start)).await;
        let end = self.clock.now();
        let next = match result {
            Ok(Ok(fetched)) => self.on_success(refresher, &current, fetched, start, end),
            Ok(Err(error)) => {
                tracing::warn!(error = %error, kind = %error.kind(), version = %current.snapshot.version, path = "refresh_failed", "refresh failed; keeping last-known-good");
                (
                    self.on_failure(refresher, &current, error.kind(), end),
                    None,
                )
            }
            Err(_elapsed) => {
                tracing::warn!(timeout_ms = self.fetch_timeout.as_millis() as u64, version = %current.snapshot.version, path = "refresh_timeout", "refresh timed out; keeping last-known-good");
                (
                    self.on_failure(refresher, &current, FailureKind::Timeout, end),
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
        self.store(next.clone());
        (self.view(next, end.timestamp_millis()), to_save)
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
        let now = self.clock.now();
        match document::parse(&stored.content).and_then(|doc| {
            document::check_not_future(&doc, now, self.window.epsilon).map(|()| doc)
        }) {
            Ok(doc) => {
                let snapshot = Snapshot::from_document(
                    stored.version,
                    &doc,
                    &self.catalog,
                    &self.overrides,
                    self.window,
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
    async fn save_durable(&self, config: &StoredConfig) {
        let Some(durable) = self.durable.as_ref() else {
            return;
        };
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
            Some(content) => match document::parse(&content.bytes).and_then(|doc| {
                document::check_not_future(&doc, start, self.window.epsilon).map(|()| doc)
            }) {
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
            Some(Degraded::NeverFetched {
                kind: FailureKind::NoContent,
            })
        } else if snapshot.origin == Origin::Durable {
            Some(Degraded::DurableSnapshot {
                kind: FailureKind::NoContent,
            })
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
        // The session asked for Q: even a source that states no interval is not called again
        // sooner (a catch-up is the only call that could come that early).
        let may_poll_at = end + delta(service_interval.max(CATCH_UP_INTERVAL));
        let state = CacheState::new(
            snapshot,
            Some(start),
            (start + delta(self.window.poll_interval)).max(may_poll_at),
            may_poll_at,
            degraded,
        );
        (state, to_save)
    }

    fn on_failure(
        &self,
        refresher: &mut Refresher,
        current: &CacheState,
        kind: FailureKind,
        end: DateTime<Utc>,
    ) -> CacheState {
        refresher.consecutive_failures = refresher.consecutive_failures.saturating_add(1);
        let exponent = (refresher.consecutive_failures - 1).min(16);
        let backoff = Duration::from_secs(1u64 << exponent).min(self.window.poll_interval);
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

fn never_fetched_kind(degraded: &Degraded) -> Option<FailureKind> {
    match degraded {
        Degraded::NeverFetched { kind } => Some(*kind),
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
    /// A declared flag's value and consistency, by handle; `None` for a handle of another
    /// catalog.
    #[inline]
    pub fn flag(&self, handle: FlagHandle) -> Option<FlagStatus> {
        self.state.status(handle, self.now_ms)
    }

    /// Whether a declared flag is enabled; a handle of another catalog is disabled.
    #[inline]
    pub fn enabled(&self, handle: FlagHandle) -> bool {
        self.flag(handle).is_some_and(|f| f.value)
    }

    /// A flag's value and consistency by name (a search), or `None` for a flag neither declared
    /// nor configured.
    pub fn status(&self, name: &str) -> Option<FlagStatus> {
        let flag = self.state.snapshot.flag(name)?;
        Some(flag.status(self.now_ms, self.state.degraded.is_some()))
    }

    /// A flag's value by name; an unknown flag is disabled.
    pub fn is_enabled(&self, name: &str) -> bool {
        self.state.snapshot.flag(name).is_some_and(|f| f.value)
    }

    /// The public flags with their status, sorted by name.
    pub fn public_flags(&self) -> impl Iterator<Item = (&str, FlagStatus)> + '_ {
        let degraded = self.state.degraded.is_some();
        self.state
            .snapshot
            .flags()
            .iter()
            .filter(|f| f.visibility == Visibility::Public)
            .map(move |f| (f.name.as_str(), f.status(self.now_ms, degraded)))
    }

    /// The backend-level verdict over the public flags (`isBackendConsistent` and its
    /// `consistentAt`): [`consistency::backend`].
    pub fn backend(&self) -> Backend {
        consistency::backend(
            self.public_flags().map(|(_, status)| status),
            self.state.degraded.is_some(),
        )
    }

    /// True only when every public flag is consistent (and so the instance is not degraded).
    pub fn is_backend_consistent(&self) -> bool {
        self.backend().consistent
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
