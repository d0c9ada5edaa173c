//! One flag of a configuration version, resolved for this instance ([`crate::snapshot`] builds
//! them once per version): its value, stamp and the consistency times they give, its rules for
//! a flag defined by them, and its previous definitions for per-user consistency
//! ([`crate::history`]); its status for one read, anonymous or for one caller.

use crate::catalog::Visibility;
use crate::consistency::{self, FlagStatus, Stamp};
use crate::history::History;
use crate::targeted::{anonymous, Context, Evaluation};
use chrono::{DateTime, Utc};
use lockstep_targeting::Definition;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

/// One resolved flag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedFlag {
    /// Its key.
    pub name: String,
    /// The value this instance serves.
    pub value: bool,
    /// The stamp of the deployment that introduced the value, if known.
    pub stamp: Option<Stamp>,
    /// Whether a `FORCE_` variable set the value.
    pub forced: bool,
    /// Whether `/config` may expose it (undeclared flags are internal).
    pub visibility: Visibility,
    /// The drain time of the deployment that switched it off (rule 9), if it had one.
    pub drain: Option<Duration>,
    /// `T + Δ + P + ε` for this instance's window, computed once per version.
    pub consistent_at: Option<DateTime<Utc>>,
    /// `T + Δ + Q + ε` (rule 8), computed once per version.
    pub journey_opens_at: Option<DateTime<Utc>>,
    /// `T + Δ + P + ε + drain` (rule 9), for an unforced flag with a drain time.
    pub drain_ends_at: Option<DateTime<Utc>>,
    /// Its rules, for a flag defined by them (design rule 10): the value then depends on the
    /// caller ([`crate::targeted`]); `value` is whether it may serve anyone `true`.
    pub definition: Option<Arc<Definition>>,
    /// When this instance saw the flag's stamp go backwards (a rollback happened no later than
    /// that: design rule 7, [`crate::rollback`]); `consistent_at` and `journey_opens_at` are then
    /// no earlier than this moment + P + ε.
    pub rolled_back_at: Option<DateTime<Utc>>,
    /// Its previous definitions that some instance may still hold, with their stamps: a
    /// caller whose value they did not change is consistent earlier (design rule 10, per-user
    /// consistency, [`crate::history`]). None for a flag that keeps none.
    pub history: Option<Arc<History>>,
    /// `consistent_at` in Unix milliseconds, the read path's form.
    consistent_at_ms: Option<i64>,
    /// The value [`ResolvedFlag::status`] serves, fixed per version (an anonymous caller's).
    fixed_value: bool,
    /// The anonymous caller's `consistentAt` (and in milliseconds) and `journeyOpensAt`, fixed
    /// per version with the value: earlier than the flag's when its history says so.
    fixed_times: (Option<DateTime<Utc>>, Option<i64>, Option<DateTime<Utc>>),
    /// Whether its rules (or a previous definition's) read the clock, so that its anonymous
    /// status is evaluated per read.
    reads_clock: bool,
}

impl ResolvedFlag {
    pub(crate) fn new(
        name: &str,
        value: bool,
        stamp: Option<Stamp>,
        drain: Option<Duration>,
    ) -> Self {
        Self {
            name: name.to_owned(),
            value,
            stamp,
            forced: false,
            visibility: Visibility::Internal,
            drain,
            consistent_at: None,
            journey_opens_at: None,
            drain_ends_at: None,
            definition: None,
            rolled_back_at: None,
            history: None,
            consistent_at_ms: None,
            fixed_value: value,
            fixed_times: (None, None, None),
            reads_clock: false,
        }
    }

    /// Its consistency times for this instance's window (rules 3, 8 and 9), then the anonymous
    /// status's fixed part: once per version, after the overrides are applied.
    pub(crate) fn resolve_times(&mut self, window: consistency::Window) {
        self.consistent_at = consistency::consistent_at(self.stamp, self.forced, window);
        self.journey_opens_at = consistency::journey_opens_at(self.stamp, self.forced, window);
        if self.rules().is_some() {
            // A journey token claims a flag defined by rules off (`journey::issue`): it makes
            // no instance catch up on it, so a journey on it opens only when every instance
            // holds it, at consistentAt.
            self.journey_opens_at = self.consistent_at;
        }
        // A drain only ever applies to a flag that is off.
        self.drain_ends_at = (!self.value)
            .then(|| consistency::drain_ends_at(self.stamp, self.forced, self.drain, window))
            .flatten();
        self.consistent_at_ms = self.consistent_at.map(|at| at.timestamp_millis());
        self.fix_anonymous_value();
    }

    /// Its stamp T in Unix milliseconds, as journey tokens carry it; none for an unstamped or
    /// forced flag.
    #[inline]
    pub fn stamp_millis(&self) -> Option<i64> {
        if self.forced {
            return None;
        }
        self.stamp.map(|s| s.at.timestamp_millis())
    }

    /// Its status at `now_ms` on an instance that is (or is not) degraded: the rule's per-read
    /// half, [`consistency::is_consistent`]. A flag defined by rules is evaluated for an
    /// anonymous caller (an empty context): [`ResolvedFlag::status_for`] for one caller.
    #[inline]
    pub fn status(&self, now_ms: i64, degraded: bool) -> FlagStatus {
        match self.fixed_status(now_ms, degraded) {
            Some(status) => status,
            None => self.status_for(anonymous(), now_ms, degraded),
        }
    }

    /// [`ResolvedFlag::status`] from the value fixed when the version was resolved, or `None`
    /// for a flag whose rules read the clock (its anonymous value may change without a
    /// deployment). The plain read's path: no evaluation, no call.
    #[inline]
    pub(crate) fn fixed_status(&self, now_ms: i64, degraded: bool) -> Option<FlagStatus> {
        if self.reads_clock {
            return None;
        }
        let (consistent_at, consistent_at_ms, journey_opens_at) = self.fixed_times;
        Some(FlagStatus {
            value: self.fixed_value,
            consistent: consistency::is_consistent(consistent_at_ms, self.forced, now_ms, degraded),
            consistent_at,
            journey_opens_at,
            forced: self.forced,
            rolled_back_at: self.rolled_back_at,
        })
    }

    /// Fixes the anonymous status's value and times once per version: the flag's value, or,
    /// for a flag defined by rules that do not read the clock, their evaluation for the empty
    /// context (the same at every instant), with the times its history gives that caller.
    fn fix_anonymous_value(&mut self) {
        let history_reads_clock = self.per_user_history().is_some_and(|h| h.reads_clock());
        let reads_clock = history_reads_clock
            || self
                .rules()
                .is_some_and(|definition| definition.reads_clock());
        self.reads_clock = reads_clock;
        self.fixed_times = (
            self.consistent_at,
            self.consistent_at_ms,
            self.journey_opens_at,
        );
        if reads_clock {
            self.fixed_value = false;
            return;
        }
        let status = self.status_for(anonymous(), 0, false);
        self.fixed_value = status.value;
        self.fixed_times = (
            status.consistent_at,
            status.consistent_at.map(|at| at.timestamp_millis()),
            status.journey_opens_at,
        );
    }

    /// Its history, when it applies per caller: not for a forced flag (one value, no
    /// `consistentAt`), nor after a rollback (the rollback's bound holds for everyone).
    fn per_user_history(&self) -> Option<&History> {
        self.history
            .as_deref()
            .filter(|h| !h.is_empty() && !self.forced && self.rolled_back_at.is_none())
    }

    /// Its status with `value` as the value served.
    #[inline]
    pub(crate) fn status_with(&self, value: bool, now_ms: i64, degraded: bool) -> FlagStatus {
        FlagStatus {
            value,
            consistent: consistency::is_consistent(
                self.consistent_at_ms,
                self.forced,
                now_ms,
                degraded,
            ),
            consistent_at: self.consistent_at,
            journey_opens_at: self.journey_opens_at,
            forced: self.forced,
            rolled_back_at: self.rolled_back_at,
        }
    }

    /// Records that this instance learned at `seen_at` that the flag was rolled back, and
    /// moves its `consistentAt` (and `journeyOpensAt`: a journey token cannot make an instance
    /// catch up on an older stamp) to no earlier than `consistent_from`, the rollback's bound
    /// (computed by the rollback module, which owns that rule). A forced flag waits for nothing
    /// and keeps none.
    pub(crate) fn bound_by_rollback(
        &mut self,
        seen_at: DateTime<Utc>,
        consistent_from: DateTime<Utc>,
    ) {
        self.rolled_back_at = Some(seen_at);
        if self.forced {
            return;
        }
        let at = self
            .consistent_at
            .map_or(consistent_from, |at| at.max(consistent_from));
        self.consistent_at = Some(at);
        self.journey_opens_at = Some(at);
        self.consistent_at_ms = Some(at.timestamp_millis());
        // The anonymous status follows (and no longer per-user history: see
        // `per_user_history`).
        self.fix_anonymous_value();
    }
}

/// A flag defined by rules, for one caller (design rule 10, [`crate::targeted`]).
impl ResolvedFlag {
    /// Whether this flag's value depends on the caller: defined by rules and not forced.
    #[inline]
    pub fn rules(&self) -> Option<&lockstep_targeting::Definition> {
        self.definition.as_deref().filter(|_| !self.forced)
    }

    /// The evaluation of its rules for `context` at `now_ms`; `None` for a plain or forced flag
    /// (its one value is [`ResolvedFlag::value`]).
    pub fn evaluate(&self, context: &Context, now_ms: i64) -> Option<Evaluation<'_>> {
        let definition = self.rules()?;
        let now = DateTime::from_timestamp_millis(now_ms).unwrap_or_default();
        Some(lockstep_targeting::evaluate(definition, context, now))
    }

    /// Its status for the caller `context` at `now_ms` (for a flag defined by rules, the value
    /// is its evaluation: `true` only when it serves the boolean `true`), with this caller's
    /// `consistentAt` when the flag keeps previous definitions ([`crate::history`]).
    pub fn status_for(&self, context: &Context, now_ms: i64, degraded: bool) -> FlagStatus {
        let evaluation = self.evaluate(context, now_ms);
        let value = match &evaluation {
            Some(evaluation) => evaluation.value.as_bool() == Some(true),
            None => self.value,
        };
        let Some(history) = self.per_user_history() else {
            return self.status_with(value, now_ms, degraded);
        };
        let served = match evaluation {
            Some(evaluation) => evaluation.value.clone(),
            None => Value::Bool(self.value),
        };
        let now = DateTime::from_timestamp_millis(now_ms).unwrap_or_default();
        let consistent_at = history.consistent_at_for(&served, self.consistent_at, context, now);
        let journey_opens_at = match (self.journey_opens_at, consistent_at) {
            (Some(opens), Some(at)) => Some(opens.min(at)),
            (opens, _) => opens,
        };
        FlagStatus {
            value,
            consistent: consistency::is_consistent(
                consistent_at.map(|at| at.timestamp_millis()),
                self.forced,
                now_ms,
                degraded,
            ),
            consistent_at,
            journey_opens_at,
            forced: self.forced,
            rolled_back_at: self.rolled_back_at,
        }
    }
}
