//! The gate's decision (design rules 4, 8 and 9) as a pure function over one read ([`decide`]),
//! what it decided for one request ([`Decision`]) and why: the path every decision log names.
//! [`crate::FlagCache::decide`] makes the read (with any catch-up) and asks [`decide`].

pub use crate::cache::token_policy::CatchUp;
use crate::cache::token_policy::{self, TokenRead};
use crate::cache::view::FlagView;
use crate::catalog::FlagHandle;
use crate::metrics::Count;
use crate::targeted::Context;
use chrono::{DateTime, Utc};
use std::time::Duration;

/// One request's decision on a gated flag.
#[derive(Debug, Clone)]
pub struct Decision {
    /// The read the decision was made with (after any catch-up): the route's other flag
    /// decisions use the same one.
    pub view: FlagView,
    /// Open or closed.
    pub verdict: Verdict,
    /// What the journey token asked of this instance.
    pub catch_up: CatchUp,
}

/// Serve the request, or answer 503.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The flag is on on this instance.
    Open,
    /// The flag is off, switched off with a drain time, and the request's verified token was
    /// issued under the enabled value: its journey may finish until `until` (rule 9).
    Draining {
        /// `T + Δ + P + ε + drain`.
        until: DateTime<Utc>,
    },
    /// 503 with `Retry-After`.
    Closed {
        /// Why.
        reason: ClosedReason,
        /// How long the client should wait before trying again.
        retry_after: Duration,
    },
}

/// Why a request met a closed gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClosedReason {
    /// The flag is off here (no drain applies: a kill switch, a forced value, no or an
    /// unverified token, or a journey that did not start under the enabled value).
    Disabled,
    /// The flag is off, and the drain that let journeys in flight finish is over.
    DrainEnded,
    /// The token carries a newer value that this instance cannot serve yet: it may not poll
    /// yet, or its poll still returned the older value. `Retry-After` is the wait until it may
    /// poll again.
    Behind,
}

impl Decision {
    /// Whether the request is served.
    pub fn is_open(&self) -> bool {
        !matches!(self.verdict, Verdict::Closed { .. })
    }

    /// Its count in the metrics ([`crate::metrics::catalogue`]).
    pub fn metric(&self) -> Count {
        match self.verdict {
            Verdict::Open => Count::GateOpen,
            Verdict::Draining { .. } => Count::GateDraining,
            Verdict::Closed { reason, .. } => match reason {
                ClosedReason::Disabled => Count::GateDisabled,
                ClosedReason::DrainEnded => Count::GateDrainEnded,
                ClosedReason::Behind => Count::GateBehind,
            },
        }
    }

    /// A short, stable name of the path the decision took, for logs.
    pub fn path(&self) -> &'static str {
        match (self.verdict, self.catch_up) {
            (Verdict::Open, CatchUp::Polled { .. } | CatchUp::Shared) => "gate_open_caught_up",
            (Verdict::Open, _) => "gate_open",
            (Verdict::Draining { .. }, _) => "gate_open_draining",
            (Verdict::Closed { reason, .. }, _) => match reason {
                ClosedReason::Disabled => "gate_closed",
                ClosedReason::DrainEnded => "gate_closed_drain_ended",
                ClosedReason::Behind => "gate_closed_behind",
            },
        }
    }
}

/// Decides one request on the gated flag `handle` from `read` (rules 4, 8 and 9):
///
/// 1. the flag on here: open;
/// 2. off here, but the instance is still behind a token that carries it on: closed,
///    `Retry-After` = the wait until this instance may catch up;
/// 3. off with a drain time, and the token verified, issued under the enabled value and no
///    longer than the drain before the switch-off, before `T + Δ + P + ε + drain`: open
///    (draining); after it: closed, drain ended;
/// 4. otherwise closed, `Retry-After` = P.
///
/// A missing or malformed token is no token; a token never changes a value, only asks for a
/// poll (made before this, by the cache), and only a verified one opens a drain. A forced flag
/// ignores tokens.
///
/// A flag defined by rules (design rule 10) is on or off for the caller `context`: the gate's is
/// the verified identity, never one the client chose; without one, the empty context.
pub fn decide(read: TokenRead<'_>, handle: FlagHandle, context: &Context) -> Decision {
    let verdict = verdict(&read, handle, context);
    Decision {
        view: read.view,
        verdict,
        catch_up: read.catch_up,
    }
}

fn verdict(read: &TokenRead<'_>, handle: FlagHandle, context: &Context) -> Verdict {
    let view = &read.view;
    let poll_interval = view.window().poll_interval;
    let closed = |reason, retry_after| Verdict::Closed {
        reason,
        retry_after,
    };
    let Some(flag) = view.snapshot().flag_by_handle(handle) else {
        return closed(ClosedReason::Disabled, poll_interval);
    };
    let degraded = view.degraded().is_some();
    if flag.status_for(context, view.now_ms(), degraded).value {
        return Verdict::Open;
    }
    let Some(token) = &read.token else {
        return closed(ClosedReason::Disabled, poll_interval);
    };
    let Some(claim) = token.claim(&flag.name) else {
        return closed(ClosedReason::Disabled, poll_interval);
    };
    if claim.value && token_policy::behind_on(flag, claim).is_some() {
        let wait = token_policy::wait_until(read.next_catch_up_at_ms, view.now_ms());
        return closed(ClosedReason::Behind, wait);
    }
    // The deployment that switched this caller off: the flag's own, or for a flag defined by
    // rules, the one from which on they are served off (their step, design rule 10).
    let switch_off = flag.switch_off_for(context, view.now_ms());
    let Some(ends) = switch_off.ends_at else {
        return closed(ClosedReason::Disabled, poll_interval);
    };
    // In flight at the switch-off: issued under the enabled value (its stamp older than the
    // switch-off's), and no longer than the drain before the switch-off (a journey older than
    // that has had its drain's worth of time already).
    let drain_ms = switch_off
        .drain
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    let issued_under_enabled = claim.value
        && claim
            .stamp_ms
            .zip(switch_off.stamp_ms)
            .is_some_and(|(at, ours)| {
                at < ours && token.claims.issued_at_ms >= ours.saturating_sub(drain_ms)
            })
        && token.verified(view.snapshot().journey_keys());
    match issued_under_enabled {
        false => closed(ClosedReason::Disabled, poll_interval),
        true if view.now_ms() < ends.timestamp_millis() => Verdict::Draining { until: ends },
        true => closed(ClosedReason::DrainEnded, poll_interval),
    }
}
