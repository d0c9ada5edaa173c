//! The AppConfig extension that stamps every deployment (`PRE_START_DEPLOYMENT`), and logs
//! rollbacks (`ON_DEPLOYMENT_ROLLED_BACK`).
//!
//! AppConfig invokes it with the configuration as base64 `Content` plus the application,
//! environment and profile ids, the deployment's number and the extension `Parameters`. It
//! answers `{"Content": base64}` to replace the content, or `{"Error", "Message"}` to block the
//! deployment.
//!
//! - Δ is read from the deployment being stamped: `GetDeployment` (the event's application,
//!   environment and `DeploymentNumber`) → `DeploymentDurationInMinutes` × 60 (logged as
//!   `path=delta_from_deployment`). When that read fails (an error, a timeout, or an event
//!   without `DeploymentNumber`) the deployment is **blocked** (`path=deployment_unreadable_blocked`,
//!   with the reason): a Δ shorter than the real strategy would report flags consistent early,
//!   and AppConfig (or the pipeline) can simply start it again. Only an operator who set the
//!   extension parameter [`ALLOW_FALLBACK_PARAMETER`] to `true` gets Δ from
//!   [`MAX_DURATION_PARAMETER`] instead, an upper bound on every strategy the profile is
//!   deployed with (`path=delta_fallback_parameter`, with the reason);
//!   [`DEPRECATED_DURATION_PARAMETER`] is accepted as its deprecated alias.
//! - The previous stamps come from the content currently deployed to the same environment and
//!   profile, read through AppConfigData. When nothing is deployed yet (AppConfigData answers
//!   `ResourceNotFoundException`, or this is the environment's first deployment) every flag gets
//!   this deployment's stamp (`path=no_previous`). When something is deployed but cannot be read
//!   (an error, a timeout: `path=previous_unreadable`; content that does not parse:
//!   `path=previous_unparseable`) every flag still gets this deployment's stamp (later than
//!   needed, never earlier), and the drain times and journey keys are the ones the new content
//!   itself carries (what `lockstep deploy` wrote): a planned switch-off never becomes a kill
//!   switch, and no key is made that would refuse every token and cursor in flight. Content that
//!   carries no keys is then blocked; content that is itself invalid always blocks.
//! - T is read from the clock *after* both reads, each bounded by its timeout
//!   ([`DEPLOYMENT_READ_TIMEOUT`], [`DEPLOYED_CONTENT_TIMEOUT`]): between T and the real start
//!   there is only the stamping itself and AppConfig's handling of the answer, well inside ε.

use aws_sdk_appconfig::error::ProvideErrorMetadata;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chrono::Utc;
use lockstep::appconfig::{AppConfigSource, Target};
use lockstep::metrics::Count;
use lockstep::source::{BoxFuture, ConfigSource, SourceError};
use lockstep::stamp::{StampError, StampOptions};
use lockstep::Clock;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::Duration;
use thiserror::Error;

/// The extension parameter holding the fallback Δ, in whole seconds: an upper bound, at least the
/// longest strategy's duration the profile is deployed with. Used only with
/// [`ALLOW_FALLBACK_PARAMETER`] = `true`.
pub const MAX_DURATION_PARAMETER: &str = "MaxDeploymentDurationSeconds";

/// The extension parameter by which an operator opts in to the fallback Δ: `true` stamps a
/// deployment that cannot be read with [`MAX_DURATION_PARAMETER`]; anything else blocks it.
pub const ALLOW_FALLBACK_PARAMETER: &str = "AllowDeltaFallback";

/// The former name of [`MAX_DURATION_PARAMETER`], still accepted (logged as deprecated) so
/// stacks that set it keep deploying.
pub const DEPRECATED_DURATION_PARAMETER: &str = "DeploymentDurationSeconds";

/// How long `GetDeployment` may take before the deployment is blocked (or, opted in, Δ falls
/// back to the parameter).
pub const DEPLOYMENT_READ_TIMEOUT: Duration = Duration::from_secs(2);

/// How long the deployed-content read may take before it counts as unreadable.
pub const DEPLOYED_CONTENT_TIMEOUT: Duration = Duration::from_secs(2);

/// An id object of the event.
#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct Id {
    /// The id.
    #[serde(default)]
    pub id: String,
}

/// The fields of an extension invocation that this function reads.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Event {
    /// `PreStartDeployment`, `OnDeploymentRolledBack`, ...
    #[serde(rename = "Type")]
    pub kind: String,
    /// The configuration, base64.
    #[serde(default)]
    pub content: Option<String>,
    /// Extension parameters.
    #[serde(default)]
    pub parameters: HashMap<String, String>,
    /// The application.
    #[serde(default)]
    pub application: Id,
    /// The environment.
    #[serde(default)]
    pub environment: Id,
    /// The configuration profile.
    #[serde(default)]
    pub configuration_profile: Id,
    /// The deployment's number.
    #[serde(default)]
    pub deployment_number: Option<u64>,
}

/// Reads the content currently deployed to an environment and profile.
pub trait DeployedContent: Send + Sync {
    /// The deployed content, or `None` when nothing is deployed yet.
    fn fetch<'a>(&'a self, event: &'a Event)
        -> BoxFuture<'a, Result<Option<Vec<u8>>, SourceError>>;
}

/// Reads the duration (Δ) of the deployment an event names.
pub trait DeploymentDuration: Send + Sync {
    /// The deployment's strategy duration.
    fn duration<'a>(
        &'a self,
        event: &'a Event,
    ) -> BoxFuture<'a, Result<Duration, DeploymentReadError>>;
}

type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why the deployment's duration could not be read (the deployment is then blocked, unless the
/// operator opted in to the fallback parameter).
#[derive(Debug, Error)]
pub enum DeploymentReadError {
    /// The event names no deployment.
    #[error("the event carries no DeploymentNumber")]
    NoDeploymentNumber,
    /// A deployment number AppConfig cannot have issued.
    #[error("DeploymentNumber {0} is out of range")]
    BadDeploymentNumber(u64),
    /// AppConfig refused or failed the call.
    #[error("AppConfig GetDeployment failed ({code})")]
    AppConfig {
        /// The error code, or `unreachable`.
        code: String,
        /// The SDK error.
        #[source]
        source: BoxError,
    },
    /// The call did not answer within [`DEPLOYMENT_READ_TIMEOUT`].
    #[error("GetDeployment did not answer within {} s", DEPLOYMENT_READ_TIMEOUT.as_secs())]
    TimedOut,
    /// An answer for another profile or with an impossible duration.
    #[error("GetDeployment answered {0}")]
    Unexpected(String),
}

/// Why a deployment is blocked; AppConfig shows the whole chain as the reason.
#[derive(Debug, Error)]
pub enum ExtensionError {
    /// The deployment cannot be read, so Δ is unknown, and no fallback was opted in to.
    #[error("the deployment could not be read ({read}), so its strategy's duration is unknown: the deployment is blocked rather than stamped with a duration that may be shorter than the real one; start it again, or set the extension parameter {ALLOW_FALLBACK_PARAMETER} to \"true\" to stamp such deployments with {MAX_DURATION_PARAMETER}")]
    DeploymentUnreadable {
        /// Why GetDeployment gave no duration, with its causes.
        read: String,
    },
    /// The fallback was opted in to, but the parameter is not set.
    #[error("the deployment strategy's duration is unknown: the deployment could not be read ({read}) and the extension parameter {MAX_DURATION_PARAMETER} (at least your longest strategy's duration, in seconds) is not set")]
    UnknownDuration {
        /// Why GetDeployment gave no duration, with its causes.
        read: String,
    },
    /// The fallback parameter is not whole seconds.
    #[error("the deployment could not be read ({read}), and the fallback {name} must be a whole number of seconds")]
    BadDuration {
        /// Why GetDeployment gave no duration, with its causes.
        read: String,
        /// The parameter's name as given.
        name: &'static str,
        /// The parse error.
        #[source]
        source: std::num::ParseIntError,
    },
    /// The event has no content.
    #[error("the event carries no Content")]
    NoContent,
    /// The content is not base64.
    #[error("Content is not valid base64")]
    NotBase64(#[source] base64::DecodeError),
    /// The content cannot be stamped.
    #[error("the configuration cannot be stamped")]
    Stamp(#[from] StampError),
}

/// The deployed content through AppConfigData (one session, one call).
pub struct AppConfigDeployed {
    /// The client.
    pub client: aws_sdk_appconfigdata::Client,
}

impl DeployedContent for AppConfigDeployed {
    fn fetch<'a>(
        &'a self,
        event: &'a Event,
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, SourceError>> {
        // The protocol is owned by `lockstep::appconfig`: a new session's first poll returns the
        // deployed content in full.
        let target = Target {
            application: event.application.id.clone(),
            environment: event.environment.id.clone(),
            profile: event.configuration_profile.id.clone(),
        };
        let mut source = AppConfigSource::new(self.client.clone(), target);
        Box::pin(async move {
            match source.fetch(Utc::now()).await {
                Ok(fetched) => Ok(fetched.content.map(|c| c.bytes)),
                Err(error) if nothing_deployed(&error) => Ok(None),
                Err(error) => Err(error),
            }
        })
    }
}

/// Whether AppConfigData answered `ResourceNotFoundException`: the application, environment and
/// profile exist (AppConfig is deploying them), so nothing is deployed to them yet.
fn nothing_deployed(error: &SourceError) -> bool {
    use aws_sdk_appconfigdata::config::http::HttpResponse;
    use aws_sdk_appconfigdata::error::SdkError;
    use aws_sdk_appconfigdata::operation::get_latest_configuration::GetLatestConfigurationError;
    use aws_sdk_appconfigdata::operation::start_configuration_session::StartConfigurationSessionError;
    let SourceError::Refused(source) = error else {
        return false;
    };
    if let Some(start) =
        source.downcast_ref::<SdkError<StartConfigurationSessionError, HttpResponse>>()
    {
        return start
            .as_service_error()
            .is_some_and(StartConfigurationSessionError::is_resource_not_found_exception);
    }
    source
        .downcast_ref::<SdkError<GetLatestConfigurationError, HttpResponse>>()
        .and_then(SdkError::as_service_error)
        .is_some_and(GetLatestConfigurationError::is_resource_not_found_exception)
}

/// The deployment's duration through the AppConfig control plane (`GetDeployment`).
pub struct AppConfigDeployment {
    /// The client.
    pub client: aws_sdk_appconfig::Client,
}

impl DeploymentDuration for AppConfigDeployment {
    fn duration<'a>(
        &'a self,
        event: &'a Event,
    ) -> BoxFuture<'a, Result<Duration, DeploymentReadError>> {
        Box::pin(async move {
            let number = event
                .deployment_number
                .ok_or(DeploymentReadError::NoDeploymentNumber)?;
            let number = i32::try_from(number)
                .map_err(|_| DeploymentReadError::BadDeploymentNumber(number))?;
            let got = self
                .client
                .get_deployment()
                .application_id(&event.application.id)
                .environment_id(&event.environment.id)
                .deployment_number(number)
                .send()
                .await
                .map_err(|error| DeploymentReadError::AppConfig {
                    code: error.code().unwrap_or("unreachable").to_owned(),
                    source: Box::new(error),
                })?;
            if let Some(profile) = got.configuration_profile_id() {
                if profile != event.configuration_profile.id {
                    return Err(DeploymentReadError::Unexpected(format!(
                        "deployment {number} of profile {profile:?}, not {:?}",
                        event.configuration_profile.id
                    )));
                }
            }
            let minutes = got.deployment_duration_in_minutes();
            let seconds = u64::try_from(minutes).map_err(|_| {
                DeploymentReadError::Unexpected(format!("DeploymentDurationInMinutes = {minutes}"))
            })? * 60;
            Ok(Duration::from_secs(seconds))
        })
    }
}

/// The metric an invocation counts (design rule 11), from its event and its answer.
pub fn outcome_count(event: &Event, answer: &Value) -> Option<Count> {
    match event.kind.as_str() {
        "PreStartDeployment" if answer.get("Content").is_some() => Some(Count::DeploymentStamped),
        "PreStartDeployment" => Some(Count::DeploymentBlocked),
        "OnDeploymentRolledBack" => Some(Count::DeploymentRolledBack),
        _ => None,
    }
}

/// Handles one invocation; every outcome is an answer AppConfig understands. `clock` gives T,
/// read after the extension's own reads.
pub async fn handle(
    event: &Event,
    deployment: &dyn DeploymentDuration,
    deployed: &dyn DeployedContent,
    clock: &dyn Clock,
) -> Value {
    match event.kind.as_str() {
        "PreStartDeployment" => match pre_start(event, deployment, deployed, clock).await {
            Ok(content) => json!({ "Content": STANDARD.encode(content) }),
            Err(error) => {
                let message = lockstep::error_chain(&error);
                tracing::warn!(path = "deployment_blocked", reason = %message, "deployment blocked");
                json!({ "Error": "BadRequestError", "Message": message })
            }
        },
        "OnDeploymentRolledBack" => {
            tracing::warn!(
                path = "rolled_back",
                rolled_back_at = %clock.now().to_rfc3339(),
                deployment = ?event.deployment_number,
                environment = %event.environment.id,
                "deployment rolled back: content with an older stamp is live again; instances that have not polled since may report consistency for the rolled-back value for up to P"
            );
            json!({})
        }
        other => {
            tracing::info!(kind = other, "action point ignored");
            json!({})
        }
    }
}

async fn pre_start(
    event: &Event,
    deployment: &dyn DeploymentDuration,
    deployed: &dyn DeployedContent,
    clock: &dyn Clock,
) -> Result<Vec<u8>, ExtensionError> {
    let content = event.content.as_deref().ok_or(ExtensionError::NoContent)?;
    let content = STANDARD
        .decode(content)
        .map_err(ExtensionError::NotBase64)?;
    // Both reads at once, each bounded, so the invocation stays short.
    let (read, previous) = tokio::join!(
        async {
            tokio::time::timeout(DEPLOYMENT_READ_TIMEOUT, deployment.duration(event))
                .await
                .unwrap_or(Err(DeploymentReadError::TimedOut))
        },
        async {
            match tokio::time::timeout(DEPLOYED_CONTENT_TIMEOUT, deployed.fetch(event)).await {
                Ok(Ok(previous)) => Ok(previous),
                Ok(Err(error)) => Err(lockstep::error_chain(&error)),
                Err(_) => Err(format!(
                    "the deployed content was not read within {} s",
                    DEPLOYED_CONTENT_TIMEOUT.as_secs()
                )),
            }
        },
    );
    let delta = delta(event, read)?;
    // T: after every read above, so it is never earlier than the real start by more than the
    // stamping itself.
    let at = clock.now();
    let unreadable = StampOptions {
        previous_unreadable: true,
        ..StampOptions::default()
    };
    let stamped = match previous {
        Ok(previous) => {
            if previous.is_none() {
                tracing::info!(
                    path = "no_previous",
                    "nothing deployed yet: every flag gets this deployment's stamp"
                );
            }
            match lockstep::stamp::stamp(&content, previous.as_deref(), at, delta) {
                Err(StampError::Previous(error)) => {
                    tracing::warn!(path = "previous_unparseable", reason = %lockstep::error_chain(&error), "deployed content does not parse: every flag gets this deployment's stamp; drains and journey keys come from the new content");
                    lockstep::stamp::stamp_with(&content, None, at, delta, &unreadable)?
                }
                other => other?,
            }
        }
        // The environment's first deployment: nothing can be deployed before it.
        Err(reason) if event.deployment_number == Some(1) => {
            tracing::info!(path = "no_previous", reason = %reason, "first deployment of the environment: every flag gets this deployment's stamp");
            lockstep::stamp::stamp(&content, None, at, delta)?
        }
        Err(reason) => {
            tracing::warn!(path = "previous_unreadable", reason = %reason, "deployed content unreadable: every flag gets this deployment's stamp; drains and journey keys come from the new content");
            lockstep::stamp::stamp_with(&content, None, at, delta, &unreadable)?
        }
    };
    for (flag, (change, stamp)) in &stamped.flags {
        let drain_s = stamped.drains.get(flag).map(|d| d.as_secs());
        tracing::info!(flag = %flag, change = %change, stamp = %stamp.at, delta_s = stamp.deployment_duration.as_secs(), drain_s, "flag stamped");
    }
    // What happened to the journey key, never the key: `created` only when nothing deployed
    // carried one; `rotated` when an operator rotated it (here or in `lockstep deploy`).
    tracing::info!(path = "journey_key", key = ?stamped.key, "journey key");
    Ok(stamped.content)
}

/// Δ from the deployment read; when it cannot be read, the deployment is blocked unless the
/// operator opted in to the fallback parameter ([`ALLOW_FALLBACK_PARAMETER`]).
fn delta(
    event: &Event,
    read: Result<Duration, DeploymentReadError>,
) -> Result<Duration, ExtensionError> {
    let allowed = fallback_allowed(event);
    let parameter = fallback_parameter(event);
    let read = match read {
        Ok(delta) => {
            tracing::info!(
                path = "delta_from_deployment",
                delta_s = delta.as_secs(),
                deployment = ?event.deployment_number,
                "deployment strategy's duration read from the deployment"
            );
            if let (true, Some((name, Ok(bound)))) = (allowed, &parameter) {
                if *bound < delta.as_secs() {
                    tracing::warn!(
                        path = "fallback_parameter_too_small",
                        parameter = name,
                        parameter_s = bound,
                        delta_s = delta.as_secs(),
                        "the fallback parameter is below this deployment's duration: should a deployment read fail, flags would be reported consistent too early"
                    );
                }
            }
            return Ok(delta);
        }
        Err(error) => lockstep::error_chain(&error),
    };
    if !allowed {
        tracing::warn!(
            path = "deployment_unreadable_blocked",
            reason = %read,
            "the deployment could not be read: blocked rather than stamped with a duration that may be too short"
        );
        return Err(ExtensionError::DeploymentUnreadable { read });
    }
    match parameter {
        Some((name, Ok(seconds))) => {
            if name == DEPRECATED_DURATION_PARAMETER {
                tracing::warn!(
                    parameter = DEPRECATED_DURATION_PARAMETER,
                    replacement = MAX_DURATION_PARAMETER,
                    "deprecated extension parameter: rename it to {MAX_DURATION_PARAMETER}"
                );
            }
            tracing::warn!(
                path = "delta_fallback_parameter",
                parameter = name,
                delta_s = seconds,
                reason = %read,
                "the deployment could not be read: its duration is taken from the extension parameter (an upper bound), as the operator allowed"
            );
            // `stamp` refuses a Δ over AppConfig's 24 hours with its own message.
            Ok(Duration::from_secs(seconds))
        }
        Some((name, Err(source))) => Err(ExtensionError::BadDuration { read, name, source }),
        None => Err(ExtensionError::UnknownDuration { read }),
    }
}

/// Whether the operator opted in to the fallback Δ ([`ALLOW_FALLBACK_PARAMETER`] = `true`).
fn fallback_allowed(event: &Event) -> bool {
    event
        .parameters
        .get(ALLOW_FALLBACK_PARAMETER)
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
}

/// The fallback parameter by its name, else by its deprecated alias, parsed (an empty value is
/// not set).
fn fallback_parameter(
    event: &Event,
) -> Option<(&'static str, Result<u64, std::num::ParseIntError>)> {
    [MAX_DURATION_PARAMETER, DEPRECATED_DURATION_PARAMETER]
        .into_iter()
        .find_map(|name| {
            let value = event.parameters.get(name)?.trim();
            (!value.is_empty()).then(|| (name, value.parse::<u64>()))
        })
}
