//! The cache's rules (design rules 1–7) through its public API, in virtual time.

use chrono::{DateTime, TimeDelta, Utc};
use lockstep::cache::{CacheOptions, Degraded};
use lockstep::durable::{DurableError, SaveOutcome, SnapshotStore, StoredConfig};
use lockstep::memory::{MemoryHandle, MemorySource};
use lockstep::snapshot::Origin;
use lockstep::source::{BoxFuture, FailureKind};
use lockstep::{FlagCache, FlagCatalog, FlagDecl, ManualClock, Overrides, Settings};
use std::sync::Arc;
use std::time::Duration;

const X: &str = "isFeatureXEnabled";
const Y: &str = "isFeatureYEnabled";

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn catalog() -> FlagCatalog {
    FlagCatalog::new(vec![
        FlagDecl::public(X),
        FlagDecl::public(Y),
        FlagDecl::internal("useSubmissionsGsi").default_value(true),
    ])
    .unwrap()
}

/// A document stamped at `stamp` with Δ = `delta_s`; `x_stamp` gives X its own per-flag stamp.
fn doc(x: bool, y: bool, stamp: &str, delta_s: u64, x_stamp: Option<&str>) -> String {
    let flags = match x_stamp {
        Some(s) => format!(
            r#", "flags": {{"{X}": {{"lastModifiedTimestamp": "{s}", "deploymentDurationSeconds": 0}}}}"#
        ),
        None => String::new(),
    };
    format!(
        r#"{{"{X}": {x}, "{Y}": {y}, "lockstepMetadata": {{"lastModifiedTimestamp": "{stamp}", "deploymentDurationSeconds": {delta_s}{flags}}}}}"#
    )
}

async fn cache_at(
    start: &str,
    overrides: Overrides,
    publish: Option<String>,
) -> (Arc<FlagCache>, MemoryHandle, ManualClock) {
    let clock = ManualClock::new(t(start));
    let (source, handle) = MemorySource::new();
    if let Some(content) = publish {
        handle.publish("1", content);
    }
    let options = CacheOptions {
        catalog: catalog(),
        overrides,
        settings: Settings::default(),
        clock: Arc::new(clock.clone()),
    };
    let cache = Arc::new(FlagCache::new(Box::new(source), options).await);
    (cache, handle, clock)
}

#[tokio::test]
async fn the_first_fetch_happens_at_construction_and_reads_before_p_make_no_call() {
    let (cache, handle, clock) = cache_at(
        "2026-11-21T10:00:00Z",
        Overrides::none(),
        Some(doc(true, false, "2026-11-21T09:00:00Z", 0, None)),
    )
    .await;
    assert_eq!(handle.calls(), 1, "prefetch at init");

    clock.advance(TimeDelta::seconds(45) - TimeDelta::milliseconds(1));
    let view = cache.read().await;

    assert_eq!(handle.calls(), 1);
    assert!(view.is_enabled(X));
    assert!(view.degraded().is_none());
}

#[tokio::test]
async fn a_read_p_after_the_last_fetch_refreshes_before_answering() {
    let (cache, handle, clock) = cache_at(
        "2026-11-21T10:00:00Z",
        Overrides::none(),
        Some(doc(false, false, "2026-11-21T09:00:00Z", 0, None)),
    )
    .await;
    handle.publish("2", doc(true, false, "2026-11-21T10:00:10Z", 0, None));

    clock.advance(TimeDelta::seconds(45));
    let view = cache.read().await;

    assert_eq!(handle.calls(), 2);
    assert!(
        view.is_enabled(X),
        "the request was decided with the refreshed value"
    );
    assert_eq!(view.snapshot().version, "2");
}

#[tokio::test(start_paused = true)]
async fn concurrent_readers_share_one_refresh() {
    let (cache, handle, clock) = cache_at(
        "2026-11-21T10:00:00Z",
        Overrides::none(),
        Some(doc(false, false, "2026-11-21T09:00:00Z", 0, None)),
    )
    .await;
    handle.publish("2", doc(true, false, "2026-11-21T10:00:10Z", 0, None));
    handle.set_delay(Some(Duration::from_millis(200)));
    clock.advance(TimeDelta::seconds(60));

    let readers: Vec<_> = (0..50)
        .map(|_| {
            let cache = cache.clone();
            tokio::spawn(async move { cache.read().await.is_enabled(X) })
        })
        .collect();
    let mut answers = Vec::new();
    for reader in readers {
        answers.push(reader.await.unwrap());
    }

    assert_eq!(handle.calls(), 2, "one prefetch and one shared refresh");
    assert!(answers.iter().all(|enabled| *enabled));
}

#[tokio::test]
async fn a_failed_refresh_keeps_last_known_good_degrades_backs_off_and_recovers() {
    let (cache, handle, clock) = cache_at(
        "2026-11-21T10:00:00Z",
        Overrides::none(),
        Some(doc(true, false, "2026-11-21T09:00:00Z", 0, None)),
    )
    .await;
    handle.set_failing(true);

    clock.advance(TimeDelta::seconds(45));
    let failed = cache.read().await;
    clock.advance(TimeDelta::milliseconds(999));
    let in_backoff = cache.read().await;
    let calls_in_backoff = handle.calls();
    clock.advance(TimeDelta::milliseconds(1));
    cache.read().await;
    let calls_after_first_backoff = handle.calls();
    clock.advance(TimeDelta::seconds(2));
    handle.set_failing(false);
    let recovered = cache.read().await;

    assert!(failed.is_enabled(X), "last-known-good kept");
    assert_eq!(
        failed.degraded(),
        Some(&Degraded::FetchFailed {
            kind: FailureKind::Unavailable
        })
    );
    assert!(!failed.is_backend_consistent());
    assert!(!failed.status(X).unwrap().consistent);
    assert_eq!(calls_in_backoff, 2, "no call during the 1 s backoff");
    assert!(in_backoff.degraded().is_some());
    assert_eq!(calls_after_first_backoff, 3, "one retry after the backoff");
    assert_eq!(handle.calls(), 4, "the second backoff is 2 s");
    assert!(recovered.degraded().is_none());
    assert!(recovered.is_backend_consistent());
}

#[tokio::test(start_paused = true)]
async fn a_refresh_that_times_out_keeps_last_known_good() {
    let (cache, handle, clock) = cache_at(
        "2026-11-21T10:00:00Z",
        Overrides::none(),
        Some(doc(true, false, "2026-11-21T09:00:00Z", 0, None)),
    )
    .await;
    handle.set_hanging(true);
    clock.advance(TimeDelta::seconds(45));

    let before = tokio::time::Instant::now();
    let view = cache.read().await;

    assert_eq!(
        before.elapsed(),
        Duration::from_millis(3000),
        "the extension's default timeout"
    );
    assert!(view.is_enabled(X));
    assert_eq!(view.degraded(), Some(&Degraded::Timeout));
}

#[tokio::test]
async fn an_unreachable_source_at_cold_start_serves_the_bundled_defaults_degraded() {
    let (cache, _handle, _clock) = cache_at("2026-11-21T10:00:00Z", Overrides::none(), None).await;

    let view = cache.read().await;

    assert_eq!(view.snapshot().origin, Origin::Defaults);
    assert!(!view.is_enabled(X), "undeclared default: disabled");
    assert!(
        view.is_enabled("useSubmissionsGsi"),
        "declared default honoured"
    );
    assert_eq!(
        view.degraded(),
        Some(&Degraded::NeverFetched {
            kind: FailureKind::Unavailable
        })
    );
    assert!(!view.is_backend_consistent());
}

#[tokio::test]
async fn a_forced_flag_wins_over_the_source_and_is_reported_forced() {
    let overrides = Overrides::none().force(X, false);
    let (cache, _handle, clock) = cache_at(
        "2026-11-21T10:00:00Z",
        overrides,
        Some(doc(true, true, "2026-11-21T09:59:59Z", 0, None)),
    )
    .await;
    clock.advance(TimeDelta::seconds(10));

    let view = cache.read().await;
    let x = view.status(X).unwrap();
    let y = view.status(Y).unwrap();

    assert!(!x.value);
    assert!(x.forced);
    assert!(x.consistent, "a forced value waits for no stamp");
    assert_eq!(x.consistent_at, None);
    assert!(y.value && !y.forced);
    assert!(
        !y.consistent,
        "Y was deployed 11 s ago: not consistent before T + P + ε"
    );
    assert!(
        !view.is_backend_consistent(),
        "top level needs every public flag"
    );
}

#[tokio::test]
async fn an_unrelated_deployment_does_not_move_a_flags_stamp() {
    // X was switched on at 09:00; the 10:00 deployment only changes Y and keeps X's stamp.
    let (cache, handle, clock) = cache_at(
        "2026-11-21T10:00:01Z",
        Overrides::none(),
        Some(doc(true, false, "2026-11-21T09:00:00Z", 0, None)),
    )
    .await;
    handle.publish(
        "2",
        doc(
            true,
            true,
            "2026-11-21T10:00:00Z",
            0,
            Some("2026-11-21T09:00:00Z"),
        ),
    );
    clock.advance(TimeDelta::seconds(45));

    let view = cache.read().await;
    let x = view.status(X).unwrap();
    let y = view.status(Y).unwrap();

    assert_eq!(view.snapshot().version, "2");
    assert!(x.consistent);
    assert_eq!(x.consistent_at, Some(t("2026-11-21T09:00:50Z")));
    assert!(!y.consistent);
    assert_eq!(y.consistent_at, Some(t("2026-11-21T10:00:50Z")));
}

#[tokio::test]
async fn consistency_opens_exactly_at_t_plus_delta_plus_p_plus_epsilon() {
    // Linear50PercentEvery30Seconds: Δ = 60 s. consistentAt = 10:00:00 + 60 + 45 + 5 = 10:01:50.
    let (cache, _handle, clock) = cache_at(
        "2026-11-21T10:01:49.999Z",
        Overrides::none(),
        Some(doc(true, false, "2026-11-21T10:00:00Z", 60, None)),
    )
    .await;

    let before = cache.read().await;
    clock.advance(TimeDelta::milliseconds(1));
    let at = cache.read().await;

    assert!(!before.status(X).unwrap().consistent);
    assert!(at.status(X).unwrap().consistent);
    assert_eq!(
        at.status(X).unwrap().consistent_at,
        Some(t("2026-11-21T10:01:50Z"))
    );
}

/// A durable snapshot store whose writes take `delay` (tokio time) and are counted.
struct SlowStore {
    delay: Duration,
    saves_started: std::sync::atomic::AtomicUsize,
}

impl SnapshotStore for SlowStore {
    fn load(&self) -> BoxFuture<'_, Result<Option<StoredConfig>, DurableError>> {
        Box::pin(async { Ok(None) })
    }

    fn save<'a>(
        &'a self,
        _config: &'a StoredConfig,
    ) -> BoxFuture<'a, Result<SaveOutcome, DurableError>> {
        self.saves_started
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Box::pin(async move {
            tokio::time::sleep(self.delay).await;
            Ok(SaveOutcome::Written)
        })
    }

    fn describe(&self) -> String {
        "slow".into()
    }
}

#[tokio::test(start_paused = true)]
async fn a_slow_durable_write_keeps_no_waiting_reader_and_is_cut_at_its_own_timeout() {
    let clock = ManualClock::new(t("2026-11-21T10:05:00Z"));
    let (source, handle) = MemorySource::new();
    handle.publish("1", doc(true, false, "2026-11-21T10:00:00Z", 0, None));
    let store = Arc::new(SlowStore {
        delay: Duration::from_secs(10),
        saves_started: Default::default(),
    });
    let options = CacheOptions {
        catalog: catalog(),
        overrides: Overrides::none(),
        settings: Settings::default(),
        clock: Arc::new(clock.clone()),
    };
    let cache = FlagCache::build(Box::new(source), options, Some(store.clone())).await;
    handle.publish("2", doc(false, false, "2026-11-21T10:05:30Z", 0, None));
    handle.set_delay(Some(Duration::from_millis(100)));
    clock.advance(TimeDelta::seconds(45));
    let flag = cache.handle(X).unwrap();

    // The first reader refreshes (a 100 ms fetch, then the write); the second waits on it.
    let began = tokio::time::Instant::now();
    let refresher = async {
        let status = cache.flag(flag).await;
        (status, began.elapsed())
    };
    let waiter = async {
        tokio::task::yield_now().await;
        let status = cache.flag(flag).await;
        (status, began.elapsed())
    };
    let ((refreshed, refresher_waited), (waited, waiter_waited)) = tokio::join!(refresher, waiter);

    assert_eq!(refreshed.map(|s| s.value), Some(false));
    assert_eq!(waited.map(|s| s.value), Some(false));
    assert_eq!(
        handle.calls(),
        2,
        "one fetch at cold start, one shared refresh"
    );
    assert_eq!(
        store
            .saves_started
            .load(std::sync::atomic::Ordering::SeqCst),
        2
    );
    assert_eq!(
        waiter_waited,
        Duration::from_millis(100),
        "the waiter waits for the fetch only"
    );
    assert_eq!(
        refresher_waited,
        Duration::from_millis(100) + lockstep::cache::DURABLE_SAVE_TIMEOUT,
        "the refreshing request waits for its write, cut at the write's own timeout"
    );
}

#[tokio::test]
async fn content_stamped_in_the_future_beyond_epsilon_is_rejected_and_the_last_good_version_stays()
{
    // The instance's clock reads 10:05:00; ε = 5 s.
    let (cache, handle, clock) = cache_at(
        "2026-11-21T10:05:00Z",
        Overrides::none(),
        Some(doc(false, false, "2026-11-21T10:00:00Z", 0, None)),
    )
    .await;
    handle.publish("2", doc(true, false, "2026-11-21T10:05:51Z", 0, None));
    clock.advance(TimeDelta::seconds(45));

    let rejected = cache.read().await;
    handle.publish("3", doc(true, false, "2026-11-21T10:06:34Z", 0, None));
    clock.advance(TimeDelta::seconds(45));
    let within_epsilon = cache.read().await;

    // At 10:05:45 a stamp of 10:05:51 is 6 s ahead: refused, version 1 kept, degraded.
    assert_eq!(rejected.snapshot().version, "1");
    assert!(!rejected.is_enabled(X));
    assert!(matches!(
        rejected.degraded(),
        Some(Degraded::InvalidContent { reason, .. }) if reason.contains("future")
    ));
    // At 10:06:30, a stamp of 10:06:34 is 4 s ahead: accepted (a skew within ε is what ε is for).
    assert_eq!(within_epsilon.snapshot().version, "3");
    assert!(within_epsilon.is_enabled(X));
    assert_eq!(within_epsilon.degraded(), None);
}
