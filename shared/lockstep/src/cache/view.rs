//! The read model: what one read of the cache sees ([`FlagView`]), the state behind it
//! ([`CacheState`]: one snapshot, its health, its timing) and why an instance may not vouch for
//! it ([`Degraded`]). Nothing here does I/O or reads a clock: the cache stores states and hands
//! out views; decisions are pure functions over them ([`super::decision`],
//! [`super::token_policy`]).

use crate::catalog::{FlagHandle, Visibility};
use crate::consistency::{self, Backend, FlagStatus, Window};
use crate::metrics::Count;
use crate::snapshot::Snapshot;
use crate::source::FailureKind;
use crate::targeted::{self, Context, Evaluation};
use chrono::{DateTime, Utc};
use std::sync::Arc;

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
    /// Its count in the metrics ([`crate::metrics::catalogue`]).
    pub fn metric(&self) -> Count {
        match self {
            Degraded::NeverFetched { .. } => Count::DegradedNeverFetched,
            Degraded::FetchFailed { .. } => Count::DegradedFetchFailed,
            Degraded::Timeout => Count::DegradedTimeout,
            Degraded::InvalidContent { .. } => Count::DegradedInvalidContent,
            Degraded::PollIntervalTooLong { .. } => Count::DegradedPollIntervalTooLong,
            Degraded::DurableSnapshot { .. } => Count::DegradedDurableSnapshot,
        }
    }

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
    pub(crate) fn new(
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

    /// [`CacheState::may_poll_at`] in Unix milliseconds.
    #[inline]
    pub(crate) fn may_poll_at_ms(&self) -> i64 {
        self.may_poll_at_ms
    }

    #[inline]
    pub(crate) fn fresh_at(&self, now_ms: i64) -> bool {
        now_ms < self.next_refresh_at_ms
    }

    #[inline]
    pub(crate) fn status(&self, handle: FlagHandle, now_ms: i64) -> Option<FlagStatus> {
        let flag = self.snapshot.flag_by_handle(handle)?;
        Some(flag.status(now_ms, self.degraded.is_some()))
    }

    /// [`CacheState::status`] without an evaluation: `None` for a flag whose rules read the
    /// clock ([`crate::snapshot::ResolvedFlag::fixed_status`]), `Some(None)` for a handle of another catalog.
    #[inline]
    pub(crate) fn fixed_status(
        &self,
        handle: FlagHandle,
        now_ms: i64,
    ) -> Option<Option<FlagStatus>> {
        match self.snapshot.flag_by_handle(handle) {
            None => Some(None),
            Some(flag) => flag.fixed_status(now_ms, self.degraded.is_some()).map(Some),
        }
    }
}

/// One read of the cache: a consistent picture of one snapshot at one moment.
#[derive(Debug, Clone)]
pub struct FlagView {
    state: Arc<CacheState>,
    now_ms: i64,
    window: Window,
}

impl FlagView {
    /// The read of `state` at `now_ms`.
    #[inline]
    pub(crate) fn new(state: Arc<CacheState>, now_ms: i64, window: Window) -> Self {
        Self {
            state,
            now_ms,
            window,
        }
    }

    /// The moment of the read, in Unix milliseconds.
    #[inline]
    pub(crate) fn now_ms(&self) -> i64 {
        self.now_ms
    }

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

    /// A flag's value by name (for an anonymous caller); an unknown flag is disabled.
    pub fn is_enabled(&self, name: &str) -> bool {
        self.status(name).is_some_and(|f| f.value)
    }

    /// The public flags with their status, sorted by name (for an anonymous caller: flags
    /// defined by rules are evaluated with the empty context).
    pub fn public_flags(&self) -> impl Iterator<Item = (&str, FlagStatus)> + '_ {
        self.public_flags_for(targeted::anonymous())
    }

    /// The public flags with their status for the caller `context` (design rule 10), sorted by
    /// name.
    pub fn public_flags_for<'a>(
        &'a self,
        context: &'a Context,
    ) -> impl Iterator<Item = (&'a str, FlagStatus)> + 'a {
        let degraded = self.state.degraded.is_some();
        self.state
            .snapshot
            .flags()
            .iter()
            .filter(|f| f.visibility == Visibility::Public)
            .map(move |f| {
                (
                    f.name.as_str(),
                    f.status_for(context, self.now_ms, degraded),
                )
            })
    }

    /// The evaluation of a flag's rules for the caller `context` at this read; `None` for a
    /// flag that is unknown, plain or forced (one value for everyone).
    pub fn evaluate(&self, name: &str, context: &Context) -> Option<Evaluation<'_>> {
        self.state
            .snapshot
            .flag(name)?
            .evaluate(context, self.now_ms)
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
