//! Design rule 7 through the cache's public API, in virtual time: a fetch that brings a flag
//! back to an older stamp (an alarm rollback, a `StopDeployment`) is counted, logged and moves
//! the flag's `consistentAt` to that fetch + P + ε; a roll-forward (a newer stamp) does none of
//! that.

use chrono::{DateTime, TimeDelta, Utc};
use lockstep::cache::CacheOptions;
use lockstep::memory::{MemoryHandle, MemorySource};
use lockstep::metrics::Count;
use lockstep::{Clock, FlagCache, FlagCatalog, FlagDecl, ManualClock, Overrides, Settings};
use lockstep_testkit::logs::Logs;
use std::sync::Arc;

const X: &str = "isFeatureXEnabled";
const Y: &str = "isFeatureYEnabled";

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// A document as the stamper writes it: X and Y each with their own stamp (Δ = 0), and the
/// profile stamp of the latest deployment.
fn doc(profile: &str, x: (bool, &str), y: (bool, &str)) -> String {
    format!(
        r#"{{"{X}": {}, "{Y}": {}, "lockstepMetadata": {{"lastModifiedTimestamp": "{profile}", "deploymentDurationSeconds": 0, "flags": {{"{X}": {{"lastModifiedTimestamp": "{}", "deploymentDurationSeconds": 0}}, "{Y}": {{"lastModifiedTimestamp": "{}", "deploymentDurationSeconds": 0}}}}}}}}"#,
        x.0, y.0, x.1, y.1
    )
}

/// Before the deployment: X off since 09:00, Y on since 08:00.
fn before() -> String {
    doc(
        "2026-11-21T09:00:00Z",
        (false, "2026-11-21T09:00:00Z"),
        (true, "2026-11-21T08:00:00Z"),
    )
}

/// The deployment at 10:00:10 that switches X on (Y kept, with its stamp).
fn deployed() -> String {
    doc(
        "2026-11-21T10:00:10Z",
        (true, "2026-11-21T10:00:10Z"),
        (true, "2026-11-21T08:00:00Z"),
    )
}

/// A cache (P = 45 s, ε = 5 s) that cold-started at 10:00:00 on [`before`], then read the
/// deployment at 10:00:45; counts and logs taken so far are dropped.
async fn serving_the_deployment() -> (FlagCache, MemoryHandle, ManualClock) {
    let clock = ManualClock::new(t("2026-11-21T10:00:00Z"));
    let (source, handle) = MemorySource::new();
    handle.publish("1", before());
    let options = CacheOptions {
        catalog: FlagCatalog::new(vec![FlagDecl::public(X), FlagDecl::public(Y)]).unwrap(),
        overrides: Overrides::none(),
        settings: Settings::default(),
        clock: Arc::new(clock.clone()),
    };
    let cache = FlagCache::new(Box::new(source), options).await;
    handle.publish("2", deployed());
    clock.advance(TimeDelta::seconds(45));
    assert!(cache.read().await.is_enabled(X));
    cache.metrics().take();
    (cache, handle, clock)
}

#[tokio::test]
async fn a_roll_forward_is_neither_counted_nor_logged_as_a_rollback() {
    let (logs, _guard) = Logs::capture();
    let clock = ManualClock::new(t("2026-11-21T10:00:00Z"));
    let (source, handle) = MemorySource::new();
    handle.publish("1", before());
    let options = CacheOptions {
        catalog: FlagCatalog::new(vec![FlagDecl::public(X), FlagDecl::public(Y)]).unwrap(),
        overrides: Overrides::none(),
        settings: Settings::default(),
        clock: Arc::new(clock.clone()),
    };
    let cache = FlagCache::new(Box::new(source), options).await;
    cache.metrics().take();
    handle.publish("2", deployed());

    clock.advance(TimeDelta::seconds(45));
    let view = cache.read().await;

    assert_eq!(view.snapshot().version, "2");
    assert_eq!(cache.metrics().take().count(Count::RollbackSeen), 0);
    assert!(logs.path("rollback_seen").is_empty(), "{:?}", logs.lines());
    let x = view.status(X).unwrap();
    assert_eq!(x.rolled_back_at, None);
    assert_eq!(
        x.consistent_at,
        Some(t("2026-11-21T10:01:00Z")),
        "T + Δ + P + ε, from the new stamp"
    );
}

#[tokio::test]
async fn a_fetch_whose_stamp_goes_backwards_is_counted_logged_and_bounds_consistent_at() {
    let (cache, handle, clock) = serving_the_deployment().await;
    let (logs, _guard) = Logs::capture();
    // AppConfig rolls the deployment back: the previous content, with its old stamps, is live.
    handle.publish("1", before());

    clock.advance(TimeDelta::seconds(45));
    let seen = clock.now();
    let view = cache.read().await;

    assert!(!view.is_enabled(X), "the reverted value is served");
    assert_eq!(cache.metrics().take().count(Count::RollbackSeen), 1);
    let lines = logs.path("rollback_seen");
    assert_eq!(lines.len(), 1, "{:?}", logs.lines());
    let line = &lines[0];
    assert_eq!(
        line["flags"],
        format!("{:?}", [X]),
        "only the flag that went back"
    );
    assert_eq!(
        line["previous_stamps"],
        format!("{:?}", ["2026-11-21T10:00:10.000Z"])
    );
    assert_eq!(
        line["stamps"],
        format!("{:?}", ["2026-11-21T09:00:00.000Z"])
    );
    assert_eq!(line["version"], "1");
    assert_eq!(line["previous_version"], "2");
    assert_eq!(line["seen_at"], "2026-11-21T10:01:30.000Z");
    assert_eq!(line["consistent_at"], "2026-11-21T10:02:20.000Z");

    // The old stamp would say consistent since 09:00:50; the rollback moves it to seen + P + ε.
    let x = view.status(X).unwrap();
    let bound = seen + TimeDelta::seconds(45 + 5);
    assert_eq!(x.rolled_back_at, Some(seen));
    assert_eq!(x.consistent_at, Some(bound));
    assert_eq!(
        x.journey_opens_at,
        Some(bound),
        "a token cannot make an instance catch up on an older stamp"
    );
    assert!(!x.consistent);
    assert!(!view.is_backend_consistent());
    assert_eq!(view.backend().consistent_at, Some(bound));
    // Y's stamp did not move: it is not concerned.
    let y = view.status(Y).unwrap();
    assert_eq!(y.rolled_back_at, None);
    assert!(y.consistent);
}

#[tokio::test]
async fn the_rollback_bound_lasts_until_p_plus_epsilon_after_the_fetch_that_saw_it() {
    let (cache, handle, clock) = serving_the_deployment().await;
    handle.publish("1", before());
    clock.advance(TimeDelta::seconds(45));
    let seen = clock.now();
    cache.read().await;
    let bound = seen + TimeDelta::seconds(45 + 5);

    // Polled again at seen + P ("unchanged"): the bound is kept.
    clock.set(bound - TimeDelta::milliseconds(1));
    let view = cache.read().await;
    assert!(!view.status(X).unwrap().consistent);
    assert!(!view.is_backend_consistent());

    clock.set(bound);
    let view = cache.read().await;
    assert!(view.status(X).unwrap().consistent);
    assert!(view.is_backend_consistent());
}

#[tokio::test]
async fn a_later_version_that_keeps_the_flags_stamp_keeps_its_rollback_and_a_roll_forward_ends_it()
{
    let (cache, handle, clock) = serving_the_deployment().await;
    handle.publish("1", before());
    clock.advance(TimeDelta::seconds(45));
    let seen = clock.now();
    cache.read().await;
    assert_eq!(cache.metrics().take().count(Count::RollbackSeen), 1);
    let bound = seen + TimeDelta::seconds(45 + 5);

    // A deployment of Y alone, within the bound: X keeps its (old) stamp, and its bound.
    handle.publish(
        "3",
        doc(
            "2026-11-21T10:01:40Z",
            (false, "2026-11-21T09:00:00Z"),
            (false, "2026-11-21T10:01:40Z"),
        ),
    );
    clock.advance(TimeDelta::seconds(45));
    let view = cache.read().await;
    assert_eq!(view.snapshot().version, "3");
    let x = view.status(X).unwrap();
    assert_eq!(x.rolled_back_at, Some(seen));
    assert_eq!(x.consistent_at, Some(bound));
    assert_eq!(cache.metrics().take().count(Count::RollbackSeen), 0);

    // A roll-forward: X gets a new stamp, and with it the ordinary rule.
    handle.publish(
        "4",
        doc(
            "2026-11-21T10:02:30Z",
            (true, "2026-11-21T10:02:30Z"),
            (false, "2026-11-21T10:01:40Z"),
        ),
    );
    clock.advance(TimeDelta::seconds(45));
    let x = cache.read().await.status(X).unwrap();
    assert!(x.value);
    assert_eq!(x.rolled_back_at, None);
    assert_eq!(x.consistent_at, Some(t("2026-11-21T10:03:20Z")));
    assert_eq!(cache.metrics().take().count(Count::RollbackSeen), 0);
}
