//! Weighted splits, bucketed exactly as OpenFeature flagd's `fractional` operator (v2) does, so
//! any flagd-compatible tool computes the same cohorts:
//!
//! - the bucketing string is the seed (the flag key unless the split names another) followed by
//!   the bucketing value (the targeting key unless the split names an attribute);
//! - its MurmurHash3 x86_32 with seed 0, as an unsigned 32-bit number `h`;
//! - bucket `b = (h × total weight) >> 32`, and the variant is the first whose cumulative weight
//!   exceeds `b`.
//!
//! Weights are non-negative integers summing to between 1 and `i32::MAX` (flagd's bound), so a
//! weight of 1 in 10,000 (or finer) is expressible. A two-variant split may [`Ramp`]: its first
//! variant's weight then grows with time, the total unchanged, so a caller's position never moves.

use crate::ramp::Ramp;
use serde_json::Value;

/// The most the weights of one split may sum to (flagd's bound).
pub const MAX_TOTAL_WEIGHT: u64 = i32::MAX as u64;

/// One bucket of a split: the variant's name, its value, its weight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bucket {
    /// The variant's name (what an evaluation reports as its variant).
    pub variant: String,
    /// The value it serves.
    pub value: Value,
    /// Its weight.
    pub weight: u32,
}

/// A validated split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    /// The buckets, in the order their cumulative ranges are laid out.
    pub buckets: Vec<Bucket>,
    /// The hash's prefix; `None` means the flag key.
    pub seed: Option<String>,
    /// The context key whose (string) value is hashed; `None` means `targetingKey`.
    pub by: Option<String>,
    /// Its ramp, when its first variant's weight grows with time.
    pub ramp: Option<Ramp>,
    total: u64,
}

impl Split {
    /// A split of these buckets; `Err` when the weights sum to 0 or beyond [`MAX_TOTAL_WEIGHT`].
    pub fn new(
        buckets: Vec<Bucket>,
        seed: Option<String>,
        by: Option<String>,
    ) -> Result<Self, String> {
        let total: u64 = buckets.iter().map(|b| u64::from(b.weight)).sum();
        if total == 0 {
            return Err("the split's weights sum to 0".to_owned());
        }
        if total > MAX_TOTAL_WEIGHT {
            return Err(format!(
                "the split's weights sum to {total}, beyond {MAX_TOTAL_WEIGHT}"
            ));
        }
        Ok(Self {
            buckets,
            seed,
            by,
            ramp: None,
            total,
        })
    }

    /// This split, ramped.
    pub fn ramped(self, ramp: Ramp) -> Self {
        Self {
            ramp: Some(ramp),
            ..self
        }
    }

    /// The bucket at `now_ms` for a bucketing value (the targeting key, or the `by` attribute's
    /// value), for the flag `flag`.
    pub fn bucket(&self, flag: &str, value: &str, now_ms: i64) -> &Bucket {
        let Some(ramp) = &self.ramp else {
            let seed = self.seed.as_deref().unwrap_or(flag);
            let index = bucket_index(&[seed, value], self.buckets.iter().map(|b| b.weight));
            return &self.buckets[index];
        };
        let index = usize::from(self.position(flag, value) >= ramp.weight_at(now_ms));
        &self.buckets[index]
    }

    /// A bucketing value's position among the split's total weight: `(hash × total) >> 32`.
    pub fn position(&self, flag: &str, value: &str) -> u64 {
        let seed = self.seed.as_deref().unwrap_or(flag);
        (u64::from(murmur3_x86_32(&[seed, value])) * self.total) >> 32
    }

    /// For a ramped split, when the bucketing value enters the first variant (Unix
    /// milliseconds; [`Ramp::inclusion_at`]).
    pub fn inclusion_at(&self, flag: &str, value: &str) -> Option<i64> {
        let ramp = self.ramp.as_ref()?;
        ramp.inclusion_at(self.position(flag, value))
    }
}

/// The index of the bucket that the concatenation of `parts` falls in, among buckets of these
/// weights (summing to between 1 and [`MAX_TOTAL_WEIGHT`]).
pub fn bucket_index(parts: &[&str], weights: impl Iterator<Item = u32> + Clone) -> usize {
    let total: u64 = weights.clone().map(u64::from).sum();
    let hash = u64::from(murmur3_x86_32(parts));
    let bucket = (hash * total) >> 32;
    let mut range_end = 0u64;
    let mut last = 0;
    for (index, weight) in weights.enumerate() {
        range_end += u64::from(weight);
        if bucket < range_end {
            return index;
        }
        last = index;
    }
    // Unreachable for a total ≥ 1 (bucket < total); the last bucket keeps this total.
    last
}

/// MurmurHash3 x86_32, seed 0, of the concatenation of `parts` (no separator, as flagd's `cat`).
pub fn murmur3_x86_32(parts: &[&str]) -> u32 {
    let mut reader = std::io::Read::chain(
        parts.first().copied().unwrap_or("").as_bytes(),
        Concat(&parts[parts.len().min(1)..], 0),
    );
    murmur3::murmur3_32(&mut reader, 0).expect("reading bytes in memory cannot fail")
}

/// The remaining parts as one reader, without copying them into one string.
struct Concat<'a>(&'a [&'a str], usize);

impl std::io::Read for Concat<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while let Some(part) = self.0.first() {
            let rest = &part.as_bytes()[self.1..];
            if rest.is_empty() {
                self.0 = &self.0[1..];
                self.1 = 0;
                continue;
            }
            let n = rest.len().min(buf.len());
            buf[..n].copy_from_slice(&rest[..n]);
            self.1 += n;
            return Ok(n);
        }
        Ok(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_of_parts_is_the_hash_of_their_concatenation() {
        let whole = murmur3_x86_32(&["fractional-flagjack"]);
        assert_eq!(murmur3_x86_32(&["fractional-flag", "jack"]), whole);
        assert_eq!(murmur3_x86_32(&["", "fractional-flag", "", "jack"]), whole);
        assert_eq!(murmur3_x86_32(&[]), murmur3_x86_32(&[""]));
    }

    #[test]
    fn murmur3_matches_the_reference_values() {
        // MurmurHash3_x86_32 reference outputs with seed 0 (SMHasher).
        assert_eq!(murmur3_x86_32(&[""]), 0);
        assert_eq!(murmur3_x86_32(&["hello"]), 0x248b_fa47);
        assert_eq!(
            murmur3_x86_32(&["The quick brown fox jumps over the lazy dog"]),
            0x2e4f_f723
        );
    }

    #[test]
    fn weights_must_sum_to_something_and_not_too_much() {
        let bucket = |weight| Bucket {
            variant: "v".into(),
            value: Value::Bool(true),
            weight,
        };
        assert!(Split::new(vec![bucket(0), bucket(0)], None, None).is_err());
        assert!(Split::new(vec![bucket(u32::MAX)], None, None).is_err());
        assert!(Split::new(vec![bucket(1), bucket(9_999)], None, None).is_ok());
    }

    #[test]
    fn a_zero_weight_bucket_never_receives_anyone() {
        for user in 0..2_000 {
            let key = format!("user-{user}");
            assert_ne!(bucket_index(&["flag", &key], [5, 0, 5].into_iter()), 1);
        }
    }
}
