//! A deterministic fleet simulation (virtual clock, seeded RNG) driving the real cache code.
//!
//! The world: a simulated AppConfig environment receives deployments that flip
//! `isFeatureXEnabled` (public) or an unrelated internal flag, with AllAtOnce and gradual
//! strategies. During a gradual deployment each session (every cold start is a new session) gets
//! the new version when its random bucket falls under the growing percentage. Lambda instances
//! cold-start, sit frozen for random idle periods (tail instances of a most-recently-used pool
//! wait long), have clocks skewed within ε, and see occasional fetch failures.
//!
//! A journey is a `/config` read that says enabled-and-consistent, followed by feature calls to
//! instances picked the same way over the next minutes. A feature call that finds the flag
//! disabled is a violation, unless a later deployment changed the flag (explained) or the serving
//! instance was degraded by a fetch failure (explained). Lockstep must show zero unexplained
//! violations. The naive model of the original design (a cache whose refresh only runs after an
//! invocation, serving its old copy first after a thaw; `T + P` without Δ or ε, and only when
//! enabling) runs in the same world and must show violations, which proves the check can fail.
//!
//! `LOCKSTEP_FLEET_JOURNEYS` sets the number of journeys (default 100,000);
//! `LOCKSTEP_FLEET_SEED` the seed.

use aws_sdk_appconfigdata::Client as AppConfigClient;
use chrono::{DateTime, TimeDelta, Utc};
use lockstep::appconfig::{AppConfigSource, Target};
use lockstep::cache::CacheOptions;
use lockstep::source::{BoxFuture, Content, Fetched, SourceError};
use lockstep::{
    Clock, ConfigSource, FlagCache, FlagCatalog, FlagDecl, ManualClock, Overrides, Settings,
    SkewedClock,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::json;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const FLAG: &str = "isFeatureXEnabled";
const OTHER: &str = "otherFlag";
const P_SECS: i64 = 45;
const EPSILON_SECS: u64 = 5;
/// Skew budget inside ε: instance clocks ±2 s, the stamping clock ±1 s, propagation ≤ 1 s.
const INSTANCE_SKEW_MS: i64 = 2_000;
const STAMP_SKEW_MS: i64 = 1_000;
const PROPAGATION_MS: i64 = 1_000;
const FETCH_FAILURE_RATE: f64 = 0.01;
const MAX_FLEET: usize = 40;
/// Strategy durations Δ, seconds: AllAtOnce, Linear50PercentEvery30Seconds,
/// Canary10Percent20Minutes, Linear20PercentEvery6Minutes.
const STRATEGIES: [i64; 4] = [0, 60, 20 * 60, 30 * 60];

#[derive(Debug)]
struct Deployment {
    start_ms: i64,
    propagation_ms: i64,
    duration_ms: i64,
    x_value: bool,
    /// The deployment that last changed `isFeatureXEnabled`, as of this one.
    x_change: usize,
    content: Vec<u8>,
}

impl Deployment {
    fn live_ms(&self) -> i64 {
        self.start_ms + self.propagation_ms
    }
}

/// The simulated AppConfig environment plus the bill and protocol counters.
struct World {
    now: ManualClock,
    deployments: Vec<Deployment>,
    failure_rng: ChaCha8Rng,
    start_calls: u64,
    get_calls: u64,
    configs_received: u64,
    /// Configurations received by a session that already held a version: one per change.
    changes_received: u64,
    early_calls: u64,
    /// The most calls (start and get) one session made within any hour.
    busiest_hour_calls: usize,
}

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn at(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).expect("in range")
}

impl World {
    /// The version a session with `bucket` is handed at true time `t`.
    fn version_for(&self, t: i64, bucket: f64) -> usize {
        let latest = self.deployments.partition_point(|d| d.live_ms() <= t) - 1;
        let d = &self.deployments[latest];
        if latest == 0 || d.duration_ms == 0 {
            return latest;
        }
        let share = (t - d.live_ms()) as f64 / d.duration_ms as f64;
        if bucket < share {
            latest
        } else {
            latest - 1
        }
    }

    /// The deployment that last changed the flag among those started by `t`.
    fn x_change_started_by(&self, t: i64) -> usize {
        let latest = self.deployments.partition_point(|d| d.start_ms <= t) - 1;
        self.deployments[latest].x_change
    }
}

/// Builds the stamped Freeform document of a deployment: flags whose value did not change keep
/// their per-flag stamp (T and Δ of the deployment that introduced the value).
fn stamped_document(
    values: &[(&str, bool)],
    stamps: &[(i64, i64)],
    profile: (i64, i64),
) -> Vec<u8> {
    let iso = |ms: i64| at(ms).to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let mut doc = serde_json::Map::new();
    let mut flag_stamps = serde_json::Map::new();
    for ((name, value), (t, d)) in values.iter().zip(stamps) {
        doc.insert(name.to_string(), json!(value));
        flag_stamps.insert(
            name.to_string(),
            json!({"lastModifiedTimestamp": iso(*t), "deploymentDurationSeconds": d / 1000}),
        );
    }
    doc.insert(
        "lockstepMetadata".into(),
        json!({
            "lastModifiedTimestamp": iso(profile.0),
            "deploymentDurationSeconds": profile.1 / 1000,
            "flags": flag_stamps,
        }),
    );
    serde_json::to_vec(&doc).unwrap()
}

/// Generates the deployment schedule up to `horizon_ms`.
fn deployments(rng: &mut ChaCha8Rng, origin_ms: i64, horizon_ms: i64) -> Vec<Deployment> {
    let mut out = Vec::new();
    let mut values = [(FLAG, false), (OTHER, false)];
    let initial = origin_ms - 86_400_000;
    let mut stamps = [(initial, 0i64); 2];
    out.push(Deployment {
        start_ms: initial,
        propagation_ms: 0,
        duration_ms: 0,
        x_value: false,
        x_change: 0,
        content: stamped_document(&values, &stamps, (initial, 0)),
    });
    let mut next_ms = origin_ms + 60_000;
    while next_ms < horizon_ms {
        let id = out.len();
        let duration_ms = STRATEGIES[rng.random_range(0..STRATEGIES.len())] * 1000;
        let stamp_ms = next_ms + rng.random_range(-STAMP_SKEW_MS..=STAMP_SKEW_MS);
        // Mostly keep the feature on, so journeys happen; sometimes switch it off, and often
        // deploy only the unrelated flag, whose stamp must not move the feature's.
        let change_x = if values[0].1 {
            rng.random_bool(0.25)
        } else {
            rng.random_bool(0.7)
        };
        let changed = if change_x { 0 } else { 1 };
        values[changed].1 = !values[changed].1;
        stamps[changed] = (stamp_ms, duration_ms);
        let previous_x_change = out.last().map(|d: &Deployment| d.x_change).unwrap_or(0);
        out.push(Deployment {
            start_ms: next_ms,
            propagation_ms: rng.random_range(0..=PROPAGATION_MS),
            duration_ms,
            x_value: values[0].1,
            x_change: if change_x { id } else { previous_x_change },
            content: stamped_document(&values, &stamps, (stamp_ms, duration_ms)),
        });
        // AppConfig runs one deployment at a time per environment; the next one may follow at
        // once (the case where per-flag Δ matters) or much later.
        let gap_ms = if rng.random_bool(0.3) {
            rng.random_range(0..60_000)
        } else {
            rng.random_range(5 * 60_000..90 * 60_000)
        };
        next_ms += PROPAGATION_MS + duration_ms + gap_ms;
    }
    out
}

/// One poll's answer: when it was made and, if the session's version changed, the new one.
struct Polled {
    at_ms: i64,
    new: Option<(usize, Vec<u8>)>,
}

/// One AppConfig session, as the source of one instance.
struct SimSource {
    world: Arc<Mutex<World>>,
    bucket: f64,
    started: bool,
    delivered: Option<usize>,
    last_call_ms: Option<i64>,
    /// This session's calls of the last hour.
    recent_calls: VecDeque<i64>,
}

impl SimSource {
    fn new(world: Arc<Mutex<World>>, bucket: f64) -> Self {
        Self {
            world,
            bucket,
            started: false,
            delivered: None,
            last_call_ms: None,
            recent_calls: VecDeque::new(),
        }
    }

    /// The protocol as AppConfigData bills and enforces it.
    fn poll(&mut self) -> Result<Polled, SourceError> {
        let mut world = self.world.lock().unwrap();
        let t = ms(world.now.now());
        if world.failure_rng.random_bool(FETCH_FAILURE_RATE) {
            return Err(SourceError::Unavailable("simulated outage".into()));
        }
        if !self.started {
            world.start_calls += 1;
            self.started = true;
            self.recent_calls.push_back(t);
        }
        world.get_calls += 1;
        self.recent_calls.push_back(t);
        while self
            .recent_calls
            .front()
            .is_some_and(|&c| c <= t - 3_600_000)
        {
            self.recent_calls.pop_front();
        }
        world.busiest_hour_calls = world.busiest_hour_calls.max(self.recent_calls.len());
        if self
            .last_call_ms
            .is_some_and(|last| t - last < P_SECS * 1000)
        {
            world.early_calls += 1;
        }
        self.last_call_ms = Some(t);
        let version = world.version_for(t, self.bucket);
        if self.delivered == Some(version) {
            return Ok(Polled {
                at_ms: t,
                new: None,
            });
        }
        if self.delivered.is_some() {
            world.changes_received += 1;
        }
        self.delivered = Some(version);
        world.configs_received += 1;
        Ok(Polled {
            at_ms: t,
            new: Some((version, world.deployments[version].content.clone())),
        })
    }
}

impl ConfigSource for SimSource {
    fn fetch(&mut self, _now: DateTime<Utc>) -> BoxFuture<'_, Result<Fetched, SourceError>> {
        let result = self.poll().map(|polled| Fetched {
            content: polled.new.map(|(version, bytes)| Content {
                bytes,
                version: version.to_string(),
            }),
            next_poll_interval: Some(Duration::from_secs(P_SECS as u64)),
        });
        Box::pin(async move { result })
    }

    fn describe(&self) -> String {
        "simulated-appconfig".into()
    }
}

/// What `/config` said.
struct ConfigAnswer {
    enabled_and_consistent: bool,
    /// The deployment that introduced the flag value `/config` vouched for.
    x_change: usize,
}

/// The naive cache of the original design: refresh only after an invocation (so a thawed
/// instance answers from its old copy first), `consistent = now ≥ T + P` and only when enabling.
struct NaiveInstance {
    source: SimSource,
    held: Option<(usize, i64)>,
    last_attempt_failed: bool,
}

impl NaiveInstance {
    fn after_invocation(&mut self, t: i64) {
        if self
            .held
            .is_some_and(|(_, fetched)| t - fetched < P_SECS * 1000)
        {
            return;
        }
        match self.source.poll() {
            Ok(Polled {
                at_ms,
                new: Some((version, _)),
            }) => {
                self.held = Some((version, at_ms));
                self.last_attempt_failed = false;
            }
            Ok(Polled { at_ms, new: None }) => {
                self.held = self.held.map(|(v, _)| (v, at_ms));
                self.last_attempt_failed = false;
            }
            Err(_) => self.last_attempt_failed = true,
        }
    }
}

enum Instance {
    Lockstep(FlagCache),
    Naive(NaiveInstance),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Model {
    Lockstep,
    Naive,
}

struct Slot {
    instance: Instance,
    created_ms: i64,
    last_invoked_ms: i64,
    idle_lifetime_ms: i64,
}

struct Fleet {
    model: Model,
    world: Arc<Mutex<World>>,
    rng: ChaCha8Rng,
    slots: Vec<Slot>,
    catalog: FlagCatalog,
    cold_starts: u64,
    instance_ms: i64,
}

impl Fleet {
    async fn pick(&mut self, t: i64) -> usize {
        let mut i = 0;
        while i < self.slots.len() {
            let slot = &self.slots[i];
            if t - slot.last_invoked_ms > slot.idle_lifetime_ms {
                // Lambda shut the environment down once its idle lifetime ran out.
                let gone = self.slots.swap_remove(i);
                self.instance_ms += gone.last_invoked_ms + gone.idle_lifetime_ms - gone.created_ms;
            } else {
                i += 1;
            }
        }
        // Most recently used first: Lambda keeps reusing warm environments, so tail instances
        // stay frozen for long idle periods.
        self.slots.sort_by_key(|s| Reverse(s.last_invoked_ms));
        let cold =
            self.slots.is_empty() || (self.slots.len() < MAX_FLEET && self.rng.random_bool(0.02));
        let index = if cold {
            let instance = self.cold_start().await;
            self.cold_starts += 1;
            self.slots.push(Slot {
                instance,
                created_ms: t,
                last_invoked_ms: t,
                idle_lifetime_ms: self.rng.random_range(5 * 60_000..60 * 60_000),
            });
            self.slots.len() - 1
        } else {
            let mut i = 0;
            while i + 1 < self.slots.len() && self.rng.random_bool(0.35) {
                i += 1;
            }
            i
        };
        self.slots[index].last_invoked_ms = t;
        index
    }

    async fn cold_start(&mut self) -> Instance {
        let bucket = self.rng.random::<f64>();
        let source = SimSource::new(self.world.clone(), bucket);
        match self.model {
            Model::Lockstep => {
                let skew = TimeDelta::milliseconds(
                    self.rng.random_range(-INSTANCE_SKEW_MS..=INSTANCE_SKEW_MS),
                );
                let true_clock: Arc<dyn Clock> = Arc::new(self.world.lock().unwrap().now.clone());
                let options = CacheOptions {
                    catalog: self.catalog.clone(),
                    overrides: Overrides::none(),
                    settings: Settings {
                        poll_interval: Duration::from_secs(P_SECS as u64),
                        epsilon: Duration::from_secs(EPSILON_SECS),
                        ..Settings::default()
                    },
                    clock: Arc::new(SkewedClock::new(true_clock, skew)),
                };
                Instance::Lockstep(FlagCache::new(Box::new(source), options).await)
            }
            Model::Naive => {
                let mut naive = NaiveInstance {
                    source,
                    held: None,
                    last_attempt_failed: false,
                };
                // The naive cache also fetches at init; it just never refreshes before answering.
                naive.after_invocation(i64::MIN / 2);
                Instance::Naive(naive)
            }
        }
    }

    async fn config_read(&mut self, t: i64) -> ConfigAnswer {
        let index = self.pick(t).await;
        let world = self.world.clone();
        match &mut self.slots[index].instance {
            Instance::Lockstep(cache) => {
                let view = cache.read().await;
                let status = view.status(FLAG).expect("declared");
                let version: Option<usize> = view.snapshot().version.parse().ok();
                let world = world.lock().unwrap();
                ConfigAnswer {
                    enabled_and_consistent: status.value && view.is_backend_consistent(),
                    x_change: version.map_or(0, |v| world.deployments[v].x_change),
                }
            }
            Instance::Naive(naive) => {
                let answer = {
                    let world = world.lock().unwrap();
                    match naive.held {
                        Some((v, _)) => {
                            let d = &world.deployments[v];
                            // T + P from the profile stamp; Δ and ε ignored.
                            let consistent = t >= d.start_ms + P_SECS * 1000;
                            ConfigAnswer {
                                enabled_and_consistent: d.x_value && consistent,
                                x_change: d.x_change,
                            }
                        }
                        None => ConfigAnswer {
                            enabled_and_consistent: false,
                            x_change: 0,
                        },
                    }
                };
                naive.after_invocation(t);
                answer
            }
        }
    }

    /// A feature call: (enabled, explained by a fetch failure).
    async fn feature_read(&mut self, t: i64) -> (bool, bool) {
        let index = self.pick(t).await;
        let world = self.world.clone();
        match &mut self.slots[index].instance {
            Instance::Lockstep(cache) => {
                let view = cache.read().await;
                (view.is_enabled(FLAG), view.degraded().is_some())
            }
            Instance::Naive(naive) => {
                let answer = match naive.held {
                    Some((v, _)) => world.lock().unwrap().deployments[v].x_value,
                    None => false,
                };
                let failed = naive.last_attempt_failed;
                naive.after_invocation(t);
                (answer, failed)
            }
        }
    }
}

#[derive(Debug, Default)]
struct Outcome {
    journeys: u64,
    feature_calls: u64,
    violations: u64,
    explained_by_deployment: u64,
    explained_by_failure: u64,
    cold_starts: u64,
    start_calls: u64,
    get_calls: u64,
    configs_received: u64,
    changes_received: u64,
    early_calls: u64,
    busiest_hour_calls: usize,
    instance_hours: f64,
    deployments: usize,
}

enum Event {
    ConfigRead,
    FeatureCall { x_change: usize },
}

async fn simulate(model: Model, seed: u64, journeys: u64) -> Outcome {
    let origin_ms = ms(DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
        .unwrap()
        .with_timezone(&Utc));
    let mut deploy_rng = ChaCha8Rng::seed_from_u64(seed);
    // Enough virtual time for the journeys at the traffic below, with room to spare.
    let horizon_ms = origin_ms + (journeys as i64 * 20_000).max(86_400_000);
    let world = Arc::new(Mutex::new(World {
        now: ManualClock::new(at(origin_ms)),
        deployments: deployments(&mut deploy_rng, origin_ms, horizon_ms),
        failure_rng: ChaCha8Rng::seed_from_u64(seed ^ 0xfa11),
        start_calls: 0,
        get_calls: 0,
        configs_received: 0,
        changes_received: 0,
        early_calls: 0,
        busiest_hour_calls: 0,
    }));
    let mut fleet = Fleet {
        model,
        world: world.clone(),
        rng: ChaCha8Rng::seed_from_u64(seed ^ 0xf1ee7),
        slots: Vec::new(),
        catalog: FlagCatalog::new(vec![FlagDecl::public(FLAG), FlagDecl::internal(OTHER)]).unwrap(),
        cold_starts: 0,
        instance_ms: 0,
    };
    let mut traffic = ChaCha8Rng::seed_from_u64(seed ^ 0x7aff1c);
    let mut outcome = Outcome::default();
    let mut queue: BinaryHeap<Reverse<(i64, u64, usize)>> = BinaryHeap::new();
    let mut events: Vec<Event> = Vec::new();
    let mut seq = 0u64;
    let mut push = |queue: &mut BinaryHeap<Reverse<(i64, u64, usize)>>,
                    events: &mut Vec<Event>,
                    t: i64,
                    e: Event| {
        events.push(e);
        seq += 1;
        queue.push(Reverse((t, seq, events.len() - 1)));
    };
    push(&mut queue, &mut events, origin_ms, Event::ConfigRead);
    let mut last_t = origin_ms;

    while let Some(Reverse((t, _, id))) = queue.pop() {
        last_t = t;
        world.lock().unwrap().now.set(at(t));
        match events[id] {
            Event::ConfigRead => {
                let answer = fleet.config_read(t).await;
                if answer.enabled_and_consistent {
                    outcome.journeys += 1;
                    for _ in 0..traffic.random_range(2..=5) {
                        let when = t + traffic.random_range(1_000..300_000);
                        push(
                            &mut queue,
                            &mut events,
                            when,
                            Event::FeatureCall {
                                x_change: answer.x_change,
                            },
                        );
                    }
                }
                if outcome.journeys < journeys {
                    // Busy and quiet hours: quiet hours leave instances frozen for long.
                    let busy = (t / 3_600_000) % 3 != 0;
                    let mean_gap_ms = if busy { 1_500.0 } else { 40_000.0 };
                    let gap = -mean_gap_ms * (1.0 - traffic.random::<f64>()).ln();
                    push(
                        &mut queue,
                        &mut events,
                        t + gap as i64 + 1,
                        Event::ConfigRead,
                    );
                }
            }
            Event::FeatureCall { x_change } => {
                outcome.feature_calls += 1;
                let (enabled, degraded) = fleet.feature_read(t).await;
                if !enabled {
                    if world.lock().unwrap().x_change_started_by(t) != x_change {
                        outcome.explained_by_deployment += 1;
                    } else if degraded {
                        outcome.explained_by_failure += 1;
                    } else {
                        outcome.violations += 1;
                    }
                }
            }
        }
    }

    let world = world.lock().unwrap();
    outcome.cold_starts = fleet.cold_starts;
    outcome.start_calls = world.start_calls;
    outcome.get_calls = world.get_calls;
    outcome.configs_received = world.configs_received;
    outcome.changes_received = world.changes_received;
    outcome.early_calls = world.early_calls;
    outcome.busiest_hour_calls = world.busiest_hour_calls;
    let alive_ms: i64 = fleet.slots.iter().map(|s| last_t - s.created_ms).sum();
    outcome.instance_hours = (fleet.instance_ms + alive_ms) as f64 / 3_600_000.0;
    outcome.deployments = world
        .deployments
        .iter()
        .filter(|d| d.start_ms <= last_t)
        .count();
    outcome
}

fn run(model: Model, seed: u64, journeys: u64) -> Outcome {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap()
        .block_on(simulate(model, seed, journeys))
}

#[test]
fn fleet_simulation_shows_no_unexplained_stale_503_and_the_naive_model_does() {
    let journeys: u64 = std::env::var("LOCKSTEP_FLEET_JOURNEYS")
        .ok()
        .map(|v| {
            v.parse()
                .expect("LOCKSTEP_FLEET_JOURNEYS must be a whole number")
        })
        .unwrap_or(100_000);
    let seed: u64 = std::env::var("LOCKSTEP_FLEET_SEED")
        .ok()
        .map(|v| {
            v.parse()
                .expect("LOCKSTEP_FLEET_SEED must be a whole number")
        })
        .unwrap_or(20261121);

    let started = std::time::Instant::now();
    let lockstep = run(Model::Lockstep, seed, journeys);
    let naive = run(Model::Naive, seed, journeys);

    println!(
        "fleet-simulation: journeys={} violations={} explained={} naive_violations={}",
        lockstep.journeys,
        lockstep.violations,
        lockstep.explained_by_deployment + lockstep.explained_by_failure,
        naive.violations
    );
    let detail = json!({
        "seed": seed,
        "journeys": lockstep.journeys,
        "violations": lockstep.violations,
        "feature_calls": lockstep.feature_calls,
        "explained_by_deployment": lockstep.explained_by_deployment,
        "explained_by_failure": lockstep.explained_by_failure,
        "deployments": lockstep.deployments,
        "cold_starts": lockstep.cold_starts,
        "start_calls": lockstep.start_calls,
        "get_calls": lockstep.get_calls,
        "configs_received": lockstep.configs_received,
        "changes_received": lockstep.changes_received,
        "instance_hours": lockstep.instance_hours,
        "calls_per_instance_hour": (lockstep.start_calls + lockstep.get_calls) as f64 / lockstep.instance_hours,
        "busiest_instance_hour_calls": lockstep.busiest_hour_calls,
        "configs_per_instance_hour": lockstep.configs_received as f64 / lockstep.instance_hours,
        "bound": (3600 + P_SECS - 1) / P_SECS + 1,
        "poll_interval_s": P_SECS,
        "naive_journeys": naive.journeys,
        "naive_violations": naive.violations,
        "elapsed_ms": started.elapsed().as_millis() as u64,
    });
    println!("fleet-simulation-detail: {detail}");
    write_report("fleet-simulation", &detail);

    assert!(
        lockstep.journeys >= journeys,
        "only {} journeys ran",
        lockstep.journeys
    );
    assert_eq!(
        lockstep.early_calls, 0,
        "a call was made before the service's poll interval"
    );
    assert!(
        lockstep.busiest_hour_calls as i64 <= (3600 + P_SECS - 1) / P_SECS + 1,
        "an instance made {} calls within an hour",
        lockstep.busiest_hour_calls
    );
    assert_eq!(
        lockstep.violations, 0,
        "journeys hit a stale 503 with no later deployment or failure to explain it"
    );
    assert!(
        naive.violations > 0,
        "the naive model showed no violation: the simulation cannot tell right from wrong"
    );
}

/// AppConfigData as it bills one instance, behind the real SDK client (aws-smithy-mocks): sessions,
/// single-use tokens (a spent token panics), and what each session has been handed. A
/// configuration body is sent only to a session that has not received the deployed version yet,
/// exactly as the service does; so the counts below are what the instance actually received.
#[derive(Default)]
struct Billing {
    /// The deployed version and its content.
    version: u32,
    content: Vec<u8>,
    sessions: u32,
    /// Per session: the next token's sequence number and the version it holds.
    session_state: std::collections::HashMap<u32, (u32, Option<u32>)>,
    /// Virtual time of every billed call (start and get).
    calls: Vec<i64>,
    /// Configuration bodies received, and those received for a version this instance already
    /// had (a wasted ~4000× charge).
    configurations: u32,
    unchanged_configurations: u32,
    last_received: Option<u32>,
}

fn billed_client(billing: &Arc<Mutex<Billing>>, clock: &ManualClock) -> AppConfigClient {
    use aws_sdk_appconfigdata::operation::get_latest_configuration::GetLatestConfigurationOutput;
    use aws_sdk_appconfigdata::operation::start_configuration_session::StartConfigurationSessionOutput;
    use aws_sdk_appconfigdata::primitives::Blob;
    use aws_smithy_mocks::{mock, mock_client, RuleMode};

    let (b, c) = (billing.clone(), clock.clone());
    let start =
        mock!(AppConfigClient::start_configuration_session).then_compute_output(move |_| {
            let mut billing = b.lock().unwrap();
            billing.calls.push(ms(c.now()));
            billing.sessions += 1;
            let session = billing.sessions;
            billing.session_state.insert(session, (0, None));
            StartConfigurationSessionOutput::builder()
                .initial_configuration_token(format!("s{session}.0"))
                .build()
        });
    let (b, c) = (billing.clone(), clock.clone());
    let get = mock!(AppConfigClient::get_latest_configuration).then_compute_output(move |input| {
        let mut billing = b.lock().unwrap();
        billing.calls.push(ms(c.now()));
        let token = input.configuration_token().expect("a token");
        let (session, sequence) = token
            .trim_start_matches('s')
            .split_once('.')
            .map(|(s, n)| (s.parse::<u32>().unwrap(), n.parse::<u32>().unwrap()))
            .expect("one of our tokens");
        let version = billing.version;
        let content = billing.content.clone();
        let (next, held) = billing.session_state[&session];
        assert_eq!(sequence, next, "token {token} was already used or skipped");
        let send = held != Some(version);
        billing
            .session_state
            .insert(session, (next + 1, Some(version)));
        if send {
            billing.configurations += 1;
            if billing.last_received == Some(version) {
                billing.unchanged_configurations += 1;
            }
            billing.last_received = Some(version);
        }
        GetLatestConfigurationOutput::builder()
            .next_poll_configuration_token(format!("s{session}.{}", next + 1))
            .next_poll_interval_in_seconds(P_SECS as i32)
            .configuration(Blob::new(if send { content } else { Vec::new() }))
            .set_version_label(send.then(|| version.to_string()))
            .build()
    });
    mock_client!(
        aws_sdk_appconfigdata,
        RuleMode::MatchAny,
        &[&start, &get],
        |c| { lockstep::appconfig::configure(c) }
    )
}

#[test]
fn a_busy_instance_calls_at_most_once_per_p_and_receives_a_configuration_only_when_it_changed() {
    let start = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
        .unwrap()
        .with_timezone(&Utc);
    let clock = ManualClock::new(start);
    let stamp = ms(start) - 86_400_000;
    let billing = Arc::new(Mutex::new(Billing {
        version: 1,
        content: stamped_document(&[(FLAG, true)], &[(stamp, 0)], (stamp, 0)),
        ..Billing::default()
    }));
    let source = AppConfigSource::new(
        billed_client(&billing, &clock),
        Target {
            application: "app".into(),
            environment: "prod".into(),
            profile: "flags".into(),
        },
    );
    let options = CacheOptions {
        catalog: FlagCatalog::new(vec![FlagDecl::public(FLAG)]).unwrap(),
        overrides: Overrides::none(),
        settings: Settings {
            poll_interval: Duration::from_secs(P_SECS as u64),
            epsilon: Duration::from_secs(EPSILON_SECS),
            ..Settings::default()
        },
        clock: Arc::new(clock.clone()),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();

    // One request a second for an hour from the cold start; half-way, a deployment changes the
    // content once.
    runtime.block_on(async {
        let cache = FlagCache::new(Box::new(source), options).await;
        let flag = cache.handle(FLAG).unwrap();
        for second in 0..3600 {
            if second == 1800 {
                let mut billing = billing.lock().unwrap();
                billing.version = 2;
                billing.content =
                    stamped_document(&[(FLAG, true)], &[(stamp, 0)], (ms(start) + 1_800_000, 0));
            }
            assert_eq!(cache.flag(flag).await.map(|f| f.value), Some(true));
            clock.advance(TimeDelta::seconds(1));
        }
    });

    let billing = billing.lock().unwrap();
    let billed = billing.calls.len();
    let bound = ((3600 + P_SECS - 1) / P_SECS + 1) as usize;
    let report = serde_json::json!({
        "calls": billed,
        "sessions": billing.sessions,
        "configs_received": billing.configurations,
        "configs_received_unchanged": billing.unchanged_configurations,
        "deployments": 1,
        "bound": bound,
        "poll_interval_s": P_SECS,
    });
    println!("busy-instance-hour: {report}");
    write_report("busy-instance-hour", &report);
    assert!(billed <= bound, "{billed} calls in an hour");
    assert_eq!(billing.sessions, 1, "one session for the instance's life");
    let gets = &billing.calls[1..];
    assert!(gets.windows(2).all(|w| w[1] - w[0] >= P_SECS * 1000));
    assert_eq!(
        billing.configurations, 2,
        "the cold start's configuration and the deployment's, nothing else"
    );
    assert_eq!(billing.unchanged_configurations, 0);
}

/// Writes a machine-readable report for `scripts/bench` when `LOCKSTEP_REPORT_DIR` is set.
fn write_report(name: &str, report: &serde_json::Value) {
    if let Some(dir) = std::env::var_os("LOCKSTEP_REPORT_DIR") {
        let dir = std::path::PathBuf::from(dir);
        std::fs::create_dir_all(&dir).expect("the report directory can be created");
        std::fs::write(
            dir.join(format!("{name}.json")),
            serde_json::to_vec_pretty(report).expect("serialises"),
        )
        .expect("the report can be written");
    }
}
