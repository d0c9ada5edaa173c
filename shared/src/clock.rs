//! Time as a dependency. Every piece of freshness and consistency logic asks a [`Clock`], so unit
//! tests and the fleet simulation run in virtual time, deterministically.
//!
//! Freshness and consistency both use the wall clock on purpose: the consistency rule compares
//! against a stamp written by another machine's wall clock, and the skew between the two is what
//! ε budgets for. A monotonic clock would not make that comparison any safer.

use chrono::{DateTime, TimeDelta, Utc};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_system_clock_agrees_with_itself_in_both_forms() {
        let millis = SystemClock.now_millis();
        let datetime = SystemClock.now().timestamp_millis();
        assert!((datetime - millis).abs() < 1000, "{millis} vs {datetime}");
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
