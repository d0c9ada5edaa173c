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
    /// The drain time of the deployment that switched it off, or that narrowed its rules
    /// (rule 9), seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drain_seconds: Option<u64>,
    /// Its definition as deployed, for a flag defined by rules (docs/targeting.md): the fleet
    /// view lists its rules and splits.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub definition: Option<serde_json::Value>,
    /// The definitions it had before, kept for per-user consistency (design rule 10,
    /// `lockstepMetadata.flags.<name>.previous`), newest first: the steps of a rollout.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub previous: Vec<DeployedStep>,
}

/// One previous definition of a deployed flag, with the stamp of the deployment that
/// introduced it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeployedStep {
    /// T of that deployment.
    pub last_modified_timestamp: DateTime<Utc>,
    /// Its Δ, seconds.
    pub deployment_duration_seconds: u64,
    /// Its `T + Δ + P + ε`: the bound of the users whose value it changed.
    pub consistent_at: Option<DateTime<Utc>>,
    /// The drain time it carried (rule 9), seconds: the users it switched off finish their
    /// journeys until its `T + Δ + P + ε + drain`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drain_seconds: Option<u64>,
    /// What the flag was: `true`, `false` or a definition, as deployed.
    pub value: serde_json::Value,
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
                                    drain_seconds: flag.drain.map(|d| d.as_secs()),
                                    definition: doc
                                        .definitions
                                        .contains_key(&name)
                                        .then(|| raw[&name].clone()),
                                    previous: steps(&raw, &doc.previous, &name, window),
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

/// The kept previous definitions of `name` (`doc_previous`, parsed and validated) with the raw
/// value each was deployed as (`raw`'s `lockstepMetadata.flags.<name>.previous`, in the same
/// order).
fn steps(
    raw: &serde_json::Value,
    doc_previous: &BTreeMap<String, Vec<lockstep::history::Previous>>,
    name: &str,
    window: Window,
) -> Vec<DeployedStep> {
    let Some(kept) = doc_previous.get(name) else {
        return Vec::new();
    };
    let values = raw["lockstepMetadata"]["flags"][name]["previous"].as_array();
    kept.iter()
        .enumerate()
        .map(|(i, previous)| DeployedStep {
            last_modified_timestamp: previous.stamp.at,
            deployment_duration_seconds: previous.stamp.deployment_duration.as_secs(),
            consistent_at: consistent_at(Some(previous.stamp), false, window),
            drain_seconds: previous.drain.map(|d| d.as_secs()),
            value: values
                .and_then(|v| v.get(i))
                .map(|entry| entry["value"].clone())
                .unwrap_or_default(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use lockstep::stamp::{stamp_with, StampOptions};
    use serde_json::json;
    use std::time::Duration;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    /// `content` stamped at `at` over `previous`, with an optional drain.
    fn deploy(
        content: &str,
        previous: Option<&[u8]>,
        at: &str,
        delta: u64,
        drain: Option<u64>,
    ) -> Vec<u8> {
        let options = StampOptions {
            drain: drain.map(Duration::from_secs),
            ..StampOptions::default()
        };
        stamp_with(
            content.as_bytes(),
            previous,
            t(at),
            Duration::from_secs(delta),
            &options,
        )
        .unwrap()
        .content
    }

    fn split(w: u32) -> String {
        json!({"f": {"default": false, "rules": {"r": {"split": [
            {"variant": "in", "value": true, "weight": w},
            {"variant": "out", "value": false, "weight": 10_000 - w}]}}}})
        .to_string()
    }

    #[test]
    fn a_rules_flag_lists_its_kept_definitions_newest_first_with_their_stamps_and_drains() {
        let plain = deploy(r#"{"f": false}"#, None, "2026-12-01T09:00:00Z", 0, None);
        let whole = deploy(
            &split(10_000),
            Some(&plain),
            "2026-12-01T10:00:00Z",
            60,
            None,
        );
        let narrowed = deploy(
            &split(2500),
            Some(&whole),
            "2026-12-01T11:00:00Z",
            0,
            Some(300),
        );
        let latest = deploy(
            &split(1000),
            Some(&narrowed),
            "2026-12-01T12:00:00Z",
            0,
            None,
        );
        let raw: serde_json::Value = serde_json::from_slice(&latest).unwrap();
        let doc = lockstep::document::parse(&latest).unwrap();
        let window = Window {
            poll_interval: Duration::from_secs(15),
            epsilon: Duration::from_secs(5),
        };

        let steps = steps(&raw, &doc.previous, "f", window);

        let shown: Vec<_> = steps
            .iter()
            .map(|s| {
                (
                    s.last_modified_timestamp,
                    s.deployment_duration_seconds,
                    s.consistent_at,
                    s.drain_seconds,
                )
            })
            .collect();
        let at = |s: &str| Some(t(s));
        assert_eq!(
            shown,
            [
                (
                    t("2026-12-01T11:00:00Z"),
                    0,
                    at("2026-12-01T11:00:20Z"),
                    Some(300)
                ),
                (
                    t("2026-12-01T10:00:00Z"),
                    60,
                    at("2026-12-01T10:01:20Z"),
                    None
                ),
                (
                    t("2026-12-01T09:00:00Z"),
                    0,
                    at("2026-12-01T09:00:20Z"),
                    None
                ),
            ]
        );
        let weight = |i: usize| steps[i].value["rules"]["r"]["split"][0]["weight"].clone();
        assert_eq!((weight(0), weight(1)), (json!(2500), json!(10_000)));
        assert_eq!(steps[2].value, json!(false));
        assert!(super::steps(&raw, &doc.previous, "other", window).is_empty());
    }
}
