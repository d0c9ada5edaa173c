//! The journey token's policy (design rule 8), written once, as pure functions over the read
//! model; the gate ([`super::decision`]) and OFREP (through [`crate::FlagCache::answer_read`])
//! ask it, and neither re-derives it:
//!
//! - [`behind`]: is this instance behind the token (an older stamp, or none, for a flag the token
//!   carries a stamp for; a forced flag is never behind)?
//! - [`next_catch_up_at`]: when may it catch up: never before the session allows a call (the
//!   service's interval, or a backoff), and at most once per Q;
//! - [`journey_opening`]: may a journey open on a flag now, for a client with or without a token
//!   (`journeyOpensAt`, `T + Δ + Q + ε`, or `consistentAt`, `T + Δ + P + ε`)?
//! - [`answer`]: after any catch-up, may a read that answers with values (OFREP) answer a token
//!   client, or must the client retry later?
//!
//! The one impure step, the catch-up poll itself, is [`crate::FlagCache`]'s: it polls when
//! [`behind`] and [`next_catch_up_at`] say so, and hands back a [`TokenRead`].

use crate::cache::view::FlagView;
use crate::catalog::{FlagHandle, Visibility};
use crate::consistency::{FlagStatus, CATCH_UP_INTERVAL};
use crate::journey::{self, Claims, TokenFlag};
use crate::journey_key::JourneyKey;
use crate::snapshot::ResolvedFlag;
use crate::targeted::Context;
use chrono::{DateTime, Utc};
use std::time::Duration;

/// A journey token as one read received it: what it claims, and its text for a signature check
/// (only a drain needs one).
#[derive(Debug, Clone)]
pub struct Token<'t> {
    text: &'t str,
    /// What the token says.
    pub claims: Claims,
}

impl<'t> Token<'t> {
    /// The token a request carried (the `Lockstep-Journey` header's value, unchecked), read at
    /// `view`'s moment: `None` for a missing, malformed or oversized token, or one issued later
    /// than the read's moment plus ε (no instance of this fleet issued it), or one bound to
    /// another caller than `context` ([`journey::readable_by`]: its claims for flags defined by
    /// rules are someone else's). A missing token and an unreadable one are the same: no token.
    pub fn read(text: Option<&'t str>, view: &FlagView, context: &Context) -> Option<Self> {
        let epsilon_ms = i64::try_from(view.window().epsilon.as_millis()).unwrap_or(i64::MAX);
        let text = text?;
        let claims = journey::read(text, view.now_ms().saturating_add(epsilon_ms))?;
        journey::readable_by(&claims, context).then_some(Self { text, claims })
    }

    /// What the token says about one flag.
    pub fn claim(&self, name: &str) -> Option<TokenFlag> {
        self.claims.flags.get(name).copied()
    }

    /// Whether one of `keys` made the token's signature.
    pub fn verified(&self, keys: &[JourneyKey]) -> bool {
        journey::verify(self.text, keys)
    }
}

/// Which flags a question is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope<'a> {
    /// The flag a gate decides on, whatever its visibility on this instance.
    Flag(FlagHandle),
    /// The public flags a read answers with: every one, or only the one named.
    Public(Option<&'a str>),
}

/// A flag on which this instance is behind a token: its name and the token's newer stamp.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Behind {
    /// The flag.
    pub name: String,
    /// The token's stamp for it, Unix milliseconds.
    pub token_stamp_ms: i64,
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

/// One read for a request that may carry a journey token, after any catch-up: what the gate's
/// decision and OFREP's answer are made from.
#[derive(Debug, Clone)]
pub struct TokenRead<'a> {
    /// The read (after any catch-up).
    pub view: FlagView,
    /// The token, when the request carried a readable one.
    pub token: Option<Token<'a>>,
    /// The flags asked about.
    pub scope: Scope<'a>,
    /// The first flag of `scope` the token showed this instance behind on, before any catch-up.
    pub behind: Option<Behind>,
    /// What the token asked of this instance.
    pub catch_up: CatchUp,
    /// [`next_catch_up_at`] after any catch-up, Unix milliseconds.
    pub next_catch_up_at_ms: i64,
}

/// The token's newer stamp for `flag` when this instance is behind it: it holds an older stamp
/// or none, the flag is not forced (an override ignores tokens), and the token stamped it.
pub fn behind_on(flag: &ResolvedFlag, claim: TokenFlag) -> Option<i64> {
    let token_stamp = claim.stamp_ms?;
    (!flag.forced && flag.stamp_millis().is_none_or(|ours| ours < token_stamp))
        .then_some(token_stamp)
}

/// The first flag of `scope` on which this read is behind `token` (by name, for public flags).
pub fn behind(view: &FlagView, token: &Token<'_>, scope: Scope<'_>) -> Option<Behind> {
    let on = |flag: &ResolvedFlag| {
        let token_stamp_ms = behind_on(flag, token.claim(&flag.name)?)?;
        Some(Behind {
            name: flag.name.clone(),
            token_stamp_ms,
        })
    };
    match scope {
        Scope::Flag(handle) => on(view.snapshot().flag_by_handle(handle)?),
        Scope::Public(only) => view
            .snapshot()
            .flags()
            .iter()
            .filter(|f| f.visibility == Visibility::Public && only.is_none_or(|key| key == f.name))
            .find_map(on),
    }
}

/// Whether `view` still holds an older stamp than `behind`'s for its flag (a catch-up, this
/// request's or a concurrent one's, may have brought the newer one).
pub fn still_behind(view: &FlagView, behind: &Behind) -> bool {
    view.snapshot()
        .flag(&behind.name)
        .is_some_and(|f| f.stamp_millis().is_none_or(|s| s < behind.token_stamp_ms))
}

/// The earliest moment (Unix milliseconds) a catch-up may call the source, for a read whose
/// state allows the next call at `may_poll_at_ms` (the service's interval or the backoff since
/// the last call) on an instance whose last catch-up started at `last_catch_up_ms`: at most one
/// catch-up per Q.
pub fn next_catch_up_at(may_poll_at_ms: i64, last_catch_up_ms: i64) -> i64 {
    let q_ms = i64::try_from(CATCH_UP_INTERVAL.as_millis()).unwrap_or(i64::MAX);
    may_poll_at_ms.max(last_catch_up_ms.saturating_add(q_ms))
}

/// Whether a journey may open on a flag, for one client, at one read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Opening {
    /// The journey-safe value: the flag is on, and a journey may open on it now.
    pub open: bool,
    /// When `open` turns true if nothing changes: only while the flag is on, the journey not
    /// open yet and the moment known, on a healthy instance.
    pub opens_at: Option<DateTime<Utc>>,
}

/// May a journey open on a flag whose status is `status`, at `now`, on an instance that is (or
/// is not) `degraded`, for a client that does (or does not) send a journey token?
///
/// `consistent` is rule 3's own verdict (false on a degraded instance, true for a forced flag
/// on a healthy one) and opens a journey for every client. A token client may open earlier, at
/// `journeyOpensAt` (`T + Δ + Q + ε`), on a healthy instance: from then on an instance still
/// holding an older value catches up when its token arrives. Any other client waits for
/// `consistentAt`.
pub fn journey_opening(
    status: &FlagStatus,
    now: DateTime<Utc>,
    degraded: bool,
    token_client: bool,
) -> Opening {
    let healthy = !degraded;
    let (open, opens_by) = if token_client {
        (
            status.consistent || (healthy && status.journey_opens_at.is_some_and(|at| now >= at)),
            status.journey_opens_at,
        )
    } else {
        (status.consistent, status.consistent_at)
    };
    Opening {
        open: status.value && open,
        opens_at: opens_by.filter(|at| status.value && !open && healthy && *at > now),
    }
}

/// What a read that answers with values (OFREP) may answer a client, after any catch-up.
#[derive(Debug, Clone)]
pub enum Answer {
    /// No readable token: answer from the read; journeys open at `consistentAt`.
    NoToken(FlagView),
    /// A token, and the read is not behind it: answer; journeys open at `journeyOpensAt`.
    Current {
        /// The read.
        view: FlagView,
        /// Whether it was behind before a catch-up (its own or a concurrent one) brought it
        /// level.
        caught_up: bool,
    },
    /// Still behind the token, but AppConfig itself gave this version after the token was
    /// issued (a gradual deployment that has not reached this session yet, or a rollback): answer
    /// with it; the client takes the older version and its token.
    BehindServed(FlagView),
    /// Still behind, and AppConfig gave nothing newer (the session allowed no call and the
    /// instance has not polled since the token's issue, or the poll failed): an answer would
    /// hand the client a version older than the one it holds, so it retries later.
    Behind {
        /// The read.
        view: FlagView,
        /// What the token asked of this instance.
        catch_up: CatchUp,
        /// How long to wait (may be zero; whole seconds are the caller's to round).
        retry_after: Duration,
    },
}

/// Rule 8 for a read that answers with values: answer with `read`, or tell the client to retry.
pub fn answer(read: TokenRead<'_>) -> Answer {
    let TokenRead {
        view,
        token,
        scope,
        behind: was_behind,
        catch_up,
        next_catch_up_at_ms,
    } = read;
    let Some(token) = token else {
        return Answer::NoToken(view);
    };
    let Some(first) = was_behind else {
        return Answer::Current {
            view,
            caught_up: false,
        };
    };
    if behind(&view, &token, scope).is_none() {
        return Answer::Current {
            view,
            caught_up: true,
        };
    }
    let polled_since_issue = view
        .state()
        .fetched_at
        .is_some_and(|at| at.timestamp_millis() >= token.claims.issued_at_ms);
    let appconfig_said_so = view.degraded().is_none()
        && (matches!(catch_up, CatchUp::Polled { .. }) || polled_since_issue);
    if appconfig_said_so {
        return Answer::BehindServed(view);
    }
    // A gate on the first flag found behind would answer 503 `Behind` (the token carries it on,
    // this instance holds it off): the wait until this instance may catch up. Otherwise the
    // session's interval or backoff; else the catch-up limit, at most Q away.
    let gate_behind = view.snapshot().flag(&first.name).is_some_and(|flag| {
        !flag.value
            && token
                .claim(&flag.name)
                .is_some_and(|claim| claim.value && behind_on(flag, claim).is_some())
    });
    let retry_after = if gate_behind {
        wait_until(next_catch_up_at_ms, view.now_ms())
    } else {
        (view.state().may_poll_at() - view.now())
            .to_std()
            .ok()
            .filter(|wait| !wait.is_zero())
            .unwrap_or(CATCH_UP_INTERVAL)
    };
    Answer::Behind {
        view,
        catch_up,
        retry_after,
    }
}

/// The wait from `now_ms` until `at_ms` (zero when it has passed).
pub(crate) fn wait_until(at_ms: i64, now_ms: i64) -> Duration {
    Duration::from_millis(u64::try_from(at_ms.saturating_sub(now_ms)).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeDelta;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    /// On, deployed at 10:00:00 with Δ = 0, P = 45 s, ε = 5 s: `journeyOpensAt` 10:00:20,
    /// `consistentAt` 10:00:50.
    fn on(now: DateTime<Utc>) -> FlagStatus {
        let consistent_at = t("2026-11-21T10:00:50Z");
        FlagStatus {
            value: true,
            consistent: now >= consistent_at,
            consistent_at: Some(consistent_at),
            journey_opens_at: Some(t("2026-11-21T10:00:20Z")),
            forced: false,
            rolled_back_at: None,
            changes_at: None,
        }
    }

    #[test]
    fn a_token_client_opens_a_journey_at_journey_opens_at_and_any_other_client_at_consistent_at() {
        let between = t("2026-11-21T10:00:30Z");
        let token_client = journey_opening(&on(between), between, false, true);
        let other = journey_opening(&on(between), between, false, false);

        assert!(token_client.open);
        assert_eq!(token_client.opens_at, None);
        assert!(!other.open);
        assert_eq!(other.opens_at, Some(t("2026-11-21T10:00:50Z")));
    }

    #[test]
    fn before_journey_opens_at_the_journey_is_closed_and_says_when_it_opens() {
        let before = t("2026-11-21T10:00:19Z");
        let opening = journey_opening(&on(before), before, false, true);

        assert!(!opening.open);
        assert_eq!(opening.opens_at, Some(t("2026-11-21T10:00:20Z")));
    }

    #[test]
    fn a_degraded_instance_opens_no_journey_early_and_names_no_moment() {
        let between = t("2026-11-21T10:00:30Z");
        let mut status = on(between);
        status.consistent = false; // rule 3: a degraded instance vouches for nothing
        let opening = journey_opening(&status, between, true, true);

        assert!(!opening.open);
        assert_eq!(opening.opens_at, None);
    }

    #[test]
    fn a_flag_that_is_off_never_opens_a_journey() {
        let after = t("2026-11-21T10:01:00Z");
        let mut status = on(after);
        status.value = false;

        for token_client in [true, false] {
            let opening = journey_opening(&status, after, false, token_client);
            assert!(!opening.open);
            assert_eq!(opening.opens_at, None);
        }
    }

    #[test]
    fn a_catch_up_waits_for_the_session_and_comes_at_most_once_per_q() {
        let now = t("2026-11-21T10:00:00Z").timestamp_millis();
        let q = TimeDelta::from_std(CATCH_UP_INTERVAL)
            .unwrap()
            .num_milliseconds();

        // No catch-up yet: only the session's interval counts.
        assert_eq!(next_catch_up_at(now, i64::MIN), now);
        // A catch-up 5 s ago: not before Q after it, even if the session allows a call.
        assert_eq!(next_catch_up_at(now, now - 5_000), now - 5_000 + q);
        // A backoff longer than that: the backoff.
        assert_eq!(next_catch_up_at(now + 60_000, now - 5_000), now + 60_000);
    }
}
