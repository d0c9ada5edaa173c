//! The flag cache: refresh on access when due, single flight, last-known-good, degraded state;
//! the catch-up poll a journey token asks for; and the reads decisions are made from.
//!
//! Lambda freezes an execution environment between invocations, so nothing here runs in the
//! background. Every read checks, with the injected clock, whether the configuration it holds is
//! due for a refresh, and if so refreshes *before* answering (design rule 1). Concurrent readers
//! share one refresh: the first takes the refresh lock, the others wait for it and then read what
//! it stored.
//!
//! This module orchestrates; each responsibility has its own file:
//! - [`view`]: the read model ([`FlagView`], [`CacheState`], [`Degraded`]);
//! - `pinned`: the per-thread pinned read path a fresh read takes;
//! - `refresh`: one call to the source and the state that follows (when the next refresh is
//!   due, backoff, what a failure or rejected content leaves);
//! - `persist`: the durable last-known-good snapshot, loaded and saved;
//! - [`token_policy`]: rule 8 as pure functions (behind a token? may a journey open? when may
//!   the instance catch up?), and [`decision`]: the gate's decision, a pure function over a read.
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

pub mod decision;
mod persist;
mod pinned;
mod refresh;
pub mod token_policy;
pub mod view;

use crate::cache::decision::Decision;
use crate::cache::pinned::StateCell;
use crate::cache::refresh::{Refresher, Resolve};
use crate::cache::token_policy::{Answer, Behind, CatchUp, Scope, Token, TokenRead};
use crate::catalog::{FlagCatalog, FlagHandle};
use crate::clock::Clock;
use crate::consistency::{FlagStatus, Window};
use crate::durable::{SnapshotStore, StoredConfig};
use crate::metrics::{Count, Emf, Metrics, Millis};
use crate::overrides::Overrides;
use crate::settings::Settings;
use crate::snapshot::{Origin, Snapshot};
use crate::source::{ConfigSource, FailureKind};
use chrono::{DateTime, Utc};
pub use persist::DURABLE_SAVE_TIMEOUT;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
pub use view::{CacheState, Degraded, FlagView};

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

/// A freeze-safe, single-flight flag cache.
pub struct FlagCache {
    state: StateCell,
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
    /// What this instance counted since its last invocation ended (design rule 11).
    metrics: Metrics,
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
            .field("state", &self.state)
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
            state: StateCell::new(initial),
            refresher: tokio::sync::Mutex::new(Refresher::new(source)),
            clock,
            window,
            fetch_timeout: settings.fetch_timeout,
            catalog,
            overrides,
            durable,
            polls: AtomicU64::new(0),
            catch_ups: AtomicU64::new(0),
            last_catch_up_ms: AtomicI64::new(i64::MIN),
            metrics: Metrics::new(),
        };
        let view = cache.refresh_if_due().await;
        cache.metrics.count(Count::ColdStart);
        if view.snapshot().origin != Origin::Source {
            cache.metrics.count(Count::ColdStartWithoutAppConfig);
        }
        cache
    }

    /// What this instance counted since its last invocation ended: the cache counts its
    /// refreshes, catch-ups and cold start; the gate, the HTTP layer and the storage code add
    /// theirs.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Ends one invocation: counts whether a degraded instance served it and records the age of
    /// the configuration it was served from, then takes everything counted since the last
    /// invocation ended and renders it as one EMF document (`None` when nothing was counted).
    /// `route` is the API Gateway route key of an HTTP invocation.
    pub fn end_invocation(&self, emf: &Emf, route: Option<&str>) -> Option<String> {
        let now = self.clock.now();
        let (degraded, fetched_at) = self.state.pinned(|state| {
            (
                state.degraded.as_ref().map(|d| d.metric()),
                state.fetched_at,
            )
        });
        if let Some(degraded) = degraded {
            self.metrics.count(Count::Degraded);
            self.metrics.count(degraded);
        }
        let mut taken = self.metrics.take();
        if let Some(fetched_at) = fetched_at {
            let age = (now - fetched_at).num_milliseconds().max(0);
            taken = taken.with_value(Millis::ConfigAge, age as f64);
        }
        emf.render(&taken, route, now.timestamp_millis())
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
        if let Some(status) = self.state.pinned(|state| {
            state
                .fresh_at(now_ms)
                .then(|| state.fixed_status(handle, now_ms))
                .flatten()
        }) {
            return status;
        }
        // Due for a refresh, or a flag whose rules read the clock (evaluated per read). Boxed,
        // so that the fresh path's future stays small.
        let view = Box::pin(self.read()).await;
        view.flag(handle)
    }

    /// Reads the flags, refreshing first when the configuration is due (rule 1): one consistent
    /// picture for several decisions.
    pub async fn read(&self) -> FlagView {
        let now_ms = self.clock.now_millis();
        if let Some(state) = self
            .state
            .pinned(|state| state.fresh_at(now_ms).then(|| state.clone()))
        {
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

    fn view(&self, state: Arc<CacheState>, now_ms: i64) -> FlagView {
        FlagView::new(state, now_ms, self.window)
    }

    /// How many times this cache called its source, and how many of those a token asked for.
    pub fn poll_counts(&self) -> PollCounts {
        PollCounts {
            polls: self.polls.load(Ordering::Relaxed),
            catch_ups: self.catch_ups.load(Ordering::Relaxed),
        }
    }

    /// Decides one request on a gated flag (rules 1, 4, 8 and 9), with the journey token the
    /// request carried, if any (the `Lockstep-Journey` header's value, unchecked): a read with
    /// any catch-up the token asks for ([`FlagCache::read_with_token`]), then
    /// [`decision::decide`].
    pub async fn decide(&self, handle: FlagHandle, token: Option<&str>) -> Decision {
        self.decide_for(handle, token, crate::targeted::anonymous())
            .await
    }

    /// [`FlagCache::decide`] for one caller: a flag defined by rules (design rule 10) is
    /// evaluated with `context`, which must be the verified identity (the JWT's `sub` as
    /// `targetingKey`, its claims as attributes), never a context the client chose.
    pub async fn decide_for(
        &self,
        handle: FlagHandle,
        token: Option<&str>,
        context: &crate::targeted::Context,
    ) -> Decision {
        decision::decide(
            self.read_with_token(token, Scope::Flag(handle), context)
                .await,
            handle,
            context,
        )
    }

    /// Reads for a client that answers with values (OFREP), with the journey token it sent, if
    /// any, on the public flags (or only the one named): a read with any catch-up the token asks
    /// for, then [`token_policy::answer`]: answer, or retry later. `context` is the request's
    /// (a token bound to another caller is no token).
    pub async fn answer_read(
        &self,
        token: Option<&str>,
        only: Option<&str>,
        context: &crate::targeted::Context,
    ) -> Answer {
        token_policy::answer(
            self.read_with_token(token, Scope::Public(only), context)
                .await,
        )
    }

    /// Reads the flags for a request carrying `token` (unchecked), refreshing first when due
    /// (rule 1). When the token shows this instance behind on a flag of `scope`
    /// ([`token_policy::behind`]), it catches up first: one poll, if the session allows a call
    /// now and no catch-up was made in the last Q ([`token_policy::next_catch_up_at`]), then
    /// reads again (rule 8). A token bound to another caller than `context` is no token.
    pub async fn read_with_token<'a>(
        &self,
        token: Option<&'a str>,
        scope: Scope<'a>,
        context: &crate::targeted::Context,
    ) -> TokenRead<'a> {
        let view = self.read().await;
        let token = Token::read(token, &view, context);
        let behind = token
            .as_ref()
            .and_then(|token| token_policy::behind(&view, token, scope));
        let (view, catch_up) = match &behind {
            Some(behind) => self.catch_up(behind).await,
            None => (view, CatchUp::NotNeeded),
        };
        TokenRead {
            next_catch_up_at_ms: self.next_catch_up_at(view.state()),
            view,
            token,
            scope,
            behind,
            catch_up,
        }
    }

    /// [`token_policy::next_catch_up_at`] for this instance's last catch-up.
    fn next_catch_up_at(&self, state: &CacheState) -> i64 {
        token_policy::next_catch_up_at(
            state.may_poll_at_ms(),
            self.last_catch_up_ms.load(Ordering::Acquire),
        )
    }

    /// Polls once, now, for a request whose token shows this instance `behind`, unless another
    /// request already caught up, the session does not allow a call yet, or a catch-up was made
    /// less than Q ago.
    async fn catch_up(&self, behind: &Behind) -> (FlagView, CatchUp) {
        let (view, to_save, outcome) = {
            let mut refresher = self.refresher.lock().await;
            let current = self.state.load_full();
            let now = self.clock.now();
            let now_ms = now.timestamp_millis();
            let next_at = self.next_catch_up_at(&current);
            let view = self.view(current.clone(), now_ms);
            if !token_policy::still_behind(&view, behind) {
                tracing::debug!(
                    path = "catch_up_shared",
                    "caught up by a concurrent request"
                );
                self.metrics.count(Count::CatchUpShared);
                (view, None, CatchUp::Shared)
            } else if now_ms < next_at {
                tracing::info!(
                    wait_ms = next_at - now_ms,
                    path = "catch_up_not_yet",
                    "journey token newer than this instance; the session allows no call yet"
                );
                (view, None, CatchUp::NotYet)
            } else {
                self.last_catch_up_ms.store(now_ms, Ordering::Release);
                self.catch_ups.fetch_add(1, Ordering::Relaxed);
                self.metrics.count(Count::CatchUpPolled);
                let (view, to_save) = self.poll_locked(&mut refresher, current, now).await;
                let caught_up = !token_policy::still_behind(&view, behind);
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

    fn resolve(&self) -> Resolve<'_> {
        Resolve {
            catalog: &self.catalog,
            overrides: &self.overrides,
            window: self.window,
            keep_for_durable: self.durable.is_some(),
            metrics: &self.metrics,
        }
    }

    /// One call to the source and what follows (resolve, store), under the refresh lock.
    async fn poll_locked(
        &self,
        refresher: &mut Refresher,
        current: Arc<CacheState>,
        start: DateTime<Utc>,
    ) -> (FlagView, Option<StoredConfig>) {
        self.polls.fetch_add(1, Ordering::Relaxed);
        let now = || self.clock.now();
        let (mut next, to_save, end) = refresher
            .poll(&current, start, self.fetch_timeout, now, &self.resolve())
            .await;
        // Rule 5: nothing of its own yet and the source failed: the durable snapshot, if any.
        if next.snapshot.origin == Origin::Defaults {
            if let Some(kind) = next.degraded.as_ref().and_then(never_fetched_kind) {
                if let Some(durable) = self.durable.as_deref() {
                    if let Some(loaded) =
                        persist::load(durable, self.fetch_timeout, now, &self.resolve()).await
                    {
                        next.snapshot = Arc::new(loaded);
                        next.degraded = Some(Degraded::DurableSnapshot { kind });
                    }
                }
            }
        }
        let next = Arc::new(next);
        self.state.store(next.clone());
        (self.view(next, end.timestamp_millis()), to_save)
    }

    /// Writes a newly accepted version to the durable store, if one is configured.
    async fn save_durable(&self, config: &StoredConfig) {
        if let Some(durable) = self.durable.as_deref() {
            persist::save(durable, config).await;
        }
    }
}

fn never_fetched_kind(degraded: &Degraded) -> Option<FailureKind> {
    match degraded {
        Degraded::NeverFetched { kind } => Some(*kind),
        _ => None,
    }
}
