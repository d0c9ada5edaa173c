//! Flags that survive AppConfig outages (design rules 2 and 5), with the durable last-known-good
//! snapshot in DynamoDB Local and AppConfig unreachable for real (an AppConfigData client whose
//! endpoint is a closed local port).
//!
//! - cold start, AppConfig unreachable, a snapshot stored: the snapshot is served, degraded,
//!   `isBackendConsistent` false;
//! - the same without a snapshot (or with the snapshot table unreachable too): bundled defaults,
//!   degraded;
//! - an outage in mid-life: last-known-good kept, degraded, recovered when the source returns;
//! - an instance holding an older version never overwrites a newer snapshot.
//!
//! A missing Java or `npm ci` fails the test loudly; it never skips.

use aws_sdk_appconfigdata::config::{BehaviorVersion, Credentials, Region};
use chrono::{DateTime, TimeDelta, Utc};
use lockstep::appconfig::{AppConfigSource, Target};
use lockstep::cache::{CacheOptions, Degraded};
use lockstep::durable::{DynamoSnapshots, SaveOutcome, SnapshotStore, StoredConfig};
use lockstep::memory::{MemoryHandle, MemorySource};
use lockstep::snapshot::Origin;
use lockstep::{ConfigSource, FlagCache, FlagCatalog, FlagDecl, ManualClock, Overrides, Settings};
use lockstep_testkit::dynamo_local::{client, ensure_snapshot_table, DynamoLocal};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

const TABLE: &str = "lockstep-snapshots";
const FEATURE_X: &str = "isFeatureXEnabled";
const P: Duration = Duration::from_secs(15);

/// Deployed at 09:00 with Δ = 60 s: consistent from 09:01:20 with P = 15 s and ε = 5 s.
const V1: &str = r#"{"isFeatureXEnabled": true, "useSubmissionsGsi": false, "lockstepMetadata": {"lastModifiedTimestamp": "2026-11-21T09:00:00Z", "deploymentDurationSeconds": 60}}"#;
/// Deployed at 09:30.
const V2: &str = r#"{"isFeatureXEnabled": true, "useSubmissionsGsi": true, "lockstepMetadata": {"lastModifiedTimestamp": "2026-11-21T09:30:00Z", "deploymentDurationSeconds": 60}}"#;

fn target() -> Target {
    Target {
        application: "lockstep".into(),
        environment: "test".into(),
        profile: "flags".into(),
    }
}

fn at(rfc3339: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(rfc3339)
        .unwrap()
        .with_timezone(&Utc)
}

struct Env {
    dynamo: DynamoLocal,
    store: Arc<DynamoSnapshots>,
    clock: ManualClock,
}

async fn env() -> Env {
    let dynamo = DynamoLocal::start_from(Path::new(env!("CARGO_MANIFEST_DIR")), &[])
        .await
        .expect("DynamoDB Local must start (Java 17 and `npm ci` in the project root)");
    let db = client(&dynamo.endpoint);
    ensure_snapshot_table(&db, TABLE).await.unwrap();
    // DynamoDB Local's first writes are slow (its JVM compiles the paths as they first run):
    // warm them on another target's item, so that the instances' saves, bounded by
    // DURABLE_SAVE_TIMEOUT as in Lambda, meet a warm server even on a loaded machine.
    let warm = DynamoSnapshots::new(
        db.clone(),
        TABLE,
        &Target {
            application: "warm-up".into(),
            ..target()
        },
    );
    for stamp_millis in 1..=5 {
        let config = StoredConfig {
            version: stamp_millis.to_string(),
            content: V1.as_bytes().to_vec(),
            stamp_millis,
            fetched_at: at("2026-11-21T10:00:00Z"),
        };
        warm.save(&config).await.unwrap();
        warm.load().await.unwrap();
    }
    Env {
        store: Arc::new(DynamoSnapshots::new(db, TABLE, &target())),
        dynamo,
        clock: ManualClock::new(at("2026-11-21T10:00:00Z")),
    }
}

fn options(clock: &ManualClock) -> CacheOptions {
    CacheOptions {
        catalog: FlagCatalog::new(vec![
            FlagDecl::public(FEATURE_X),
            FlagDecl::internal("useSubmissionsGsi"),
        ])
        .unwrap(),
        overrides: Overrides::none(),
        settings: Settings {
            poll_interval: P,
            ..Settings::default()
        },
        clock: Arc::new(clock.clone()),
    }
}

/// An AppConfigData source that cannot reach AppConfig: its endpoint is a closed local port.
fn unreachable_appconfig() -> Box<dyn ConfigSource> {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let config = lockstep::appconfig::configure(
        aws_sdk_appconfigdata::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("eu-west-1"))
            .credentials_provider(Credentials::new("test", "test", None, None, "test"))
            .endpoint_url(format!("http://127.0.0.1:{port}")),
    )
    .build();
    Box::new(AppConfigSource::new(
        aws_sdk_appconfigdata::Client::from_conf(config),
        target(),
    ))
}

/// A new instance whose AppConfig cannot be reached, with the durable snapshot store.
async fn cold_start_without_appconfig(
    clock: &ManualClock,
    store: &Arc<DynamoSnapshots>,
) -> FlagCache {
    FlagCache::build(unreachable_appconfig(), options(clock), Some(store.clone())).await
}

async fn instance(env: &Env, content: &str, version: &str) -> (FlagCache, MemoryHandle) {
    let (source, handle) = MemorySource::new();
    handle.publish(version, content);
    let cache = FlagCache::build(
        Box::new(source),
        options(&env.clock),
        Some(env.store.clone()),
    )
    .await;
    (cache, handle)
}

#[tokio::test]
async fn cold_start_without_appconfig_serves_the_durable_snapshot_degraded() {
    let env = env().await;
    // A healthy instance fetched v2: it wrote the snapshot.
    let (writer, _source) = instance(&env, V2, "2").await;
    assert_eq!(writer.read().await.degraded(), None);
    let stored = env.store.load().await.unwrap().expect("snapshot written");
    assert_eq!(stored.version, "2");
    assert_eq!(stored.content, V2.as_bytes());

    // A new instance, AppConfig unreachable.
    let cache = cold_start_without_appconfig(&env.clock, &env.store).await;
    let view = cache.read().await;
    assert_eq!(view.snapshot().version, "2");
    assert_eq!(view.snapshot().origin, Origin::Durable);
    assert!(
        view.is_enabled(FEATURE_X),
        "the snapshot's value, not the default"
    );
    assert!(matches!(
        view.degraded(),
        Some(Degraded::DurableSnapshot { .. })
    ));
    // Long after the snapshot's consistentAt, the instance still cannot vouch for it.
    assert!(view.now() > view.status(FEATURE_X).unwrap().consistent_at.unwrap());
    assert!(!view.is_backend_consistent());
    assert_eq!(
        view.backend().consistent_at,
        None,
        "a degraded instance names no time"
    );
    assert_eq!(
        view.degraded().map(|d| d.reason()),
        Some("durable_snapshot")
    );

    // Later retries that fail keep the snapshot (and never fall back to defaults).
    env.clock.advance(TimeDelta::seconds(20));
    let view = cache.read().await;
    assert_eq!(view.snapshot().version, "2");
    assert!(matches!(
        view.degraded(),
        Some(Degraded::DurableSnapshot { .. })
    ));
    env.dynamo.stop().await;
}

#[tokio::test]
async fn cold_start_without_appconfig_or_snapshot_serves_the_bundled_defaults_degraded() {
    let env = env().await;
    let cache = cold_start_without_appconfig(&env.clock, &env.store).await;
    let view = cache.read().await;
    assert_eq!(view.snapshot().origin, Origin::Defaults);
    assert!(!view.is_enabled(FEATURE_X), "bundled default: disabled");
    assert!(matches!(
        view.degraded(),
        Some(Degraded::NeverFetched { .. })
    ));
    assert!(!view.is_backend_consistent());

    // The snapshot table unreachable as well (DynamoDB Local stopped): still the defaults.
    let (writer, _source) = instance(&env, V1, "1").await;
    assert_eq!(writer.read().await.snapshot().version, "1");
    env.dynamo.stop().await;
    let cache = cold_start_without_appconfig(&env.clock, &env.store).await;
    let view = cache.read().await;
    assert_eq!(view.snapshot().origin, Origin::Defaults);
    assert!(matches!(
        view.degraded(),
        Some(Degraded::NeverFetched { .. })
    ));
}

#[tokio::test]
async fn an_outage_in_mid_life_keeps_the_last_known_good_and_recovers() {
    let env = env().await;
    let (cache, source) = instance(&env, V1, "1").await;
    let healthy = cache.read().await;
    assert_eq!(healthy.degraded(), None);
    assert!(healthy.is_backend_consistent());
    // A newer snapshot from elsewhere must not replace what this instance fetched itself.
    env.store
        .save(&StoredConfig {
            version: "2".into(),
            content: V2.as_bytes().to_vec(),
            stamp_millis: at("2026-11-21T09:30:00Z").timestamp_millis(),
            fetched_at: lockstep::Clock::now(&env.clock),
        })
        .await
        .unwrap();

    source.set_failing(true);
    env.clock.advance(TimeDelta::from_std(P).unwrap());
    let view = cache.read().await;
    assert_eq!(view.snapshot().version, "1", "last known good kept");
    assert!(view.is_enabled(FEATURE_X));
    assert!(matches!(
        view.degraded(),
        Some(Degraded::FetchFailed { .. })
    ));
    assert!(!view.is_backend_consistent());
    // Still down after the backoff: still v1, still degraded.
    env.clock.advance(TimeDelta::seconds(2));
    let view = cache.read().await;
    assert_eq!(view.snapshot().version, "1");
    assert!(view.degraded().is_some());

    // AppConfig returns (unchanged content): healthy again, consistent again.
    source.set_failing(false);
    env.clock.advance(TimeDelta::from_std(P).unwrap());
    let view = cache.read().await;
    assert_eq!(view.snapshot().version, "1");
    assert_eq!(view.degraded(), None);
    assert!(view.is_backend_consistent());
    env.dynamo.stop().await;
}

#[tokio::test]
async fn an_older_instance_never_overwrites_a_newer_snapshot() {
    let env = env().await;
    // An instance on the new side of a deployment writes v2.
    let (_new, _s2) = instance(&env, V2, "2").await;
    // Later, an instance on the old side of the gradual deployment (or thawed with v1 pending)
    // accepts v1: its write is refused.
    env.clock.advance(TimeDelta::seconds(30));
    let (old, _s1) = instance(&env, V1, "1").await;
    assert_eq!(
        old.read().await.snapshot().version,
        "1",
        "it serves what it fetched"
    );
    let stored = env.store.load().await.unwrap().unwrap();
    assert_eq!(stored.version, "2");
    assert_eq!(stored.content, V2.as_bytes());

    // The rule itself: older stamp refused, same version refused, newer stamp written.
    let v1_stamp = at("2026-11-21T09:00:00Z").timestamp_millis();
    let v2_stamp = at("2026-11-21T09:30:00Z").timestamp_millis();
    let config = |version: &str, content: &str, stamp_millis: i64| StoredConfig {
        version: version.into(),
        content: content.as_bytes().to_vec(),
        stamp_millis,
        fetched_at: at("2026-11-21T11:00:00Z"),
    };
    let save = |c: StoredConfig| {
        let store = env.store.clone();
        async move { store.save(&c).await.unwrap() }
    };
    assert_eq!(
        save(config("1", V1, v1_stamp)).await,
        SaveOutcome::KeptNewer
    );
    assert_eq!(
        save(config("2", V2, v2_stamp)).await,
        SaveOutcome::KeptNewer
    );
    let v3 = V2.replace("09:30:00Z", "10:00:00Z");
    let v3_stamp = at("2026-11-21T10:00:00Z").timestamp_millis();
    assert_eq!(save(config("3", &v3, v3_stamp)).await, SaveOutcome::Written);
    assert_eq!(
        save(config("2", V2, v2_stamp)).await,
        SaveOutcome::KeptNewer
    );
    assert_eq!(env.store.load().await.unwrap().unwrap().version, "3");
    env.dynamo.stop().await;
}

/// Counts the writes reaching the real store.
struct Counting {
    inner: Arc<DynamoSnapshots>,
    saves: std::sync::atomic::AtomicUsize,
}

impl SnapshotStore for Counting {
    fn load(
        &self,
    ) -> lockstep::source::BoxFuture<
        '_,
        Result<Option<StoredConfig>, lockstep::durable::DurableError>,
    > {
        self.inner.load()
    }
    fn save<'a>(
        &'a self,
        config: &'a StoredConfig,
    ) -> lockstep::source::BoxFuture<'a, Result<SaveOutcome, lockstep::durable::DurableError>> {
        self.saves.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.inner.save(config)
    }
    fn describe(&self) -> String {
        self.inner.describe()
    }
}

#[tokio::test]
async fn only_new_versions_are_written_and_a_failed_write_changes_nothing_served() {
    let env = env().await;
    let counting = Arc::new(Counting {
        inner: env.store.clone(),
        saves: Default::default(),
    });
    let saves = || counting.saves.load(std::sync::atomic::Ordering::SeqCst);
    let (source, handle) = MemorySource::new();
    handle.publish("1", V1);
    let cache = FlagCache::build(
        Box::new(source),
        options(&env.clock),
        Some(counting.clone()),
    )
    .await;
    assert_eq!(saves(), 1, "the first version is written");
    // Unchanged polls write nothing.
    for _ in 0..3 {
        env.clock.advance(TimeDelta::from_std(P).unwrap());
        assert_eq!(cache.read().await.snapshot().version, "1");
    }
    assert_eq!(saves(), 1);
    // A new version is written once.
    handle.publish("2", V2);
    env.clock.advance(TimeDelta::from_std(P).unwrap());
    assert_eq!(cache.read().await.snapshot().version, "2");
    assert_eq!(saves(), 2);
    assert_eq!(env.store.load().await.unwrap().unwrap().version, "2");
    // Rejected content is not written.
    handle.publish("3", "{not json");
    env.clock.advance(TimeDelta::from_std(P).unwrap());
    assert_eq!(cache.read().await.snapshot().version, "2");
    assert_eq!(saves(), 2);
    // DynamoDB gone: the write fails, the new version is served all the same, healthy.
    env.dynamo.stop().await;
    let v4 = V2.replace("09:30:00Z", "09:45:00Z");
    handle.publish("4", v4);
    env.clock.advance(TimeDelta::from_std(P).unwrap());
    let view = cache.read().await;
    assert_eq!(saves(), 3);
    assert_eq!(view.snapshot().version, "4");
    assert_eq!(view.degraded(), None);
}
