//! Feature X's metrics from real handler runs (design rule 11): the function's own stack
//! (`metered` around `catch_panics` around the handler), one EMF document per invocation,
//! checked against the specification, counting what its alarms watch.

use lambda_http::{Body, Request, Response};
use lockstep::metrics::Emf;
use lockstep_http::catch_panic::catch_panics;
use lockstep_http::metered::{metered, Sink};
use lockstep_sample::product::catalog;
use lockstep_sample::FeatureX;
use lockstep_testkit::emf_spec;
use lockstep_testkit::fixtures::{deployed_at, event, flags_document, TestCache};
use lockstep_testkit::MemoryStore;
use serde_json::Value;
use std::sync::{Arc, Mutex};
use tower::{service_fn, ServiceExt};

/// What the sink received: one entry per invocation that counted something.
type Written = Arc<Mutex<Vec<String>>>;

struct Function {
    feature_x: Arc<FeatureX>,
    flags: TestCache,
    store: Arc<MemoryStore>,
    written: Written,
}

async fn function(feature_x_on: bool) -> Function {
    let flags = TestCache::new(
        catalog(),
        &flags_document(feature_x_on, true),
        deployed_at(),
    )
    .await;
    let store = Arc::new(MemoryStore::new());
    let feature_x = FeatureX::new(
        flags.cache.clone(),
        store.clone(),
        Arc::new(flags.clock.clone()),
    )
    .unwrap();
    Function {
        feature_x: Arc::new(feature_x),
        flags,
        store,
        written: Arc::default(),
    }
}

impl Function {
    /// One invocation through the function's stack, as `main` builds it; its document.
    async fn invoke(&self, request: Request) -> (Response<Body>, Option<Value>) {
        let written = self.written.clone();
        let sink: Sink = Arc::new(move |document| written.lock().unwrap().push(document));
        let feature_x = self.feature_x.clone();
        let service = metered(
            self.flags.cache.clone(),
            Emf::new("Lockstep", "lockstep", "feature-x").unwrap(),
            sink,
            catch_panics(service_fn(move |request| {
                let feature_x = feature_x.clone();
                async move { Ok::<_, std::convert::Infallible>(feature_x.serve(request).await) }
            })),
        );
        let before = self.written.lock().unwrap().len();
        let response = service.oneshot(request).await.unwrap();
        let written = self.written.lock().unwrap();
        assert!(written.len() <= before + 1, "one document per invocation");
        let document = written.get(before).map(|text| {
            assert!(
                !text.contains("user-1"),
                "no user id in a metrics document: {text}"
            );
            emf_spec::check(text).unwrap_or_else(|e| panic!("{e}: {text}"))
        });
        (response, document)
    }
}

#[tokio::test]
async fn a_created_submission_counts_the_cold_start_the_open_gate_and_the_request_per_route() {
    let f = function(true).await;
    let (response, document) = f.invoke(event("feature-x-create")).await;
    assert_eq!(response.status(), 201);
    let doc = document.expect("a document");
    assert_eq!(doc["function_name"], "feature-x");
    assert_eq!(doc["route"], "POST /feature-x/submissions");
    for (metric, value) in [
        ("ColdStart", 1),
        ("RefreshNewVersion", 1),
        ("GateOpen", 1),
        ("Requests", 1),
    ] {
        assert_eq!(doc[metric], value, "{metric}");
    }
    assert!(doc.get("Http5xx").is_none());
    assert!(doc["ConfigAge"].is_number());

    let (_, second) = f.invoke(event("feature-x-create")).await;
    let second = second.expect("a document");
    assert!(
        second.get("ColdStart").is_none(),
        "one cold start per instance"
    );
    assert_eq!(
        second["GateOpen"], 1,
        "counts start from zero each invocation"
    );
}

#[tokio::test]
async fn a_closed_gate_counts_the_reason_and_a_5xx() {
    let f = function(false).await;
    let (response, document) = f.invoke(event("feature-x-create")).await;
    assert_eq!(response.status(), 503);
    let doc = document.expect("a document");
    assert_eq!(doc["GateDisabled"], 1);
    assert_eq!(doc["Http5xx"], 1);
    assert!(doc.get("GateOpen").is_none());
    assert!(doc.get("StorageError").is_none());
}

#[tokio::test]
async fn a_storage_outage_counts_a_storage_error_and_a_5xx_and_writes_nothing() {
    let f = function(true).await;
    f.store.set_failing(true);
    let (response, document) = f.invoke(event("feature-x-create")).await;
    assert_eq!(response.status(), 503);
    let doc = document.expect("a document");
    assert_eq!(doc["StorageError"], 1);
    assert_eq!(doc["Http5xx"], 1);
    assert_eq!(doc["GateOpen"], 1);
    assert_eq!(f.store.writes(), 0);
}
