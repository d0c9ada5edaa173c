//! The extension against ministack, the local AppConfig: Δ read with `GetDeployment` from a real
//! deployment, the deployed content read through AppConfigData, T taken after both reads, and a
//! deployment AppConfig does not know blocked (or, opted in, stamped with the parameter). Each test starts its own
//! ministack on 127.0.0.1; a missing venv fails the test loudly.

use aws_sdk_appconfig::primitives::Blob;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chrono::{DateTime, Utc};
use lockstep::source::{BoxFuture, SourceError};
use lockstep::SystemClock;
use lockstep_testkit::ministack::{
    appconfig_client, appconfigdata_client, create_layout, Layout, Ministack,
};
use serde_json::{json, Value};
use stamping::{
    handle, AppConfigDeployed, AppConfigDeployment, DeployedContent, DeploymentDuration,
    DeploymentReadError, Event, ALLOW_FALLBACK_PARAMETER, MAX_DURATION_PARAMETER,
};
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

const CONTENT: &str = r#"{"isFeatureXEnabled": true, "useSubmissionsGsi": false}"#;

/// A real read that records when it finished.
struct Timed<R> {
    inner: R,
    finished: Mutex<Option<DateTime<Utc>>>,
}

impl<R> Timed<R> {
    fn new(inner: R) -> Self {
        Self {
            inner,
            finished: Mutex::new(None),
        }
    }

    fn finished(&self) -> DateTime<Utc> {
        self.finished.lock().unwrap().expect("the read was made")
    }
}

impl<R: DeploymentDuration> DeploymentDuration for Timed<R> {
    fn duration<'a>(
        &'a self,
        event: &'a Event,
    ) -> BoxFuture<'a, Result<Duration, DeploymentReadError>> {
        Box::pin(async move {
            let read = self.inner.duration(event).await;
            *self.finished.lock().unwrap() = Some(Utc::now());
            read
        })
    }
}

impl<R: DeployedContent> DeployedContent for Timed<R> {
    fn fetch<'a>(
        &'a self,
        event: &'a Event,
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, SourceError>> {
        Box::pin(async move {
            let read = self.inner.fetch(event).await;
            *self.finished.lock().unwrap() = Some(Utc::now());
            read
        })
    }
}

async fn ministack() -> (Ministack, aws_sdk_appconfig::Client, Layout) {
    let stack = Ministack::start_from(Path::new(env!("CARGO_MANIFEST_DIR")))
        .await
        .expect("ministack must start (run ./scripts/venv ministack)");
    let client = appconfig_client(&stack.endpoint);
    let layout = create_layout(&client, "lockstep", "test", "flags")
        .await
        .expect("the local layout");
    (stack, client, layout)
}

/// Creates a hosted version of [`CONTENT`] and starts deploying it with `strategy`; the
/// deployment's number.
async fn start_deployment(
    client: &aws_sdk_appconfig::Client,
    layout: &Layout,
    strategy: &str,
) -> i32 {
    let version = client
        .create_hosted_configuration_version()
        .application_id(&layout.application)
        .configuration_profile_id(&layout.profile)
        .content_type("application/json")
        .content(Blob::new(CONTENT))
        .send()
        .await
        .unwrap()
        .version_number();
    let strategies = client.list_deployment_strategies().send().await.unwrap();
    let strategy_id = strategies
        .items()
        .iter()
        .find(|s| s.name() == Some(strategy))
        .and_then(|s| s.id())
        .expect("the layout's strategy")
        .to_owned();
    client
        .start_deployment()
        .application_id(&layout.application)
        .environment_id(&layout.environment)
        .configuration_profile_id(&layout.profile)
        .deployment_strategy_id(strategy_id)
        .configuration_version(version.to_string())
        .send()
        .await
        .unwrap()
        .deployment_number()
}

/// The `PreStartDeployment` event AppConfig sends for deployment `number`.
fn event(layout: &Layout, number: i32) -> Event {
    serde_json::from_value(json!({
        "Type": "PreStartDeployment",
        "Application": {"Id": layout.application},
        "Environment": {"Id": layout.environment},
        "ConfigurationProfile": {"Id": layout.profile, "Name": "flags"},
        "DeploymentNumber": number,
        // Far from any strategy used here: Δ = 3600 would show the fallback was taken.
        "Parameters": {MAX_DURATION_PARAMETER: "3600"},
        "Content": STANDARD.encode(CONTENT),
        "ContentType": "application/json",
    }))
    .unwrap()
}

fn metadata(answer: &Value) -> Value {
    let bytes = STANDARD
        .decode(answer["Content"].as_str().expect("Content"))
        .unwrap();
    serde_json::from_slice::<Value>(&bytes).unwrap()["lockstepMetadata"].clone()
}

fn millis(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(t.timestamp_millis()).unwrap()
}

#[tokio::test]
async fn delta_is_read_from_the_deployment_in_ministack_and_t_is_taken_after_both_reads() {
    let (stack, client, layout) = ministack().await;
    let number = start_deployment(&client, &layout, "lockstep-exponential-2min").await;
    let deployment = Timed::new(AppConfigDeployment {
        client: client.clone(),
    });
    let deployed = Timed::new(AppConfigDeployed {
        client: appconfigdata_client(&stack.endpoint),
    });

    let answer = handle(
        &event(&layout, number),
        &deployment,
        &deployed,
        &SystemClock,
    )
    .await;

    let metadata = metadata(&answer);
    assert_eq!(
        metadata["deploymentDurationSeconds"], 120,
        "Δ = the exponential strategy's 2 minutes, not the 3600 s fallback"
    );
    let t = DateTime::parse_from_rfc3339(metadata["lastModifiedTimestamp"].as_str().unwrap())
        .unwrap()
        .with_timezone(&Utc);
    // Stamps have millisecond precision.
    assert!(
        t >= millis(deployment.finished()),
        "T {t} after GetDeployment ended {}",
        deployment.finished()
    );
    assert!(
        t >= millis(deployed.finished()),
        "T {t} after the deployed-content read ended {}",
        deployed.finished()
    );
}

#[tokio::test]
async fn a_deployment_ministack_does_not_know_is_blocked_unless_the_fallback_is_opted_in() {
    let (stack, client, layout) = ministack().await;
    let number = start_deployment(&client, &layout, "lockstep-linear-25pct-1min").await;
    let deployed = AppConfigDeployed {
        client: appconfigdata_client(&stack.endpoint),
    };
    let deployment = AppConfigDeployment { client };
    let mut opted_in = event(&layout, number + 100);
    opted_in
        .parameters
        .insert(ALLOW_FALLBACK_PARAMETER.into(), "true".into());

    let known = handle(
        &event(&layout, number),
        &deployment,
        &deployed,
        &SystemClock,
    )
    .await;
    let unknown = handle(
        &event(&layout, number + 100),
        &deployment,
        &deployed,
        &SystemClock,
    )
    .await;
    let unknown_opted_in = handle(&opted_in, &deployment, &deployed, &SystemClock).await;

    assert_eq!(metadata(&known)["deploymentDurationSeconds"], 60);
    assert!(
        unknown["Message"]
            .as_str()
            .is_some_and(|m| m.contains("ResourceNotFoundException")),
        "GetDeployment refused: blocked, {unknown}"
    );
    assert_eq!(
        metadata(&unknown_opted_in)["deploymentDurationSeconds"],
        3600,
        "GetDeployment refused (ResourceNotFoundException), opted in: the fallback"
    );
}
