//! The AppConfig extension that stamps every deployment (`PRE_START_DEPLOYMENT`), and logs
//! rollbacks (`ON_DEPLOYMENT_ROLLED_BACK`).
//!
//! AppConfig invokes it with the configuration as base64 `Content` plus the application,
//! environment and profile ids and the extension `Parameters`. It answers `{"Content": base64}` to
//! replace the content, or `{"Error", "Message"}` to block the deployment.
//!
//! - Δ comes from the required extension parameter `DeploymentDurationSeconds` (the strategy's
//!   duration; a wrong Δ would make flags look consistent too early, so a missing or malformed
//!   value blocks the deployment).
//! - The previous stamps come from the content currently deployed to the same environment and
//!   profile, read through AppConfigData before the new deployment starts. When nothing is
//!   deployed yet, or it cannot be read, every flag gets this deployment's stamp: later than
//!   needed, never earlier (logged as `path=no_previous`).

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chrono::{DateTime, Utc};
use lockstep::appconfig::{AppConfigSource, Target};
use lockstep::source::{BoxFuture, ConfigSource, SourceError};
use lockstep::stamp::StampError;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::Duration;
use thiserror::Error;

/// The extension parameter naming Δ.
pub const DURATION_PARAMETER: &str = "DeploymentDurationSeconds";

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

/// Why a deployment is blocked; AppConfig shows the whole chain as the reason.
#[derive(Debug, Error)]
pub enum ExtensionError {
    /// The Δ parameter is missing.
    #[error("the extension parameter {DURATION_PARAMETER} (the deployment strategy's duration) is required")]
    MissingDuration,
    /// The Δ parameter is not whole seconds.
    #[error("{DURATION_PARAMETER} must be a whole number of seconds")]
    BadDuration(#[source] std::num::ParseIntError),
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
        let mut source = AppConfigSource::new(
            self.client.clone(),
            target,
            lockstep::settings::MIN_POLL_INTERVAL,
        );
        Box::pin(async move {
            let fetched = source.fetch(Utc::now()).await?;
            Ok(fetched.content.map(|c| c.bytes))
        })
    }
}

/// Handles one invocation; every outcome is an answer AppConfig understands.
pub async fn handle(event: &Event, deployed: &dyn DeployedContent, now: DateTime<Utc>) -> Value {
    match event.kind.as_str() {
        "PreStartDeployment" => match pre_start(event, deployed, now).await {
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
                rolled_back_at = %now.to_rfc3339(),
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
    deployed: &dyn DeployedContent,
    now: DateTime<Utc>,
) -> Result<Vec<u8>, ExtensionError> {
    let seconds: u64 = event
        .parameters
        .get(DURATION_PARAMETER)
        .ok_or(ExtensionError::MissingDuration)?
        .trim()
        .parse()
        .map_err(ExtensionError::BadDuration)?;
    let content = event.content.as_deref().ok_or(ExtensionError::NoContent)?;
    let content = STANDARD
        .decode(content)
        .map_err(ExtensionError::NotBase64)?;
    let previous = match deployed.fetch(event).await {
        Ok(previous) => previous,
        Err(error) => {
            tracing::warn!(path = "no_previous", reason = %lockstep::error_chain(&error), "deployed content unreadable: every flag gets this deployment's stamp");
            None
        }
    };
    let stamped = lockstep::stamp::stamp(
        &content,
        previous.as_deref(),
        now,
        Duration::from_secs(seconds),
    )?;
    for (flag, (change, stamp)) in &stamped.flags {
        tracing::info!(flag = %flag, change = %change, stamp = %stamp.at, delta_s = stamp.deployment_duration.as_secs(), "flag stamped");
    }
    Ok(stamped.content)
}
