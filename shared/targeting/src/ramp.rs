//! Ramps: a two-variant split whose first variant's weight grows from its split weight to
//! `weight` between two instants, with no deployment per step (a Lockstep extension, design
//! rule 10).
//!
//! ```json
//! "rollout": {
//!   "split": [
//!     {"variant": "on", "value": true, "weight": 1000},
//!     {"variant": "off", "value": false, "weight": 9000}
//!   ],
//!   "ramp": {"weight": 10000, "start": "2026-12-07T09:00:00Z", "end": "2026-12-07T21:00:00Z"}
//! }
//! ```
//!
//! At instant t (read to the millisecond) the first variant's weight is
//! `w(t) = from + ⌊(to − from) × (t − start) / (end − start)⌋`, clamped to `from` before `start`
//! and `to` after `end`; the total stays the split's. A caller's bucket position
//! `b = (hash × total) >> 32` ([`crate::split`]) never moves, so the first variant's range only
//! grows: a caller in it stays in it, and a caller at `from ≤ b < to` enters it at their own
//! instant, [`Ramp::inclusion_at`], the first millisecond with `w(t) > b`. The instants are
//! written with an offset (RFC 3339): every instance reaches them on its own clock, within ε of
//! the others.
//!
//! A ramp only widens (`weight` above the first variant's split weight, at most the total): a
//! narrowing switches users off, which is a deployment (with a drain, design rule 9).

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

/// A validated ramp of a two-variant split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ramp {
    /// The first variant's weight before `start` (its split weight).
    pub from: u64,
    /// Its weight from `end` on.
    pub to: u64,
    /// When it starts growing, Unix milliseconds.
    pub start_ms: i64,
    /// When it reaches `to`, Unix milliseconds.
    pub end_ms: i64,
}

impl Ramp {
    /// Parses a rule's `ramp` for a split whose weights are `weights` (it must have exactly two
    /// variants): `{"weight", "start", "end"}`.
    pub fn parse(value: &Value, weights: &[u32]) -> Result<Self, String> {
        let Value::Object(fields) = value else {
            return Err("'ramp' must be an object {weight, start, end}".into());
        };
        let &[first, second] = weights else {
            return Err("a 'ramp' needs a split of exactly two variants".into());
        };
        let (from, total) = (u64::from(first), u64::from(first) + u64::from(second));
        let to = fields
            .get("weight")
            .and_then(Value::as_u64)
            .ok_or("the ramp's 'weight' must be a non-negative integer")?;
        if to <= from || to > total {
            return Err(format!(
                "the ramp's 'weight' must be above the first variant's weight ({from}) and at \
                 most the split's total ({total}): a ramp only widens"
            ));
        }
        let start_ms = instant(fields, "start")?;
        let end_ms = instant(fields, "end")?;
        if end_ms <= start_ms {
            return Err("the ramp's 'end' must be later than its 'start'".into());
        }
        Ok(Self {
            from,
            to,
            start_ms,
            end_ms,
        })
    }

    /// The first variant's weight at `now_ms`.
    pub fn weight_at(&self, now_ms: i64) -> u64 {
        if now_ms <= self.start_ms {
            return self.from;
        }
        if now_ms >= self.end_ms {
            return self.to;
        }
        let elapsed = u128::try_from(now_ms - self.start_ms).unwrap_or(0);
        let length = u128::try_from(self.end_ms - self.start_ms).unwrap_or(1);
        let grown = u128::from(self.to - self.from) * elapsed / length;
        self.from + u64::try_from(grown).unwrap_or(0)
    }

    /// When a caller at bucket position `position` enters the first variant, Unix
    /// milliseconds: `None` when they are in it from the start (`position < from`) or never
    /// (`position ≥ to`).
    pub fn inclusion_at(&self, position: u64) -> Option<i64> {
        if position < self.from || position >= self.to {
            return None;
        }
        // The first t with ⌊(to − from)(t − start) / L⌋ ≥ position + 1 − from.
        let needed = u128::from(position + 1 - self.from);
        let length = u128::try_from(self.end_ms - self.start_ms).unwrap_or(1);
        let rate = u128::from(self.to - self.from);
        let after = (needed * length).div_ceil(rate);
        Some(self.start_ms + i64::try_from(after).unwrap_or(i64::MAX))
    }
}

fn instant(fields: &Map<String, Value>, key: &str) -> Result<i64, String> {
    let text = fields
        .get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("the ramp's '{key}' must be an RFC 3339 instant"))?;
    DateTime::parse_from_rfc3339(text)
        .map(|at| at.with_timezone(&Utc).timestamp_millis())
        .map_err(|_| {
            format!("the ramp's '{key}' {text:?} must be an RFC 3339 instant with an offset")
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ramp() -> Ramp {
        Ramp::parse(
            &json!({"weight": 10_000, "start": "2026-12-07T09:00:00Z", "end": "2026-12-07T09:10:00Z"}),
            &[2_500, 7_500],
        )
        .unwrap()
    }

    #[test]
    fn the_weight_grows_linearly_between_the_instants() {
        let ramp = ramp();
        assert_eq!(ramp.weight_at(ramp.start_ms - 1), 2_500);
        assert_eq!(ramp.weight_at(ramp.start_ms), 2_500);
        assert_eq!(ramp.weight_at(ramp.start_ms + 300_000), 6_250);
        assert_eq!(ramp.weight_at(ramp.end_ms), 10_000);
        assert_eq!(ramp.weight_at(i64::MAX), 10_000);
    }

    #[test]
    fn a_position_enters_at_the_first_millisecond_its_weight_exceeds_it() {
        let ramp = ramp();
        for position in [2_500, 2_501, 4_321, 6_250, 9_999] {
            let at = ramp.inclusion_at(position).unwrap();
            assert!(ramp.weight_at(at) > position, "{position}");
            assert!(ramp.weight_at(at - 1) <= position, "{position}");
        }
        assert_eq!(ramp.inclusion_at(2_499), None);
        assert_eq!(ramp.inclusion_at(10_000), None);
    }

    #[test]
    fn a_ramp_only_widens_a_two_variant_split_between_ordered_instants() {
        let ok = json!({"weight": 100, "start": "2026-12-07T09:00:00+01:00", "end": "2026-12-07T09:00:01+01:00"});
        assert!(Ramp::parse(&ok, &[10, 90]).is_ok());
        for (bad, weights) in [
            (
                json!({"weight": 10, "start": "2026-12-07T09:00:00Z", "end": "2026-12-07T10:00:00Z"}),
                vec![10, 90],
            ),
            (
                json!({"weight": 101, "start": "2026-12-07T09:00:00Z", "end": "2026-12-07T10:00:00Z"}),
                vec![10, 90],
            ),
            (
                json!({"weight": 50, "start": "2026-12-07T10:00:00Z", "end": "2026-12-07T10:00:00Z"}),
                vec![10, 90],
            ),
            (
                json!({"weight": 50, "start": "2026-12-07T09:00:00", "end": "2026-12-07T10:00:00Z"}),
                vec![10, 90],
            ),
            (
                json!({"weight": 50, "start": "2026-12-07T09:00:00Z"}),
                vec![10, 90],
            ),
            (
                json!({"weight": 50, "start": "2026-12-07T09:00:00Z", "end": "2026-12-07T10:00:00Z"}),
                vec![10, 40, 50],
            ),
            (json!([50]), vec![10, 90]),
        ] {
            assert!(Ramp::parse(&bad, &weights).is_err(), "{bad}");
        }
    }
}
