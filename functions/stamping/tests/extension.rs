//! The extension on the `events/` fixtures: both formats, blocked deployments, kept stamps, Δ from
//! the deployment (blocked when it cannot be read, or from the fallback parameter when the
//! operator opted in), T after the reads, key rotations, unreadable previous content, and the
//! AppConfigData and GetDeployment adapters (aws-smithy-mocks).

use aws_sdk_appconfig::operation::get_deployment::{GetDeploymentError, GetDeploymentOutput};
use aws_sdk_appconfig::types::error::ResourceNotFoundException as DeploymentNotFound;
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
use chrono::{DateTime, TimeDelta, Utc};
use lockstep::source::{BoxFuture, SourceError};
use lockstep::ManualClock;
use lockstep_testkit::logs::Logs;
use serde_json::Value;
use stamping::{
    handle, outcome_count, AppConfigDeployed, AppConfigDeployment, DeployedContent,
    DeploymentDuration, DeploymentReadError, Event, ALLOW_FALLBACK_PARAMETER,
    DEPRECATED_DURATION_PARAMETER, MAX_DURATION_PARAMETER,
};
use std::time::Duration;

const FREEFORM: &str = include_str!("../../../events/stamping-pre-start-freeform.json");

/// Deployed content, read after `took` on the shared clock.
struct Deployed {
    content: Option<Vec<u8>>,
    clock: Option<(ManualClock, TimeDelta)>,
}

fn deployed(content: Option<Vec<u8>>) -> Deployed {
    Deployed {
        content,
        clock: None,
    }
}

impl DeployedContent for Deployed {
    fn fetch<'a>(
        &'a self,
        _event: &'a Event,
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, SourceError>> {
        let content = self.content.clone();
        Box::pin(async move {
            if let Some((clock, took)) = &self.clock {
                clock.advance(*took);
            }
            Ok(content)
        })
    }
}

/// A deployment of duration `delta`, read after `took` on the shared clock.
struct Deployment {
    delta: Duration,
    clock: Option<(ManualClock, TimeDelta)>,
}

fn deployment(seconds: u64) -> Deployment {
    Deployment {
        delta: Duration::from_secs(seconds),
        clock: None,
    }
}

impl DeploymentDuration for Deployment {
    fn duration<'a>(
        &'a self,
        _event: &'a Event,
    ) -> BoxFuture<'a, Result<Duration, DeploymentReadError>> {
        Box::pin(async move {
            if let Some((clock, took)) = &self.clock {
                clock.advance(*took);
            }
            Ok(self.delta)
        })
    }
}

/// Reads that never answer.
struct Hanging;

impl DeploymentDuration for Hanging {
    fn duration<'a>(
        &'a self,
        _event: &'a Event,
    ) -> BoxFuture<'a, Result<Duration, DeploymentReadError>> {
        Box::pin(std::future::pending())
    }
}

impl DeployedContent for Hanging {
    fn fetch<'a>(
        &'a self,
        _event: &'a Event,
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, SourceError>> {
        Box::pin(std::future::pending())
    }
}

/// `GetDeployment` refused by AppConfig (through the real adapter), and the mock rule to count
/// its calls.
fn refused_deployment() -> (AppConfigDeployment, aws_smithy_mocks::Rule) {
    let refused = mock!(aws_sdk_appconfig::Client::get_deployment).then_error(|| {
        GetDeploymentError::ResourceNotFoundException(
            DeploymentNotFound::builder()
                .message("Deployment 7 not found")
                .build(),
        )
    });
    let client = mock_client!(aws_sdk_appconfig, RuleMode::Sequential, &[&refused]);
    (AppConfigDeployment { client }, refused)
}

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn clock() -> ManualClock {
    ManualClock::new(t("2026-11-21T10:00:00Z"))
}

fn event(json: &str) -> Event {
    serde_json::from_str(json).unwrap()
}

/// The event with the operator's opt-in to the fallback Δ.
fn opted_in(mut event: Event) -> Event {
    event
        .parameters
        .insert(ALLOW_FALLBACK_PARAMETER.into(), "true".into());
    event
}

/// The event carrying `content` instead of its own.
fn carrying(mut event: Event, content: &[u8]) -> Event {
    event.content = Some(STANDARD.encode(content));
    event
}

fn content(answer: &Value) -> Value {
    let bytes = STANDARD
        .decode(answer["Content"].as_str().expect("Content"))
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

fn message(answer: &Value) -> &str {
    assert_eq!(answer["Error"], "BadRequestError", "{answer}");
    assert!(answer.get("Content").is_none());
    answer["Message"].as_str().unwrap()
}

#[tokio::test]
async fn a_freeform_first_deployment_is_stamped_with_t_and_the_deployments_delta() {
    let (logs, _guard) = Logs::capture();
    let answer = handle(&event(FREEFORM), &deployment(60), &deployed(None), &clock()).await;

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
    let from_deployment = logs.path("delta_from_deployment");
    assert_eq!(from_deployment.len(), 1);
    assert_eq!(from_deployment[0]["delta_s"], 60);
    assert!(logs.path("delta_fallback_parameter").is_empty());
}

#[tokio::test]
async fn delta_comes_from_the_deployment_even_when_the_fallback_parameter_differs() {
    let (logs, _guard) = Logs::capture();
    // A Canary10Percent20Minutes deployment; the stack's fallback, opted in to, says 60 s.
    let answer = handle(
        &opted_in(event(FREEFORM)),
        &deployment(1200),
        &deployed(None),
        &clock(),
    )
    .await;

    assert_eq!(
        content(&answer)["lockstepMetadata"]["deploymentDurationSeconds"],
        1200
    );
    let warned = logs.path("fallback_parameter_too_small");
    assert_eq!(warned.len(), 1, "a fallback below Δ is reported");
    assert_eq!(warned[0]["parameter_s"], 60);
}

#[tokio::test]
async fn the_deployment_is_read_with_get_deployment_for_the_events_application_environment_and_number(
) {
    let got = mock!(aws_sdk_appconfig::Client::get_deployment)
        .match_requests(|r| {
            r.application_id() == Some("abc1234")
                && r.environment_id() == Some("def5678")
                && r.deployment_number() == Some(7)
        })
        .then_output(|| {
            GetDeploymentOutput::builder()
                .deployment_number(7)
                .configuration_profile_id("ghi9012")
                .deployment_duration_in_minutes(20)
                .build()
        });
    let other_profile = mock!(aws_sdk_appconfig::Client::get_deployment).then_output(|| {
        GetDeploymentOutput::builder()
            .deployment_number(7)
            .configuration_profile_id("another")
            .deployment_duration_in_minutes(20)
            .build()
    });
    let reader = AppConfigDeployment {
        client: mock_client!(
            aws_sdk_appconfig,
            RuleMode::Sequential,
            &[&got, &other_profile]
        ),
    };
    let e = event(FREEFORM);

    let delta = reader.duration(&e).await.unwrap();
    let mismatch = reader.duration(&e).await;

    assert_eq!(delta, Duration::from_secs(1200), "20 minutes");
    assert!(
        matches!(mismatch, Err(DeploymentReadError::Unexpected(_))),
        "{mismatch:?}"
    );
    assert_eq!((got.num_calls(), other_profile.num_calls()), (1, 1));
}

#[tokio::test]
async fn a_refused_deployment_read_falls_back_to_max_deployment_duration_seconds_when_opted_in_and_logs_why(
) {
    let (logs, _guard) = Logs::capture();
    let (reader, refused) = refused_deployment();
    let mut e = opted_in(event(FREEFORM));
    e.parameters
        .insert(MAX_DURATION_PARAMETER.into(), "1800".into());

    let answer = handle(&e, &reader, &deployed(None), &clock()).await;

    assert_eq!(refused.num_calls(), 1);
    assert_eq!(
        content(&answer)["lockstepMetadata"]["deploymentDurationSeconds"],
        1800
    );
    let fallback = logs.path("delta_fallback_parameter");
    assert_eq!(fallback.len(), 1);
    assert_eq!(fallback[0]["parameter"], MAX_DURATION_PARAMETER);
    assert_eq!(fallback[0]["delta_s"], 1800);
    let reason = fallback[0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("GetDeployment") && reason.contains("ResourceNotFoundException"),
        "{reason}"
    );
    assert!(logs.path("delta_from_deployment").is_empty());
}

#[tokio::test]
async fn the_deprecated_deployment_duration_seconds_is_still_accepted_as_the_fallback() {
    let (logs, _guard) = Logs::capture();
    let (reader, _refused) = refused_deployment();
    let mut e = opted_in(event(FREEFORM));
    e.parameters.remove(MAX_DURATION_PARAMETER);
    e.parameters
        .insert(DEPRECATED_DURATION_PARAMETER.into(), "90".into());

    let answer = handle(&e, &reader, &deployed(None), &clock()).await;

    assert_eq!(
        content(&answer)["lockstepMetadata"]["deploymentDurationSeconds"],
        90
    );
    let fallback = logs.path("delta_fallback_parameter");
    assert_eq!(fallback.len(), 1);
    assert_eq!(fallback[0]["parameter"], DEPRECATED_DURATION_PARAMETER);
    assert!(
        logs.messages()
            .iter()
            .any(|m| m.contains("deprecated") && m.contains(MAX_DURATION_PARAMETER)),
        "the alias is logged as deprecated"
    );
}

#[tokio::test]
async fn opted_in_without_the_parameter_a_deployment_read_that_fails_blocks_naming_both() {
    let (reader, refused) = refused_deployment();
    let refused_read = handle(
        &opted_in(event(include_str!(
            "../../../events/stamping-pre-start-no-duration.json"
        ))),
        &reader,
        &deployed(None),
        &clock(),
    )
    .await;
    let (unused, not_called) = refused_deployment();
    let no_number = handle(
        &opted_in(event(include_str!(
            "../../../events/stamping-pre-start-no-deployment-number.json"
        ))),
        &unused,
        &deployed(None),
        &clock(),
    )
    .await;

    let refused_read = message(&refused_read);
    assert!(
        refused_read.contains("GetDeployment") && refused_read.contains(MAX_DURATION_PARAMETER),
        "{refused_read}"
    );
    let no_number = message(&no_number);
    assert!(
        no_number.contains("DeploymentNumber") && no_number.contains(MAX_DURATION_PARAMETER),
        "{no_number}"
    );
    assert_eq!((refused.num_calls(), not_called.num_calls()), (1, 0));
}

#[tokio::test]
async fn a_malformed_fallback_blocks_only_when_the_deployment_cannot_be_read() {
    let mut e = opted_in(event(FREEFORM));
    e.parameters
        .insert(MAX_DURATION_PARAMETER.into(), "20 minutes".into());
    let (reader, _refused) = refused_deployment();

    let read = handle(&e, &deployment(60), &deployed(None), &clock()).await;
    let not_read = handle(&e, &reader, &deployed(None), &clock()).await;

    assert_eq!(
        content(&read)["lockstepMetadata"]["deploymentDurationSeconds"],
        60
    );
    let not_read = message(&not_read);
    assert!(
        not_read.contains(MAX_DURATION_PARAMETER) && not_read.contains("whole number"),
        "{not_read}"
    );
}

#[tokio::test]
async fn t_is_taken_after_the_deployment_read_and_the_deployed_content_read() {
    let clock = clock();
    let reader = Deployment {
        delta: Duration::from_secs(120),
        clock: Some((clock.clone(), TimeDelta::milliseconds(1500))),
    };
    let content_read = Deployed {
        content: None,
        clock: Some((clock.clone(), TimeDelta::milliseconds(700))),
    };

    let answer = handle(&event(FREEFORM), &reader, &content_read, &clock).await;

    let doc = content(&answer);
    assert_eq!(
        doc["lockstepMetadata"]["lastModifiedTimestamp"], "2026-11-21T10:00:02.200Z",
        "T = the clock once both reads are done"
    );
    assert_eq!(doc["lockstepMetadata"]["deploymentDurationSeconds"], 120);
}

#[tokio::test(start_paused = true)]
async fn reads_that_never_answer_time_out_and_the_deployment_is_blocked() {
    let (logs, _guard) = Logs::capture();
    let started = tokio::time::Instant::now();

    let answer = handle(&event(FREEFORM), &Hanging, &Hanging, &clock()).await;

    assert_eq!(
        started.elapsed(),
        Duration::from_secs(2),
        "both reads run at once, each bounded by 2 s"
    );
    let message = message(&answer);
    assert!(
        message.contains("did not answer within 2 s") && message.contains(ALLOW_FALLBACK_PARAMETER),
        "{message}"
    );
    assert_eq!(logs.path("deployment_unreadable_blocked").len(), 1);
    assert!(logs.path("delta_fallback_parameter").is_empty());
}

#[tokio::test]
async fn a_deployment_whose_strategy_cannot_be_read_is_blocked_unless_the_operator_opted_in() {
    let (logs, _guard) = Logs::capture();
    let (reader, refused) = refused_deployment();
    // The stack's fallback (60 s) is set, but not opted in to: a 20-minute strategy must not be
    // called consistent 19 minutes early.
    let blocked = handle(&event(FREEFORM), &reader, &deployed(None), &clock()).await;
    let (reader, _) = refused_deployment();
    let mut not_true = event(FREEFORM);
    not_true
        .parameters
        .insert(ALLOW_FALLBACK_PARAMETER.into(), "yes".into());
    let still_blocked = handle(&not_true, &reader, &deployed(None), &clock()).await;
    let (reader, _) = refused_deployment();
    let stamped = handle(
        &opted_in(event(FREEFORM)),
        &reader,
        &deployed(None),
        &clock(),
    )
    .await;

    assert_eq!(refused.num_calls(), 1);
    let blocked = message(&blocked);
    assert!(
        blocked.contains("ResourceNotFoundException") && blocked.contains(ALLOW_FALLBACK_PARAMETER),
        "{blocked}"
    );
    message(&still_blocked);
    let unreadable = logs.path("deployment_unreadable_blocked");
    assert_eq!(unreadable.len(), 2);
    assert!(unreadable[0]["reason"]
        .as_str()
        .unwrap()
        .contains("GetDeployment"));
    assert_eq!(
        content(&stamped)["lockstepMetadata"]["deploymentDurationSeconds"],
        60,
        "opted in: the parameter, an upper bound"
    );
    assert_eq!(logs.path("delta_fallback_parameter").len(), 1);
}

/// Content as `lockstep deploy` stamps it over `deployed` (the event's flags, with `options`).
fn by_pipeline(deployed: &[u8], content: &str, options: lockstep::stamp::StampOptions) -> Vec<u8> {
    lockstep::stamp::stamp_with(
        content.as_bytes(),
        Some(deployed),
        t("2026-11-21T10:59:59Z"),
        Duration::from_secs(60),
        &options,
    )
    .unwrap()
    .content
}

fn keys(doc: &Value) -> &Value {
    &doc["lockstepMetadata"]["journeyKeys"]
}

#[tokio::test]
async fn a_key_rotated_by_lockstep_deploy_survives_the_extensions_stamping() {
    let (logs, _guard) = Logs::capture();
    let first =
        content(&handle(&event(FREEFORM), &deployment(60), &deployed(None), &clock()).await);
    let first = serde_json::to_vec(&first).unwrap();
    let rotated = by_pipeline(
        &first,
        r#"{"isFeatureXEnabled": true, "useSubmissionsGsi": true, "isFeatureYEnabled": false}"#,
        lockstep::stamp::StampOptions {
            rotate_key: true,
            ..Default::default()
        },
    );
    let later = clock();
    later.advance(TimeDelta::hours(1));

    let answer = handle(
        &carrying(event(FREEFORM), &rotated),
        &deployment(60),
        &deployed(Some(first.clone())),
        &later,
    )
    .await;

    let doc = content(&answer);
    let sent: Value = serde_json::from_slice(&rotated).unwrap();
    let deployed_keys: Value = serde_json::from_slice(&first).unwrap();
    assert_eq!(keys(&doc), keys(&sent), "the rotation is what is deployed");
    assert_eq!(keys(&doc)[1], keys(&deployed_keys)[0]);
    assert_eq!(
        doc["lockstepMetadata"]["journeyKeyStamp"], "2026-11-21T11:00:00.000Z/60",
        "introduced by this deployment: it signs from T + Δ + P + ε"
    );
    let key = logs.path("journey_key");
    assert_eq!(key.last().unwrap()["key"], "Rotated");
}

#[tokio::test(start_paused = true)]
async fn a_drain_survives_an_unreadable_previous_content_and_the_key_is_not_replaced() {
    let (logs, _guard) = Logs::capture();
    let first =
        content(&handle(&event(FREEFORM), &deployment(60), &deployed(None), &clock()).await);
    let first = serde_json::to_vec(&first).unwrap();
    let switched_off = by_pipeline(
        &first,
        r#"{"isFeatureXEnabled": false, "useSubmissionsGsi": false, "isFeatureYEnabled": false}"#,
        lockstep::stamp::StampOptions {
            drain: Some(Duration::from_secs(300)),
            ..Default::default()
        },
    );
    let switch_off = carrying(event(FREEFORM), &switched_off);
    let later = clock();
    later.advance(TimeDelta::hours(1));

    let over_garbage = handle(
        &switch_off,
        &deployment(60),
        &deployed(Some(b"not json".to_vec())),
        &later,
    )
    .await;
    let over_timeout = handle(&switch_off, &deployment(60), &Hanging, &later).await;

    let first: Value = serde_json::from_slice(&first).unwrap();
    for answer in [&over_garbage, &over_timeout] {
        let doc = content(answer);
        let x = &doc["lockstepMetadata"]["flags"]["isFeatureXEnabled"];
        assert_eq!(x["drainSeconds"], 300, "a planned switch-off stays planned");
        assert_eq!(x["lastModifiedTimestamp"], "2026-11-21T11:00:00.000Z");
        assert_eq!(keys(&doc), keys(&first), "the key is not replaced");
    }
    assert_eq!(logs.path("previous_unparseable").len(), 1);
    assert_eq!(logs.path("previous_unreadable").len(), 1);
}

#[tokio::test]
async fn an_unchanged_flag_keeps_the_stamp_of_the_deployed_content() {
    let first =
        content(&handle(&event(FREEFORM), &deployment(60), &deployed(None), &clock()).await);
    let mut changed = first.clone();
    changed["useSubmissionsGsi"] = Value::Bool(true);
    changed.as_object_mut().unwrap().remove("lockstepMetadata");
    let mut next = event(FREEFORM);
    next.content = Some(STANDARD.encode(changed.to_string()));
    let later = clock();
    later.advance(TimeDelta::hours(1));

    let previous = deployed(Some(serde_json::to_vec(&first).unwrap()));
    let second = content(&handle(&next, &deployment(60), &previous, &later).await);

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

#[tokio::test(start_paused = true)]
async fn over_unparseable_previous_content_content_without_keys_is_blocked_but_the_first_deployment_is_not(
) {
    let (logs, _guard) = Logs::capture();
    let previous = deployed(Some(br#"{"isFeatureXEnabled": "yes""#.to_vec()));

    let blocked = handle(&event(FREEFORM), &deployment(60), &previous, &clock()).await;
    let mut first = event(FREEFORM);
    first.deployment_number = Some(1);
    let first_of_environment = handle(&first, &deployment(60), &Hanging, &clock()).await;

    let blocked = message(&blocked);
    assert!(blocked.contains("journeyKeys"), "{blocked}");
    assert_eq!(logs.path("previous_unparseable").len(), 1);
    let doc = content(&first_of_environment);
    let stamps = doc["lockstepMetadata"]["flags"].as_object().unwrap();
    assert_eq!(stamps.len(), 3);
    for (flag, stamp) in stamps {
        assert_eq!(
            stamp["lastModifiedTimestamp"], "2026-11-21T10:00:00.000Z",
            "{flag}"
        );
    }
    assert_eq!(
        keys(&doc).as_array().unwrap().len(),
        1,
        "a first key is made"
    );
}

#[tokio::test]
async fn a_feature_flag_document_gets_an_enabled_declared_metadata_flag() {
    let answer = handle(
        &event(include_str!(
            "../../../events/stamping-pre-start-feature-flags.json"
        )),
        &deployment(60),
        &deployed(None),
        &clock(),
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
async fn invalid_content_blocks_the_deployment_with_a_reason_even_over_unparseable_previous_content(
) {
    let invalid = event(include_str!(
        "../../../events/stamping-pre-start-invalid.json"
    ));
    let alone = handle(&invalid, &deployment(60), &deployed(None), &clock()).await;
    let over_garbage = handle(
        &invalid,
        &deployment(60),
        &deployed(Some(b"not json".to_vec())),
        &clock(),
    )
    .await;

    for answer in [&alone, &over_garbage] {
        let message = message(answer);
        assert!(message.contains("true or false"), "{message}");
    }
}

#[tokio::test]
async fn a_rollback_is_acknowledged_and_changes_nothing() {
    let answer = handle(
        &event(include_str!("../../../events/stamping-rolled-back.json")),
        &deployment(60),
        &deployed(None),
        &clock(),
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
    let failing = mock!(Client::start_configuration_session).then_error(|| {
        StartConfigurationSessionError::InternalServerException(
            aws_sdk_appconfigdata::types::error::InternalServerException::builder()
                .message("try again")
                .build(),
        )
    });
    let deployed = AppConfigDeployed {
        client: mock_client!(
            aws_sdk_appconfigdata,
            RuleMode::Sequential,
            &[&start, &get, &missing, &failing]
        ),
    };
    let e = event(FREEFORM);

    let found = deployed.fetch(&e).await.unwrap();
    let none = deployed.fetch(&e).await;
    let unreadable = deployed.fetch(&e).await;

    assert_eq!(
        found.as_deref(),
        Some(br#"{"isFeatureXEnabled": true}"#.as_slice())
    );
    assert_eq!(
        none.unwrap(),
        None,
        "ResourceNotFoundException: nothing deployed, every flag is new"
    );
    assert!(
        unreadable.is_err(),
        "something may be deployed: its drains and keys come from the new content"
    );
    assert_eq!(
        (
            start.num_calls(),
            get.num_calls(),
            missing.num_calls(),
            failing.num_calls()
        ),
        (1, 1, 1, 1)
    );
}

#[tokio::test]
async fn each_invocation_counts_what_it_did_stamped_blocked_or_rolled_back() {
    use lockstep::metrics::Count;
    let stamped = event(FREEFORM);
    let answer = handle(&stamped, &deployment(60), &deployed(None), &clock()).await;
    assert_eq!(
        outcome_count(&stamped, &answer),
        Some(Count::DeploymentStamped)
    );

    let invalid = event(include_str!(
        "../../../events/stamping-pre-start-invalid.json"
    ));
    let answer = handle(&invalid, &deployment(60), &deployed(None), &clock()).await;
    message(&answer);
    assert_eq!(
        outcome_count(&invalid, &answer),
        Some(Count::DeploymentBlocked)
    );

    let rolled_back = event(include_str!("../../../events/stamping-rolled-back.json"));
    let answer = handle(&rolled_back, &deployment(60), &deployed(None), &clock()).await;
    assert_eq!(
        outcome_count(&rolled_back, &answer),
        Some(Count::DeploymentRolledBack)
    );
}
