//! The consistency rule (design rule 3), owned here and nowhere else:
//!
//! - [`consistent_at`]: `T + Δ + P + ε` for one flag, computed once per fetched version;
//! - [`is_consistent`]: whether one flag is consistent at one moment, on every read;
//! - [`evaluate`]: the two together, with the precedence written once;
//! - [`backend`]: the backend-level verdict `/config` and the fleet view report
//!   (`isBackendConsistent` and its `consistentAt`), from the flags' statuses.
//!
//! For a flag whose current value was deployed at T by a strategy lasting Δ, every instance is
//! guaranteed to serve that value from `consistentAt = T + Δ + P + ε` on:
//!
//! - by T + Δ (+ propagation) AppConfig hands the new version to every session;
//! - an instance never decides with configuration fetched P or more ago (rule 1), so after
//!   T + Δ + P every answering instance fetched after the deployment completed;
//! - ε absorbs the skew between the stamping clock and this instance's clock, plus AppConfig's
//!   internal propagation.
//!
//! The same holds for enabling and disabling: nothing in the rule looks at the value.

use chrono::{DateTime, Utc};
use serde::Serialize;
use std::time::Duration;

/// Q: AppConfigData's minimum session poll interval (the service refuses less). Sessions ask for
/// it as `RequiredMinimumPollIntervalInSeconds`, so a catch-up (rule 8) may poll Q after the
/// previous call; the regular cadence stays P.
pub const CATCH_UP_INTERVAL: Duration = Duration::from_secs(15);

/// The longest deployment AppConfig allows (24 hours): the bound of every Δ Lockstep reads or
/// writes.
pub const MAX_DEPLOYMENT_DURATION: Duration = Duration::from_secs(24 * 3600);

/// When a flag's current value was deployed, and how long that deployment lasted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// T: the start of the deployment that introduced the value (UTC, stamping clock).
    pub at: DateTime<Utc>,
    /// Δ: the deployment strategy's duration (0 for AllAtOnce).
    pub deployment_duration: Duration,
}

/// P and ε, fixed for the life of an instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// P: the poll interval.
    pub poll_interval: Duration,
    /// ε: the skew and propagation margin.
    pub epsilon: Duration,
}

/// A flag's consistency as one instance sees it at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Consistency {
    /// From when every instance serves the current value; `None` when no stamp applies (never
    /// stamped, bundled defaults, or a forced value).
    pub consistent_at: Option<DateTime<Utc>>,
    /// Whether this instance vouches that every instance serves the current value now.
    pub consistent: bool,
}

/// A flag's state as one read sees it; serialised as `/config` and the fleet view show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FlagStatus {
    /// The value this instance serves.
    pub value: bool,
    /// Whether every instance serves this value now, as far as this instance can vouch.
    pub consistent: bool,
    /// From when every instance serves this value (none: unstamped or forced).
    #[serde(serialize_with = "crate::rfc3339::serialize_opt")]
    pub consistent_at: Option<DateTime<Utc>>,
    /// From when a client carrying a journey token may open a journey on this value
    /// (`T + Δ + Q + ε`, rule 8; none: unstamped or forced).
    #[serde(serialize_with = "crate::rfc3339::serialize_opt")]
    pub journey_opens_at: Option<DateTime<Utc>>,
    /// Whether a `FORCE_` variable set the value.
    pub forced: bool,
    /// When this instance saw the flag's stamp go backwards: a rollback happened no later than
    /// this (rule 7, [`crate::rollback`]); `consistentAt` is then no earlier than this + P + ε.
    /// Left out of `/config` when none.
    #[serde(
        serialize_with = "crate::rfc3339::serialize_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub rolled_back_at: Option<DateTime<Utc>>,
    /// When the caller's value next changes without a deployment (a time-based condition or a
    /// ramp, design rule 10; [`lockstep_targeting::changes`]): every instance knows the instant,
    /// and the value is reported inconsistent within ε of it. Left out of `/config` when none.
    #[serde(
        serialize_with = "crate::rfc3339::serialize_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub changes_at: Option<DateTime<Utc>>,
}

/// The backend as one instance sees it: what `/config` reports at its top level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backend {
    /// `isBackendConsistent`: every flag consistent, on an instance that is not degraded.
    pub consistent: bool,
    /// When that turns true if nothing changes: the latest `consistentAt` of the unforced flags;
    /// none when one of them is unstamped or the instance is degraded.
    pub consistent_at: Option<DateTime<Utc>>,
    /// The same for token-carrying clients: the latest `journeyOpensAt` (rule 8), none when
    /// `consistent_at` is none.
    pub journey_opens_at: Option<DateTime<Utc>>,
}

/// The backend-level rule over the flags one read exposes (each already judged by
/// [`is_consistent`]): consistent only when the instance is not degraded and every flag is
/// consistent; forced flags wait for nothing, so they do not move `consistent_at`.
pub fn backend(flags: impl IntoIterator<Item = FlagStatus>, degraded: bool) -> Backend {
    let mut consistent = !degraded;
    let mut latest: Option<DateTime<Utc>> = None;
    let mut latest_open: Option<DateTime<Utc>> = None;
    let mut all_stamped = !degraded;
    for flag in flags {
        consistent &= flag.consistent;
        match (flag.forced, flag.consistent_at) {
            (true, _) => {}
            (false, Some(at)) => {
                latest = latest.max(Some(at));
                latest_open = latest_open.max(flag.journey_opens_at);
            }
            (false, None) => all_stamped = false,
        }
    }
    Backend {
        consistent,
        consistent_at: if all_stamped { latest } else { None },
        journey_opens_at: if all_stamped { latest_open } else { None },
    }
}

/// Applies the rule to one flag: [`consistent_at`] then [`is_consistent`].
///
/// Precedence, written once:
/// 1. a degraded instance vouches for nothing: `consistent` is false;
/// 2. a forced flag (`FORCE_<FLAG>`) has no stamp to wait for: consistent, `consistentAt` none —
///    Lambda starts every invocation after a configuration update with the new environment;
/// 3. an unstamped flag can never be shown consistent;
/// 4. otherwise consistent iff `now ≥ T + Δ + P + ε`.
///
/// The cache computes [`consistent_at`] once per fetched version (P and ε are fixed for an
/// instance's life) and calls [`is_consistent`] on each read; this function is the two together.
pub fn evaluate(
    stamp: Option<Stamp>,
    forced: bool,
    window: Window,
    now: DateTime<Utc>,
    degraded: bool,
) -> Consistency {
    let consistent_at = consistent_at(stamp, forced, window);
    Consistency {
        consistent_at,
        consistent: is_consistent(
            consistent_at.map(|at| at.timestamp_millis()),
            forced,
            now.timestamp_millis(),
            degraded,
        ),
    }
}

/// `T + Δ + P + ε`, or `None` for an unstamped or forced flag.
pub fn consistent_at(stamp: Option<Stamp>, forced: bool, window: Window) -> Option<DateTime<Utc>> {
    if forced {
        return None;
    }
    let window_ms = millis(window.poll_interval).saturating_add(millis(window.epsilon));
    stamp.and_then(|s| {
        let at =
            s.at.timestamp_millis()
                .saturating_add(millis(s.deployment_duration))
                .saturating_add(window_ms);
        DateTime::from_timestamp_millis(at)
    })
}

/// `T + Δ + Q + ε` (rule 8), or `None` for an unstamped or forced flag: from then on an instance
/// still holding an older value last polled before `T + Δ + ε`, at least Q earlier, so a request
/// carrying a journey token can make it catch up at once.
pub fn journey_opens_at(
    stamp: Option<Stamp>,
    forced: bool,
    window: Window,
) -> Option<DateTime<Utc>> {
    consistent_at(
        stamp,
        forced,
        Window {
            poll_interval: CATCH_UP_INTERVAL.min(window.poll_interval),
            epsilon: window.epsilon,
        },
    )
}

/// `T + Δ + P + ε + drain` (rule 9): until then a flag switched off with a drain time keeps
/// serving requests whose verified token was issued under the enabled value. `None` without a
/// drain (a kill switch) or for a forced flag.
pub fn drain_ends_at(
    stamp: Option<Stamp>,
    forced: bool,
    drain: Option<Duration>,
    window: Window,
) -> Option<DateTime<Utc>> {
    let drain = drain?;
    let at = consistent_at(stamp, forced, window)?;
    at.checked_add_signed(chrono::TimeDelta::from_std(drain).ok()?)
}

/// Whether a flag whose [`consistent_at`] is given (in Unix milliseconds, the read path's form)
/// is consistent at `now_ms`.
#[inline]
pub fn is_consistent(
    consistent_at_ms: Option<i64>,
    forced: bool,
    now_ms: i64,
    degraded: bool,
) -> bool {
    if degraded {
        return false;
    }
    if forced {
        return true;
    }
    consistent_at_ms.is_some_and(|at| now_ms >= at)
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeDelta;
    use proptest::prelude::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    const WINDOW: Window = Window {
        poll_interval: Duration::from_secs(45),
        epsilon: Duration::from_secs(5),
    };

    fn stamp(at: &str, delta_secs: u64) -> Option<Stamp> {
        Some(Stamp {
            at: t(at),
            deployment_duration: Duration::from_secs(delta_secs),
        })
    }

    #[test]
    fn a_flag_is_consistent_exactly_at_consistent_at_and_not_one_millisecond_before() {
        let s = stamp("2026-11-21T10:00:00Z", 0);
        let at = t("2026-11-21T10:00:50Z");

        let before = evaluate(s, false, WINDOW, at - TimeDelta::milliseconds(1), false);
        let exactly = evaluate(s, false, WINDOW, at, false);

        assert_eq!(before.consistent_at, Some(at));
        assert!(!before.consistent);
        assert!(exactly.consistent);
    }

    #[test]
    fn a_gradual_strategy_adds_its_duration() {
        // Canary10Percent20Minutes: Δ = 20 min.
        let s = stamp("2026-11-21T10:00:00Z", 20 * 60);
        let at = t("2026-11-21T10:20:50Z");

        let c = evaluate(s, false, WINDOW, at - TimeDelta::milliseconds(1), false);

        assert_eq!(c.consistent_at, Some(at));
        assert!(!c.consistent);
        assert!(evaluate(s, false, WINDOW, at, false).consistent);
    }

    #[test]
    fn a_clock_behind_the_stamping_clock_waits_longer_in_real_time() {
        // The instance's clock runs 2 s behind: when its clock reads consistentAt, real time is
        // 2 s later, inside the ε margin the rule budgets for.
        let s = stamp("2026-11-21T10:00:00Z", 0);
        let real_now = t("2026-11-21T10:00:51Z");
        let skewed_now = real_now - TimeDelta::seconds(2);

        assert!(!evaluate(s, false, WINDOW, skewed_now, false).consistent);
        assert!(evaluate(s, false, WINDOW, skewed_now + TimeDelta::seconds(1), false).consistent);
    }

    #[test]
    fn the_disable_direction_waits_just_as_long() {
        // Nothing in the rule looks at the value: a flag switched off at T is consistent at the
        // same moment as one switched on at T.
        let s = stamp("2026-11-21T10:00:00Z", 60);
        let at = t("2026-11-21T10:01:50Z");
        assert!(!evaluate(s, false, WINDOW, at - TimeDelta::milliseconds(1), false).consistent);
        assert!(evaluate(s, false, WINDOW, at, false).consistent);
    }

    #[test]
    fn a_forced_flag_is_consistent_without_a_stamp_unless_degraded() {
        let c = evaluate(None, true, WINDOW, t("2026-11-21T10:00:00Z"), false);
        assert_eq!(
            c,
            Consistency {
                consistent_at: None,
                consistent: true
            }
        );
        let degraded = evaluate(None, true, WINDOW, t("2026-11-21T10:00:00Z"), true);
        assert!(!degraded.consistent);
    }

    #[test]
    fn a_degraded_instance_vouches_for_nothing() {
        let s = stamp("2026-11-21T10:00:00Z", 0);
        let long_after = t("2026-11-22T10:00:00Z");
        let c = evaluate(s, false, WINDOW, long_after, true);
        assert_eq!(c.consistent_at, Some(t("2026-11-21T10:00:50Z")));
        assert!(!c.consistent);
    }

    #[test]
    fn an_unstamped_flag_is_never_consistent() {
        let c = evaluate(None, false, WINDOW, t("2030-01-01T00:00:00Z"), false);
        assert_eq!(
            c,
            Consistency {
                consistent_at: None,
                consistent: false
            }
        );
    }

    fn status(consistent: bool, at: Option<&str>, forced: bool) -> FlagStatus {
        FlagStatus {
            value: true,
            consistent,
            consistent_at: at.map(t),
            journey_opens_at: at.map(|at| t(at) - TimeDelta::seconds(30)),
            forced,
            rolled_back_at: None,
            changes_at: None,
        }
    }

    #[test]
    fn the_backend_is_consistent_only_when_every_flag_is_and_waits_for_the_latest() {
        let early = status(true, Some("2026-11-21T10:00:50Z"), false);
        let late = status(false, Some("2026-11-21T10:05:50Z"), false);

        let b = backend([early, late], false);

        assert!(!b.consistent);
        assert_eq!(b.consistent_at, Some(t("2026-11-21T10:05:50Z")));
        assert!(backend([early], false).consistent);
    }

    #[test]
    fn forced_flags_do_not_move_the_backend_and_unstamped_ones_leave_it_without_a_time() {
        let stamped = status(true, Some("2026-11-21T10:00:50Z"), false);
        let forced = status(true, None, true);
        let unstamped = status(false, None, false);

        assert_eq!(
            backend([stamped, forced], false),
            Backend {
                consistent: true,
                consistent_at: Some(t("2026-11-21T10:00:50Z")),
                journey_opens_at: Some(t("2026-11-21T10:00:20Z")),
            }
        );
        assert_eq!(backend([stamped, unstamped], false).consistent_at, None);
    }

    #[test]
    fn a_degraded_backend_vouches_for_nothing_and_names_no_time() {
        let stamped = status(true, Some("2026-11-21T10:00:50Z"), false);
        assert_eq!(
            backend([stamped], true),
            Backend {
                consistent: false,
                consistent_at: None,
                journey_opens_at: None,
            }
        );
    }

    #[test]
    fn a_journey_opens_q_after_the_deployment_ends_and_a_drain_ends_after_consistent_at() {
        let s = stamp("2026-11-21T10:00:00Z", 60);
        assert_eq!(
            journey_opens_at(s, false, WINDOW),
            Some(t("2026-11-21T10:01:20Z"))
        );
        // With P below Q (never valid for AppConfigData, but possible for other sources) the
        // journey never opens later than consistentAt.
        let short = Window {
            poll_interval: Duration::from_secs(10),
            epsilon: WINDOW.epsilon,
        };
        assert_eq!(
            journey_opens_at(s, false, short),
            consistent_at(s, false, short)
        );
        assert_eq!(journey_opens_at(s, true, WINDOW), None);
        assert_eq!(
            drain_ends_at(s, false, Some(Duration::from_secs(300)), WINDOW),
            Some(t("2026-11-21T10:06:50Z"))
        );
        assert_eq!(drain_ends_at(s, false, None, WINDOW), None);
        assert_eq!(
            drain_ends_at(s, true, Some(Duration::from_secs(300)), WINDOW),
            None
        );
    }

    proptest! {
        #[test]
        fn consistent_at_is_t_plus_delta_plus_p_plus_epsilon(
            t_ms in 0i64..4_000_000_000_000,
            delta_s in 0u64..7200,
            p_s in 15u64..3600,
            eps_ms in 0u64..60_000,
            probe_ms in -10_000i64..10_000,
        ) {
            let window = Window { poll_interval: Duration::from_secs(p_s), epsilon: Duration::from_millis(eps_ms) };
            let at = DateTime::from_timestamp_millis(t_ms).unwrap();
            let s = Some(Stamp { at, deployment_duration: Duration::from_secs(delta_s) });
            let expected = at + TimeDelta::milliseconds((delta_s * 1000 + p_s * 1000 + eps_ms) as i64);
            let now = expected + TimeDelta::milliseconds(probe_ms);

            let c = evaluate(s, false, window, now, false);

            prop_assert_eq!(c.consistent_at, Some(expected));
            prop_assert_eq!(c.consistent, probe_ms >= 0);
        }
    }
}
