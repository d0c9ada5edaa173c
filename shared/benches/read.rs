//! "Read a flag and its consistency" on a fresh cache: the hot path of every request.
//!
//! `cargo bench -p lockstep --bench read`. The cache is fresh (P = 1 h), so a read is a clock
//! read, an atomic pointer load, a binary search and the consistency rule: no I/O, no parsing.

use criterion::{criterion_group, criterion_main, Criterion};
use lockstep::cache::CacheOptions;
use lockstep::memory::MemorySource;
use lockstep::{FlagCache, FlagCatalog, FlagDecl, Overrides, Settings, SystemClock};
use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

const CONTENT: &str = r#"{
  "isFeatureXEnabled": true,
  "isFeatureYEnabled": false,
  "useSubmissionsGsi": true,
  "lockstepMetadata": {"lastModifiedTimestamp": "2026-11-21T10:00:00Z", "deploymentDurationSeconds": 60}
}"#;

/// Polls a future that must be ready at once (a fresh cache never waits).
fn ready<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("a fresh cache read waited"),
    }
}

fn cache() -> FlagCache {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let (source, handle) = MemorySource::new();
    handle.publish("1", CONTENT);
    let options = CacheOptions {
        catalog: FlagCatalog::new(vec![
            FlagDecl::public("isFeatureXEnabled"),
            FlagDecl::public("isFeatureYEnabled"),
            FlagDecl::internal("useSubmissionsGsi"),
        ])
        .unwrap(),
        overrides: Overrides::none(),
        settings: Settings {
            poll_interval: Duration::from_secs(3600),
            ..Settings::default()
        },
        clock: Arc::new(SystemClock),
    };
    runtime.block_on(FlagCache::new(Box::new(source), options))
}

fn bench(c: &mut Criterion) {
    let cache = cache();
    c.bench_function("read a flag and its consistency", |b| {
        b.iter(|| {
            let view = ready(cache.read());
            black_box(view.status(black_box("isFeatureXEnabled")))
        })
    });
    c.bench_function(
        "read /config's view (every public flag + isBackendConsistent)",
        |b| {
            b.iter(|| {
                let view = ready(cache.read());
                let flags: usize = view.public_flags().filter(|(_, s)| s.value).count();
                black_box((flags, view.is_backend_consistent()))
            })
        },
    );
    c.bench_function("parse and resolve one fetched version", |b| {
        let catalog = FlagCatalog::new(vec![FlagDecl::public("isFeatureXEnabled")]).unwrap();
        b.iter(|| {
            let doc = lockstep::document::parse(black_box(CONTENT.as_bytes())).unwrap();
            black_box(lockstep::Snapshot::from_document(
                "1".into(),
                &doc,
                &catalog,
                &Overrides::none(),
                lockstep::Window {
                    poll_interval: Duration::from_secs(45),
                    epsilon: Duration::from_secs(5),
                },
            ))
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
