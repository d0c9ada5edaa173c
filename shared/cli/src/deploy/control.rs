//! Reading the AppConfig control plane for a deployment: names to ids, the strategy (Δ), the
//! deployments of an environment and the content deployed now; and following a started
//! deployment until it is complete or consistent (or rolled back, saying by whom), or stopping
//! it.

use super::error::sdk;
use super::rollback::{Event, Rollback};
use super::{retrieval, DeployError, Deployer, Started, Target};
use aws_sdk_appconfig::operation::get_deployment::GetDeploymentOutput;
use aws_sdk_appconfig::types::DeploymentState;
use chrono::{DateTime, Utc};
use lockstep::consistency::MAX_DEPLOYMENT_DURATION;
use serde::Serialize;
use std::time::Duration;

/// A deployment strategy as Lockstep uses it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Strategy {
    /// Its id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Δ: `DeploymentDurationInMinutes`.
    #[serde(rename = "deploymentDurationSeconds", serialize_with = "seconds")]
    pub duration: Duration,
    /// `LINEAR` or `EXPONENTIAL`.
    pub growth_type: String,
    /// Percent per step.
    pub growth_factor: f32,
    /// Bake time after 100 %.
    #[serde(rename = "finalBakeTimeSeconds", serialize_with = "seconds")]
    pub final_bake_time: Duration,
}

fn seconds<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_secs())
}

/// The ids a target resolves to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// Application id.
    pub application: String,
    /// Environment id.
    pub environment: String,
    /// Configuration profile id.
    pub profile: String,
}

/// A deployment's progress, as [`Deployer::progress`] reads it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Progress {
    /// The deployment's number.
    pub deployment_number: i32,
    /// `DEPLOYING`, `BAKING`, `COMPLETE`, `ROLLED_BACK`, ...
    pub state: String,
    /// Percent of sessions handed the new version.
    pub percentage_complete: f32,
    /// The deployed version's label, when it has one (what instances report).
    pub version_label: Option<String>,
}

impl Deployer {
    /// Resolves names or ids to ids.
    pub async fn resolve(&self, target: &Target) -> Result<Resolved, DeployError> {
        let apps = self
            .client
            .list_applications()
            .max_results(50)
            .send()
            .await
            .map_err(sdk("ListApplications"))?;
        let application = find_id(
            apps.items().iter().map(|a| (a.id(), a.name())),
            &target.application,
            "application",
        )?;
        let envs = self
            .client
            .list_environments()
            .application_id(&application)
            .max_results(50)
            .send()
            .await
            .map_err(sdk("ListEnvironments"))?;
        let environment = find_id(
            envs.items().iter().map(|e| (e.id(), e.name())),
            &target.environment,
            "environment",
        )?;
        let profiles = self
            .client
            .list_configuration_profiles()
            .application_id(&application)
            .max_results(50)
            .send()
            .await
            .map_err(sdk("ListConfigurationProfiles"))?;
        let profile = find_id(
            profiles.items().iter().map(|p| (p.id(), p.name())),
            &target.profile,
            "configuration profile",
        )?;
        Ok(Resolved {
            application,
            environment,
            profile,
        })
    }

    /// A strategy by name or id, with its duration from `GetDeploymentStrategy`.
    pub async fn strategy(&self, name_or_id: &str) -> Result<Strategy, DeployError> {
        let listed = self
            .client
            .list_deployment_strategies()
            .max_results(50)
            .send()
            .await
            .map_err(sdk("ListDeploymentStrategies"))?;
        let id = find_id(
            listed.items().iter().map(|s| (s.id(), s.name())),
            name_or_id,
            "deployment strategy",
        )?;
        let got = self
            .client
            .get_deployment_strategy()
            .deployment_strategy_id(&id)
            .send()
            .await
            .map_err(sdk("GetDeploymentStrategy"))?;
        let minutes = got.deployment_duration_in_minutes();
        let duration = Duration::from_secs(u64::try_from(minutes).unwrap_or(0) * 60);
        if duration > MAX_DEPLOYMENT_DURATION {
            return Err(DeployError::StrategyTooLong(minutes));
        }
        Ok(Strategy {
            id,
            name: got.name().unwrap_or(name_or_id).to_owned(),
            duration,
            growth_type: got
                .growth_type()
                .map(|g| g.as_str().to_owned())
                .unwrap_or_else(|| "LINEAR".into()),
            growth_factor: got.growth_factor().unwrap_or(100.0),
            final_bake_time: Duration::from_secs(
                u64::try_from(got.final_bake_time_in_minutes()).unwrap_or(0) * 60,
            ),
        })
    }

    /// The environment's deployments, newest first: every page, sorted by number (AWS lists
    /// newest first; ministack lists oldest first, one page).
    async fn deployments(
        &self,
        ids: &Resolved,
    ) -> Result<Vec<aws_sdk_appconfig::types::DeploymentSummary>, DeployError> {
        let mut items: Vec<_> = self
            .client
            .list_deployments()
            .application_id(&ids.application)
            .environment_id(&ids.environment)
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .map_err(sdk("ListDeployments"))?;
        items.sort_by_key(|d| std::cmp::Reverse(d.deployment_number()));
        Ok(items)
    }

    /// The deployment in progress in the environment, if any.
    pub async fn in_progress(&self, ids: &Resolved) -> Result<Option<Progress>, DeployError> {
        let active = self.deployments(ids).await?.into_iter().find(|d| {
            matches!(
                d.state(),
                Some(DeploymentState::Deploying)
                    | Some(DeploymentState::Baking)
                    | Some(DeploymentState::Validating)
                    | Some(DeploymentState::RollingBack)
            )
        });
        Ok(active.as_ref().map(Progress::of))
    }

    /// The content deployed now to the target's environment for its profile: the latest
    /// `COMPLETE` deployment's hosted version number and content, as stored (`None` when
    /// nothing is deployed).
    pub async fn deployed_content(
        &self,
        ids: &Resolved,
    ) -> Result<Option<(i32, Vec<u8>)>, DeployError> {
        Ok(self
            .deployed_hosted(ids)
            .await?
            .map(|(version, _, content)| (version, content)))
    }

    /// Like [`Deployer::deployed_content`], with the version's label (what instances report)
    /// instead of its number, and the content in the retrieval form instances read.
    pub async fn deployed_version(
        &self,
        ids: &Resolved,
    ) -> Result<Option<(Option<String>, Vec<u8>)>, DeployError> {
        Ok(self
            .deployed_hosted(ids)
            .await?
            .map(|(_, label, content)| (label, retrieval(&content))))
    }

    /// The latest deployment of the environment, whatever its state.
    pub async fn latest(&self, ids: &Resolved) -> Result<Option<Progress>, DeployError> {
        Ok(self.deployments(ids).await?.first().map(Progress::of))
    }

    async fn deployed_hosted(
        &self,
        ids: &Resolved,
    ) -> Result<Option<(i32, Option<String>, Vec<u8>)>, DeployError> {
        for summary in self.deployments(ids).await? {
            if summary.state() != Some(&DeploymentState::Complete) {
                continue;
            }
            let deployment = self
                .client
                .get_deployment()
                .application_id(&ids.application)
                .environment_id(&ids.environment)
                .deployment_number(summary.deployment_number())
                .send()
                .await
                .map_err(sdk("GetDeployment"))?;
            if deployment.configuration_profile_id() != Some(ids.profile.as_str()) {
                continue;
            }
            let Some(version) = deployment
                .configuration_version()
                .and_then(|v| v.parse::<i32>().ok())
            else {
                continue;
            };
            let hosted = self
                .client
                .get_hosted_configuration_version()
                .application_id(&ids.application)
                .configuration_profile_id(&ids.profile)
                .version_number(version)
                .send()
                .await
                .map_err(sdk("GetHostedConfigurationVersion"))?;
            let label = hosted.version_label().map(str::to_owned);
            let content = hosted.content().map(|b| b.as_ref().to_vec());
            return Ok(content.map(|c| (version, label, c)));
        }
        Ok(None)
    }

    /// `GetDeployment` for deployment `number`.
    async fn get_deployment(
        &self,
        ids: &Resolved,
        number: i32,
    ) -> Result<GetDeploymentOutput, DeployError> {
        self.client
            .get_deployment()
            .application_id(&ids.application)
            .environment_id(&ids.environment)
            .deployment_number(number)
            .send()
            .await
            .map_err(sdk("GetDeployment"))
    }

    /// One look at a deployment.
    pub async fn progress(&self, ids: &Resolved, number: i32) -> Result<Progress, DeployError> {
        let got = self.get_deployment(ids, number).await?;
        Ok(Progress {
            deployment_number: number,
            state: got
                .state()
                .map(|s| s.as_str().to_owned())
                .unwrap_or_default(),
            percentage_complete: got.percentage_complete().unwrap_or(0.0),
            version_label: got.version_label().map(str::to_owned),
        })
    }

    /// Follows `started` every `every` until its changed flags are consistent (the deployment
    /// `COMPLETE` and `consistentAt` passed), calling `report` with each look and the time left;
    /// fails when it is rolled back.
    pub async fn wait(
        &self,
        started: &Started,
        every: Duration,
        now: impl Fn() -> DateTime<Utc>,
        mut report: impl FnMut(&Progress, Option<chrono::TimeDelta>),
    ) -> Result<Progress, DeployError> {
        self.follow(started, every, |progress| {
            let left = started.consistent_at.map(|at| at - now());
            report(progress, left);
            progress.state == "COMPLETE" && left.is_none_or(|l| l <= chrono::TimeDelta::zero())
        })
        .await
    }

    /// Follows `started` every `every` until it is `COMPLETE` (every session is handed the new
    /// version); fails when it is rolled back.
    pub async fn wait_complete(
        &self,
        started: &Started,
        every: Duration,
    ) -> Result<Progress, DeployError> {
        self.follow(started, every, |progress| progress.state == "COMPLETE")
            .await
    }

    /// Looks at `started` every `every` until `done` says so; fails when it is rolled back.
    async fn follow(
        &self,
        started: &Started,
        every: Duration,
        mut done: impl FnMut(&Progress) -> bool,
    ) -> Result<Progress, DeployError> {
        loop {
            let progress = self
                .progress(&started.resolved, started.deployment_number)
                .await?;
            if matches!(progress.state.as_str(), "ROLLED_BACK" | "REVERTED") {
                let rollback = self
                    .rollback(&started.resolved, started.deployment_number)
                    .await?;
                return Err(DeployError::RolledBack {
                    number: started.deployment_number,
                    rollback: Box::new(rollback),
                });
            }
            if done(&progress) {
                return Ok(progress);
            }
            tokio::time::sleep(every).await;
        }
    }

    /// Who rolled deployment `number` back, from its event log ([`Rollback::from_events`]).
    pub async fn rollback(&self, ids: &Resolved, number: i32) -> Result<Rollback, DeployError> {
        let got = self.get_deployment(ids, number).await?;
        let events: Vec<Event> = got
            .event_log()
            .iter()
            .map(|e| Event {
                event_type: e
                    .event_type()
                    .map(|t| t.as_str().to_owned())
                    .unwrap_or_default(),
                triggered_by: e
                    .triggered_by()
                    .map(|t| t.as_str().to_owned())
                    .unwrap_or_default(),
                description: e.description().unwrap_or_default().to_owned(),
                occurred_at: e
                    .occurred_at()
                    .and_then(|at| DateTime::from_timestamp_millis(at.to_millis().ok()?)),
            })
            .collect();
        let state = got.state().map(|s| s.as_str()).unwrap_or_default();
        Ok(Rollback::from_events(number, state, &events))
    }

    /// Stops a deployment in progress (AppConfig rolls it back).
    pub async fn stop(&self, ids: &Resolved, number: i32) -> Result<Progress, DeployError> {
        self.client
            .stop_deployment()
            .application_id(&ids.application)
            .environment_id(&ids.environment)
            .deployment_number(number)
            .send()
            .await
            .map_err(sdk("StopDeployment"))?;
        self.progress(ids, number).await
    }
}

impl Progress {
    fn of(summary: &aws_sdk_appconfig::types::DeploymentSummary) -> Self {
        Self {
            deployment_number: summary.deployment_number(),
            state: summary
                .state()
                .map(|s| s.as_str().to_owned())
                .unwrap_or_default(),
            percentage_complete: summary.percentage_complete().unwrap_or(0.0),
            version_label: summary.version_label().map(str::to_owned),
        }
    }
}

/// The id of the listed item whose id or name is `wanted` (AppConfig accepts either).
fn find_id<'a>(
    items: impl IntoIterator<Item = (Option<&'a str>, Option<&'a str>)>,
    wanted: &str,
    kind: &'static str,
) -> Result<String, DeployError> {
    items
        .into_iter()
        .find(|(id, name)| *id == Some(wanted) || *name == Some(wanted))
        .and_then(|(id, _)| id.map(str::to_owned))
        .ok_or_else(|| DeployError::NotFound {
            kind,
            name: wanted.to_owned(),
        })
}
