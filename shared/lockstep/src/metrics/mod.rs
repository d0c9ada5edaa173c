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

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, PoisonError};

/// At most this many values of one metric go into one document (the specification's limit on
/// a metric's values); more in one invocation are dropped and logged.
pub const MAX_VALUES: usize = 100;

/// One instance's counts and values since its last invocation ended.
#[derive(Debug)]
pub struct Metrics {
    counts: [AtomicU32; Count::ALL.len()],
    values: Mutex<Vec<(Millis, f64)>>,
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
    }

    /// Takes what was counted since the last take, leaving nothing behind.
    pub fn take(&self) -> Taken {
        let counts = std::array::from_fn(|i| self.counts[i].swap(0, Ordering::Relaxed));
        let values =
            std::mem::take(&mut *self.values.lock().unwrap_or_else(PoisonError::into_inner));
        Taken { counts, values }
    }
}

/// What one invocation counted: the content of its document.
#[derive(Debug, Clone, PartialEq)]
pub struct Taken {
    counts: [u32; Count::ALL.len()],
    values: Vec<(Millis, f64)>,
}

impl Taken {
    /// How many times `count` was counted.
    pub fn count(&self, count: Count) -> u32 {
        self.counts[count.index()]
    }

    /// The values of `metric`, in the order they were recorded.
    pub fn values(&self, metric: Millis) -> impl Iterator<Item = f64> + '_ {
        self.values
            .iter()
            .filter(move |(m, _)| *m == metric)
            .map(|(_, v)| *v)
    }

    /// Whether nothing was counted or recorded.
    pub fn is_empty(&self) -> bool {
        self.counts.iter().all(|&c| c == 0) && self.values.is_empty()
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
}
