//! A deterministic fleet simulation of per-user consistency (design rule 10, issue 21), driving
//! the real stamping code, the real cache, the real journey tokens and the real gate.
//!
//! The world ([`world`]): one public flag defined by a weighted split, deployed again and again
//! by the stamping code: rollouts that widen, narrow (half of them with a drain), ramp (the share
//! grows between two instants with no deployment per step; two in three start when every
//! instance holds them, as `lockstep deploy --ramp` does, one in three at once) and rule edits
//! that change no one's value. Strategies are AllAtOnce, one minute and ten minutes; during a
//! gradual deployment each AppConfig session (each instance, and every cold start is a new one)
//! gets the new version when its random bucket falls under the growing percentage. Instances
//! have clocks skewed within ε and are replaced now and then.
//!
//! Users read `/config/me` on a random instance (`view.public_flags_for` with their targeting
//! key, and the token the endpoint hands them, bound to them). A **journey** opens when the flag
//! is on for them and open for a token client (`token_policy::journey_opening`: their
//! `journeyOpensAt`, `T + Δ + Q + ε` of their own step). Its feature calls then go to random
//! instances over the next two minutes, through the gate (`FlagCache::decide_for` with the
//! token and the user's context: an instance behind their step catches up first). A call that
//! meets a 503 is a **violation** unless a deployment after the one the journey opened on
//! switched that user off and had started, and, with a drain, the drain was over (explained);
//! during a drain the call must be served (`drained`). There must be no violation.
//!
//! Two more counts, over every read made during a widening step's window (a widening or a ramp,
//! before the step's own `T + Δ + P + ε`) by a user included both before and after it, on an
//! instance that holds the step or the one before:
//!
//! - `included_users_paused`: the instance said the journey may not open although, by the rule
//!   computed here from the world's own list ([`world::World::journey_opens_ms`]), their time
//!   had come. Must be 0.
//! - `whole_flag_paused`: journeys that opened although the flag's own (whole-flag)
//!   `journeyOpensAt` had not come yet: the journeys a whole-flag stamp would have paused. Must
//!   be > 0, which proves the per-user rule is what kept them open.
//!
//! And for each ramp, the user it lets in last is probed on every instance from their instant
//! on, every 250 ms, until every instance says their journey may open: the ramp's
//! "last user's journey opens" figure (BENCHMARKS.md).
//!
//! The CI log keeps one line:
//! `targeting: journeys=N violations=0 widening_steps=S included_users_paused=0 whole_flag_paused=W`.
//! `LOCKSTEP_TARGETING_JOURNEYS` sets N (default 100,000; ≥ 1,000,000 on demand),
//! `LOCKSTEP_TARGETING_SEED` the seed; `LOCKSTEP_REPORT_DIR` writes `targeting.json` for
//! `scripts/bench`.

mod world;

use chrono::{DateTime, TimeDelta, Utc};
use lockstep::cache::CacheOptions;
use lockstep::source::{BoxFuture, Content, Fetched, SourceError};
use lockstep::{
    journey, token_policy, Clock, ConfigSource, FlagCache, FlagCatalog, FlagDecl, FlagHandle,
    Overrides, Settings, SkewedClock, Verdict, Window, CATCH_UP_INTERVAL,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;
use std::time::Duration;
use world::{at, user, Kind, World, EPSILON_MS, FLAG, P_MS, USERS};

const INSTANCES: usize = 16;
/// Journeys started per virtual hour.
const JOURNEYS_PER_HOUR: u64 = 20_000;
const PROBE_STEP_MS: i64 = 250;

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

struct Instance {
    cache: FlagCache,
    flag: FlagHandle,
}

fn window() -> Window {
    Window {
        poll_interval: Duration::from_millis(P_MS as u64),
        epsilon: Duration::from_millis(EPSILON_MS as u64),
    }
}

async fn instance(world: &Arc<World>, rng: &mut ChaCha8Rng) -> Instance {
    let skew = TimeDelta::milliseconds(rng.random_range(-EPSILON_MS / 2..=EPSILON_MS / 2));
    let options = CacheOptions {
        catalog: FlagCatalog::new(vec![FlagDecl::public(FLAG)]).unwrap(),
        overrides: Overrides::none(),
        settings: Settings {
            poll_interval: window().poll_interval,
            epsilon: window().epsilon,
            ..Settings::default()
        },
        clock: Arc::new(SkewedClock::new(Arc::new(world.now.clone()), skew)),
    };
    let source = SimSource {
        world: world.clone(),
        bucket: rng.random(),
        delivered: None,
    };
    let cache = FlagCache::new(Box::new(source), options).await;
    let flag = cache.handle(FLAG).expect("declared");
    Instance { cache, flag }
}

/// What one `/config/me` read on one instance says for one user.
struct Read {
    value: bool,
    /// Whether a journey may open now for a client with journey tokens.
    open: bool,
    degraded: bool,
    /// The deployment the instance holds.
    held: usize,
    /// Whether the flag's own (whole-flag) `journeyOpensAt` has come.
    whole_flag_open: bool,
    /// The token the endpoint hands this user.
    token: Option<Arc<str>>,
}

async fn read(instance: &Instance, u: usize) -> Read {
    let view = instance.cache.read().await;
    let context = user(u);
    let (_, status) = view
        .public_flags_for(&context)
        .find(|(name, _)| *name == FLAG)
        .expect("the flag is declared");
    let degraded = view.degraded().is_some();
    let flag = view.snapshot().flag(FLAG).expect("declared");
    let whole_flag_opens = lockstep::consistency::journey_opens_at(flag.stamp, false, window());
    Read {
        value: status.value,
        open: token_policy::journey_opening(&status, view.now(), degraded, true).open,
        degraded,
        held: view.snapshot().version.parse().unwrap_or(0),
        whole_flag_open: whole_flag_opens.is_some_and(|c| view.now() >= c),
        token: journey::issue_reused(view.snapshot(), &context, view.now().timestamp_millis()),
    }
}

#[derive(Debug, Default, serde::Serialize)]
struct Report {
    journeys: u64,
    violations: u64,
    explained: u64,
    drained: u64,
    catch_ups: u64,
    widening_steps: usize,
    ramps: usize,
    narrowings_with_drain: usize,
    included_users_paused: u64,
    whole_flag_paused: u64,
    reads_in_widening_windows: u64,
    /// Per widening step (and ramp), medians over the steps: what a whole-flag stamp would
    /// pause everyone already in for, with journey tokens (`Δ + Q + ε`) and without
    /// (`Δ + P + ε`), in ms.
    whole_flag_pause_tokens_ms: i64,
    whole_flag_pause_no_tokens_ms: i64,
    /// Over the ramps started when every instance holds them (as `lockstep deploy --ramp`
    /// starts them): the latest, after the last user's instant, at which every instance said
    /// their journey may open; and the same after the ramp's end (ms).
    ramp_last_user_opens_after_instant_ms: i64,
    ramp_last_user_opens_after_end_ms: i64,
    /// Over every ramp probed: the same after `max(instant + ε, T + Δ + P + ε)` (a ramp started
    /// at once is bounded by its deployment until every instance holds it).
    ramp_last_user_opens_after_bound_ms: i64,
    ramps_probed: usize,
    ramps_started_when_held: usize,
    /// The first violations, described (empty when there are none).
    examples: Vec<String>,
}

enum Event {
    /// A user reads `/config/me` and maybe opens a journey.
    Read { u: usize },
    /// A journey's feature call: its user, the deployment the instance that opened it held,
    /// and the token it was handed.
    Call {
        u: usize,
        opened_on: usize,
        token: Arc<str>,
    },
    /// The ramp `k`'s last user, probed on every instance.
    Probe { k: usize, u: usize, instant: i64 },
}

struct Queue {
    heap: BinaryHeap<Reverse<(i64, u64)>>,
    events: std::collections::HashMap<u64, Event>,
    seq: u64,
}

impl Queue {
    fn push(&mut self, t: i64, event: Event) {
        self.seq += 1;
        self.heap.push(Reverse((t, self.seq)));
        self.events.insert(self.seq, event);
    }

    fn pop(&mut self) -> Option<(i64, Event)> {
        let Reverse((t, seq)) = self.heap.pop()?;
        Some((t, self.events.remove(&seq).expect("queued")))
    }
}

fn median(mut values: Vec<i64>) -> i64 {
    values.sort_unstable();
    values.get(values.len() / 2).copied().unwrap_or(0)
}

async fn simulate(journeys: u64, seed: u64) -> Report {
    let hours = (journeys * 2 / JOURNEYS_PER_HOUR + 2) as i64;
    let world = Arc::new(World::new(seed, hours));
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut instances = Vec::new();
    for _ in 0..INSTANCES {
        instances.push(instance(&world, &mut rng).await);
    }
    let widenings: Vec<&world::Deployment> = world
        .deployments
        .iter()
        .filter(|d| matches!(d.kind, Kind::Widen | Kind::Ramp))
        .collect();
    let mut report = Report {
        widening_steps: widenings.len(),
        ramps: world
            .deployments
            .iter()
            .filter(|d| d.kind == Kind::Ramp)
            .count(),
        narrowings_with_drain: world
            .deployments
            .iter()
            .filter(|d| d.drain_ms.is_some())
            .count(),
        whole_flag_pause_tokens_ms: median(
            widenings
                .iter()
                .map(|d| d.journey_opens_ms() - d.start_ms)
                .collect(),
        ),
        whole_flag_pause_no_tokens_ms: median(
            widenings
                .iter()
                .map(|d| d.consistent_ms() - d.start_ms)
                .collect(),
        ),
        ..Report::default()
    };
    let start = world.now.now_millis();
    let mut queue = Queue {
        heap: BinaryHeap::new(),
        events: Default::default(),
        seq: 0,
    };
    let mean_gap_ms = 3_600_000.0 / JOURNEYS_PER_HOUR as f64 / 2.0;
    let mut t = start;
    let end = start + (hours - 1) * 3_600_000;
    while t < end {
        t += (rng.random::<f64>() * 2.0 * mean_gap_ms) as i64 + 1;
        queue.push(
            t,
            Event::Read {
                u: rng.random_range(0..USERS),
            },
        );
    }
    // Each ramp's last user, probed from their instant on.
    for (k, d) in world.deployments.iter().enumerate() {
        let last = (0..USERS)
            .filter_map(|u| Some((d.inclusion_ms(world.position[u])?, u)))
            .max();
        if let Some((instant, u)) = last.filter(|(instant, _)| *instant < end) {
            queue.push(instant, Event::Probe { k, u, instant });
        }
    }
    let mut after_instant = Vec::new();
    let mut after_bound = Vec::new();
    let mut after_end = Vec::new();
    while let Some((t, event)) = queue.pop() {
        world.now.set(at(t));
        if rng.random_bool(0.0005) {
            // A cold start replaces an instance: a new session, a new bucket.
            let i = rng.random_range(0..INSTANCES);
            instances[i] = instance(&world, &mut rng).await;
        }
        match event {
            Event::Probe { k, u, instant } => {
                let mut all_open = true;
                for instance in &instances {
                    let r = read(instance, u).await;
                    all_open &= r.open || r.degraded;
                }
                if all_open {
                    let d = &world.deployments[k];
                    let ramp = d.ramp.expect("a ramp");
                    // Every instance holds the ramp from T + Δ + P + ε on; a ramp started as
                    // `lockstep deploy --ramp` starts it, after that, is bounded by its instants.
                    let bound = (instant + EPSILON_MS).max(d.consistent_ms());
                    after_bound.push(t - bound);
                    if ramp.start_ms >= d.consistent_ms() {
                        after_instant.push(t - instant);
                        after_end.push(t - ramp.end_ms);
                    }
                } else {
                    queue.push(t + PROBE_STEP_MS, Event::Probe { k, u, instant });
                }
            }
            Event::Call {
                u,
                opened_on,
                token,
            } => {
                let i = rng.random_range(0..INSTANCES);
                let instance = &instances[i];
                let decided = instance
                    .cache
                    .decide_for(instance.flag, Some(&token), &user(u))
                    .await;
                if matches!(decided.catch_up, lockstep::CatchUp::Polled { .. }) {
                    report.catch_ups += 1;
                }
                match decided.verdict {
                    Verdict::Open => {}
                    Verdict::Draining { .. } => report.drained += 1,
                    Verdict::Closed { .. } if world.switched_off_since(u, opened_on, t) => {
                        report.explained += 1
                    }
                    Verdict::Closed { reason, .. } => {
                        report.violations += 1;
                        if report.examples.len() < 10 {
                            let latest = world.latest(t);
                            report.examples.push(format!(
                                "t={} user-{u} opened_on={opened_on} ({:?}) latest={latest} ({:?}) held={} catch_up={:?} reason={reason:?} kinds={:?}",
                                at(t).to_rfc3339(),
                                world.deployments[opened_on].kind,
                                world.deployments[latest].kind,
                                decided.view.snapshot().version,
                                decided.catch_up,
                                world.deployments[opened_on.saturating_sub(2)..=latest].iter().map(|d| (d.kind, d.percent, d.start_ms - start, d.duration_ms, d.drain_ms, d.ramp.map(|r| (r.to, r.start_ms - start, r.end_ms - start)))).collect::<Vec<_>>(),
                            ));
                        }
                    }
                }
            }
            Event::Read { u } => {
                if report.journeys >= journeys {
                    continue;
                }
                let i = rng.random_range(0..INSTANCES);
                let served = read(&instances[i], u).await;
                // A widening step's window: reads by users included before and after it.
                let latest = world.latest(t);
                let step = &world.deployments[latest];
                let widening = matches!(step.kind, Kind::Widen | Kind::Ramp);
                let in_window = widening && t < step.consistent_ms();
                let held = served.held;
                let already_in =
                    latest > 0 && world.value(u, latest, t) && world.value(u, latest - 1, t);
                if in_window
                    && already_in
                    && (held == latest || held + 1 == latest)
                    && !served.degraded
                {
                    report.reads_in_widening_windows += 1;
                    let due = world.journey_opens_ms(u, held, t) + EPSILON_MS <= t;
                    if due && !served.open {
                        report.included_users_paused += 1;
                    }
                }
                if served.value && served.open {
                    let Some(token) = served.token else {
                        continue;
                    };
                    report.journeys += 1;
                    if !served.whole_flag_open {
                        report.whole_flag_paused += 1;
                    }
                    let calls = rng.random_range(3..=6);
                    for _ in 0..calls {
                        let when = t + rng.random_range(5_000..120_000);
                        queue.push(
                            when,
                            Event::Call {
                                u,
                                opened_on: held,
                                token: token.clone(),
                            },
                        );
                    }
                }
            }
        }
    }
    report.ramps_probed = after_bound.len();
    report.ramps_started_when_held = after_instant.len();
    report.ramp_last_user_opens_after_bound_ms = after_bound.into_iter().max().unwrap_or(0);
    report.ramp_last_user_opens_after_instant_ms = after_instant.into_iter().max().unwrap_or(0);
    report.ramp_last_user_opens_after_end_ms = after_end.into_iter().max().unwrap_or(0);
    report
}

/// Writes the report for `scripts/bench` when `LOCKSTEP_REPORT_DIR` is set.
fn write_report(report: &Report) {
    if let Some(dir) = std::env::var_os("LOCKSTEP_REPORT_DIR") {
        let dir = std::path::PathBuf::from(dir);
        std::fs::create_dir_all(&dir).expect("the report directory can be made");
        std::fs::write(
            dir.join("targeting.json"),
            serde_json::to_vec_pretty(report).expect("serialises"),
        )
        .expect("the report can be written");
    }
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
    write_report(&report);
    assert!(report.journeys >= journeys, "{report:?}");
    assert_eq!(report.violations, 0, "{report:?}");
    assert_eq!(report.included_users_paused, 0, "{report:?}");
    assert!(report.widening_steps > 0 && report.ramps > 0, "{report:?}");
    assert!(
        report.whole_flag_paused > 0,
        "a whole-flag stamp would have paused some of these journeys: {report:?}"
    );
    assert!(
        report.explained > 0 && report.drained > 0,
        "narrowings switched some journeys off, and drains let some finish: {report:?}"
    );
    assert!(
        report.catch_ups > 0,
        "tokens made stale instances catch up: {report:?}"
    );
    assert!(report.ramps_started_when_held > 0, "{report:?}");
    assert!(
        report.ramp_last_user_opens_after_instant_ms <= EPSILON_MS + EPSILON_MS / 2 + PROBE_STEP_MS,
        "a ramp's last user's journey opens ε after their instant on each instance's clock \
         (skewed by up to ε/2 here): {report:?}"
    );
    assert!(
        report.ramp_last_user_opens_after_bound_ms <= EPSILON_MS / 2 + PROBE_STEP_MS,
        "and a ramp started at once, no later than its deployment's bound: {report:?}"
    );
}
