//! The simulated world: one public flag defined by a two-variant split, deployed again and
//! again by the real stamping code (the previous content as deployed), with the world's own
//! model of every user's value under every deployment, written here independently of the
//! library: each user's bucket position, computed once with flagd's bucketing, decides their
//! value under a split of any share and under a ramp at any instant.

use chrono::{DateTime, Utc};
use lockstep::history::MAX_KEPT;
use lockstep::stamp::StampOptions;
use lockstep::targeted::Context;
use lockstep::ManualClock;
use lockstep_targeting::split::murmur3_x86_32;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};
use std::time::Duration;

pub const FLAG: &str = "checkout";
pub const P_MS: i64 = 45_000;
pub const Q_MS: i64 = 15_000;
pub const EPSILON_MS: i64 = 5_000;
pub const USERS: usize = 2_000;
/// A narrowing's drain, when it has one: longer than any journey (two minutes).
pub const DRAIN_MS: i64 = 180_000;

pub fn at(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).expect("in range")
}

pub fn user(u: usize) -> Context {
    json!({"targetingKey": format!("user-{u}")})
        .as_object()
        .cloned()
        .unwrap()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    First,
    Widen,
    Narrow,
    Edit,
    Ramp,
}

/// A ramp: the share grows from the deployment's `percent` to `to` between two instants.
#[derive(Debug, Clone, Copy)]
pub struct RampSpec {
    pub to: u32,
    pub start_ms: i64,
    pub end_ms: i64,
}

/// One deployment: when it starts, its Δ, its stamped content and what it deploys.
pub struct Deployment {
    pub start_ms: i64,
    pub duration_ms: i64,
    pub content: Vec<u8>,
    pub kind: Kind,
    /// The split's share, in percent (a ramp's share before it starts).
    pub percent: u32,
    pub ramp: Option<RampSpec>,
    pub drain_ms: Option<i64>,
}

impl Deployment {
    /// `T + Δ + P + ε`.
    pub fn consistent_ms(&self) -> i64 {
        self.start_ms + self.duration_ms + P_MS + EPSILON_MS
    }

    /// `T + Δ + Q + ε`.
    pub fn journey_opens_ms(&self) -> i64 {
        self.start_ms + self.duration_ms + Q_MS + EPSILON_MS
    }

    /// The share at true time `t`.
    pub fn share_at(&self, t: i64) -> u32 {
        match self.ramp {
            None => self.percent,
            Some(r) if t <= r.start_ms => self.percent,
            Some(r) if t >= r.end_ms => r.to,
            Some(r) => {
                let grown =
                    i64::from(r.to - self.percent) * (t - r.start_ms) / (r.end_ms - r.start_ms);
                self.percent + grown as u32
            }
        }
    }

    /// When a user at `position` enters under this deployment's ramp, if it lets them in.
    pub fn inclusion_ms(&self, position: u32) -> Option<i64> {
        let r = self.ramp?;
        if position < self.percent || position >= r.to {
            return None;
        }
        let needed = i64::from(position + 1 - self.percent);
        let length = r.end_ms - r.start_ms;
        let rate = i64::from(r.to - self.percent);
        Some(r.start_ms + (needed * length + rate - 1) / rate)
    }
}

pub fn definition(percent: u32, rule: &str, ramp: Option<RampSpec>) -> Value {
    let mut rule_body = json!({"split": [
        {"variant": "on", "value": true, "weight": percent},
        {"variant": "off", "value": false, "weight": 100 - percent}]});
    if let Some(r) = ramp {
        rule_body["ramp"] = json!({
            "weight": r.to,
            "start": at(r.start_ms).to_rfc3339(),
            "end": at(r.end_ms).to_rfc3339(),
        });
    }
    json!({"default": false, "rules": {rule: rule_body}})
}

/// The world's deployments, each user's bucket position, and the true clock.
pub struct World {
    pub now: ManualClock,
    pub deployments: Vec<Deployment>,
    /// Each user's position among 100: `(murmur3(flag + key) × 100) >> 32`; a share of p
    /// percent serves them `true` when position < p.
    pub position: Vec<u32>,
}

impl World {
    pub fn new(seed: u64, hours: i64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x7a67);
        let start = DateTime::parse_from_rfc3339("2026-12-01T00:00:00Z")
            .unwrap()
            .timestamp_millis();
        let mut deployments: Vec<Deployment> = Vec::new();
        let mut t = start;
        let mut percent: u32 = 5;
        let mut rule_n = 0;
        let mut deployed: Option<Vec<u8>> = None;
        while t < start + hours * 3_600_000 {
            let kind = match deployments.len() {
                0 => Kind::First,
                _ => match rng.random_range(0..12) {
                    0..=4 if percent < 100 => Kind::Widen,
                    5..=6 if percent < 95 => Kind::Ramp,
                    0..=8 if percent > 0 => Kind::Narrow,
                    _ => Kind::Edit,
                },
            };
            let duration_ms = [0, 60_000, 600_000][rng.random_range(0..3)];
            let mut ramp = None;
            let mut drain_ms = None;
            match kind {
                Kind::Widen => percent = (percent + rng.random_range(5..=40)).min(100),
                Kind::Narrow => {
                    percent = percent.saturating_sub(rng.random_range(5..=30));
                    drain_ms = rng.random_bool(0.5).then_some(DRAIN_MS);
                }
                Kind::Edit => rule_n += 1,
                Kind::Ramp => {
                    // As `lockstep deploy --ramp` starts it (when every instance holds it), or,
                    // one time in three, at once: the deployment's own bound then applies.
                    let start_ms = if rng.random_bool(1.0 / 3.0) {
                        t
                    } else {
                        t + duration_ms + P_MS + EPSILON_MS
                    };
                    let length = rng.random_range(5..=30) * 60_000;
                    ramp = Some(RampSpec {
                        to: (percent + rng.random_range(20..=60)).min(100),
                        start_ms,
                        end_ms: start_ms + length,
                    });
                }
                Kind::First => {}
            }
            let rule = format!("rollout-{rule_n}");
            let flags = json!({FLAG: definition(percent, &rule, ramp)});
            let options = StampOptions {
                drain: drain_ms.map(|d| Duration::from_millis(d as u64)),
                new_key: Some(lockstep::journey::JourneyKey::from_bytes([21; 32])),
                ..StampOptions::default()
            };
            let stamped = lockstep::stamp::stamp_with(
                flags.to_string().as_bytes(),
                deployed.as_deref(),
                at(t),
                Duration::from_millis(duration_ms as u64),
                &options,
            )
            .expect("stamps");
            deployed = Some(stamped.content.clone());
            deployments.push(Deployment {
                start_ms: t,
                duration_ms,
                content: stamped.content,
                kind,
                percent,
                ramp,
                drain_ms,
            });
            // The next one after this one's rollout (and ramp), 30 s to 10 min later: some
            // within the window (Δ + P + ε) of this one, most after it.
            let after = ramp.map_or(t + duration_ms, |r| r.end_ms.max(t + duration_ms));
            if let Some(r) = ramp {
                percent = r.to;
            }
            t = after + rng.random_range(30_000..600_000);
        }
        let position = (0..USERS)
            .map(|u| {
                let key = format!("user-{u}");
                ((u64::from(murmur3_x86_32(&[FLAG, &key])) * 100) >> 32) as u32
            })
            .collect();
        Self {
            now: ManualClock::new(at(start)),
            deployments,
            position,
        }
    }

    /// User `u`'s value under deployment `k` at true time `t` (the bucket does not depend on
    /// the rule's name).
    pub fn value(&self, u: usize, k: usize, t: i64) -> bool {
        self.position[u] < self.deployments[k].share_at(t)
    }

    /// The latest deployment started by true time `t`.
    pub fn latest(&self, t: i64) -> usize {
        self.deployments.partition_point(|d| d.start_ms <= t) - 1
    }

    /// The version a session with `bucket` is handed at true time `t`.
    pub fn version_for(&self, t: i64, bucket: f64) -> usize {
        let latest = self.latest(t);
        let d = &self.deployments[latest];
        if latest == 0 || d.duration_ms == 0 {
            return latest;
        }
        let share = (t - d.start_ms) as f64 / d.duration_ms as f64;
        if bucket < share {
            latest
        } else {
            latest - 1
        }
    }

    /// Rule 10 for user `u` on an instance holding deployment `k` at `t`, from the world's
    /// list: the newest definition under which their value changed (the oldest one the
    /// content keeps counting as a change).
    pub fn step(&self, u: usize, k: usize, t: i64) -> usize {
        let oldest_kept = k.saturating_sub(MAX_KEPT);
        let mut i = k;
        while i > oldest_kept && self.value(u, i, t) == self.value(u, i - 1, t) {
            i -= 1;
        }
        i
    }

    /// When user `u`'s journey may open on an instance holding `k` at `t`, for a client with
    /// journey tokens bound to them: their step's `T + Δ + Q + ε`, and no earlier than ε after
    /// their ramp instant under `k` when it is within ε of `t`.
    pub fn journey_opens_ms(&self, u: usize, k: usize, t: i64) -> i64 {
        let step = self.deployments[self.step(u, k, t)].journey_opens_ms();
        match self.deployments[k].inclusion_ms(self.position[u]) {
            Some(instant) if (instant - t).abs() <= EPSILON_MS => step.max(instant + EPSILON_MS),
            _ => step,
        }
    }

    /// Whether a deployment after `opened_on` and started by `t` switched user `u` off
    /// (a narrowing): with its drain, only once the drain is over (`T + Δ + P + ε + drain`,
    /// less the instances' skew).
    pub fn switched_off_since(&self, u: usize, opened_on: usize, t: i64) -> bool {
        (opened_on + 1..=self.latest(t)).any(|k| {
            let d = &self.deployments[k];
            let dropped = self.value(u, k - 1, t) && !self.value(u, k, t);
            let drained_until = d.drain_ms.map_or(0, |drain| d.consistent_ms() + drain);
            dropped && t >= drained_until - EPSILON_MS / 2
        })
    }
}
