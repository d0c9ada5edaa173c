//! The config function's metrics from real handler runs (design rule 11): its own stack
//! (`metered` around `catch_panics` around `config::handle`), one EMF document per invocation,
//! checked against the specification.

use chrono::{DateTime, TimeDelta, Utc};
use lambda_http::{Body, Request, Response};
use lockstep::cache::CacheOptions;
use lockstep::memory::{MemoryHandle, MemorySource};
use lockstep::metrics::Emf;
use lockstep::{FlagCache, ManualClock, Overrides, Settings};
use lockstep_http::catch_panic::catch_panics;
use lockstep_http::metered::{metered, Sink};
use lockstep_testkit::emf_spec;
use serde_json::Value;
use std::sync::{Arc, Mutex};
use tower::{service_fn, ServiceExt};

const T: &str = "2026-11-21T10:00:00Z";

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn content(x: bool, stamp: &str) -> String {
    format!(
        r#"{{"isFeatureXEnabled": {x}, "lockstepMetadata": {{"lastModifiedTimestamp": "{stamp}", "deploymentDurationSeconds": 60}}}}"#
    )
}

struct Function {
    cache: Arc<FlagCache>,
    clock: ManualClock,
    source: MemoryHandle,
    written: Arc<Mutex<Vec<String>>>,
}

async fn function(initial: Option<String>) -> Function {
    let (source, handle) = MemorySource::new();
    if let Some(content) = initial {
        handle.publish("1", content);
    }
    let clock = ManualClock::new(at("2026-11-21T10:05:00Z"));
    let options = CacheOptions {
        catalog: lockstep_sample::product::catalog(),
        overrides: Overrides::none(),
        settings: Settings::default(),
        clock: Arc::new(clock.clone()),
    };
    Function {
        cache: Arc::new(FlagCache::new(Box::new(source), options).await),
        clock,
        source: handle,
        written: Arc::default(),
    }
}

impl Function {
    /// One invocation of `GET /config` through the function's stack; its document.
    async fn invoke(&self) -> (Response<Body>, Value) {
        let request: Request =
            lambda_http::request::from_str(include_str!("../../../events/config-get.json"))
                .unwrap();
        let written = self.written.clone();
        let sink: Sink = Arc::new(move |document| written.lock().unwrap().push(document));
        let cache = self.cache.clone();
        let service = metered(
            self.cache.clone(),
            Emf::new("Lockstep", "lockstep", "config").unwrap(),
            sink,
            catch_panics(service_fn(move |request: Request| {
                let cache = cache.clone();
                async move { Ok::<_, std::convert::Infallible>(config::handle(&cache, &request).await) }
            })),
        );
        let before = self.written.lock().unwrap().len();
        let response = service.oneshot(request).await.unwrap();
        let written = self.written.lock().unwrap();
        assert_eq!(written.len(), before + 1, "one document per invocation");
        let text = &written[before];
        let doc = emf_spec::check(text).unwrap_or_else(|e| panic!("{e}: {text}"));
        (response, doc)
    }
}

#[tokio::test]
async fn a_cold_start_counts_itself_the_refresh_and_the_request_with_its_route() {
    let f = function(Some(content(true, T))).await;
    let (response, doc) = f.invoke().await;
    assert_eq!(response.status(), 200);
    assert_eq!(doc["function_name"], "config");
    assert_eq!(doc["service"], "lockstep");
    assert_eq!(doc["route"], "GET /config");
    assert_eq!(doc["ColdStart"], 1);
    assert_eq!(doc["RefreshNewVersion"], 1);
    assert_eq!(doc["Requests"], 1);
    assert_eq!(
        doc["ConfigAge"], 0.0,
        "served from what init fetched, just now"
    );
    assert!(doc.get("ColdStartWithoutAppConfig").is_none());
    assert!(
        doc.get("DeploymentLag").is_none(),
        "a cold start is not a deployment reaching an instance"
    );
    assert!(doc.get("Degraded").is_none());
}

#[tokio::test]
async fn a_new_version_records_its_lag_from_the_stamp_and_the_next_poll_counts_unchanged() {
    let f = function(Some(content(false, T))).await;
    f.invoke().await;
    f.source.publish("2", content(true, "2026-11-21T10:05:30Z"));
    f.clock.advance(TimeDelta::seconds(50));
    let (_, doc) = f.invoke().await;
    assert_eq!(doc["RefreshNewVersion"], 1);
    assert_eq!(doc["DeploymentLag"], 20_000.0, "10:05:50 - 10:05:30");
    assert!(doc.get("ColdStart").is_none());

    f.clock.advance(TimeDelta::seconds(30));
    let (_, doc) = f.invoke().await;
    assert_eq!(doc["ConfigAge"], 30_000.0);
    assert!(doc.get("RefreshUnchanged").is_none(), "fresh: no poll yet");
    f.clock.advance(TimeDelta::seconds(20));
    let (_, doc) = f.invoke().await;
    assert_eq!(doc["RefreshUnchanged"], 1);
    assert!(doc.get("DeploymentLag").is_none());
}

#[tokio::test]
async fn an_instance_without_its_configuration_counts_degraded_and_why() {
    let f = function(None).await;
    let (response, doc) = f.invoke().await;
    assert_eq!(response.status(), 200);
    assert_eq!(doc["ColdStart"], 1);
    assert_eq!(doc["ColdStartWithoutAppConfig"], 1);
    assert_eq!(doc["Degraded"], 1);
    assert_eq!(doc["DegradedNeverFetched"], 1);
    assert!(doc.get("ConfigAge").is_none(), "nothing was fetched");
}
