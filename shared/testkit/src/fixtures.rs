//! Shared fixtures: the `events/` files as requests, flag documents, and caches in virtual time.

use chrono::{DateTime, Utc};
use lambda_http::Request;
use lockstep::cache::CacheOptions;
use lockstep::memory::{MemoryHandle, MemorySource};
use lockstep::{Clock, FlagCache, FlagCatalog, ManualClock, Overrides, Settings};
use std::future::Future;
use std::path::PathBuf;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

/// The project's `events/` directory.
pub fn events_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../events")
}

/// `events/<name>.json` as the request API Gateway would hand the function (panics with the
/// file's name when it is missing or not an event: a test fixture must exist).
pub fn event(name: &str) -> Request {
    let path = events_dir().join(format!("{name}.json"));
    let json = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    lambda_http::request::from_str(&json)
        .unwrap_or_else(|e| panic!("{} is not an API Gateway event: {e}", path.display()))
}

/// `request` at `path_and_query`, its query string parameters parsed from the query as API Gateway
/// would (what the runner's `to_lambda` does); `None` when `path_and_query` is not a valid URI
/// path and query (API Gateway would refuse it before any handler).
pub fn with_uri(request: Request, path_and_query: &str) -> Option<Request> {
    use lambda_http::aws_lambda_events::query_map::QueryMap;
    use lambda_http::RequestExt;
    let (mut parts, body) = request.into_parts();
    let mut uri = parts.uri.into_parts();
    uri.path_and_query = Some(path_and_query.parse().ok()?);
    parts.uri = lambda_http::http::Uri::from_parts(uri).ok()?;
    let query = path_and_query.split_once('?').map_or("", |(_, q)| q);
    let params = query
        .parse::<QueryMap>()
        .unwrap_or_else(|never| match never {});
    Some(Request::from_parts(parts, body).with_query_string_parameters(params))
}

/// Percent-encodes a query string value (everything but the URL-unreserved characters).
pub fn percent_encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The moment the fixtures' deployments are stamped: 2026-11-21T10:00:00Z.
pub fn deployed_at() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-21T10:00:00Z")
        .expect("a valid time")
        .with_timezone(&Utc)
}

/// A Freeform document with the sample's two flags, stamped at [`deployed_at`] with Δ = 60 s.
pub fn flags_document(feature_x: bool, use_gsi: bool) -> String {
    format!(
        r#"{{"isFeatureXEnabled": {feature_x}, "useSubmissionsGsi": {use_gsi}, "lockstepMetadata": {{"lastModifiedTimestamp": "2026-11-21T10:00:00Z", "deploymentDurationSeconds": 60}}}}"#
    )
}

/// A cache in virtual time over an in-memory source holding `content`, prefetched, with the
/// default settings (P = 45 s, ε = 5 s), and the handles to move time and publish versions.
pub struct TestCache {
    /// The cache.
    pub cache: Arc<FlagCache>,
    /// Its clock.
    pub clock: ManualClock,
    /// Its source's control half.
    pub source: MemoryHandle,
}

impl TestCache {
    /// The cache at `now`, having fetched `content` (version `1`).
    pub async fn new(catalog: FlagCatalog, content: &str, now: DateTime<Utc>) -> Self {
        let clock = ManualClock::new(now);
        let (cache, source) = cache_holding(catalog, content, Arc::new(clock.clone())).await;
        Self {
            cache,
            clock,
            source,
        }
    }
}

/// A cache on `clock` over a memory source, having fetched `content` (version `1`), default
/// settings and no overrides; with the source's control half.
pub async fn cache_holding(
    catalog: FlagCatalog,
    content: &str,
    clock: Arc<dyn Clock>,
) -> (Arc<FlagCache>, MemoryHandle) {
    let (source, handle) = MemorySource::new();
    handle.publish("1", content);
    let options = CacheOptions {
        catalog,
        overrides: Overrides::none(),
        settings: Settings::default(),
        clock,
    };
    (
        Arc::new(FlagCache::new(Box::new(source), options).await),
        handle,
    )
}

/// Polls a future that must be ready at once (a fresh cache never waits): what the benchmarks
/// time, with no runtime in the measurement. Panics if the future waits.
pub fn ready<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("a fresh cache read waited"),
    }
}

/// A cache over `content` that stays fresh for the benchmark's life (P = 1 h), reading `clock`.
pub fn fresh_cache(content: &str, catalog: FlagCatalog, clock: Arc<dyn Clock>) -> FlagCache {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a current-thread runtime");
    let (source, handle) = MemorySource::new();
    handle.publish("1", content);
    let options = CacheOptions {
        catalog,
        overrides: Overrides::none(),
        settings: Settings {
            poll_interval: Duration::from_secs(3600),
            ..Settings::default()
        },
        clock,
    };
    runtime.block_on(FlagCache::new(Box::new(source), options))
}
