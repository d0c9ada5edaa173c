//! The hot paths a request takes, and the agent-style read users would pick instead.
//!
//! `cargo bench -p lockstep --bench read`, or `./scripts/bench` for the whole comparison table
//! (BENCHMARKS.md). Every cache here is fresh (P = 1 h), so no read waits for a refresh, and reads
//! with the product's clock ([`CoarseClock`]) unless the name says otherwise.
//!
//! - "read a flag and its consistency": what a handler does per decision, `cache.read().await`
//!   then the flag's status (value and consistency).
//! - "agent-style read over loopback HTTP": the same flags served as JSON by a minimal HTTP server
//!   on 127.0.0.1 (hyper, in another thread, as the AppConfig Lambda extension serves
//!   `localhost:2772/applications/.../configurations/...`); per read one GET on a kept-alive
//!   connection (hyper's http1 client), the body parsed into a `serde_json::Value` and the flag
//!   looked up, the way a handler uses the extension.
//! - "config handler request to response bytes": the config function's handler on a parsed
//!   `GET /config` event (events/config-get.json), up to the response body's bytes.
//! - "feature gate decision": a `POST /feature-x/submissions` event with the flag off, routed and
//!   refused (503) before the body or the store is touched: the store panics if called.

use criterion::{criterion_group, criterion_main, Criterion};
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use lambda_http::{Body, Request};
use lockstep::cache::CacheOptions;
use lockstep::feature_x::FeatureX;
use lockstep::http::ApiError;
use lockstep::memory::MemorySource;
use lockstep::submissions::{
    Created, Ident, ListQuery, Page, QueryMethod, StoreError, Submission, SubmissionStore,
};
use lockstep::{
    Clock, CoarseClock, FlagCache, FlagCatalog, FlagDecl, Overrides, Settings, SystemClock,
};
use std::convert::Infallible;
use std::future::Future;
use std::hint::black_box;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

/// The flags every in-memory read here serves; the Powertools side reads the same file.
const CONTENT: &str = include_str!("../../bench/flags.json");

const FEATURE_X_OFF: &str = r#"{
  "isFeatureXEnabled": false,
  "useSubmissionsGsi": true,
  "lockstepMetadata": {"lastModifiedTimestamp": "2026-11-21T10:00:00Z", "deploymentDurationSeconds": 60}
}"#;

/// Where the AppConfig Lambda extension serves a profile.
const AGENT_PATH: &str = "/applications/lockstep/environments/local/configurations/flags";

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

fn cache(content: &str, catalog: FlagCatalog, clock: Arc<dyn Clock>) -> FlagCache {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
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

fn catalog() -> FlagCatalog {
    FlagCatalog::new(vec![
        FlagDecl::public("isFeatureXEnabled"),
        FlagDecl::public("isFeatureYEnabled"),
        FlagDecl::internal("useSubmissionsGsi"),
    ])
    .unwrap()
}

fn event(json: &str) -> Request {
    lambda_http::request::from_str(json).expect("a valid API Gateway event")
}

fn body_bytes(body: Body) -> Vec<u8> {
    match body {
        Body::Text(text) => text.into_bytes(),
        Body::Binary(bytes) => bytes,
        _ => Vec::new(),
    }
}

/// A store the gate must never reach.
struct UnreachableStore;

impl SubmissionStore for UnreachableStore {
    fn create<'a>(
        &'a self,
        _: &'a Submission,
        _: Option<(&'a Ident, String)>,
    ) -> lockstep::source::BoxFuture<'a, Result<Created, StoreError>> {
        panic!("the gate let a request through to the store")
    }

    fn get<'a>(
        &'a self,
        _: &'a Ident,
        _: &'a str,
    ) -> lockstep::source::BoxFuture<'a, Result<Option<Submission>, StoreError>> {
        panic!("the gate let a request through to the store")
    }

    fn list<'a>(
        &'a self,
        _: &'a ListQuery,
        _: QueryMethod,
    ) -> lockstep::source::BoxFuture<'a, Result<Page, StoreError>> {
        panic!("the gate let a request through to the store")
    }
}

/// A minimal stand-in for the AppConfig extension: serves `content` at [`AGENT_PATH`] on
/// 127.0.0.1 from its own thread, HTTP/1.1 with keep-alive.
fn agent(content: &'static str) -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(|request| async move {
                        let (status, body) = if request.uri().path() == AGENT_PATH {
                            (200, content)
                        } else {
                            (404, "")
                        };
                        Ok::<_, Infallible>(
                            http::Response::builder()
                                .status(status)
                                .header(http::header::CONTENT_TYPE, "application/json")
                                .body(Full::new(Bytes::from_static(body.as_bytes())))
                                .unwrap(),
                        )
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        })
    });
    addr
}

/// One agent-style read: GET the profile, parse it, look the flag up.
async fn agent_read(
    sender: &mut hyper::client::conn::http1::SendRequest<Empty<Bytes>>,
    flag: &str,
) -> Option<bool> {
    sender.ready().await.unwrap();
    let request = http::Request::get(AGENT_PATH)
        .header(http::header::HOST, "localhost:2772")
        .body(Empty::new())
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.status(), 200);
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let doc: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    doc.get(flag).and_then(serde_json::Value::as_bool)
}

fn bench(c: &mut Criterion) {
    let coarse = cache(CONTENT, catalog(), Arc::new(CoarseClock::new()));
    c.bench_function("read a flag and its consistency", |b| {
        b.iter(|| {
            let view = ready(coarse.read());
            black_box(view.status(black_box("isFeatureXEnabled")))
        })
    });

    let precise = cache(CONTENT, catalog(), Arc::new(SystemClock));
    c.bench_function(
        "read a flag and its consistency with the precise clock",
        |b| {
            b.iter(|| {
                let view = ready(precise.read());
                black_box(view.status(black_box("isFeatureXEnabled")))
            })
        },
    );

    let addr = agent(CONTENT);
    let client = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .unwrap();
    let mut sender = client.block_on(async {
        let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream.set_nodelay(true).unwrap();
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap();
        tokio::spawn(connection);
        sender
    });
    assert_eq!(
        client.block_on(agent_read(&mut sender, "isFeatureXEnabled")),
        Some(true)
    );
    c.bench_function("agent-style read over loopback HTTP", |b| {
        b.iter(|| client.block_on(agent_read(&mut sender, black_box("isFeatureXEnabled"))))
    });

    let product = cache(
        CONTENT,
        lockstep::product::catalog(),
        Arc::new(CoarseClock::new()),
    );
    let config_get = event(include_str!("../../events/config-get.json"));
    let first = ready(lockstep::routes::config_function(&product, &config_get));
    assert_eq!(first.status(), 200);
    c.bench_function("config handler request to response bytes", |b| {
        b.iter(|| {
            let response = ready(lockstep::routes::config_function(
                &product,
                black_box(&config_get),
            ));
            black_box(body_bytes(response.into_body()))
        })
    });

    let feature_x = FeatureX {
        flags: Arc::new(cache(
            FEATURE_X_OFF,
            lockstep::product::catalog(),
            Arc::new(CoarseClock::new()),
        )),
        store: Arc::new(UnreachableStore),
        clock: Arc::new(SystemClock),
    };
    let create = event(include_str!("../../events/feature-x-create.json"));
    assert!(matches!(
        ready(feature_x.handle(&create)),
        Err(ApiError::FeatureDisabled { .. })
    ));
    c.bench_function("feature gate decision", |b| {
        b.iter(|| black_box(ready(feature_x.handle(black_box(&create))).is_err()))
    });

    c.bench_function(
        "read /config's view (every public flag + isBackendConsistent)",
        |b| {
            b.iter(|| {
                let view = ready(coarse.read());
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
