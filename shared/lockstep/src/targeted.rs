//! A flag's answer for one caller (design rule 10). A flag defined by rules
//! ([`crate::document::Document::definitions`]) is evaluated with the caller's context by
//! `lockstep_targeting`, a pure function of (definition, context, now); a plain flag, or a flag a
//! `FORCE_` variable sets, has one value for everyone.
//!
//! Whose context: the gate's is the verified identity (the JWT's `sub` as `targetingKey`, its
//! claims as attributes), never one the client chose; OFREP's is its request's; a read without a
//! caller (`/config` for an anonymous SPA, the sample's internal flags) evaluates the empty
//! context, [`anonymous`].
//!
//! Consistency stays per flag here: a deployment that changes a flag's definition moves its
//! stamp, and so its `consistentAt`, for every caller (fail closed: per-user consistency, where
//! only the users whose value changed wait, is the next step of rule 10).

use crate::consistency::FlagStatus;
use crate::snapshot::ResolvedFlag;
use chrono::DateTime;
pub use lockstep_targeting::{Context, Evaluation, Reason};
use std::sync::LazyLock;

/// The empty context: an anonymous caller.
pub fn anonymous() -> &'static Context {
    static EMPTY: LazyLock<Context> = LazyLock::new(Context::new);
    &EMPTY
}

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
    /// is its evaluation: `true` only when it serves the boolean `true`).
    pub fn status_for(&self, context: &Context, now_ms: i64, degraded: bool) -> FlagStatus {
        let value = match self.evaluate(context, now_ms) {
            Some(evaluation) => evaluation.value.as_bool() == Some(true),
            None => self.value,
        };
        self.status_with(value, now_ms, degraded)
    }
}
