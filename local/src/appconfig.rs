//! The runner's AppConfig: the local emulator (ministack) read and deployed through the real SDK
//! clients, the same way the functions and `lockstep deploy` use AWS.
//!
//! - Every fleet instance reads through its own `AppConfigSource` session (see [`crate::fleet`]).
//! - Deployments (the fleet view's Deploy form, `POST /local/deployments`, and
//!   `./scripts/deploy-local`, which runs `lockstep deploy`) go through
//!   [`lockstep_cli::deploy::Deployer`]: stamped with the chosen strategy's own duration.
//! - The fleet view shows what is deployed (the latest `COMPLETE` deployment's content) and the
//!   deployment in progress, with its state and percentage.
//! - The template's alarms live in the same emulator's CloudWatch, as the environment's monitors
//!   ([`crate::alarms`]).

use chrono::{DateTime, Utc};
use lockstep::appconfig::Target;
use lockstep::consistency::{consistent_at, Window};
use lockstep_cli::deploy::{Deployer, Progress, Resolved, Strategy};
use serde::Serialize;
use std::collections::BTreeMap;

/// The application, environment and profile a local run uses.
pub fn target() -> Target {
    lockstep::init::local_target()
}

/// What the runner needs of its AppConfig.
#[derive(Debug, Clone)]
pub struct LocalAppConfig {
    /// The AppConfigData client every instance's session uses.
    pub data: aws_sdk_appconfigdata::Client,
    /// Deployments through the control plane.
    pub deployer: Deployer,
    /// The local CloudWatch: the template's alarms, the environment's monitors
    /// ([`crate::alarms::cloudwatch`]).
    pub cloudwatch: aws_sdk_cloudwatch::Client,
}

/// One flag of the deployed content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeployedFlag {
    /// Its value.
    pub value: bool,
    /// T, when stamped.
    pub last_modified_timestamp: Option<DateTime<Utc>>,
    /// Δ, seconds, when stamped.
    pub deployment_duration_seconds: Option<u64>,
    /// `T + Δ + P + ε`, when stamped.
    pub consistent_at: Option<DateTime<Utc>>,
    /// Its definition as deployed, for a flag defined by rules (docs/targeting.md): the fleet
    /// view lists its rules and splits.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub definition: Option<serde_json::Value>,
}

/// What is deployed, and what is being deployed.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Deployed {
    /// The version label of the content deployed now (what instances report).
    pub configuration_version: Option<String>,
    /// Its profile stamp T.
    pub last_modified_timestamp: Option<DateTime<Utc>>,
    /// Every flag in it.
    pub flags: BTreeMap<String, DeployedFlag>,
    /// The latest deployment (in progress or not): number, state, percentage.
    pub deployment: Option<Progress>,
    /// Why the deployed content cannot be shown, if so.
    pub error: Option<String>,
}

impl LocalAppConfig {
    /// The ids of [`target`].
    pub async fn resolved(&self) -> Result<Resolved, lockstep_cli::deploy::DeployError> {
        self.deployer.resolve(&target()).await
    }

    /// The deployment strategies a local deployment may use.
    pub async fn strategies(&self) -> Vec<Strategy> {
        let mut found = Vec::new();
        for (name, ..) in lockstep_testkit::ministack::LOCAL_STRATEGIES {
            if let Ok(strategy) = self.deployer.strategy(name).await {
                found.push(strategy);
            }
        }
        found
    }

    /// The content deployed now (the latest deployment's version), or why there is none.
    pub async fn deployed_content(&self) -> Result<Vec<u8>, String> {
        let ids = self
            .resolved()
            .await
            .map_err(|e| lockstep::error_chain(&e))?;
        match self.deployer.deployed_version(&ids).await {
            Ok(Some((_, content))) => Ok(content),
            Ok(None) => Err("nothing deployed yet".into()),
            Err(e) => Err(lockstep::error_chain(&e)),
        }
    }

    /// What is deployed now, for the fleet view (`window`: the runner's P and ε).
    pub async fn deployed(&self, window: Window) -> Deployed {
        let mut deployed = Deployed {
            configuration_version: None,
            last_modified_timestamp: None,
            flags: BTreeMap::new(),
            deployment: None,
            error: None,
        };
        let ids = match self.resolved().await {
            Ok(ids) => ids,
            Err(e) => {
                deployed.error = Some(lockstep::error_chain(&e));
                return deployed;
            }
        };
        deployed.deployment = self.deployer.latest(&ids).await.ok().flatten();
        match self.deployer.deployed_version(&ids).await {
            Ok(Some((label, content))) => {
                deployed.configuration_version = label;
                let raw: serde_json::Value = serde_json::from_slice(&content).unwrap_or_default();
                match lockstep::document::parse(&content) {
                    Ok(doc) => {
                        deployed.last_modified_timestamp = doc.profile_stamp.map(|s| s.at);
                        deployed.flags = doc
                            .flags
                            .into_iter()
                            .map(|(name, flag)| {
                                let shown = DeployedFlag {
                                    value: flag.enabled,
                                    last_modified_timestamp: flag.stamp.map(|s| s.at),
                                    deployment_duration_seconds: flag
                                        .stamp
                                        .map(|s| s.deployment_duration.as_secs()),
                                    consistent_at: consistent_at(flag.stamp, false, window),
                                    definition: doc
                                        .definitions
                                        .contains_key(&name)
                                        .then(|| raw[&name].clone()),
                                };
                                (name, shown)
                            })
                            .collect();
                    }
                    Err(e) => deployed.error = Some(e.to_string()),
                }
            }
            Ok(None) => deployed.error = Some("nothing deployed yet".into()),
            Err(e) => deployed.error = Some(lockstep::error_chain(&e)),
        }
        deployed
    }
}
