//! One flag of a configuration version, resolved for this instance ([`crate::snapshot`] builds
//! them once per version): its value, stamp and the consistency times they give, its rules for
//! a flag defined by them, and its previous definitions for per-user consistency
//! ([`crate::history`]); its status for one read, anonymous or for one caller.

use crate::catalog::Visibility;
use crate::consistency::{self, FlagStatus, Stamp};
use crate::history::History;
use crate::targeted::{self, anonymous, Context, Evaluation};
use chrono::{DateTime, Utc};
use lockstep_targeting::{changes, Definition};
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
    /// The drain time of the deployment that switched it off (rule 9), or that changed its
    /// rules (for the callers it switched off), if it had one.
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
    /// `T + Δ + Q + ε` of its own stamp (or the rollback's bound): when a journey opens for a
    /// caller whose tokens claim the current definition ([`ResolvedFlag::status_for`]).
    own_journey_opens_at: Option<DateTime<Utc>>,
    /// ε, for the window around a scheduled change ([`ResolvedFlag::status_for`]).
    epsilon: chrono::TimeDelta,
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
            own_journey_opens_at: None,
            epsilon: chrono::TimeDelta::zero(),
        }
    }

    /// Its consistency times for this instance's window (rules 3, 8 and 9), then the anonymous
    /// status's fixed part: once per version, after the overrides are applied.
    pub(crate) fn resolve_times(&mut self, window: consistency::Window) {
        self.consistent_at = consistency::consistent_at(self.stamp, self.forced, window);
        self.journey_opens_at = consistency::journey_opens_at(self.stamp, self.forced, window);
        self.own_journey_opens_at = self.journey_opens_at;
        if self.rules().is_some() {
            // A token not bound to a caller claims a flag defined by rules off
            // (`journey::issue`): it makes no instance catch up on it, so an anonymous journey
            // on it opens only when every instance holds it, at consistentAt. A caller's own
            // tokens claim their value (`status_for`).
            self.journey_opens_at = self.consistent_at;
        }
        // A drain only ever applies to a flag that is off, or, for a flag defined by rules, to
        // the callers a narrowing switched off (the gate asks only for a caller served off).
        self.drain_ends_at = (!self.value || self.rules().is_some())
            .then(|| consistency::drain_ends_at(self.stamp, self.forced, self.drain, window))
            .flatten();
        self.consistent_at_ms = self.consistent_at.map(|at| at.timestamp_millis());
        self.epsilon = chrono::TimeDelta::from_std(window.epsilon).unwrap_or_default();
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
            changes_at: None,
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
            changes_at: None,
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
        self.own_journey_opens_at = Some(at);
        self.consistent_at_ms = Some(at.timestamp_millis());
        // The anonymous status follows (and no longer per-user history: see
        // `per_user_history`).
        self.fix_anonymous_value();
    }
}

/// The deployment that switched a caller off, as a drain sees it ([`ResolvedFlag::switch_off_for`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SwitchOff {
    /// Its stamp T, Unix milliseconds; none for an unstamped or forced flag.
    pub stamp_ms: Option<i64>,
    /// The drain time it carried.
    pub drain: Option<Duration>,
    /// `T + Δ + P + ε + drain`, when it carried one.
    pub ends_at: Option<DateTime<Utc>>,
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
    /// `consistentAt` when the flag keeps previous definitions ([`crate::history`]); for a
    /// caller with a targeting key (handed tokens bound to them, [`crate::journey::issue_for`]),
    /// a flag defined by rules opens journeys at their own step's `T + Δ + Q + ε`; for rules
    /// that read the clock, when the value next changes (`changesAt`), and no `consistentAt`
    /// earlier than ε after a scheduled change within ε of now.
    pub fn status_for(&self, context: &Context, now_ms: i64, degraded: bool) -> FlagStatus {
        let evaluation = self.evaluate(context, now_ms);
        let value = match &evaluation {
            Some(evaluation) => evaluation.value.as_bool() == Some(true),
            None => self.value,
        };
        let scheduled = self.rules().filter(|definition| definition.reads_clock());
        let bound_tokens = self.rules().is_some() && targeted::subject(context).is_some();
        let history = self.per_user_history();
        if history.is_none() && scheduled.is_none() && !bound_tokens {
            return self.status_with(value, now_ms, degraded);
        }
        let now = DateTime::from_timestamp_millis(now_ms).unwrap_or_default();
        let served = match evaluation {
            Some(evaluation) => evaluation.value.clone(),
            None => Value::Bool(self.value),
        };
        let step = history.and_then(|h| h.step_for(&served, context, now));
        let consistent_at = History::bounded(step, self.consistent_at);
        let journey_opens_at = if bound_tokens {
            // Their tokens claim their value at their step: an instance behind it catches up.
            step.map_or(self.own_journey_opens_at, |s| s.journey_opens_at)
        } else {
            self.journey_opens_at
        };
        let mut journey_opens_at = match (journey_opens_at, consistent_at) {
            (Some(opens), Some(at)) => Some(opens.min(at)),
            (opens, _) => opens,
        };
        let mut consistent_at = consistent_at;
        let mut changes_at = None;
        if let Some(definition) = scheduled {
            changes_at = changes::next_change(definition, context, now);
            // Instances reach a scheduled instant on their own clocks, within ε of each other:
            // around one, some may already (or still) serve the other value.
            if let Some(settled) = self.settled_after_schedule(definition, context, now) {
                consistent_at = consistent_at.map(|at| at.max(settled));
                journey_opens_at = journey_opens_at.map(|at| at.max(settled));
            }
        }
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
            changes_at,
        }
    }

    /// The switch-off a drain (rule 9) applies to for the caller `context` at `now_ms`: the
    /// deployment from which on they are served what they are served now (their step; for a
    /// plain or forced flag, or without kept definitions, the flag's own deployment), with the
    /// drain it carried and when that drain ends. A caller a narrowing switched off keeps that
    /// narrowing's drain through later deployments that leave them off.
    pub fn switch_off_for(&self, context: &Context, now_ms: i64) -> SwitchOff {
        let own = SwitchOff {
            stamp_ms: self.stamp_millis(),
            drain: self.drain,
            ends_at: self.drain_ends_at,
        };
        let (Some(evaluation), Some(history)) =
            (self.evaluate(context, now_ms), self.per_user_history())
        else {
            return own;
        };
        let now = DateTime::from_timestamp_millis(now_ms).unwrap_or_default();
        match history.step_for(evaluation.value, context, now) {
            Some(step) => SwitchOff {
                stamp_ms: Some(step.previous.stamp.at.timestamp_millis()),
                drain: step.previous.drain,
                ends_at: step.drain_ends_at,
            },
            None => own,
        }
    }

    /// What a journey token bound to the caller `context` claims for this flag at `now_ms`
    /// (design rules 8 and 10): the value it serves them, and the stamp (Unix milliseconds) of
    /// their step, the deployment from which on every definition serves them that value. None
    /// for a forced or unstamped flag.
    pub fn claim_for(&self, context: &Context, now_ms: i64) -> (bool, Option<i64>) {
        let own = self.stamp_millis();
        let Some(evaluation) = self.evaluate(context, now_ms) else {
            return (self.value, own);
        };
        let value = evaluation.value.as_bool() == Some(true);
        let now = DateTime::from_timestamp_millis(now_ms).unwrap_or_default();
        let step = self
            .per_user_history()
            .and_then(|h| h.step_for(evaluation.value, context, now))
            .map(|s| s.previous.stamp.at.timestamp_millis());
        (value, step.or(own))
    }

    /// ε after the last scheduled change of the caller's value within ε of `now`, if one is.
    fn settled_after_schedule(
        &self,
        definition: &Definition,
        context: &Context,
        now: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        let until = now + self.epsilon;
        let mut from = now - self.epsilon;
        let mut last = None;
        while let Some(change) = changes::next_change_until(definition, context, from, until) {
            last = Some(change);
            from = change;
        }
        last.map(|change| change + self.epsilon)
    }
}
