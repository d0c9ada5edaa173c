//! The AppConfigData protocol as the real `AppConfigSource` speaks it, under the real cache, against
//! a mocked service (aws-smithy-mocks) with the production client settings (SDK retries off).
//!
//! Every mocked `GetLatestConfiguration` asserts the token it receives, and the rules run in
//! sequence (an unexpected call panics), so each test proves the exact calls made and that every
//! token is used once and replaced by `NextPollConfigurationToken`. Time is virtual: the cache's
//! clock is a `ManualClock`; tokio's clock is paused where the fetch timeout matters.

use aws_sdk_appconfigdata::error::ErrorMetadata;
use aws_sdk_appconfigdata::operation::get_latest_configuration::{
    GetLatestConfigurationError, GetLatestConfigurationInput, GetLatestConfigurationOutput,
};
use aws_sdk_appconfigdata::operation::start_configuration_session::{
    StartConfigurationSessionError, StartConfigurationSessionInput, StartConfigurationSessionOutput,
};
use aws_sdk_appconfigdata::primitives::Blob;
use aws_sdk_appconfigdata::types::error::{
    BadRequestException, InternalServerException, ThrottlingException,
};
use aws_sdk_appconfigdata::types::{
    BadRequestDetails, BadRequestReason, InvalidParameterDetail, InvalidParameterProblem,
};
use aws_sdk_appconfigdata::Client;
use aws_smithy_mocks::{
    create_mock_http_client, mock, mock_client, MockResponseInterceptor, Rule, RuleBuilder,
    RuleMode,
};
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use chrono::{DateTime, TimeDelta, Utc};
use lockstep::appconfig::{configure, AppConfigSource, Target};
use lockstep::cache::{CacheOptions, Degraded};
use lockstep::snapshot::Origin;
use lockstep::source::FailureKind;
use lockstep::{FlagCache, FlagCatalog, FlagDecl, ManualClock, Overrides, Settings};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

const X: &str = "isFeatureXEnabled";

fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-21T10:05:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

fn seconds(s: i64) -> TimeDelta {
    TimeDelta::seconds(s)
}

fn millis(ms: i64) -> TimeDelta {
    TimeDelta::milliseconds(ms)
}

/// Freeform JSON content with X = `value`.
fn doc(value: bool) -> Blob {
    Blob::new(format!(
        r#"{{"{X}": {value}, "lockstepMetadata": {{"lastModifiedTimestamp": "2026-11-21T10:00:00Z", "deploymentDurationSeconds": 0}}}}"#
    ))
}

/// A `StartConfigurationSession` that must name our target and ask for Q = 15 s (catch-ups may
/// poll then; the regular cadence stays P = 45 s).
fn start_session() -> RuleBuilder<
    StartConfigurationSessionInput,
    StartConfigurationSessionOutput,
    StartConfigurationSessionError,
> {
    mock!(Client::start_configuration_session).match_requests(|r| {
        r.required_minimum_poll_interval_in_seconds() == Some(15)
            && r.application_identifier() == Some("app")
            && r.environment_identifier() == Some("prod")
            && r.configuration_profile_identifier() == Some("flags")
    })
}

/// A session that starts and hands out `token`.
fn session(token: &'static str) -> Rule {
    start_session().then_output(move || {
        StartConfigurationSessionOutput::builder()
            .initial_configuration_token(token)
            .build()
    })
}

/// A `GetLatestConfiguration` that must be called with `token`.
fn get_latest(
    token: &'static str,
) -> RuleBuilder<
    GetLatestConfigurationInput,
    GetLatestConfigurationOutput,
    GetLatestConfigurationError,
> {
    mock!(Client::get_latest_configuration)
        .match_requests(move |r| r.configuration_token() == Some(token))
}

/// An answer: the next token, new content `(version, bytes)` or `None` for unchanged, and the
/// service's `NextPollIntervalInSeconds`.
fn answer(
    next: &str,
    content: Option<(&str, Blob)>,
    interval_s: i32,
) -> GetLatestConfigurationOutput {
    let builder = GetLatestConfigurationOutput::builder()
        .next_poll_configuration_token(next)
        .next_poll_interval_in_seconds(interval_s)
        .content_type("application/json");
    match content {
        Some((version, bytes)) => builder.version_label(version).configuration(bytes),
        None => builder,
    }
    .build()
}

/// The error metadata the SDK's deserializer attaches (its retry classifier reads the code).
fn coded(code: &str) -> ErrorMetadata {
    ErrorMetadata::builder().code(code).build()
}

fn bad_token(problem: InvalidParameterProblem) -> GetLatestConfigurationError {
    let detail = InvalidParameterDetail::builder().problem(problem).build();
    GetLatestConfigurationError::BadRequestException(
        BadRequestException::builder()
            .meta(coded("BadRequestException"))
            .message("expired")
            .reason(BadRequestReason::InvalidParameters)
            .details(BadRequestDetails::InvalidParameters(HashMap::from([(
                "ConfigurationToken".to_string(),
                detail,
            )])))
            .build(),
    )
}

fn throttled() -> GetLatestConfigurationError {
    GetLatestConfigurationError::ThrottlingException(
        ThrottlingException::builder()
            .meta(coded("ThrottlingException"))
            .message("slow down")
            .build(),
    )
}

fn internal_error() -> GetLatestConfigurationError {
    GetLatestConfigurationError::InternalServerException(
        InternalServerException::builder()
            .meta(coded("InternalServerException"))
            .message("oops")
            .build(),
    )
}

/// A raw HTTP 500 with an empty JSON body: no modelled error to recognise.
fn http_500() -> HttpResponse {
    HttpResponse::new(StatusCode::try_from(500).unwrap(), SdkBody::from("{}"))
}

/// The real source and cache over a client whose rules must be called in order (production
/// client settings), at `t0` in virtual time. The cold start's calls happen here.
async fn cache_with(rules: &[&Rule]) -> (FlagCache, ManualClock) {
    cache_over(mock_client!(
        aws_sdk_appconfigdata,
        RuleMode::Sequential,
        rules,
        configure
    ))
    .await
}

async fn cache_over(client: Client) -> (FlagCache, ManualClock) {
    let clock = ManualClock::new(t0());
    let settings = Settings::default();
    let target = Target {
        application: "app".into(),
        environment: "prod".into(),
        profile: "flags".into(),
    };
    let source = AppConfigSource::new(client, target);
    let options = CacheOptions {
        catalog: FlagCatalog::new(vec![FlagDecl::public(X)]).unwrap(),
        overrides: Overrides::none(),
        settings,
        clock: Arc::new(clock.clone()),
    };
    (FlagCache::new(Box::new(source), options).await, clock)
}

#[tokio::test]
async fn a_cold_start_makes_exactly_two_calls() {
    let start = session("t1");
    let get = get_latest("t1").then_output(|| answer("t2", Some(("1", doc(true))), 45));

    let (cache, clock) = cache_with(&[&start, &get]).await;
    assert_eq!(
        (start.num_calls(), get.num_calls()),
        (1, 1),
        "calls during FlagCache::new"
    );

    clock.advance(seconds(10));
    let view = cache.read().await;

    assert_eq!(
        (start.num_calls(), get.num_calls()),
        (1, 1),
        "no call before P"
    );
    assert!(view.is_enabled(X));
    assert_eq!(view.snapshot().version, "1");
    assert_eq!(view.snapshot().origin, Origin::Source);
    assert_eq!(view.degraded(), None);
    assert_eq!(view.state().next_refresh_at, t0() + seconds(45));
}

#[tokio::test]
async fn no_call_is_made_before_the_poll_interval() {
    let start = session("t1");
    let get1 = get_latest("t1").then_output(|| answer("t2", Some(("1", doc(true))), 45));
    let get2 = get_latest("t2").then_output(|| answer("t3", None, 45));
    let (cache, clock) = cache_with(&[&start, &get1, &get2]).await;

    clock.advance(seconds(45) - millis(1));
    cache.read().await;
    assert_eq!(
        (start.num_calls(), get1.num_calls(), get2.num_calls()),
        (1, 1, 0)
    );

    clock.advance(millis(1));
    let view = cache.read().await;

    assert_eq!(
        (start.num_calls(), get1.num_calls(), get2.num_calls()),
        (1, 1, 1)
    );
    assert!(view.is_enabled(X));
    assert_eq!(view.degraded(), None);
    assert_eq!(view.state().next_refresh_at, t0() + seconds(90));
}

#[tokio::test]
async fn a_service_poll_interval_longer_than_p_degrades_and_is_respected() {
    let start = session("t1");
    let get1 = get_latest("t1").then_output(|| answer("t2", Some(("1", doc(true))), 60));
    let get2 = get_latest("t2").then_output(|| answer("t3", None, 45));
    let (cache, clock) = cache_with(&[&start, &get1, &get2]).await;
    let view = cache.peek();
    assert_eq!(
        view.degraded(),
        Some(&Degraded::PollIntervalTooLong {
            service_seconds: 60
        })
    );
    assert_eq!(view.state().next_refresh_at, t0() + seconds(60));

    clock.advance(seconds(45));
    cache.read().await;
    clock.advance(seconds(15) - millis(1));
    cache.read().await;
    assert_eq!(get2.num_calls(), 0, "no call before the service's 60 s");

    clock.advance(millis(1));
    let view = cache.read().await;

    assert_eq!(
        (start.num_calls(), get1.num_calls(), get2.num_calls()),
        (1, 1, 1)
    );
    assert!(view.is_enabled(X));
    assert_eq!(view.degraded(), None, "the service's interval fits P again");
}

#[tokio::test]
async fn an_empty_configuration_keeps_the_content() {
    let start = session("t1");
    let get1 = get_latest("t1").then_output(|| answer("t2", Some(("1", doc(true))), 45));
    let absent = get_latest("t2").then_output(|| answer("t3", None, 45));
    let empty = get_latest("t3").then_output(|| answer("t4", Some(("1", Blob::new(vec![]))), 45));
    let (cache, clock) = cache_with(&[&start, &get1, &absent, &empty]).await;

    clock.advance(seconds(45));
    let after_absent = cache.read().await;
    clock.advance(seconds(45));
    let after_empty = cache.read().await;

    assert_eq!((absent.num_calls(), empty.num_calls()), (1, 1));
    for view in [after_absent, after_empty] {
        assert!(view.is_enabled(X));
        assert_eq!(view.snapshot().version, "1");
        assert_eq!(view.degraded(), None);
    }
}

async fn a_bad_token_starts_a_new_session(problem: InvalidParameterProblem) {
    let start1 = session("t1");
    let get1 = get_latest("t1").then_output(|| answer("t2", Some(("1", doc(true))), 45));
    let refused = get_latest("t2").then_error(move || bad_token(problem.clone()));
    let start2 = session("u1");
    let get2 = get_latest("u1").then_output(|| answer("u2", Some(("2", doc(false))), 45));
    let (cache, clock) = cache_with(&[&start1, &get1, &refused, &start2, &get2]).await;

    clock.advance(seconds(45));
    let view = cache.read().await;

    let calls = [&start1, &get1, &refused, &start2, &get2].map(Rule::num_calls);
    assert_eq!(calls, [1; 5], "Start, Get, Get(refused), Start, Get");
    assert!(
        !view.is_enabled(X),
        "the new session's content, in the same refresh"
    );
    assert_eq!(view.snapshot().version, "2");
    assert_eq!(view.degraded(), None);
}

#[tokio::test]
async fn an_expired_token_starts_a_new_session() {
    a_bad_token_starts_a_new_session(InvalidParameterProblem::Expired).await;
}

#[tokio::test]
async fn a_corrupted_token_starts_a_new_session() {
    a_bad_token_starts_a_new_session(InvalidParameterProblem::Corrupted).await;
}

#[tokio::test]
async fn throttling_keeps_last_known_good() {
    let start = session("t1");
    let get1 = get_latest("t1").then_output(|| answer("t2", Some(("1", doc(true))), 45));
    let throttled = get_latest("t2").then_error(throttled);
    let retry = get_latest("t2").then_output(|| answer("t3", Some(("2", doc(false))), 45));
    let (cache, clock) = cache_with(&[&start, &get1, &throttled, &retry]).await;

    clock.advance(seconds(45));
    let view = cache.read().await;

    assert_eq!(throttled.num_calls(), 1, "one attempt: no SDK retries");
    assert!(view.is_enabled(X));
    assert_eq!(view.snapshot().version, "1");
    assert_eq!(
        view.degraded(),
        Some(&Degraded::FetchFailed {
            kind: FailureKind::Throttled
        })
    );
    assert_eq!(
        view.state().next_refresh_at,
        t0() + seconds(46),
        "1 s backoff"
    );

    clock.advance(seconds(1) - millis(1));
    cache.read().await;
    assert_eq!(retry.num_calls(), 0, "no call during the backoff");

    clock.advance(millis(1));
    let view = cache.read().await;

    assert_eq!(
        retry.num_calls(),
        1,
        "retried with t2: the throttled call did not spend it"
    );
    assert!(!view.is_enabled(X));
    assert_eq!(view.snapshot().version, "2");
    assert_eq!(view.degraded(), None);
}

#[tokio::test]
async fn a_server_error_keeps_last_known_good() {
    let start = session("t1");
    let get1 = get_latest("t1").then_output(|| answer("t2", Some(("1", doc(true))), 45));
    let modelled = get_latest("t2").then_error(internal_error);
    let raw = get_latest("t2").then_http_response(http_500);
    let (cache, clock) = cache_with(&[&start, &get1, &modelled, &raw]).await;

    clock.advance(seconds(45));
    let after_modelled = cache.read().await;
    clock.advance(seconds(1));
    let after_raw = cache.read().await;

    assert_eq!((modelled.num_calls(), raw.num_calls()), (1, 1));
    for view in [&after_modelled, &after_raw] {
        assert!(view.is_enabled(X));
        assert_eq!(view.snapshot().version, "1");
        assert_eq!(
            view.degraded(),
            Some(&Degraded::FetchFailed {
                kind: FailureKind::Unavailable
            })
        );
    }
    assert_eq!(
        after_raw.state().next_refresh_at,
        t0() + seconds(48),
        "2 s backoff"
    );
}

/// Passes requests to the wrapped client or connector, except request number `stall_at`
/// (counting from 1), which never answers: aws-smithy-mocks cannot delay a response.
#[derive(Debug, Clone)]
struct Stalling<T> {
    inner: T,
    stall_at: usize,
    requests: Arc<AtomicUsize>,
}

impl HttpClient for Stalling<SharedHttpClient> {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(Stalling {
            inner: self.inner.http_connector(settings, components),
            stall_at: self.stall_at,
            requests: self.requests.clone(),
        })
    }
}

impl HttpConnector for Stalling<SharedHttpConnector> {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let n = self.requests.fetch_add(1, Ordering::SeqCst) + 1;
        if n == self.stall_at {
            HttpConnectorFuture::new(std::future::pending())
        } else {
            self.inner.call(request)
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_timeout_keeps_last_known_good() {
    let start = session("t1");
    let get1 = get_latest("t1").then_output(|| answer("t2", Some(("1", doc(true))), 45));
    let stalled = get_latest("t2").then_output(|| answer("never", None, 45));
    let retry = get_latest("t2").then_output(|| answer("t3", Some(("2", doc(false))), 45));
    let interceptor = MockResponseInterceptor::new()
        .rule_mode(RuleMode::Sequential)
        .with_rule(&start)
        .with_rule(&get1)
        .with_rule(&stalled)
        .with_rule(&retry);
    let requests = Arc::new(AtomicUsize::new(0));
    let http = Stalling {
        inner: create_mock_http_client(),
        stall_at: 3,
        requests: requests.clone(),
    };
    let config = configure(
        aws_sdk_appconfigdata::Config::builder()
            .with_test_defaults_v2()
            .http_client(http)
            .interceptor(interceptor),
    );
    let (cache, clock) = cache_over(Client::from_conf(config.build())).await;

    clock.advance(seconds(45));
    let waited = tokio::time::Instant::now();
    let view = cache.read().await;

    assert_eq!(
        waited.elapsed(),
        Duration::from_millis(3000),
        "the read returned at the timeout"
    );
    assert_eq!(
        (stalled.num_calls(), requests.load(Ordering::SeqCst)),
        (1, 3)
    );
    assert!(view.is_enabled(X));
    assert_eq!(view.snapshot().version, "1");
    assert_eq!(view.degraded(), Some(&Degraded::Timeout));

    clock.advance(seconds(1));
    let view = cache.read().await;

    assert_eq!(
        retry.num_calls(),
        1,
        "retried with t2: the timed-out call did not spend it"
    );
    assert_eq!(view.snapshot().version, "2");
    assert_eq!(view.degraded(), None);
}

#[tokio::test]
async fn malformed_content_keeps_last_known_good() {
    let start = session("t1");
    let get1 = get_latest("t1").then_output(|| answer("t2", Some(("1", doc(true))), 45));
    let malformed = get_latest("t2").then_output(|| {
        answer(
            "t3",
            Some(("2", Blob::new(r#"{"isFeatureXEnabled": "yes"}"#))),
            45,
        )
    });
    let unchanged = get_latest("t3").then_output(|| answer("t4", None, 45));
    let fixed = get_latest("t4").then_output(|| answer("t5", Some(("3", doc(false))), 45));
    let (cache, clock) = cache_with(&[&start, &get1, &malformed, &unchanged, &fixed]).await;

    clock.advance(seconds(45));
    let view = cache.read().await;

    assert!(view.is_enabled(X));
    assert_eq!(view.snapshot().version, "1");
    assert!(
        matches!(view.degraded(), Some(Degraded::InvalidContent { version, .. }) if version == "2"),
        "{:?}",
        view.degraded()
    );

    clock.advance(seconds(45));
    let view = cache.read().await;

    assert_eq!(unchanged.num_calls(), 1);
    assert_eq!(view.snapshot().version, "1");
    assert!(
        matches!(view.degraded(), Some(Degraded::InvalidContent { version, .. }) if version == "2"),
        "\"unchanged\" is not a recovery while version 1 is served: {:?}",
        view.degraded()
    );

    clock.advance(seconds(45));
    let view = cache.read().await;

    assert_eq!(fixed.num_calls(), 1);
    assert!(!view.is_enabled(X));
    assert_eq!(view.snapshot().version, "3");
    assert_eq!(view.degraded(), None);
}

#[tokio::test]
async fn appconfig_unreachable_at_cold_start_serves_bundled_defaults() {
    let down = start_session().then_error(|| {
        StartConfigurationSessionError::InternalServerException(
            InternalServerException::builder()
                .meta(coded("InternalServerException"))
                .message("oops")
                .build(),
        )
    });
    let start = session("t1");
    let get1 = get_latest("t1").then_output(|| answer("t2", Some(("1", doc(true))), 45));
    let (cache, clock) = cache_with(&[&down, &start, &get1]).await;

    let view = cache.read().await;

    assert_eq!(down.num_calls(), 1);
    assert!(!view.is_enabled(X), "the declared default");
    assert_eq!(view.snapshot().origin, Origin::Defaults);
    assert_eq!(
        view.degraded(),
        Some(&Degraded::NeverFetched {
            kind: FailureKind::Unavailable
        })
    );

    clock.advance(seconds(1));
    let view = cache.read().await;

    assert_eq!(
        (start.num_calls(), get1.num_calls()),
        (1, 1),
        "a session after the backoff"
    );
    assert!(view.is_enabled(X));
    assert_eq!(view.snapshot().origin, Origin::Source);
    assert_eq!(view.degraded(), None);
}
