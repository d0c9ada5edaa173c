//! Rollbacks an instance can see (design rule 7): a fetch that brings a flag back to an *older*
//! stamp than the one the instance served.
//!
//! Stamps only ever move forward with deployments: the stamper gives a changed flag the new
//! deployment's T and an unchanged one keeps its own. So the one way a flag's stamp goes
//! backwards is AppConfig handing out an older version again: an alarm rollback, a
//! `StopDeployment` during a deployment, or a revert (`AllowRevert`) after one. The instance then
//! knows a rollback happened at some moment R no later than the fetch's answer, and that is all
//! it knows: not R itself, nor whether other instances have polled since.
//!
//! What follows from it ([`consistent_after`]): every instance serves the reverted value from
//! `R + P + ε` on (AppConfig hands the reverted version to every session at once, and an
//! instance never decides with configuration fetched P or more ago), so from `seen + P + ε` on,
//! where `seen` is when this instance received the answer. The reverted value's own stamp gives
//! `T_old + Δ_old + P + ε`, long past: trusting it would report the reverted value consistent
//! while instances that have not polled still serve the rolled-back one. A journey token cannot
//! shorten the wait (rule 8 makes an instance catch up only on a token *newer* than what it
//! holds, and the reverted value carries the older stamp), so `journeyOpensAt` waits as long.
//!
//! The bound is kept while the same stamp is served: a later version that leaves the flag as
//! it is (same stamp) carries it over; a new stamp (a roll-forward) replaces it.

use crate::consistency::Window;
use crate::snapshot::Snapshot;
use chrono::{DateTime, TimeDelta, Utc};

/// One flag a fetch brought back to an older stamp.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RolledBack {
    /// The flag.
    pub flag: String,
    /// The stamp T it had before the fetch (the rolled-back deployment's).
    pub from: DateTime<Utc>,
    /// The older stamp it has now (the reverted content's).
    pub to: DateTime<Utc>,
}

/// From when every instance serves a value this instance learned, at `seen`, was restored by a
/// rollback: `seen + P + ε`.
pub fn consistent_after(seen: DateTime<Utc>, window: Window) -> DateTime<Utc> {
    seen + delta(window.poll_interval) + delta(window.epsilon)
}

/// Compares the flags of `next` (just fetched, answered at `seen`) with those of `previous`
/// (what this instance served): bounds every flag whose stamp went backwards, carries the bound
/// of a flag that keeps its stamp, and returns the flags that went backwards now.
pub(crate) fn apply(
    previous: &Snapshot,
    next: &mut Snapshot,
    seen: DateTime<Utc>,
    window: Window,
) -> Vec<RolledBack> {
    let mut rolled_back = Vec::new();
    for flag in next.flags_mut() {
        let Some(old) = previous.flag(&flag.name) else {
            continue;
        };
        match (old.stamp, flag.stamp) {
            (Some(from), Some(to)) if to.at < from.at => {
                flag.bound_by_rollback(seen, consistent_after(seen, window));
                rolled_back.push(RolledBack {
                    flag: flag.name.clone(),
                    from: from.at,
                    to: to.at,
                });
            }
            (Some(from), Some(to)) if to == from => {
                if let Some(at) = old.rolled_back_at {
                    flag.bound_by_rollback(at, consistent_after(at, window));
                }
            }
            _ => {}
        }
    }
    rolled_back
}

fn delta(d: std::time::Duration) -> TimeDelta {
    TimeDelta::from_std(d).unwrap_or(TimeDelta::MAX)
}
