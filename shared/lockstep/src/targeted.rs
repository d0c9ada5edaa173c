//! A flag's answer for one caller (design rule 10). A flag defined by rules
//! ([`crate::document::Document::definitions`]) is evaluated with the caller's context by
//! `lockstep_targeting`, a pure function of (definition, context, now); a plain flag, or a flag a
//! `FORCE_` variable sets, has one value for everyone (`ResolvedFlag::evaluate`,
//! `ResolvedFlag::status_for` in [`crate::snapshot`]).
//!
//! Whose context: the gate's is the verified identity (the JWT's `sub` as `targetingKey`, its
//! claims as attributes), never one the client chose; OFREP's is its request's; a read without a
//! caller (`/config` for an anonymous SPA, the sample's internal flags) evaluates the empty
//! context, [`anonymous`].
//!
//! Consistency is per caller: a deployment that changes a flag's definition moves its stamp,
//! but a caller's `consistentAt` is that of the latest definition under which their value
//! changed ([`crate::history`]).

pub use lockstep_targeting::{Context, Evaluation, Reason, TARGETING_KEY};
use std::sync::LazyLock;

/// The empty context: an anonymous caller.
pub fn anonymous() -> &'static Context {
    static EMPTY: LazyLock<Context> = LazyLock::new(Context::new);
    &EMPTY
}

/// The caller's targeting key, when the context names one (a non-empty string): a caller with
/// one is handed journey tokens bound to them (`crate::journey::issue_for`), which claim their
/// own value and step for flags defined by rules.
pub fn subject(context: &Context) -> Option<&str> {
    context
        .get(TARGETING_KEY)
        .and_then(|key| key.as_str())
        .filter(|key| !key.is_empty())
}
