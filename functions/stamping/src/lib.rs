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
//!   `path=delta_from_deployment`). Only when that read fails (an error, a timeout, or an event
//!   without `DeploymentNumber`) does Δ come from the extension parameter
//!   [`MAX_DURATION_PARAMETER`], an upper bound on every strategy the profile is deployed with
//!   (`path=delta_fallback_parameter`, with the reason); [`DEPRECATED_DURATION_PARAMETER`] is
//!   accepted as its deprecated alias. A larger Δ only delays consistency, a smaller one breaks
//!   it; when neither is available the deployment is blocked.
//! - The previous stamps come from the content currently deployed to the same environment and
//!   profile, read through AppConfigData. When nothing is deployed yet, or it cannot be read in
//!   time, every flag gets this deployment's stamp: later than needed, never earlier (logged as
//!   `path=no_previous`). Deployed content that does not parse is treated the same way
//!   (`path=previous_unparseable`), so one bad deployment never blocks every later one; content
//!   that is itself invalid still blocks.
//! - T is read from the clock *after* both reads, each bounded by its timeout
//!   ([`DEPLOYMENT_READ_TIMEOUT`], [`DEPLOYED_CONTENT_TIMEOUT`]): between T and the real start
//!   there is only the stamping itself and AppConfig's handling of the answer, well inside ε.

use aws_sdk_appconfig::error::ProvideErrorMetadata;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chrono::Utc;
use lockstep::appconfig::{AppConfigSource, Target};
use lockstep::source::{BoxFuture, ConfigSource, SourceError};
use lockstep::stamp::StampError;
use lockstep::Clock;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::Duration;
use thiserror::Error;

/// The extension parameter holding the fallback Δ, in whole seconds: an upper bound, at least the
/// longest strategy's duration the profile is deployed with.
pub const MAX_DURATION_PARAMETER: &str = "MaxDeploymentDurationSeconds";

/// The former name of [`MAX_DURATION_PARAMETER`], still accepted (logged as deprecated) so
/// stacks that set it keep deploying.
pub const DEPRECATED_DURATION_PARAMETER: &str = "DeploymentDurationSeconds";

/// How long `GetDeployment` may take before Δ falls back to the parameter.
pub const DEPLOYMENT_READ_TIMEOUT: Duration = Duration::from_secs(2);

/// How long the deployed-content read may take before every flag gets this deployment's stamp.
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

/// Why the deployment's duration could not be read (Δ then falls back to the parameter).
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
    /// Neither the deployment nor the parameter gives Δ.
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
            let fetched = source.fetch(Utc::now()).await?;
            Ok(fetched.content.map(|c| c.bytes))
        })
    }
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
    let previous = previous.unwrap_or_else(|reason| {
        tracing::warn!(path = "no_previous", reason = %reason, "deployed content unreadable: every flag gets this deployment's stamp");
        None
    });
    // T: after every read above, so it is never earlier than the real start by more than the
    // stamping itself.
    let at = clock.now();
    let stamped = match lockstep::stamp::stamp(&content, previous.as_deref(), at, delta) {
        Err(StampError::Previous(error)) => {
            tracing::warn!(path = "previous_unparseable", reason = %lockstep::error_chain(&error), "deployed content does not parse: every flag gets this deployment's stamp");
            lockstep::stamp::stamp(&content, None, at, delta)?
        }
        other => other?,
    };
    for (flag, (change, stamp)) in &stamped.flags {
        let drain_s = stamped.drains.get(flag).map(|d| d.as_secs());
        tracing::info!(flag = %flag, change = %change, stamp = %stamp.at, delta_s = stamp.deployment_duration.as_secs(), drain_s, "flag stamped");
    }
    // What happened to the journey key, never the key: `created` on a deployment with no
    // readable previous content means tokens signed before it no longer open a drain.
    tracing::info!(path = "journey_key", key = ?stamped.key, "journey key");
    Ok(stamped.content)
}

/// Δ from the deployment read, else from the fallback parameter.
fn delta(
    event: &Event,
    read: Result<Duration, DeploymentReadError>,
) -> Result<Duration, ExtensionError> {
    let parameter = fallback_parameter(event);
    let read = match read {
        Ok(delta) => {
            tracing::info!(
                path = "delta_from_deployment",
                delta_s = delta.as_secs(),
                deployment = ?event.deployment_number,
                "deployment strategy's duration read from the deployment"
            );
            if let Some((name, Ok(bound))) = &parameter {
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
                "the deployment could not be read: its duration is taken from the extension parameter (an upper bound)"
            );
            // `stamp` refuses a Δ over AppConfig's 24 hours with its own message.
            Ok(Duration::from_secs(seconds))
        }
        Some((name, Err(source))) => Err(ExtensionError::BadDuration { read, name, source }),
        None => Err(ExtensionError::UnknownDuration { read }),
    }
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
