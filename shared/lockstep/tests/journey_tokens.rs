//! Journey tokens (design rules 8 and 9) through the cache's public API, in virtual time: the
//! catch-up before deciding and its bounds, drains, and what forged or malformed tokens can do.

use chrono::{DateTime, TimeDelta, Utc};
use lockstep::cache::CacheOptions;
use lockstep::journey::{self, Claims, JourneyKey, TokenFlag};
use lockstep::memory::{MemoryHandle, MemorySource};
use lockstep::{
    CatchUp, ClosedReason, FlagCache, FlagCatalog, FlagDecl, FlagHandle, ManualClock, Overrides,
    Settings, Verdict,
};
use std::sync::Arc;
use std::time::Duration;

const X: &str = "isFeatureXEnabled";
const Y: &str = "isFeatureYEnabled";
const Q: Duration = Duration::from_secs(15);
const KEY: [u8; 32] = [42; 32];

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn key_text(bytes: [u8; 32]) -> String {
    JourneyKey::from_bytes(bytes).to_text()
}

/// Freeform content: X and Y with their own stamps (AllAtOnce), the profile stamp the latest,
/// X's drain time if any, signed with `key` if any.
fn doc(x: (bool, &str), y: (bool, &str), x_drain: Option<u64>, keys: &[[u8; 32]]) -> String {
    let profile = x.1.max(y.1);
    let drain = x_drain
        .map(|d| format!(r#", "drainSeconds": {d}"#))
        .unwrap_or_default();
    let keys = if keys.is_empty() {
        String::new()
    } else {
        let listed: Vec<String> = keys
            .iter()
            .map(|k| format!("\"{}\"", key_text(*k)))
            .collect();
        format!(r#", "journeyKeys": [{}]"#, listed.join(", "))
    };
    format!(
        r#"{{"{X}": {}, "{Y}": {}, "lockstepMetadata": {{"lastModifiedTimestamp": "{profile}", "deploymentDurationSeconds": 0,
            "flags": {{"{X}": {{"lastModifiedTimestamp": "{}", "deploymentDurationSeconds": 0{drain}}},
                       "{Y}": {{"lastModifiedTimestamp": "{}", "deploymentDurationSeconds": 0}}}}{keys}}}}}"#,
        x.0, y.0, x.1, y.1
    )
}

struct Instance {
    cache: Arc<FlagCache>,
    source: MemoryHandle,
    x: FlagHandle,
}

/// An instance cold-starting at `start` on `content`, its session enforcing Q like
/// AppConfigData, P = 45 s, ε = 5 s.
async fn instance(clock: &ManualClock, content: &str, overrides: Overrides) -> Instance {
    let catalog = FlagCatalog::new(vec![FlagDecl::public(X), FlagDecl::public(Y)]).unwrap();
    instance_of(catalog, X, clock, content, overrides).await
}

/// The same with `catalog`, its handle for `gated`.
async fn instance_of(
    catalog: FlagCatalog,
    gated: &str,
    clock: &ManualClock,
    content: &str,
    overrides: Overrides,
) -> Instance {
    let (source, handle) = MemorySource::new();
    handle.set_session_interval(Some(Q));
    handle.publish("v-start", content);
    let options = CacheOptions {
        catalog,
        overrides,
        settings: Settings::default(),
        clock: Arc::new(clock.clone()),
    };
    let cache = Arc::new(FlagCache::new(Box::new(source), options).await);
    let x = cache.handle(gated).unwrap();
    Instance {
        cache,
        source: handle,
        x,
    }
}

/// The token `/config` hands out on an instance serving `content` at `at`.
async fn token_for(content: &str, at: DateTime<Utc>) -> String {
    let clock = ManualClock::new(at);
    let issuer = instance(&clock, content, Overrides::none()).await;
    let view = issuer.cache.read().await;
    journey::issue(view.snapshot(), view.now().timestamp_millis()).unwrap()
}

const T0: &str = "2026-11-21T09:00:00.000Z";
const T1: &str = "2026-11-21T10:00:00.000Z";

#[tokio::test]
async fn a_stale_instance_with_a_newer_token_polls_before_deciding() {
    let old = doc((false, T0), (false, T0), None, &[KEY]);
    let new = doc((true, T1), (false, T0), None, &[KEY]);
    // The instance polled 1 s before the deployment at T1: it holds X off until its next
    // regular poll, 45 s later.
    let clock = ManualClock::new(t(T1) - TimeDelta::seconds(1));
    let stale = instance(&clock, &old, Overrides::none()).await;
    stale.source.publish("v-new", new.as_str());
    // A journey opens at T1 + Δ + Q + ε = T1 + 20 s on an instance that has the new value.
    let opens = t(T1) + TimeDelta::seconds(20);
    let token = token_for(&new, opens).await;
    clock.set(opens);
    let calls = stale.source.calls();

    // Without the token it cannot know: closed, Retry-After P, and no call.
    let blind = stale.cache.decide(stale.x, None).await;
    assert_eq!(
        blind.verdict,
        Verdict::Closed {
            reason: ClosedReason::Disabled,
            retry_after: Duration::from_secs(45)
        }
    );
    assert_eq!(stale.source.calls(), calls);

    // With it, it polls once and serves the new value.
    let decided = stale.cache.decide(stale.x, Some(&token)).await;
    assert_eq!(decided.verdict, Verdict::Open);
    assert_eq!(decided.catch_up, CatchUp::Polled { caught_up: true });
    assert_eq!(decided.path(), "gate_open_caught_up");
    assert_eq!(stale.source.calls(), calls + 1);
    assert_eq!(stale.cache.poll_counts().catch_ups, 1);
    assert_eq!(stale.source.early_calls(), 0);

    // Caught up, the next token request needs nothing.
    let again = stale.cache.decide(stale.x, Some(&token)).await;
    assert_eq!(again.catch_up, CatchUp::NotNeeded);
    assert_eq!(stale.source.calls(), calls + 1);
}

#[tokio::test]
async fn one_that_may_not_poll_yet_answers_503_with_the_wait_until_it_may() {
    let old = doc((false, T0), (false, T0), None, &[KEY]);
    let new = doc((true, T1), (false, T0), None, &[KEY]);
    // Cold start 2 s after the deployment, but its session still got the old version (a
    // gradual rollout or propagation): it may not poll again until 15 s after that call.
    let clock = ManualClock::new(t(T1) + TimeDelta::seconds(2));
    let stale = instance(&clock, &old, Overrides::none()).await;
    stale.source.publish("v-new", new.as_str());
    let token = token_for(&new, t(T1) + TimeDelta::seconds(5)).await;
    clock.set(t(T1) + TimeDelta::seconds(6));
    let calls = stale.source.calls();

    let decided = stale.cache.decide(stale.x, Some(&token)).await;

    assert_eq!(
        decided.verdict,
        Verdict::Closed {
            reason: ClosedReason::Behind,
            retry_after: Duration::from_secs(11)
        }
    );
    assert_eq!(decided.catch_up, CatchUp::NotYet);
    assert_eq!(
        stale.source.calls(),
        calls,
        "no call before the session allows it"
    );

    // When the wait is over, the same request polls and is served.
    clock.advance(TimeDelta::seconds(11));
    let retried = stale.cache.decide(stale.x, Some(&token)).await;
    assert_eq!(retried.verdict, Verdict::Open);
    assert_eq!(stale.source.early_calls(), 0);
}

#[tokio::test]
async fn a_poll_that_still_returns_the_older_value_answers_503_until_the_next_allowed_poll() {
    let old = doc((false, T0), (false, T0), None, &[KEY]);
    let new = doc((true, T1), (false, T0), None, &[KEY]);
    // Polled 10 s before the deployment: at T1 + 20 s no regular refresh is due yet.
    let clock = ManualClock::new(t(T1) - TimeDelta::seconds(10));
    let stale = instance(&clock, &old, Overrides::none()).await;
    let token = token_for(&new, t(T1) + TimeDelta::seconds(20)).await;
    // The service has not handed this session the new version yet.
    clock.set(t(T1) + TimeDelta::seconds(20));

    let decided = stale.cache.decide(stale.x, Some(&token)).await;

    assert_eq!(decided.catch_up, CatchUp::Polled { caught_up: false });
    assert_eq!(
        decided.verdict,
        Verdict::Closed {
            reason: ClosedReason::Behind,
            retry_after: Q
        }
    );
}

#[tokio::test]
async fn a_deployment_that_changes_only_other_flags_costs_no_catch_up_and_no_503() {
    let old = doc((true, T0), (false, T0), None, &[KEY]);
    // Y changed at T1; X kept its stamp.
    let new = doc((true, T0), (true, T1), None, &[KEY]);
    let clock = ManualClock::new(t(T1) - TimeDelta::seconds(1));
    let stale = instance(&clock, &old, Overrides::none()).await;
    stale.source.publish("v-new", new.as_str());
    let token = token_for(&new, t(T1) + TimeDelta::seconds(20)).await;
    clock.set(t(T1) + TimeDelta::seconds(20));
    let calls = stale.source.calls();

    let decided = stale.cache.decide(stale.x, Some(&token)).await;

    assert_eq!(decided.verdict, Verdict::Open);
    assert_eq!(decided.catch_up, CatchUp::NotNeeded);
    assert_eq!(stale.source.calls(), calls);
}

#[tokio::test]
async fn forged_or_malformed_tokens_change_nothing_and_fail_nothing() {
    let content = doc((false, T0), (true, T0), None, &[KEY]);
    let clock = ManualClock::new(t(T1));
    let closed = instance(&clock, &content, Overrides::none()).await;
    let open_content = doc((true, T0), (true, T0), None, &[KEY]);
    let open = instance(&clock, &open_content, Overrides::none()).await;
    let now_ms = t(T1).timestamp_millis();
    let claims = |value: bool, stamp: &str, issued: i64| Claims {
        version: "forged".into(),
        profile_stamp_ms: None,
        issued_at_ms: issued,
        subject: None,
        flags: [(
            X.to_owned(),
            TokenFlag {
                value,
                stamp_ms: Some(t(stamp).timestamp_millis()),
            },
        )]
        .into(),
    };
    let wrong_key = JourneyKey::from_bytes([7; 32]);
    let mut tokens: Vec<String> = [
        "",
        "v1.",
        "v1..",
        "v2.eyJ9.",
        "not a token",
        "v1.%%%.%%%",
        "v1.eyJjIjoxfQ.",
    ]
    .map(String::from)
    .to_vec();
    tokens.push("v1.".to_owned() + &"A".repeat(20_000));
    // Well-formed but forged: unsigned, or signed with a key this fleet never had, claiming
    // the flag on with an older stamp (as a drain would need) or from the future.
    tokens.push(journey::encode(&claims(true, T0, now_ms), None));
    tokens.push(journey::encode(
        &claims(true, "2026-11-21T08:00:00Z", now_ms),
        Some(&wrong_key),
    ));
    tokens.push(journey::encode(
        &claims(true, T0, now_ms + 3_600_000),
        Some(&JourneyKey::from_bytes(KEY)),
    ));

    let baseline_closed = closed.cache.decide(closed.x, None).await.verdict;
    let baseline_open = open.cache.decide(open.x, None).await.verdict;
    let calls = (closed.source.calls(), open.source.calls());
    for token in &tokens {
        let c = closed.cache.decide(closed.x, Some(token)).await;
        let o = open.cache.decide(open.x, Some(token)).await;
        assert_eq!(c.verdict, baseline_closed, "{:.40}", token);
        assert_eq!(o.verdict, baseline_open, "{:.40}", token);
        assert_eq!(c.catch_up, CatchUp::NotNeeded);
    }
    assert_eq!((closed.source.calls(), open.source.calls()), calls);
}

#[tokio::test]
async fn a_drained_flag_honours_a_signed_token_until_the_drain_ends_and_refuses_it_after() {
    let on = doc((true, T0), (false, T0), None, &[KEY]);
    // Switched off at T1 with a 300 s drain: ends at T1 + Δ + P + ε + 300 = T1 + 350 s.
    let off = doc((false, T1), (false, T0), Some(300), &[KEY]);
    let ends = t(T1) + TimeDelta::seconds(350);
    let in_flight = token_for(&on, t(T1) - TimeDelta::seconds(60)).await;
    let fresh = token_for(&off, t(T1) + TimeDelta::seconds(5)).await;
    let clock = ManualClock::new(t(T1) + TimeDelta::seconds(1));
    let drained = instance(&clock, &off, Overrides::none()).await;

    // /config on this instance reports the flag off: no new journeys.
    assert!(!drained.cache.read().await.enabled(drained.x));
    let d = drained.cache.decide(drained.x, Some(&in_flight)).await;
    assert_eq!(d.verdict, Verdict::Draining { until: ends });
    assert_eq!(d.path(), "gate_open_draining");
    // A token issued under the disabled value, or none, meets the closed gate at once.
    for token in [Some(fresh.as_str()), None] {
        let d = drained.cache.decide(drained.x, token).await;
        assert!(
            matches!(
                d.verdict,
                Verdict::Closed {
                    reason: ClosedReason::Disabled,
                    ..
                }
            ),
            "{:?}",
            d.verdict
        );
    }

    clock.set(ends - TimeDelta::milliseconds(1));
    assert!(drained
        .cache
        .decide(drained.x, Some(&in_flight))
        .await
        .is_open());
    clock.set(ends);
    assert_eq!(
        drained
            .cache
            .decide(drained.x, Some(&in_flight))
            .await
            .verdict,
        Verdict::Closed {
            reason: ClosedReason::DrainEnded,
            retry_after: Duration::from_secs(45)
        }
    );
}

#[tokio::test]
async fn without_a_drain_or_when_forced_off_a_switch_off_is_a_kill_switch() {
    let on = doc((true, T0), (false, T0), None, &[KEY]);
    let in_flight = token_for(&on, t(T1) - TimeDelta::seconds(60)).await;
    let clock = ManualClock::new(t(T1) + TimeDelta::seconds(1));

    let killed = instance(
        &clock,
        &doc((false, T1), (false, T0), None, &[KEY]),
        Overrides::none(),
    )
    .await;
    assert!(!killed
        .cache
        .decide(killed.x, Some(&in_flight))
        .await
        .is_open());

    let forced = instance(
        &clock,
        &doc((false, T1), (false, T0), Some(300), &[KEY]),
        Overrides::none().force(X, false),
    )
    .await;
    assert!(!forced
        .cache
        .decide(forced.x, Some(&in_flight))
        .await
        .is_open());

    // Unsigned content cannot verify a token: no drain either.
    let unsigned = instance(
        &clock,
        &doc((false, T1), (false, T0), Some(300), &[]),
        Overrides::none(),
    )
    .await;
    assert!(!unsigned
        .cache
        .decide(unsigned.x, Some(&in_flight))
        .await
        .is_open());
}

#[tokio::test]
async fn a_rotated_key_still_verifies_tokens_issued_before_the_rotation() {
    let on = doc((true, T0), (false, T0), None, &[KEY]);
    let in_flight = token_for(&on, t(T1) - TimeDelta::seconds(60)).await;
    let rotated = doc((false, T1), (false, T0), Some(300), &[[9; 32], KEY]);
    let clock = ManualClock::new(t(T1) + TimeDelta::seconds(1));
    let drained = instance(&clock, &rotated, Overrides::none()).await;
    assert_eq!(
        drained.cache.read().await.snapshot().journey_keys().len(),
        2,
        "{rotated}"
    );
    assert!(drained
        .cache
        .decide(drained.x, Some(&in_flight))
        .await
        .is_open());
}

#[tokio::test]
async fn the_catch_up_rate_limit_holds_under_a_flood_of_tokens() {
    let old = doc((false, T0), (false, T0), None, &[KEY]);
    let clock = ManualClock::new(t(T1));
    let stale = instance(&clock, &old, Overrides::none()).await;
    // A token claiming a stamp this session never delivers (forged, or a version still
    // propagating): every request asks for a catch-up.
    let unreachable = token_for(
        &doc((true, T1), (false, T0), None, &[KEY]),
        t(T1) + TimeDelta::seconds(1),
    )
    .await;
    let start_calls = stale.source.calls();

    // 100 concurrent requests at one moment share one catch-up.
    clock.advance(TimeDelta::seconds(20));
    let burst: Vec<_> = (0..100)
        .map(|_| {
            let cache = stale.cache.clone();
            let token = unreachable.clone();
            let x = stale.x;
            tokio::spawn(async move { cache.decide(x, Some(&token)).await })
        })
        .collect();
    for request in burst {
        assert!(!request.await.unwrap().is_open());
    }
    assert_eq!(stale.source.calls(), start_calls + 1);

    // Then one request every 100 ms for an hour: 36,000 requests.
    for _ in 0..36_000 {
        clock.advance(TimeDelta::milliseconds(100));
        assert!(!stale
            .cache
            .decide(stale.x, Some(&unreachable))
            .await
            .is_open());
    }
    let counts = stale.cache.poll_counts();
    let calls = stale.source.calls() - start_calls;
    // At most one catch-up per Q (⌈3600/15⌉ = 240 in the hour, +1 for the burst), and every
    // call — regular or catch-up — counted by the source, none refused as too early.
    assert!(counts.catch_ups <= 241, "{counts:?}");
    assert!(
        counts.catch_ups >= 200,
        "the flood should catch up about every Q: {counts:?}"
    );
    assert_eq!(calls, counts.polls - 1, "{counts:?}"); // the prefetch was before start_calls
    assert_eq!(stale.source.early_calls(), 0);
}

/// `n` public flags with 64-character names (the longest AppConfig allows).
fn long_names(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| format!("{:x<64}", format!("isLongFlag{i:04}Enabled")))
        .collect()
}

/// Freeform content with every flag of `names` on since T0, except the first: `first` (its
/// value and stamp, its drain time if any); signed with [`KEY`].
fn many(names: &[String], first: (bool, &str), drain: Option<u64>) -> String {
    let profile = first.1.max(T0);
    let drain = drain
        .map(|d| format!(r#", "drainSeconds": {d}"#))
        .unwrap_or_default();
    let values: Vec<String> = names
        .iter()
        .enumerate()
        .map(|(i, n)| format!(r#""{n}": {}"#, if i == 0 { first.0 } else { true }))
        .collect();
    let stamps: Vec<String> = names
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let (stamp, drain) = if i == 0 { (first.1, drain.as_str()) } else { (T0, "") };
            format!(r#""{n}": {{"lastModifiedTimestamp": "{stamp}", "deploymentDurationSeconds": 0{drain}}}"#)
        })
        .collect();
    format!(
        r#"{{{}, "lockstepMetadata": {{"lastModifiedTimestamp": "{profile}", "deploymentDurationSeconds": 0,
            "flags": {{{}}}, "journeyKeys": ["{}"]}}}}"#,
        values.join(", "),
        stamps.join(", "),
        key_text(KEY)
    )
}

fn catalog_of(names: &[String]) -> FlagCatalog {
    FlagCatalog::new(names.iter().map(|n| FlagDecl::public(n)).collect()).unwrap()
}

/// The token an instance serving `content` over `names` hands out at `at`, as `/config` does.
async fn token_of_many(names: &[String], content: &str, at: DateTime<Utc>) -> String {
    let clock = ManualClock::new(at);
    let issuer = instance_of(
        catalog_of(names),
        &names[0],
        &clock,
        content,
        Overrides::none(),
    )
    .await;
    let view = issuer.cache.read().await;
    let token = journey::issue_reused(
        view.snapshot(),
        lockstep::targeted::anonymous(),
        view.now().timestamp_millis(),
    )
    .expect("a token is issued");
    // Compact: about 13 bytes of payload a flag, whatever the length of its name.
    assert!(token.len() <= 1_300, "{} bytes", token.len());
    token.to_string()
}

#[tokio::test]
async fn with_64_public_flags_of_64_character_names_a_stale_instance_still_catches_up() {
    let names = long_names(64);
    let old = many(&names, (false, T0), None);
    let new = many(&names, (true, T1), None);
    let clock = ManualClock::new(t(T1) - TimeDelta::seconds(1));
    let stale = instance_of(
        catalog_of(&names),
        &names[0],
        &clock,
        &old,
        Overrides::none(),
    )
    .await;
    stale.source.publish("v-new", new.as_str());
    let opens = t(T1) + TimeDelta::seconds(20);
    let token = token_of_many(&names, &new, opens).await;
    clock.set(opens);

    let decided = stale.cache.decide(stale.x, Some(&token)).await;

    assert_eq!(decided.verdict, Verdict::Open);
    assert_eq!(decided.catch_up, CatchUp::Polled { caught_up: true });
}

#[tokio::test]
async fn with_64_public_flags_of_64_character_names_a_drain_honours_the_token() {
    let names = long_names(64);
    let on = many(&names, (true, T0), None);
    let off = many(&names, (false, T1), Some(300));
    let in_flight = token_of_many(&names, &on, t(T1) - TimeDelta::seconds(60)).await;
    let clock = ManualClock::new(t(T1) + TimeDelta::seconds(1));
    let drained = instance_of(
        catalog_of(&names),
        &names[0],
        &clock,
        &off,
        Overrides::none(),
    )
    .await;

    let decided = drained.cache.decide(drained.x, Some(&in_flight)).await;

    assert_eq!(
        decided.verdict,
        Verdict::Draining {
            until: t(T1) + TimeDelta::seconds(350)
        }
    );
}

#[tokio::test]
async fn a_token_over_the_limit_is_never_issued_and_none_is_handed_out() {
    // 1,000 public flags of 64-character names: about 17 KB of token, over 8 KiB.
    let names = long_names(1000);
    let content = many(&names, (true, T0), None);
    let clock = ManualClock::new(t(T1));
    let issuer = instance_of(
        catalog_of(&names),
        &names[0],
        &clock,
        &content,
        Overrides::none(),
    )
    .await;
    let view = issuer.cache.read().await;
    let now_ms = view.now().timestamp_millis();

    assert!(matches!(
        journey::issue(view.snapshot(), now_ms),
        Err(journey::IssueError::TooLong { len }) if len > journey::MAX_TOKEN_LEN
    ));
    assert_eq!(
        journey::issue_reused(view.snapshot(), lockstep::targeted::anonymous(), now_ms),
        None
    );
}

#[tokio::test]
async fn one_snapshot_hands_out_one_token_per_second_saying_when_that_second_began() {
    let content = doc((true, T0), (false, T0), None, &[KEY]);
    let clock = ManualClock::new(t(T1));
    let issuer = instance(&clock, &content, Overrides::none()).await;
    let view = issuer.cache.read().await;
    let second = t(T1).timestamp_millis();
    let keys = [JourneyKey::from_bytes(KEY)];

    let first = journey::issue_reused(view.snapshot(), lockstep::targeted::anonymous(), second + 1)
        .unwrap();
    let same = journey::issue_reused(
        view.snapshot(),
        lockstep::targeted::anonymous(),
        second + 999,
    )
    .unwrap();
    let next = journey::issue_reused(
        view.snapshot(),
        lockstep::targeted::anonymous(),
        second + 1000,
    )
    .unwrap();

    assert_eq!(first, same);
    assert_ne!(first, next);
    let received = journey::parse(&first, &keys, second + 1).unwrap();
    assert!(received.verified);
    assert_eq!(received.claims.issued_at_ms, second);
    assert_eq!(
        received.claims,
        journey::read(&journey::issue(view.snapshot(), second).unwrap(), second).unwrap()
    );
    assert_eq!(
        journey::read(&next, second + 1000).unwrap().issued_at_ms,
        second + 1000
    );
}
