//! What a gate decided for one request ([`crate::FlagCache::decide`]), and why: the path every
//! decision log names.

use crate::cache::FlagView;
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

/// What a journey token asked of this instance (rule 8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CatchUp {
    /// No token, or one no newer than this instance for this flag.
    NotNeeded,
    /// Behind, and it polled before deciding.
    Polled {
        /// Whether the poll brought a value at least as new as the token's.
        caught_up: bool,
    },
    /// Behind, and a concurrent request's catch-up brought the newer value.
    Shared,
    /// Behind, but the session allows no call yet (the service's interval, a backoff, or a
    /// catch-up less than Q ago).
    NotYet,
}

impl Decision {
    pub(crate) fn closed(
        view: FlagView,
        reason: ClosedReason,
        retry_after: Duration,
        catch_up: CatchUp,
    ) -> Self {
        Self {
            view,
            verdict: Verdict::Closed {
                reason,
                retry_after,
            },
            catch_up,
        }
    }

    /// Whether the request is served.
    pub fn is_open(&self) -> bool {
        !matches!(self.verdict, Verdict::Closed { .. })
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
