//! Property tests of request decoding and query parsing, through feature X's real handlers on the
//! in-memory store: whatever the body, the headers' values or the query string, an answer is
//! one of the statuses the API documents, never a 500 and never a panic, and a refused request
//! writes nothing. Bounded in CI (proptest's default 256 cases per property);
//! `PROPTEST_CASES=<n>` runs them longer (docs/robustness.md records a long run).

use lambda_http::Body;
use lockstep_sample::product::catalog;
use lockstep_sample::FeatureX;
use lockstep_testkit::fixtures::{
    deployed_at, event, flags_document, percent_encode, with_uri, TestCache,
};
use lockstep_testkit::MemoryStore;
use proptest::prelude::*;
use std::sync::Arc;

const DOCUMENTED: [u16; 10] = [200, 201, 400, 403, 404, 405, 409, 413, 415, 503];

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

async fn feature_x() -> (FeatureX, Arc<MemoryStore>, TestCache) {
    let flags = TestCache::new(catalog(), &flags_document(true, false), deployed_at()).await;
    let store = Arc::new(MemoryStore::new());
    let fx = FeatureX::new(
        flags.cache.clone(),
        store.clone(),
        Arc::new(flags.clock.clone()),
    )
    .expect("the catalog declares feature X's flags");
    (fx, store, flags)
}

/// JSON-ish text: often almost a submission, sometimes anything.
fn body_text() -> impl Strategy<Value = String> {
    let field = prop_oneof![
        Just("userId".to_owned()),
        Just("journeyId".to_owned()),
        Just("plan".to_owned()),
        Just("quantity".to_owned()),
        Just("note".to_owned()),
        "[a-zA-Z]{0,8}"
    ];
    let value = prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|n| format!("{n:?}")),
        "\\PC{0,40}".prop_map(|s| serde_json::to_string(&s).unwrap()),
        Just("null".to_owned()),
        Just("true".to_owned()),
        Just("[]".to_owned()),
        Just("{}".to_owned()),
        Just("\"basic\"".to_owned()),
        Just("\"premium\"".to_owned()),
    ];
    let object = proptest::collection::vec((field, value), 0..7).prop_map(|pairs| {
        let inner: Vec<String> = pairs
            .into_iter()
            .map(|(k, v)| format!("{}: {v}", serde_json::to_string(&k).unwrap()))
            .collect();
        format!("{{{}}}", inner.join(", "))
    });
    prop_oneof![object, "\\PC{0,200}", ".{0,64}"]
}

proptest! {
    #[test]
    fn any_create_body_and_headers_answer_a_documented_status_and_refusals_write_nothing(
        body in body_text(),
        content_type in prop_oneof![Just("application/json".to_owned()), "[ -~]{0,40}"],
        key in proptest::option::of("[ -~]{0,300}"),
    ) {
        runtime().block_on(async {
            let (fx, store, _flags) = feature_x().await;
            let mut request = event("feature-x-create");
            *request.body_mut() = Body::Text(body.clone());
            let headers = request.headers_mut();
            headers.remove("content-type");
            if let Ok(v) = content_type.parse() {
                headers.insert("content-type", v);
            }
            if let Some(v) = key.as_deref().and_then(|k| k.parse().ok()) {
                headers.insert("idempotency-key", v);
            }
            let response = fx.serve(request).await;
            let status = response.status().as_u16();
            prop_assert!(DOCUMENTED.contains(&status), "{status} for {body:?}");
            if status >= 400 {
                prop_assert_eq!(store.all().len(), 0, "a refused request wrote");
            }
            Ok(())
        })?;
    }

    #[test]
    fn any_query_string_and_path_answer_a_documented_status(
        query in "[ -~]{0,120}",
        id in "[ -~]{0,40}",
        journey in proptest::option::of("\\PC{0,30}"),
    ) {
        runtime().block_on(async {
            let (fx, _store, _flags) = feature_x().await;
            let encoded_journey = journey
                .map(|j| format!("&journeyId={}", percent_encode(&j)))
                .unwrap_or_default();
            for (fixture, target) in [
                ("feature-x-list", format!("/feature-x/submissions?{query}")),
                ("feature-x-list", format!("/feature-x/submissions?userId=user-1{encoded_journey}&{query}")),
                ("feature-x-get", format!("/feature-x/submissions/{}?{query}", percent_encode(&id))),
            ] {
                let Some(request) = with_uri(event(fixture), &target) else { continue };
                let status = fx.serve(request).await.status().as_u16();
                prop_assert!(DOCUMENTED.contains(&status), "{status} for {target:?}");
            }
            Ok(())
        })?;
    }
}
