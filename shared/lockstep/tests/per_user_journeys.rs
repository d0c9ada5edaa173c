//! Journey tokens per user (design rules 8, 9 and 10): a token handed to a caller with a
//! targeting key is bound to them and claims, for a flag defined by rules, their own value and
//! step. So a widening never touches the journeys of the users already in, a newly included
//! user's journey opens at `T + Δ + Q + ε` of their step (an instance behind it catches up), and
//! a narrowing with a drain lets a dropped user's journey in flight finish. Each deployment is
//! stamped as the extension and `lockstep deploy` stamp it; each instance reads it through the
//! cache; the gate decides with the caller's (verified) context.

mod rollouts;

use chrono::{DateTime, TimeDelta, Utc};
use lockstep::cache::CacheOptions;
use lockstep::journey;
use lockstep::memory::{MemoryHandle, MemorySource};
use lockstep::stamp::StampOptions;
use lockstep::targeted::Context;
use lockstep::{
    CatchUp, ClosedReason, FlagCache, FlagCatalog, FlagDecl, FlagHandle, ManualClock, Overrides,
    Settings, Verdict,
};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

use rollouts::{find, inside, rollout, t, X};

const DELTA: Duration = Duration::from_secs(60);
const KEY: [u8; 32] = [9; 32];

/// Stamps each `(flags, T, drain)` as one deployment after the other, signed with [`KEY`]:
/// the stamped content after each.
fn deployments(steps: &[(Value, &str, Option<u64>)]) -> Vec<Vec<u8>> {
    let mut deployed: Vec<Vec<u8>> = Vec::new();
    for (flags, at, drain) in steps {
        let options = StampOptions {
            drain: drain.map(Duration::from_secs),
            new_key: Some(journey::JourneyKey::from_bytes(KEY)),
            ..StampOptions::default()
        };
        let stamped = lockstep::stamp::stamp_with(
            flags.to_string().as_bytes(),
            deployed.last().map(Vec::as_slice),
            t(at),
            DELTA,
            &options,
        )
        .unwrap();
        deployed.push(stamped.content);
    }
    deployed
}

struct Instance {
    cache: Arc<FlagCache>,
    source: MemoryHandle,
    x: FlagHandle,
}

/// An instance cold-starting on `content` at the clock's moment (P = 45 s, ε = 5 s, its
/// session enforcing Q as AppConfigData does).
async fn instance(clock: &ManualClock, content: &[u8]) -> Instance {
    let (source, handle) = MemorySource::new();
    handle.set_session_interval(Some(Duration::from_secs(15)));
    handle.publish("v-start", content.to_vec());
    let options = CacheOptions {
        catalog: FlagCatalog::new(vec![FlagDecl::public(X)]).unwrap(),
        overrides: Overrides::none(),
        settings: Settings::default(),
        clock: Arc::new(clock.clone()),
    };
    let cache = Arc::new(FlagCache::new(Box::new(source), options).await);
    let x = cache.handle(X).unwrap();
    Instance {
        cache,
        source: handle,
        x,
    }
}

/// The token `/config/me` hands `caller` on an instance serving `content` at `at`, with the
/// caller's `journeyOpensAt` for the flag.
async fn token_for(
    content: &[u8],
    caller: &Context,
    at: DateTime<Utc>,
) -> (String, Option<DateTime<Utc>>) {
    let issuer = instance(&ManualClock::new(at), content).await;
    let view = issuer.cache.read().await;
    let token = journey::issue_reused(view.snapshot(), caller, view.now().timestamp_millis())
        .unwrap()
        .to_string();
    let status = view
        .public_flags_for(caller)
        .find(|(name, _)| *name == X)
        .unwrap()
        .1;
    (token, status.journey_opens_at)
}

const T0: &str = "2026-12-01T08:00:00Z";
const T1: &str = "2026-12-01T09:00:00Z";
const T2: &str = "2026-12-01T10:00:00Z";

/// `T + Δ + x` for a deployment at `at`.
fn after(at: &str, seconds: i64) -> DateTime<Utc> {
    t(at) + TimeDelta::seconds(60 + seconds)
}

#[tokio::test]
async fn a_widening_keeps_an_included_users_token_valid_and_a_newly_included_user_catches_up() {
    let already_in = find(|u| inside(25, u));
    let newly_in = find(|u| !inside(25, u) && inside(100, u));
    let contents = deployments(&[
        (json!({X: false}), T0, None),
        (json!({X: rollout(25, "rollout")}), T1, None),
        (json!({X: rollout(100, "rollout")}), T2, None),
    ]);
    let (widened, narrow) = (&contents[2], &contents[1]);

    // A stale instance: it polled 1 s before the widening reached its session (Δ in), so it
    // holds the 25 % step until its next regular poll, 45 s later.
    let clock = ManualClock::new(after(T2, -1));
    let stale = instance(&clock, narrow).await;
    stale.source.publish("v-widened", widened.clone());

    // The user already in: their step is still the 25 % one, so their token, handed out by an
    // instance that holds the widening, asks nobody to catch up, and their journey opened
    // long ago.
    let (token, opens) = token_for(widened, &already_in, after(T2, 1)).await;
    assert_eq!(opens, Some(after(T1, 15 + 5)), "T1 + Δ + Q + ε");
    clock.set(after(T2, 1));
    let calls = stale.source.calls();
    let decided = stale
        .cache
        .decide_for(stale.x, Some(&token), &already_in)
        .await;
    assert_eq!(decided.verdict, Verdict::Open);
    assert_eq!(decided.catch_up, CatchUp::NotNeeded);
    assert_eq!(stale.source.calls(), calls, "no poll for a user already in");

    // The newly included user: their token claims the widening's step, their journey opens at
    // T2 + Δ + Q + ε, and the stale instance catches up before deciding.
    let (token, opens) = token_for(widened, &newly_in, after(T2, 20)).await;
    assert_eq!(opens, Some(after(T2, 15 + 5)), "T2 + Δ + Q + ε");
    clock.set(after(T2, 20));
    let decided = stale
        .cache
        .decide_for(stale.x, Some(&token), &newly_in)
        .await;
    assert_eq!(decided.verdict, Verdict::Open);
    assert_eq!(decided.catch_up, CatchUp::Polled { caught_up: true });
}

#[tokio::test]
async fn a_token_bound_to_one_user_is_no_token_for_another() {
    let newly_in = find(|u| !inside(25, u) && inside(100, u));
    let other = find(|u| !inside(25, u) && u != &newly_in);
    let contents = deployments(&[
        (json!({X: false}), T0, None),
        (json!({X: rollout(25, "rollout")}), T1, None),
        (json!({X: rollout(100, "rollout")}), T2, None),
    ]);
    let clock = ManualClock::new(after(T2, -1));
    let stale = instance(&clock, &contents[1]).await;
    stale.source.publish("v-widened", contents[2].clone());
    let (token, _) = token_for(&contents[2], &newly_in, after(T2, 20)).await;
    clock.set(after(T2, 20));
    let calls = stale.source.calls();

    let decided = stale.cache.decide_for(stale.x, Some(&token), &other).await;
    assert_eq!(
        decided.verdict,
        Verdict::Closed {
            reason: ClosedReason::Disabled,
            retry_after: Duration::from_secs(45)
        }
    );
    assert_eq!(decided.catch_up, CatchUp::NotNeeded);
    assert_eq!(
        stale.source.calls(),
        calls,
        "someone else's token asks for nothing"
    );
    // Nor for an anonymous request (a gate without the authorizer).
    let anonymous = stale.cache.decide(stale.x, Some(&token)).await;
    assert!(!anonymous.is_open());
    assert_eq!(stale.source.calls(), calls);
}

#[tokio::test]
async fn a_narrowing_with_a_drain_honours_the_dropped_users_signed_token_to_the_drains_end() {
    let dropped = find(|u| inside(50, u) && !inside(10, u));
    let kept = find(|u| inside(10, u));
    let contents = deployments(&[
        (json!({X: false}), T0, None),
        (json!({X: rollout(50, "rollout")}), T1, None),
        (json!({X: rollout(10, "rollout")}), T2, Some(300)),
    ]);
    let (wide, narrowed) = (&contents[1], &contents[2]);
    // Their journey opened under the 50 % step, a minute before the narrowing.
    let (in_flight, _) = token_for(wide, &dropped, t(T2) - TimeDelta::seconds(60)).await;

    let clock = ManualClock::new(after(T2, 1));
    let instance = instance(&clock, narrowed).await;
    // T2 + Δ + P + ε + drain.
    let ends = after(T2, 45 + 5 + 300);
    let decided = instance
        .cache
        .decide_for(instance.x, Some(&in_flight), &dropped)
        .await;
    assert_eq!(decided.verdict, Verdict::Draining { until: ends });
    assert_eq!(decided.path(), "gate_open_draining");

    // The user kept in is served as before; a fresh page shows the flag closed for the dropped
    // user (their new token claims it off), and their journey in flight ends with the drain.
    let (token, _) = token_for(narrowed, &kept, after(T2, 1)).await;
    let kept_decided = instance
        .cache
        .decide_for(instance.x, Some(&token), &kept)
        .await;
    assert_eq!(kept_decided.verdict, Verdict::Open);
    let (fresh, _) = token_for(narrowed, &dropped, after(T2, 1)).await;
    let view = instance.cache.read().await;
    let status = view
        .public_flags_for(&dropped)
        .find(|(n, _)| *n == X)
        .unwrap()
        .1;
    assert!(!status.value, "a fresh page shows it off for them");
    let fresh_decided = instance
        .cache
        .decide_for(instance.x, Some(&fresh), &dropped)
        .await;
    assert!(
        !fresh_decided.is_open(),
        "no new journey under the narrowing"
    );

    clock.set(ends);
    let after_drain = instance
        .cache
        .decide_for(instance.x, Some(&in_flight), &dropped)
        .await;
    assert!(matches!(
        after_drain.verdict,
        Verdict::Closed {
            reason: ClosedReason::DrainEnded,
            ..
        }
    ));
}

#[tokio::test]
async fn a_narrowing_without_a_drain_is_a_kill_switch_for_the_dropped_users() {
    let dropped = find(|u| inside(50, u) && !inside(10, u));
    let contents = deployments(&[
        (json!({X: false}), T0, None),
        (json!({X: rollout(50, "rollout")}), T1, None),
        (json!({X: rollout(10, "rollout")}), T2, None),
    ]);
    let (in_flight, _) = token_for(&contents[1], &dropped, t(T2) - TimeDelta::seconds(60)).await;
    let clock = ManualClock::new(after(T2, 1));
    let instance = instance(&clock, &contents[2]).await;
    let decided = instance
        .cache
        .decide_for(instance.x, Some(&in_flight), &dropped)
        .await;
    assert!(matches!(
        decided.verdict,
        Verdict::Closed {
            reason: ClosedReason::Disabled,
            ..
        }
    ));
}

#[tokio::test]
async fn a_later_narrowing_that_leaves_a_dropped_user_off_does_not_cut_their_drain_short() {
    let dropped = find(|u| inside(50, u) && !inside(10, u));
    let contents = deployments(&[
        (json!({X: false}), T0, None),
        (json!({X: rollout(50, "rollout")}), T1, None),
        (json!({X: rollout(10, "rollout")}), T2, Some(300)),
        // Two minutes later, narrowed again without a drain: a kill switch for the users it
        // drops, but not for those the narrowing before dropped with its drain.
        (
            json!({X: rollout(5, "rollout")}),
            "2026-12-01T10:02:00Z",
            None,
        ),
    ]);
    let (in_flight, _) = token_for(&contents[1], &dropped, t(T2) - TimeDelta::seconds(60)).await;
    let clock = ManualClock::new(after("2026-12-01T10:02:00Z", 1));
    let instance = instance(&clock, &contents[3]).await;
    let decided = instance
        .cache
        .decide_for(instance.x, Some(&in_flight), &dropped)
        .await;
    assert_eq!(
        decided.verdict,
        Verdict::Draining {
            until: after(T2, 45 + 5 + 300)
        },
        "the drain of the narrowing that switched them off"
    );
    // A user the second narrowing dropped, with no drain: closed.
    let killed = find(|u| inside(10, u) && !inside(5, u));
    let (token, _) = token_for(&contents[2], &killed, after(T2, 30)).await;
    let decided = instance
        .cache
        .decide_for(instance.x, Some(&token), &killed)
        .await;
    assert!(matches!(
        decided.verdict,
        Verdict::Closed {
            reason: ClosedReason::Disabled,
            ..
        }
    ));
}
