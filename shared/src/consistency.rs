//! The consistency rule (design rule 3), in one function: [`evaluate`].
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
use std::time::Duration;

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
        consistent: is_consistent(consistent_at, forced, now.timestamp_millis(), degraded),
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

/// Whether a flag whose [`consistent_at`] is given is consistent at `now_ms` (Unix milliseconds).
pub fn is_consistent(
    consistent_at: Option<DateTime<Utc>>,
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
    consistent_at.is_some_and(|at| now_ms >= at.timestamp_millis())
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
