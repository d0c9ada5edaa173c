//! The handlers' hot paths: `cargo bench -p lockstep-http --bench http` (part of `./scripts/bench`,
//! BENCHMARKS.md). Every cache is fresh (P = 1 h) and reads with the product's clock.
//!
//! - "config handler request to response bytes": the config function's handler on a parsed
//!   `GET /config` event (events/config-get.json), up to the response body's bytes.
//! - "feature gate decision": a `POST /feature-x/submissions` event (events/feature-x-create.json)
//!   through the [`GateLayer`] with the flag off, refused (503) before the route is called: the
//!   route panics if it is.
//! - "config function without metrics" and "config function with metrics": the same handler as
//!   a service (the request cloned per call on both sides), alone and inside
//!   [`lockstep_http::metered`]: the difference is what one invocation's metrics cost (the
//!   status counted, the instance's state read, the EMF document rendered; the sink drops it).

use criterion::{criterion_group, criterion_main, Criterion};
use lambda_http::{Body, Request, Response};
use lockstep::metrics::Emf;
use lockstep::{CoarseClock, FlagCache, FlagCatalog, FlagDecl};
use lockstep_http::metered::{metered, Sink};
use lockstep_http::GateLayer;
use lockstep_testkit::fixtures::{fresh_cache, ready};
use std::convert::Infallible;
use std::hint::black_box;
use std::sync::Arc;
use tower::{service_fn, Layer, Service};

const FEATURE_X_ON: &str = r#"{
  "isFeatureXEnabled": true,
  "useSubmissionsGsi": true,
  "lockstepMetadata": {"lastModifiedTimestamp": "2026-11-21T10:00:00Z", "deploymentDurationSeconds": 60}
}"#;

const FEATURE_X_OFF: &str = r#"{
  "isFeatureXEnabled": false,
  "useSubmissionsGsi": true,
  "lockstepMetadata": {"lastModifiedTimestamp": "2026-11-21T10:00:00Z", "deploymentDurationSeconds": 60}
}"#;

fn cache(content: &str) -> Arc<FlagCache> {
    let catalog = FlagCatalog::new(vec![
        FlagDecl::public("isFeatureXEnabled"),
        FlagDecl::internal("useSubmissionsGsi"),
    ])
    .unwrap();
    Arc::new(fresh_cache(content, catalog, Arc::new(CoarseClock::new())))
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

fn bench(c: &mut Criterion) {
    let on = cache(FEATURE_X_ON);
    let config_get = event(include_str!("../../../events/config-get.json"));
    let first = ready(lockstep_http::config_routes::serve(&on, &config_get));
    assert_eq!(first.status(), 200);
    c.bench_function("config handler request to response bytes", |b| {
        b.iter(|| {
            let response = ready(lockstep_http::config_routes::serve(
                &on,
                black_box(&config_get),
            ));
            black_box(body_bytes(response.into_body()))
        })
    });

    let handler = on.clone();
    let mut plain = service_fn(move |request: Request| {
        let cache = handler.clone();
        async move { Ok::<_, Infallible>(lockstep_http::config_routes::serve(&cache, &request).await) }
    });
    c.bench_function("config function without metrics", |b| {
        b.iter(|| {
            let response = ready(plain.call(black_box(config_get.clone()))).unwrap();
            black_box(body_bytes(response.into_body()))
        })
    });
    let sink: Sink = Arc::new(|document: String| {
        black_box(document.len());
    });
    let emf = Emf::new("Lockstep", "lockstep", "config").unwrap();
    let mut with_metrics = metered(on.clone(), emf, sink, plain.clone());
    c.bench_function("config function with metrics", |b| {
        b.iter(|| {
            let response = ready(with_metrics.call(black_box(config_get.clone()))).unwrap();
            black_box(body_bytes(response.into_body()))
        })
    });

    let off = cache(FEATURE_X_OFF);
    let gate = GateLayer::new(off, "isFeatureXEnabled").expect("declared");
    let mut gated = gate.layer(service_fn(|_request: Request| async {
        panic!("the gate let a request through with the flag off");
        #[allow(unreachable_code)]
        Ok::<Response<Body>, Infallible>(Response::new(Body::Empty))
    }));
    let create = event(include_str!("../../../events/feature-x-create.json"));
    assert_eq!(ready(gated.call(create.clone())).unwrap().status(), 503);
    c.bench_function("feature gate decision", |b| {
        b.iter(|| {
            let response = ready(gated.call(black_box(create.clone()))).unwrap();
            black_box(response.status())
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
