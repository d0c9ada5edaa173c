//! The AppConfigData protocol, owned here and nowhere else.
//!
//! - One `StartConfigurationSession` per instance, with `RequiredMinimumPollIntervalInSeconds` =
//!   Q (15 s, the service's minimum), so a catch-up (rule 8) may poll before P is up; the
//!   cache keeps the regular cadence at P.
//! - Every `GetLatestConfiguration` token is used once and replaced by `NextPollConfigurationToken`.
//!   A failed call keeps the token it was given: a throttled or timed-out call may be retried with
//!   it, and if the service had consumed it the retry answers `BadRequestException`, which starts
//!   a new session.
//! - An empty `Configuration` means unchanged ([`Fetched::content`] is `None`).
//! - `BadRequestException` for an expired or corrupted token starts a new session at once (the
//!   first token of a session may be used immediately).
//! - The cache, not this module, keeps time: it never calls before `NextPollIntervalInSeconds`
//!   has passed since the last call ended (see [`crate::cache`]).
//! - SDK retries are off ([`configure`]): a request that waits on a refresh waits for one attempt,
//!   and the cache's backoff does the retrying.
//!
//! Errors are classified by the SDK's typed variants, never by message text.

use crate::consistency::CATCH_UP_INTERVAL;
use crate::source::{fnv1a, BoxError, BoxFuture, ConfigSource, Content, Fetched, SourceError};
pub use crate::target::{MissingTargetVar, Target};
use aws_sdk_appconfigdata::config::http::HttpResponse;
use aws_sdk_appconfigdata::error::SdkError;
use aws_sdk_appconfigdata::operation::get_latest_configuration::GetLatestConfigurationError;
use aws_sdk_appconfigdata::operation::start_configuration_session::StartConfigurationSessionError;
use aws_sdk_appconfigdata::types::{BadRequestDetails, InvalidParameterProblem};
use aws_sdk_appconfigdata::Client;
use aws_smithy_types::retry::RetryConfig;
use chrono::{DateTime, Utc};
use std::time::Duration;

/// Applies Lockstep's client settings (no SDK retries) to an AppConfigData config builder.
pub fn configure(
    builder: aws_sdk_appconfigdata::config::Builder,
) -> aws_sdk_appconfigdata::config::Builder {
    builder.retry_config(RetryConfig::disabled())
}

/// Builds an AppConfigData client from the default credential and region chain.
pub async fn client_from_env() -> Client {
    client(&aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await)
}

/// An AppConfigData client from a loaded AWS configuration, configured as above.
pub fn client(shared: &aws_config::SdkConfig) -> Client {
    Client::from_conf(configure(aws_sdk_appconfigdata::config::Builder::from(shared)).build())
}

/// The AppConfigData source: one session per instance.
#[derive(Debug)]
pub struct AppConfigSource {
    client: Client,
    target: Target,
    poll_interval_seconds: i32,
    token: Option<String>,
}

impl AppConfigSource {
    /// A source for `target` whose session asks for Q ([`CATCH_UP_INTERVAL`]) as its minimum
    /// poll interval.
    pub fn new(client: Client, target: Target) -> Self {
        Self {
            client,
            target,
            poll_interval_seconds: i32::try_from(CATCH_UP_INTERVAL.as_secs()).unwrap_or(i32::MAX),
            token: None,
        }
    }

    async fn start_session(&mut self) -> Result<String, SourceError> {
        let out = self
            .client
            .start_configuration_session()
            .application_identifier(&self.target.application)
            .environment_identifier(&self.target.environment)
            .configuration_profile_identifier(&self.target.profile)
            .required_minimum_poll_interval_in_seconds(self.poll_interval_seconds)
            .send()
            .await
            .map_err(classify_start)?;
        let token = out.initial_configuration_token.ok_or_else(|| {
            SourceError::Unavailable("StartConfigurationSession returned no token".into())
        })?;
        tracing::info!(
            application = %self.target.application,
            environment = %self.target.environment,
            profile = %self.target.profile,
            "appconfig.session.started"
        );
        Ok(token)
    }

    async fn get_latest(&mut self, token: String) -> Result<Fetched, GetFailure> {
        let out = self
            .client
            .get_latest_configuration()
            .configuration_token(token)
            .send()
            .await
            .map_err(classify_get)?;
        // The old token is spent whatever comes next; without a new one the next fetch starts a
        // new session.
        self.token = out.next_poll_configuration_token;
        let next_poll_interval = u64::try_from(out.next_poll_interval_in_seconds)
            .ok()
            .filter(|s| *s > 0)
            .map(Duration::from_secs);
        let content = out
            .configuration
            .map(|blob| blob.into_inner())
            .filter(|bytes| !bytes.is_empty())
            .map(|bytes| Content {
                // Without a label, a content hash still tells versions apart.
                version: out
                    .version_label
                    .unwrap_or_else(|| format!("unlabelled-{:016x}", fnv1a(&bytes))),
                bytes,
            });
        Ok(Fetched {
            content,
            next_poll_interval,
        })
    }

    async fn fetch_inner(&mut self) -> Result<Fetched, SourceError> {
        let token = match self.token.take() {
            Some(token) => token,
            None => self.start_session().await?,
        };
        // Kept until the call answers: a call that fails or is cancelled by the timeout leaves
        // the token in place for the next attempt.
        self.token = Some(token.clone());
        match self.get_latest(token).await {
            Ok(fetched) => Ok(fetched),
            Err(GetFailure::SessionInvalid(cause)) => {
                tracing::warn!(error = %cause, path = "new_session", "appconfig token expired or corrupted: starting a new session");
                self.token = None;
                let token = self.start_session().await?;
                self.token = Some(token.clone());
                self.get_latest(token)
                    .await
                    .map_err(|failure| match failure {
                        GetFailure::SessionInvalid(cause) => SourceError::Refused(cause),
                        GetFailure::Other(error) => error,
                    })
            }
            Err(GetFailure::Other(error)) => Err(error),
        }
    }
}

impl ConfigSource for AppConfigSource {
    fn fetch(&mut self, _now: DateTime<Utc>) -> BoxFuture<'_, Result<Fetched, SourceError>> {
        Box::pin(self.fetch_inner())
    }

    fn describe(&self) -> String {
        format!(
            "appconfig:{}:{}:{}",
            self.target.application, self.target.environment, self.target.profile
        )
    }
}

enum GetFailure {
    SessionInvalid(BoxError),
    Other(SourceError),
}

fn classify_get(err: SdkError<GetLatestConfigurationError, HttpResponse>) -> GetFailure {
    let status = err.raw_response().map(|r| r.status().as_u16());
    match err.as_service_error() {
        Some(GetLatestConfigurationError::BadRequestException(e)) => {
            let problems: Vec<&InvalidParameterProblem> = match e.details() {
                Some(BadRequestDetails::InvalidParameters(params)) => {
                    params.values().filter_map(|p| p.problem()).collect()
                }
                _ => Vec::new(),
            };
            if problems.iter().any(|p| {
                matches!(
                    p,
                    InvalidParameterProblem::Expired | InvalidParameterProblem::Corrupted
                )
            }) {
                GetFailure::SessionInvalid(Box::new(err))
            } else if problems.contains(&&InvalidParameterProblem::PollIntervalNotSatisfied) {
                GetFailure::Other(SourceError::TooEarly(Box::new(err)))
            } else {
                GetFailure::Other(SourceError::Refused(Box::new(err)))
            }
        }
        Some(GetLatestConfigurationError::ThrottlingException(_)) => {
            GetFailure::Other(SourceError::Throttled(Box::new(err)))
        }
        Some(GetLatestConfigurationError::InternalServerException(_)) => {
            GetFailure::Other(SourceError::Unavailable(Box::new(err)))
        }
        Some(GetLatestConfigurationError::ResourceNotFoundException(_)) => {
            GetFailure::Other(SourceError::Refused(Box::new(err)))
        }
        _ => GetFailure::Other(by_status(status, Box::new(err))),
    }
}

fn classify_start(err: SdkError<StartConfigurationSessionError, HttpResponse>) -> SourceError {
    let status = err.raw_response().map(|r| r.status().as_u16());
    match err.as_service_error() {
        Some(StartConfigurationSessionError::ThrottlingException(_)) => {
            SourceError::Throttled(Box::new(err))
        }
        Some(StartConfigurationSessionError::InternalServerException(_)) => {
            SourceError::Unavailable(Box::new(err))
        }
        Some(StartConfigurationSessionError::BadRequestException(_))
        | Some(StartConfigurationSessionError::ResourceNotFoundException(_)) => {
            SourceError::Refused(Box::new(err))
        }
        _ => by_status(status, Box::new(err)),
    }
}

/// Errors the model does not name (timeouts, dispatch failures, unmodelled statuses).
fn by_status(status: Option<u16>, err: BoxError) -> SourceError {
    match status {
        Some(429) => SourceError::Throttled(err),
        Some(s) if (400..500).contains(&s) => SourceError::Refused(err),
        _ => SourceError::Unavailable(err),
    }
}
