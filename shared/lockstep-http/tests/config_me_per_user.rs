//! `GET /config/me` reports per-user consistency (design rule 10): after a rollout widens from
//! 25 % to 50 %, a user who was already in is consistent with their old `consistentAt` (their
//! journeys open), while a newly included user waits for the step's `T + Δ + P + ε`. The content
//! is stamped as the extension stamps it, deployment after deployment.

use chrono::{DateTime, Utc};
use lambda_http::{Body, Request};
use lockstep::cache::CacheOptions;
use lockstep::memory::MemorySource;
use lockstep::{FlagCache, FlagCatalog, FlagDecl, ManualClock, Overrides, Settings};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

const FLAG: &str = "isCheckoutV2Enabled";

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn rollout(percent: u32) -> Value {
    json!({"default": false, "rules": {"rollout": {"split": [
        {"variant": "on", "value": true, "weight": percent},
        {"variant": "off", "value": false, "weight": 100 - percent}]}}})
}

fn served(percent: u32, sub: &str) -> bool {
    let definition = lockstep_targeting::Definition::parse(FLAG, &rollout(percent)).unwrap();
    let context = json!({"targetingKey": sub}).as_object().cloned().unwrap();
    lockstep_targeting::evaluate(&definition, &context, t("2026-12-01T00:00:00Z")).value
        == &json!(true)
}

/// `GET /config/me` as API Gateway's JWT authorizer hands it on for `sub`.
fn config_me(sub: &str) -> Request {
    let request: Request = http::Request::builder()
        .method("GET")
        .uri("/config/me")
        .body(Body::Empty)
        .unwrap();
    lockstep_http::identity::as_user(request, sub)
}

#[tokio::test]
async fn after_a_widening_the_users_already_in_stay_consistent_and_the_new_ones_wait() {
    let delta = Duration::from_secs(60);
    let mut deployed: Option<Vec<u8>> = None;
    for (percent, at) in [(25, "2026-12-01T09:00:00Z"), (50, "2026-12-01T10:00:00Z")] {
        let content = json!({FLAG: rollout(percent)}).to_string();
        let stamped =
            lockstep::stamp::stamp(content.as_bytes(), deployed.as_deref(), t(at), delta).unwrap();
        deployed = Some(stamped.content);
    }
    let (source, handle) = MemorySource::new();
    handle.publish("2", deployed.unwrap());
    let options = CacheOptions {
        catalog: FlagCatalog::new(vec![FlagDecl::public(FLAG)]).unwrap(),
        overrides: Overrides::none(),
        settings: Settings {
            poll_interval: Duration::from_secs(45),
            epsilon: Duration::from_secs(5),
            ..Settings::default()
        },
        // During the widening's window: T + Δ + P + ε is 10:01:50.
        clock: Arc::new(ManualClock::new(t("2026-12-01T10:01:00Z"))),
    };
    let cache = FlagCache::new(Box::new(source), options).await;
    let users: Vec<String> = (0..1000).map(|i| format!("user-{i}")).collect();
    let already_in = users.iter().find(|u| served(25, u)).unwrap();
    let newly_in = users
        .iter()
        .find(|u| !served(25, u) && served(50, u))
        .unwrap();

    let read = |sub: &str| {
        let request = config_me(sub);
        let cache = &cache;
        async move {
            let response = lockstep_http::config_routes::serve(cache, &request).await;
            assert_eq!(response.status(), 200);
            let Body::Text(text) = response.body() else {
                panic!("a text body")
            };
            serde_json::from_str::<Value>(text).unwrap()
        }
    };
    let old = read(already_in).await;
    let new = read(newly_in).await;

    assert_eq!(old[FLAG], true);
    assert_eq!(old["flags"][FLAG]["consistent"], true, "{old}");
    assert_eq!(old["flags"][FLAG]["consistentAt"], "2026-12-01T09:01:50Z");
    assert_eq!(old["isBackendConsistent"], true);
    assert_eq!(new[FLAG], true);
    assert_eq!(new["flags"][FLAG]["consistent"], false, "{new}");
    assert_eq!(new["flags"][FLAG]["consistentAt"], "2026-12-01T10:01:50Z");
    assert_eq!(new["isBackendConsistent"], false);
    assert_eq!(new["consistentAt"], "2026-12-01T10:01:50Z");
}
