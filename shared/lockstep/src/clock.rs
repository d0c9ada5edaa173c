//! Time as a dependency. Every piece of freshness and consistency logic asks a [`Clock`], so unit
//! tests and the fleet simulation run in virtual time, deterministically.
//!
//! Freshness and consistency both use the wall clock on purpose: the consistency rule compares
//! against a stamp written by another machine's wall clock, and the skew between the two is what
//! ε budgets for. A monotonic clock would not make that comparison any safer.

use chrono::{DateTime, Utc};

/// A source of the current UTC time.
pub trait Clock: Send + Sync {
    /// The current time.
    fn now(&self) -> DateTime<Utc>;

    /// The current time in milliseconds since the Unix epoch: the hot path's form, which skips
    /// chrono's calendar conversion.
    fn now_millis(&self) -> i64 {
        self.now().timestamp_millis()
    }
}

/// The machine's wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    fn now_millis(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    }
}

/// The machine's wall clock read coarsely, for the read path: the product's clock.
///
/// A precise wall-clock read costs ~60 ns on a KVM guest, more than the rest of a flag read.
/// `now_millis` (the read path's form) instead reads `CLOCK_REALTIME_COARSE`, the time the kernel
/// stored at its last timer tick, which the vDSO serves in a few nanoseconds. That time trails the
/// true time by up to one tick (the clock's resolution, typically 1–4 ms), so this clock adds one
/// tick: its reading is at most one tick ahead of the precise clock's and, while ticks come on
/// time, never behind it.
///
/// Why the error is harmless: freshness compares this reading with a fetch start taken by the
/// precise `now`, so a reading that is not behind refreshes no later than the precise clock would
/// (rule 1 holds as with the precise clock); a flag may turn consistent up to one tick early, the
/// same as an instance clock running a few milliseconds fast. A tick that comes late (a vCPU the
/// hypervisor descheduled) leaves the reading behind by that delay, like a clock running slow.
/// Both are instance clock error, which ε budgets for (default 5 s, 2 s of it for the Lambda
/// clock): milliseconds sit inside it by three orders of magnitude.
///
/// `now` stays precise: it times fetches and is read once per refresh, not per request. Where the
/// coarse clock is missing (not Linux) or coarser than [`CoarseClock::MAX_RESOLUTION_NANOS`], the
/// precise clock serves both forms.
#[derive(Debug, Clone, Copy)]
pub struct CoarseClock {
    /// The coarse clock's tick in nanoseconds; `None` when the precise clock serves.
    resolution_nanos: Option<i64>,
}

impl CoarseClock {
    /// Above this tick (10 ms) the coarse clock is not used.
    pub const MAX_RESOLUTION_NANOS: i64 = 10_000_000;

    /// Asks the kernel for the coarse clock's resolution once.
    pub fn new() -> Self {
        Self {
            resolution_nanos: coarse::resolution_nanos()
                .filter(|&r| r > 0 && r <= Self::MAX_RESOLUTION_NANOS),
        }
    }

    /// The coarse clock's tick in nanoseconds, or `None` when the precise clock serves.
    pub fn resolution_nanos(&self) -> Option<i64> {
        self.resolution_nanos
    }
}

impl Default for CoarseClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for CoarseClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    fn now_millis(&self) -> i64 {
        match self
            .resolution_nanos
            .and_then(|r| Some(coarse::now_nanos()? + r))
        {
            Some(nanos) => nanos.div_euclid(1_000_000),
            None => SystemClock.now_millis(),
        }
    }
}

#[cfg(target_os = "linux")]
mod coarse {
    //! `CLOCK_REALTIME_COARSE` through libc (served by the vDSO, no system call).

    #[allow(clippy::useless_conversion)] // the fields are narrower than i64 on 32-bit targets
    fn timespec_nanos(ts: &libc::timespec) -> i64 {
        i64::from(ts.tv_sec) * 1_000_000_000 + i64::from(ts.tv_nsec)
    }

    pub(super) fn resolution_nanos() -> Option<i64> {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid, writable timespec for the duration of the call.
        let rc = unsafe { libc::clock_getres(libc::CLOCK_REALTIME_COARSE, &mut ts) };
        (rc == 0).then(|| timespec_nanos(&ts))
    }

    pub(super) fn now_nanos() -> Option<i64> {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid, writable timespec for the duration of the call.
        let rc = unsafe { libc::clock_gettime(libc::CLOCK_REALTIME_COARSE, &mut ts) };
        (rc == 0).then(|| timespec_nanos(&ts))
    }
}

#[cfg(not(target_os = "linux"))]
mod coarse {
    pub(super) fn resolution_nanos() -> Option<i64> {
        None
    }

    pub(super) fn now_nanos() -> Option<i64> {
        None
    }
}

#[cfg(any(test, feature = "test-util"))]
pub use doubles::{ManualClock, SkewedClock};

/// Test doubles (cargo feature `test-util`): virtual time for tests and simulations.
#[cfg(any(test, feature = "test-util"))]
mod doubles {
    use super::Clock;
    use chrono::{DateTime, TimeDelta, Utc};
    use std::sync::atomic::{AtomicI64, Ordering};
    use std::sync::Arc;

    /// A clock that only moves when told to; shared by cloning.
    #[derive(Debug, Clone)]
    pub struct ManualClock {
        millis: Arc<AtomicI64>,
    }

    impl ManualClock {
        /// A clock standing at `start` (millisecond precision).
        pub fn new(start: DateTime<Utc>) -> Self {
            Self {
                millis: Arc::new(AtomicI64::new(start.timestamp_millis())),
            }
        }

        /// Moves the clock forward (or backward, for a negative delta).
        pub fn advance(&self, by: TimeDelta) {
            self.millis
                .fetch_add(by.num_milliseconds(), Ordering::SeqCst);
        }

        /// Sets the clock to `at`.
        pub fn set(&self, at: DateTime<Utc>) {
            self.millis.store(at.timestamp_millis(), Ordering::SeqCst);
        }
    }

    impl Clock for ManualClock {
        fn now(&self) -> DateTime<Utc> {
            DateTime::from_timestamp_millis(self.millis.load(Ordering::SeqCst))
                .expect("virtual time stays within chrono's range")
        }

        fn now_millis(&self) -> i64 {
            self.millis.load(Ordering::SeqCst)
        }
    }

    /// Another clock plus a fixed offset: a machine whose clock is skewed.
    #[derive(Clone)]
    pub struct SkewedClock {
        inner: Arc<dyn Clock>,
        skew: TimeDelta,
    }

    impl SkewedClock {
        /// `inner`'s time plus `skew` (negative for a clock that runs behind).
        pub fn new(inner: Arc<dyn Clock>, skew: TimeDelta) -> Self {
            Self { inner, skew }
        }
    }

    impl Clock for SkewedClock {
        fn now(&self) -> DateTime<Utc> {
            self.inner.now() + self.skew
        }

        fn now_millis(&self) -> i64 {
            self.inner.now_millis() + self.skew.num_milliseconds()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeDelta;
    use std::sync::Arc;

    #[test]
    fn the_system_clock_agrees_with_itself_in_both_forms() {
        let millis = SystemClock.now_millis();
        let datetime = SystemClock.now().timestamp_millis();
        assert!((datetime - millis).abs() < 1000, "{millis} vs {datetime}");
    }

    #[test]
    fn the_coarse_clock_reads_at_most_one_tick_ahead_of_the_precise_clock() {
        let clock = CoarseClock::new();
        let tick_ms = clock
            .resolution_nanos()
            .map_or(0, |r| (r + 999_999) / 1_000_000);
        for _ in 0..1000 {
            let before = SystemClock.now_millis();
            let coarse = clock.now_millis();
            let after = SystemClock.now_millis();
            assert!(
                coarse <= after + tick_ms,
                "coarse {coarse} more than one tick ({tick_ms} ms) ahead of {after}"
            );
            // Behind only by a late tick: far less than the 2 s of instance skew ε budgets.
            assert!(
                coarse > before - 1000,
                "coarse {coarse} far behind {before}"
            );
        }
    }

    #[test]
    fn a_skewed_clock_follows_its_inner_clock_with_a_fixed_offset() {
        let start = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let manual = ManualClock::new(start);
        let skewed = SkewedClock::new(Arc::new(manual.clone()), TimeDelta::milliseconds(-1500));

        manual.advance(TimeDelta::seconds(10));

        assert_eq!(manual.now(), start + TimeDelta::seconds(10));
        assert_eq!(skewed.now(), start + TimeDelta::milliseconds(8500));
        assert_eq!(skewed.now_millis(), skewed.now().timestamp_millis());
    }
}
