//! The extension on the `events/` fixtures: both formats, blocked deployments, kept stamps, and
//! the AppConfigData read of the deployed content (aws-smithy-mocks).

use aws_sdk_appconfigdata::operation::get_latest_configuration::GetLatestConfigurationOutput;
use aws_sdk_appconfigdata::operation::start_configuration_session::{
    StartConfigurationSessionError, StartConfigurationSessionOutput,
};
use aws_sdk_appconfigdata::primitives::Blob;
use aws_sdk_appconfigdata::types::error::ResourceNotFoundException;
use aws_sdk_appconfigdata::Client;
use aws_smithy_mocks::{mock, mock_client, RuleMode};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chrono::{DateTime, Utc};
use lockstep::source::{BoxFuture, SourceError};
use serde_json::Value;
use stamping::{handle, AppConfigDeployed, DeployedContent, Event};

struct Deployed(Option<Vec<u8>>);

impl DeployedContent for Deployed {
    fn fetch<'a>(
        &'a self,
        _event: &'a Event,
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, SourceError>> {
        let content = self.0.clone();
        Box::pin(async move { Ok(content) })
    }
}

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn event(json: &str) -> Event {
    serde_json::from_str(json).unwrap()
}

fn content(answer: &Value) -> Value {
    let bytes = STANDARD
        .decode(answer["Content"].as_str().expect("Content"))
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

#[tokio::test]
async fn a_freeform_first_deployment_is_stamped_with_t_and_delta() {
    let answer = handle(
        &event(include_str!(
            "../../../events/stamping-pre-start-freeform.json"
        )),
        &Deployed(None),
        t("2026-11-21T10:00:00Z"),
    )
    .await;

    let doc = content(&answer);
    assert_eq!(
        doc["lockstepMetadata"]["lastModifiedTimestamp"],
        "2026-11-21T10:00:00.000Z"
    );
    assert_eq!(doc["lockstepMetadata"]["deploymentDurationSeconds"], 60);
    assert_eq!(
        doc["lockstepMetadata"]["flags"]["isFeatureXEnabled"]["lastModifiedTimestamp"],
        "2026-11-21T10:00:00.000Z"
    );
    assert_eq!(doc["isFeatureXEnabled"], true);
}

#[tokio::test]
async fn an_unchanged_flag_keeps_the_stamp_of_the_deployed_content() {
    let fixture = include_str!("../../../events/stamping-pre-start-freeform.json");
    let first = content(&handle(&event(fixture), &Deployed(None), t("2026-11-21T10:00:00Z")).await);
    let mut changed = first.clone();
    changed["useSubmissionsGsi"] = Value::Bool(true);
    changed.as_object_mut().unwrap().remove("lockstepMetadata");
    let mut next = event(fixture);
    next.content = Some(STANDARD.encode(changed.to_string()));

    let deployed = Deployed(Some(serde_json::to_vec(&first).unwrap()));
    let second = content(&handle(&next, &deployed, t("2026-11-21T11:00:00Z")).await);

    let stamps = &second["lockstepMetadata"]["flags"];
    assert_eq!(
        stamps["isFeatureXEnabled"]["lastModifiedTimestamp"],
        "2026-11-21T10:00:00.000Z"
    );
    assert_eq!(
        stamps["isFeatureYEnabled"]["lastModifiedTimestamp"],
        "2026-11-21T10:00:00.000Z"
    );
    assert_eq!(
        stamps["useSubmissionsGsi"]["lastModifiedTimestamp"],
        "2026-11-21T11:00:00.000Z"
    );
}

#[tokio::test]
async fn a_feature_flag_document_gets_an_enabled_declared_metadata_flag() {
    let answer = handle(
        &event(include_str!(
            "../../../events/stamping-pre-start-feature-flags.json"
        )),
        &Deployed(None),
        t("2026-11-21T10:00:00Z"),
    )
    .await;

    let doc = content(&answer);
    assert_eq!(doc["values"]["lockstepMetadata"]["enabled"], true);
    assert!(doc["flags"]["lockstepMetadata"]["attributes"]["flagStamps"].is_object());
    assert_eq!(
        doc["values"]["lockstepMetadata"]["flagStamps"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
}

#[tokio::test]
async fn invalid_content_or_a_missing_duration_blocks_the_deployment_with_a_reason() {
    let now = t("2026-11-21T10:00:00Z");
    let invalid = handle(
        &event(include_str!(
            "../../../events/stamping-pre-start-invalid.json"
        )),
        &Deployed(None),
        now,
    )
    .await;
    let no_duration = handle(
        &event(include_str!(
            "../../../events/stamping-pre-start-no-duration.json"
        )),
        &Deployed(None),
        now,
    )
    .await;

    assert_eq!(invalid["Error"], "BadRequestError");
    assert!(
        invalid["Message"]
            .as_str()
            .unwrap()
            .contains("true or false"),
        "{invalid}"
    );
    assert!(invalid.get("Content").is_none());
    assert!(
        no_duration["Message"]
            .as_str()
            .unwrap()
            .contains("DeploymentDurationSeconds"),
        "{no_duration}"
    );
}

#[tokio::test]
async fn a_rollback_is_acknowledged_and_changes_nothing() {
    let answer = handle(
        &event(include_str!("../../../events/stamping-rolled-back.json")),
        &Deployed(None),
        t("2026-11-21T10:00:00Z"),
    )
    .await;
    assert_eq!(answer, serde_json::json!({}));
}

#[tokio::test]
async fn the_deployed_content_is_read_through_appconfigdata_and_absent_when_nothing_is_deployed() {
    let start = mock!(Client::start_configuration_session)
        .match_requests(|r| {
            r.application_identifier() == Some("abc1234")
                && r.configuration_profile_identifier() == Some("ghi9012")
        })
        .then_output(|| {
            StartConfigurationSessionOutput::builder()
                .initial_configuration_token("t1")
                .build()
        });
    let get = mock!(Client::get_latest_configuration)
        .match_requests(|r| r.configuration_token() == Some("t1"))
        .then_output(|| {
            GetLatestConfigurationOutput::builder()
                .configuration(Blob::new(r#"{"isFeatureXEnabled": true}"#))
                .next_poll_interval_in_seconds(60)
                .build()
        });
    let missing = mock!(Client::start_configuration_session).then_error(|| {
        StartConfigurationSessionError::ResourceNotFoundException(
            ResourceNotFoundException::builder()
                .message("no deployment")
                .build(),
        )
    });
    let deployed = AppConfigDeployed {
        client: mock_client!(
            aws_sdk_appconfigdata,
            RuleMode::Sequential,
            &[&start, &get, &missing]
        ),
    };
    let e = event(include_str!(
        "../../../events/stamping-pre-start-freeform.json"
    ));

    let found = deployed.fetch(&e).await.unwrap();
    let none = deployed.fetch(&e).await;

    assert_eq!(
        found.as_deref(),
        Some(br#"{"isFeatureXEnabled": true}"#.as_slice())
    );
    assert!(none.is_err(), "the handler then stamps every flag as new");
    assert_eq!(
        (start.num_calls(), get.num_calls(), missing.num_calls()),
        (1, 1, 1)
    );
}
