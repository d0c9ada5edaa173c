//! The hot paths a request takes, and the agent-style read users would pick instead.
//!
//! `cargo bench -p lockstep --bench read`, or `./scripts/bench` for the whole comparison table
//! (BENCHMARKS.md; the handlers' benchmarks are in `lockstep-http`'s `http` bench). Every cache
//! here is fresh (P = 1 h), so no read waits for a refresh, and reads with the product's clock
//! ([`CoarseClock`]) unless the name says otherwise.
//!
//! - "read a flag and its consistency": what a handler does per decision, `cache.flag(handle)`
//!   with the flag's handle resolved at init (value and consistency).
//! - "agent-style read over loopback HTTP": the same flags served as JSON by a minimal HTTP server
//!   on 127.0.0.1 (hyper, in another thread, as the AppConfig Lambda extension serves
//!   `localhost:2772/applications/.../configurations/...`); per read one GET on a kept-alive
//!   connection (hyper's http1 client), the body parsed into a `serde_json::Value` and the flag
//!   looked up, the way a handler uses the extension.
//! - "read /config's view": every public flag and the backend's verdict from one read.
//! - "parse and resolve one fetched version": what a new version costs, once.

use criterion::{criterion_group, criterion_main, Criterion};
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use lockstep::{CoarseClock, FlagCatalog, FlagDecl, Overrides, Settings, SystemClock};
use lockstep_testkit::fixtures::{fresh_cache, ready};
use std::convert::Infallible;
use std::hint::black_box;
use std::net::SocketAddr;
use std::sync::Arc;

/// The flags every in-memory read here serves; the Powertools side reads the same file.
const CONTENT: &str = include_str!("../../../bench/flags.json");

/// Where the AppConfig Lambda extension serves a profile.
const AGENT_PATH: &str = "/applications/lockstep/environments/local/configurations/flags";

fn catalog() -> FlagCatalog {
    FlagCatalog::new(vec![
        FlagDecl::public("isFeatureXEnabled"),
        FlagDecl::public("isFeatureYEnabled"),
        FlagDecl::internal("useSubmissionsGsi"),
    ])
    .unwrap()
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
    let coarse = fresh_cache(CONTENT, catalog(), Arc::new(CoarseClock::new()));
    let feature_x = coarse.handle("isFeatureXEnabled").expect("declared");
    assert_eq!(ready(coarse.flag(feature_x)).map(|s| s.value), Some(true));
    c.bench_function("read a flag and its consistency", |b| {
        b.iter(|| black_box(ready(coarse.flag(black_box(feature_x)))))
    });

    let precise = fresh_cache(CONTENT, catalog(), Arc::new(SystemClock));
    let feature_x_precise = precise.handle("isFeatureXEnabled").expect("declared");
    c.bench_function(
        "read a flag and its consistency with the precise clock",
        |b| b.iter(|| black_box(ready(precise.flag(black_box(feature_x_precise))))),
    );

    c.bench_function("read a flag by name (a view, then a name search)", |b| {
        b.iter(|| {
            let view = ready(coarse.read());
            black_box(view.status(black_box("isFeatureXEnabled")))
        })
    });

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

    c.bench_function(
        "read /config's view (every public flag + isBackendConsistent)",
        |b| {
            b.iter(|| {
                let view = ready(coarse.read());
                let flags: usize = view.public_flags().filter(|(_, s)| s.value).count();
                black_box((flags, view.backend()))
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
                Settings::default().window(),
            ))
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
