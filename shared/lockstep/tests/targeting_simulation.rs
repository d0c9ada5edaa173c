//! A deterministic fleet simulation of per-user consistency (design rule 10, issue 21), driving
//! the real stamping code and the real cache.
//!
//! The world: one public flag defined by a weighted split, deployed again and again by the
//! stamping code (`lockstep::stamp::stamp`, the previous content as deployed): rollouts that
//! widen (the share grows), narrow (it shrinks) and rule edits that change no one's value (the
//! split rule renamed). Strategies are AllAtOnce, one minute and ten minutes; during a gradual
//! deployment each AppConfig session (each instance, and every cold start is a new one) gets the
//! new version when its random bucket falls under the growing percentage. Deployments follow one
//! another, as AppConfig runs one per environment at a time. Instances have clocks skewed within
//! ε and are replaced now and then (a cold start, a new session).
//!
//! Users read `/config/me` on a random instance (`view.public_flags_for` with their targeting
//! key, as the endpoint does). A **journey** opens when the flag is on and consistent *for that
//! user*; its feature calls then go to random instances over the next two minutes, and a call
//! served `false` is a **violation** unless a deployment later than the one the journey opened on
//! changed that user's value and had started (a narrowing: explained). There must be none.
//!
//! Two more counts, over every read made during a widening step's window (before the step's own
//! `T + Δ + P + ε`) by a user included both before and after it, on an instance that holds the
//! step or the one before:
//!
//! - `included_users_paused`: the instance said "not consistent" although, by the rule computed
//!   here from the world's own list of deployments (the newest definition under which the
//!   user's value changed, the oldest kept counting as a change), the user's time had come.
//!   Must be 0.
//! - `whole_flag_paused`: journeys that opened although the flag's own (whole-flag) stamp was
//!   not consistent yet: the journeys a whole-flag stamp would have paused. Must be > 0, which
//!   proves the per-user rule is what kept them open.
//!
//! The CI log keeps one line:
//! `targeting: journeys=N violations=0 widening_steps=S included_users_paused=0 whole_flag_paused=W`.
//! `LOCKSTEP_TARGETING_JOURNEYS` sets N (default 100,000; ≥ 1,000,000 on demand),
//! `LOCKSTEP_TARGETING_SEED` the seed.
//!
//! Not modelled here yet (issue 21's next steps): time ramps, per-user drains and journey-token
//! catch-up for flags defined by rules (tokens claim them off, so a journey's calls are decided
//! by the value each instance holds, as here).

use chrono::{DateTime, TimeDelta, Utc};
use lockstep::cache::CacheOptions;
use lockstep::history::MAX_KEPT;
use lockstep::source::{BoxFuture, Content, Fetched, SourceError};
use lockstep::targeted::Context;
use lockstep::{
    Clock, ConfigSource, FlagCache, FlagCatalog, FlagDecl, ManualClock, Overrides, Settings,
    SkewedClock, CATCH_UP_INTERVAL,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;
use std::time::Duration;

const FLAG: &str = "checkout";
const P_MS: i64 = 45_000;
const EPSILON_MS: i64 = 5_000;
const INSTANCES: usize = 16;
const USERS: usize = 2_000;
/// Journeys started per virtual hour.
const JOURNEYS_PER_HOUR: u64 = 20_000;

fn at(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).expect("in range")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    First,
    Widen,
    Narrow,
    Edit,
}

/// One deployment: when it starts, its Δ, its stamped content and the split it deploys.
struct Deployment {
    start_ms: i64,
    duration_ms: i64,
    content: Vec<u8>,
    kind: Kind,
    /// The split's share, in percent.
    percent: u32,
}

impl Deployment {
    /// `T + Δ + P + ε`.
    fn consistent_ms(&self) -> i64 {
        self.start_ms + self.duration_ms + P_MS + EPSILON_MS
    }
}

fn definition(percent: u32, rule: &str) -> Value {
    json!({"default": false, "rules": {rule: {"split": [
        {"variant": "on", "value": true, "weight": percent},
        {"variant": "off", "value": false, "weight": 100 - percent}]}}})
}

/// The world's deployments, and the true clock.
struct World {
    now: ManualClock,
    deployments: Vec<Deployment>,
    /// Each user's smallest share of the split that serves them `true`.
    threshold: Vec<u32>,
}

impl World {
    fn new(seed: u64, hours: i64) -> Self {
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
                _ => match rng.random_range(0..10) {
                    0..=5 if percent < 100 => Kind::Widen,
                    0..=7 if percent > 0 => Kind::Narrow,
                    _ => Kind::Edit,
                },
            };
            match kind {
                Kind::Widen => percent = (percent + rng.random_range(5..=40)).min(100),
                Kind::Narrow => percent = percent.saturating_sub(rng.random_range(5..=30)),
                Kind::Edit => rule_n += 1,
                Kind::First => {}
            }
            let rule = format!("rollout-{rule_n}");
            let duration_ms = [0, 60_000, 600_000][rng.random_range(0..3)];
            let flags = json!({FLAG: definition(percent, &rule)});
            let stamped = lockstep::stamp::stamp(
                flags.to_string().as_bytes(),
                deployed.as_deref(),
                at(t),
                Duration::from_millis(duration_ms as u64),
            )
            .expect("stamps");
            deployed = Some(stamped.content.clone());
            deployments.push(Deployment {
                start_ms: t,
                duration_ms,
                content: stamped.content,
                kind,
                percent,
            });
            // The next one after this one's rollout, 30 s to 10 min later: some within the
            // window (Δ + P + ε) of this one, most after it.
            t += duration_ms + rng.random_range(30_000..600_000);
        }
        // Each user's smallest share that includes them, from the real evaluator (flagd's
        // bucketing keeps a user in as the share grows, so this decides every share).
        let splits: Vec<lockstep_targeting::Definition> = (0..=100)
            .map(|p| lockstep_targeting::Definition::parse(FLAG, &definition(p, "r")).unwrap())
            .collect();
        let threshold = (0..USERS)
            .map(|u| {
                let context = user(u);
                (0..=100u32)
                    .find(|p| {
                        lockstep_targeting::evaluate(&splits[*p as usize], &context, at(0)).value
                            == &json!(true)
                    })
                    .unwrap_or(101)
            })
            .collect();
        Self {
            now: ManualClock::new(at(start)),
            deployments,
            threshold,
        }
    }

    /// User `u`'s value under deployment `k` (the bucket does not depend on the rule's name).
    fn value(&self, u: usize, k: usize) -> bool {
        self.threshold[u] <= self.deployments[k].percent
    }

    /// The version a session with `bucket` is handed at true time `t`.
    fn version_for(&self, t: i64, bucket: f64) -> usize {
        let latest = self.deployments.partition_point(|d| d.start_ms <= t) - 1;
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

    /// Rule 10 for user `u` on an instance holding deployment `k`, from the world's list: the
    /// newest definition under which their value changed, the oldest one the content keeps
    /// counting as a change; its `T + Δ + P + ε`.
    fn per_user_consistent_ms(&self, u: usize, k: usize) -> i64 {
        let oldest_kept = k.saturating_sub(MAX_KEPT);
        let mut i = k;
        while i > oldest_kept && self.value(u, i) == self.value(u, i - 1) {
            i -= 1;
        }
        self.deployments[i].consistent_ms()
    }
}

fn user(u: usize) -> Context {
    json!({"targetingKey": format!("user-{u}")})
        .as_object()
        .cloned()
        .unwrap()
}

/// One AppConfig session as an instance's source.
struct SimSource {
    world: Arc<World>,
    bucket: f64,
    delivered: Option<usize>,
}

impl ConfigSource for SimSource {
    fn fetch(&mut self, _now: DateTime<Utc>) -> BoxFuture<'_, Result<Fetched, SourceError>> {
        let version = self
            .world
            .version_for(self.world.now.now_millis(), self.bucket);
        let content = (self.delivered != Some(version)).then(|| Content {
            bytes: self.world.deployments[version].content.clone(),
            version: version.to_string(),
        });
        self.delivered = Some(version);
        Box::pin(async move {
            Ok(Fetched {
                content,
                next_poll_interval: Some(CATCH_UP_INTERVAL),
            })
        })
    }

    fn describe(&self) -> String {
        "simulated-appconfig".into()
    }
}

async fn instance(world: &Arc<World>, rng: &mut ChaCha8Rng) -> FlagCache {
    let skew = TimeDelta::milliseconds(rng.random_range(-EPSILON_MS / 2..=EPSILON_MS / 2));
    let options = CacheOptions {
        catalog: FlagCatalog::new(vec![FlagDecl::public(FLAG)]).unwrap(),
        overrides: Overrides::none(),
        settings: Settings {
            poll_interval: Duration::from_millis(P_MS as u64),
            epsilon: Duration::from_millis(EPSILON_MS as u64),
            ..Settings::default()
        },
        clock: Arc::new(SkewedClock::new(Arc::new(world.now.clone()), skew)),
    };
    let source = SimSource {
        world: world.clone(),
        bucket: rng.random(),
        delivered: None,
    };
    FlagCache::new(Box::new(source), options).await
}

/// What one read on one instance says for one user.
struct Read {
    value: bool,
    consistent: bool,
    degraded: bool,
    /// The deployment the instance holds.
    held: usize,
    /// The flag's own (whole-flag) `consistentAt` on that instance.
    whole_flag_consistent: bool,
}

async fn read(cache: &FlagCache, u: usize) -> Read {
    let view = cache.read().await;
    let context = user(u);
    let (_, status) = view
        .public_flags_for(&context)
        .find(|(name, _)| *name == FLAG)
        .expect("the flag is declared");
    let flag = view.snapshot().flag(FLAG).expect("declared");
    Read {
        value: status.value,
        consistent: status.consistent,
        degraded: view.degraded().is_some(),
        held: view.snapshot().version.parse().unwrap_or(0),
        whole_flag_consistent: flag.consistent_at.is_some_and(|c| view.now() >= c),
    }
}

#[derive(Debug, Default)]
struct Report {
    journeys: u64,
    violations: u64,
    explained: u64,
    widening_steps: usize,
    included_users_paused: u64,
    whole_flag_paused: u64,
    reads_in_widening_windows: u64,
}

/// An event in the queue: its time, a sequence number (ties in order), the user, the
/// deployment a call's journey opened on, and whether it is a call.
type Queued = Reverse<(i64, u64, usize, usize, bool)>;

enum Event {
    /// A user reads `/config/me` and maybe opens a journey.
    Read { u: usize },
    /// A journey's feature call: its user, and the deployment the instance that opened it held.
    Call { u: usize, opened_on: usize },
}

async fn simulate(journeys: u64, seed: u64) -> Report {
    let hours = (journeys * 2 / JOURNEYS_PER_HOUR + 2) as i64;
    let world = Arc::new(World::new(seed, hours));
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut instances = Vec::new();
    for _ in 0..INSTANCES {
        instances.push(instance(&world, &mut rng).await);
    }
    let mut report = Report {
        widening_steps: world
            .deployments
            .iter()
            .filter(|d| d.kind == Kind::Widen)
            .count(),
        ..Report::default()
    };
    let start = world.now.now_millis();
    let mut queue: BinaryHeap<Queued> = BinaryHeap::new();
    let mut seq = 0u64;
    let mut push = |queue: &mut BinaryHeap<_>, t: i64, event: Event| {
        seq += 1;
        let entry = match event {
            Event::Read { u } => (t, seq, u, 0, false),
            Event::Call { u, opened_on } => (t, seq, u, opened_on, true),
        };
        queue.push(Reverse(entry));
    };
    let mean_gap_ms = 3_600_000.0 / JOURNEYS_PER_HOUR as f64 / 2.0;
    let mut t = start;
    let end = start + (hours - 1) * 3_600_000;
    while t < end {
        t += (rng.random::<f64>() * 2.0 * mean_gap_ms) as i64 + 1;
        push(
            &mut queue,
            t,
            Event::Read {
                u: rng.random_range(0..USERS),
            },
        );
    }
    while let Some(Reverse((t, _, u, opened_on, is_call))) = queue.pop() {
        world.now.set(at(t));
        if rng.random_bool(0.0005) {
            // A cold start replaces an instance: a new session, a new bucket.
            let i = rng.random_range(0..INSTANCES);
            instances[i] = instance(&world, &mut rng).await;
        }
        let i = rng.random_range(0..INSTANCES);
        let served = read(&instances[i], u).await;
        if is_call {
            if !served.value {
                // Explained: a deployment later than the one the journey opened on changed this
                // user's value (a narrowing), and had started by this call.
                let latest = world.deployments.partition_point(|d| d.start_ms <= t) - 1;
                let changed_since =
                    (opened_on + 1..=latest).any(|k| world.value(u, k) != world.value(u, k - 1));
                if changed_since {
                    report.explained += 1;
                } else {
                    report.violations += 1;
                }
            }
            continue;
        }
        if report.journeys >= journeys {
            continue;
        }
        // A widening step's window: reads by users included before and after it.
        let latest = world.deployments.partition_point(|d| d.start_ms <= t) - 1;
        let step = &world.deployments[latest];
        let in_window = step.kind == Kind::Widen && t < step.consistent_ms();
        let held = served.held;
        let already_in = latest > 0 && world.value(u, latest) && world.value(u, latest - 1);
        if in_window && already_in && (held == latest || held + 1 == latest) && !served.degraded {
            report.reads_in_widening_windows += 1;
            let due = world.per_user_consistent_ms(u, held) + EPSILON_MS <= t;
            if due && !served.consistent {
                report.included_users_paused += 1;
            }
        }
        if served.value && served.consistent {
            report.journeys += 1;
            if !served.whole_flag_consistent {
                report.whole_flag_paused += 1;
            }
            let calls = rng.random_range(3..=6);
            for _ in 0..calls {
                let when = t + rng.random_range(5_000..120_000);
                push(&mut queue, when, Event::Call { u, opened_on: held });
            }
        }
    }
    report
}

#[tokio::test(flavor = "current_thread")]
async fn targeting_simulation_keeps_every_included_user_open_through_widening_steps() {
    let journeys = std::env::var("LOCKSTEP_TARGETING_JOURNEYS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000u64);
    let seed = std::env::var("LOCKSTEP_TARGETING_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(21u64);
    let report = simulate(journeys, seed).await;
    println!(
        "targeting: journeys={} violations={} widening_steps={} included_users_paused={} whole_flag_paused={}",
        report.journeys,
        report.violations,
        report.widening_steps,
        report.included_users_paused,
        report.whole_flag_paused
    );
    println!("targeting (detail): {report:?}");
    assert!(report.journeys >= journeys, "{report:?}");
    assert_eq!(report.violations, 0, "{report:?}");
    assert_eq!(report.included_users_paused, 0, "{report:?}");
    assert!(report.widening_steps > 0, "{report:?}");
    assert!(
        report.whole_flag_paused > 0,
        "a whole-flag stamp would have paused some of these journeys: {report:?}"
    );
    assert!(
        report.explained > 0,
        "narrowings switched some journeys off: {report:?}"
    );
}
