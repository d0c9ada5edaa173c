//! What an instance counts (design rule 11), and the one CloudWatch Embedded Metric Format
//! document it writes per invocation.
//!
//! - [`catalogue`]: the metric names and units (`docs/metrics.md` lists the same).
//! - [`Metrics`]: one instance's counts since its last invocation ended. The cache records its
//!   refreshes, catch-ups and cold start in its own ([`crate::FlagCache::metrics`]); the gate,
//!   the HTTP layer and the storage code add theirs to the same. Counting is an atomic add: no
//!   lock, no allocation on a request's path.
//! - [`emf`]: the document, rendered when an invocation ends
//!   ([`crate::FlagCache::end_invocation`]): namespace and dimensions as Powertools sets them,
//!   never a user or request id.
//!
//! Nothing is global: in Lambda one process is one instance, and the local runner and the tests
//! hold many instances in one process, each with its own [`Metrics`].

pub mod catalogue;
pub mod emf;

pub use catalogue::{Count, Millis};
pub use emf::{Emf, EmfError};

use smallvec::SmallVec;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Mutex, PoisonError};

/// At most this many values of one metric go into one document (the specification's limit on
/// a metric's values); more in one invocation are dropped and logged.
pub const MAX_VALUES: usize = 100;

/// The values one document holds without allocating: an invocation records one or two.
type Values = SmallVec<[(Millis, f64); 4]>;

// Which counts are non-zero is one bit each of a `u64`.
const _: () = assert!(Count::ALL.len() <= 64);

/// One instance's counts and values since its last invocation ended.
#[derive(Debug)]
pub struct Metrics {
    counts: [AtomicU32; Count::ALL.len()],
    values: Mutex<Vec<(Millis, f64)>>,
    /// Whether `values` may hold something: an invocation that recorded nothing takes no lock.
    recorded: AtomicBool,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Nothing counted yet.
    pub fn new() -> Self {
        Self {
            counts: std::array::from_fn(|_| AtomicU32::new(0)),
            values: Mutex::new(Vec::new()),
            recorded: AtomicBool::new(false),
        }
    }

    /// Counts one `count`.
    #[inline]
    pub fn count(&self, count: Count) {
        self.counts[count.index()].fetch_add(1, Ordering::Relaxed);
    }

    /// Records one value of `metric`, in milliseconds; a value that is not finite (no JSON
    /// number can hold it) is dropped.
    pub fn record(&self, metric: Millis, millis: f64) {
        if !millis.is_finite() {
            return;
        }
        self.values
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((metric, millis));
        // After the push: a take that sees the flag finds the value (or an earlier take did).
        self.recorded.store(true, Ordering::Release);
    }

    /// Takes what was counted since the last take, leaving nothing behind.
    ///
    /// On every invocation's path: a count that is zero is only read (an atomic swap costs
    /// more than a load), and the values' lock is taken only when something was recorded.
    pub fn take(&self) -> Taken {
        let mut nonzero = 0u64;
        let counts = std::array::from_fn(|i| {
            let counter = &self.counts[i];
            if counter.load(Ordering::Relaxed) == 0 {
                return 0;
            }
            let taken = counter.swap(0, Ordering::Relaxed);
            if taken > 0 {
                nonzero |= 1 << i;
            }
            taken
        });
        let values = if self.recorded.swap(false, Ordering::Acquire) {
            self.values
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .drain(..)
                .collect()
        } else {
            Values::new()
        };
        Taken {
            counts,
            nonzero,
            values,
        }
    }
}

/// What one invocation counted: the content of its document.
#[derive(Debug, Clone, PartialEq)]
pub struct Taken {
    counts: [u32; Count::ALL.len()],
    /// Bit `i` set when `counts[i]` is non-zero.
    nonzero: u64,
    values: Values,
}

impl Taken {
    /// How many times `count` was counted.
    pub fn count(&self, count: Count) -> u32 {
        self.counts[count.index()]
    }

    /// The counts that are not zero, in catalogue order, with their numbers.
    pub fn counted(&self) -> impl Iterator<Item = (Count, u32)> + '_ {
        let mut bits = self.nonzero;
        std::iter::from_fn(move || {
            if bits == 0 {
                return None;
            }
            let i = bits.trailing_zeros() as usize;
            bits &= bits - 1;
            Some((Count::ALL[i], self.counts[i]))
        })
    }

    /// The values of `metric`, in the order they were recorded.
    pub fn values(&self, metric: Millis) -> impl Iterator<Item = f64> + '_ {
        self.values
            .iter()
            .filter(move |(m, _)| *m == metric)
            .map(|(_, v)| *v)
    }

    /// Adds one value of `metric` (measured as the invocation ends, not recorded during it); a
    /// value that is not finite is dropped, as [`Metrics::record`] drops it.
    pub fn with_value(mut self, metric: Millis, millis: f64) -> Self {
        if millis.is_finite() {
            self.values.push((metric, millis));
        }
        self
    }

    /// Whether nothing was counted or recorded.
    pub fn is_empty(&self) -> bool {
        self.nonzero == 0 && self.values.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_take_returns_what_was_counted_and_leaves_nothing_behind() {
        let metrics = Metrics::new();
        metrics.count(Count::GateOpen);
        metrics.count(Count::GateOpen);
        metrics.count(Count::Http5xx);
        metrics.record(Millis::ConfigAge, 1200.0);
        let taken = metrics.take();
        assert_eq!(taken.count(Count::GateOpen), 2);
        assert_eq!(taken.count(Count::Http5xx), 1);
        assert_eq!(taken.count(Count::GateBehind), 0);
        assert_eq!(
            taken.values(Millis::ConfigAge).collect::<Vec<_>>(),
            [1200.0]
        );
        assert!(!taken.is_empty());
        assert!(
            metrics.take().is_empty(),
            "the next invocation starts from zero"
        );
    }

    #[test]
    fn counted_lists_the_non_zero_counts_in_catalogue_order() {
        let metrics = Metrics::new();
        metrics.count(Count::Http5xx);
        metrics.count(Count::GateOpen);
        metrics.count(Count::GateOpen);
        let last = *Count::ALL.last().unwrap();
        metrics.count(last);
        let taken = metrics.take();
        let mut expected = vec![(Count::GateOpen, 2), (Count::Http5xx, 1), (last, 1)];
        expected.sort_by_key(|(c, _)| c.index());
        assert_eq!(taken.counted().collect::<Vec<_>>(), expected);
        assert!(metrics.take().counted().next().is_none());
    }

    #[test]
    fn values_recorded_after_a_take_wait_for_the_next_one_and_with_value_adds_one() {
        let metrics = Metrics::new();
        metrics.record(Millis::DeploymentLag, 1.0);
        assert_eq!(
            metrics
                .take()
                .values(Millis::DeploymentLag)
                .collect::<Vec<_>>(),
            [1.0]
        );
        metrics.record(Millis::DeploymentLag, 2.0);
        let taken = metrics.take().with_value(Millis::ConfigAge, 3.0);
        assert_eq!(
            taken.values(Millis::DeploymentLag).collect::<Vec<_>>(),
            [2.0]
        );
        assert_eq!(taken.values(Millis::ConfigAge).collect::<Vec<_>>(), [3.0]);
        assert!(metrics.take().is_empty());
        assert!(metrics
            .take()
            .with_value(Millis::ConfigAge, f64::NAN)
            .is_empty());
    }
}
