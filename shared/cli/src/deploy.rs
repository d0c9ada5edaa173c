//! A pipeline deployment through the AppConfig control plane, stamped with the deployment's own
//! strategy: the code behind `lockstep deploy`, the local runner's Deploy form and
//! `./scripts/deploy-local`.
//!
//! 1. Resolve the application, environment and profile (names or ids) and the strategy (name or
//!    id; `GetDeploymentStrategy` gives Δ = `DeploymentDurationInMinutes`: never a hand-typed
//!    value, so a Canary10Percent20Minutes deployment can never be reported consistent before
//!    its canary ends).
//! 2. Refuse when a deployment is already in progress in the environment (AppConfig allows one at
//!    a time), and undeclared flags (when a catalog is given).
//! 3. Read the content deployed now: the latest `COMPLETE` deployment of this profile to this
//!    environment, then its hosted version's content. Its stamps are kept for unchanged flags.
//! 4. Apply the changes (`--set flag=bool`, Freeform only) or take a whole content file; stamp it
//!    with T = now (after every read above) and Δ; create the hosted version; start the
//!    deployment (a `ConflictException` there is "already in progress" too).
//! 5. Report each flag's change and `consistentAt = T + Δ + P + ε` for the given P and ε.
//!
//! [`Deployer::wait`] then follows the deployment (state, percentage, time to `consistentAt`)
//! until every changed flag is consistent, and fails on `ROLLED_BACK`.

use aws_sdk_appconfig::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_appconfig::primitives::Blob;
use aws_sdk_appconfig::types::DeploymentState;
use aws_sdk_appconfig::Client;
use chrono::{DateTime, Utc};
use lockstep::catalog::{FlagCatalog, METADATA_KEY};
use lockstep::consistency::{
    consistent_at, drain_ends_at, journey_opens_at, Window, MAX_DEPLOYMENT_DURATION,
};
use lockstep::stamp::{stamp_with, Change, KeyChange, StampError, StampOptions};
use lockstep::Stamp;
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::time::Duration;
use thiserror::Error;

type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Where to deploy: names or ids, as AppConfig accepts them (the core's one definition).
pub use lockstep::target::Target;

/// What to deploy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Changes {
    /// Set these flags in the content deployed now (Freeform JSON); every other flag keeps its
    /// value and its stamp.
    Set(BTreeMap<String, bool>),
    /// Deploy this content (either format); flags unchanged since the deployed content keep
    /// their stamps.
    Content(Vec<u8>),
}

/// One deployment to make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Where.
    pub target: Target,
    /// What.
    pub changes: Changes,
    /// The deployment strategy, by name or id.
    pub strategy: String,
    /// A description for the deployment and its hosted version.
    pub description: Option<String>,
    /// Without a catalog, `Set` may only name flags of the content deployed now unless this is
    /// true (a typo must not quietly add a flag).
    pub allow_new_flags: bool,
    /// A drain time for the flags this deployment switches off (rule 9): journeys in flight
    /// finish until `T + Δ + P + ε + drain`. None: a kill switch.
    pub drain: Option<Duration>,
    /// Make a new journey key; the current one still verifies tokens issued under it.
    pub rotate_journey_key: bool,
}

/// Why a deployment was refused or failed.
#[derive(Debug, Error)]
pub enum DeployError {
    /// The application, environment, profile or strategy does not exist.
    #[error("no {kind} named {name:?}")]
    NotFound {
        /// What was looked for.
        kind: &'static str,
        /// Its name or id.
        name: String,
    },
    /// AppConfig runs one deployment per environment at a time.
    #[error("deployment {number} is already in progress in environment {environment:?}; wait for it or stop it")]
    InProgress {
        /// The deployment in progress.
        number: i32,
        /// The environment.
        environment: String,
    },
    /// A flag the catalog does not declare.
    #[error("unknown flag {name:?}; declared flags: {declared}")]
    UndeclaredFlag {
        /// The name given.
        name: String,
        /// The declared names.
        declared: String,
    },
    /// Nothing to set.
    #[error("name at least one flag to set, or a content file")]
    NothingToDeploy,
    /// A strategy longer than AppConfig allows.
    #[error("the strategy lasts {0} minutes, over AppConfig's 24 hours")]
    StrategyTooLong(i32),
    /// The content deployed now is not a JSON object `--set` can edit.
    #[error("the deployed content cannot be edited with --set (use a content file): {0}")]
    NotEditable(String),
    /// The new content cannot be stamped.
    #[error("the content cannot be stamped")]
    Stamp(#[from] StampError),
    /// The deployment was rolled back (stopped, or by an alarm).
    #[error("deployment {number} was rolled back: the previous content is live again")]
    RolledBack {
        /// The deployment.
        number: i32,
    },
    /// AppConfig refused or failed a call.
    #[error("AppConfig {operation} failed ({code})")]
    AppConfig {
        /// The operation.
        operation: &'static str,
        /// The error code, or `unreachable`.
        code: String,
        /// The SDK error.
        #[source]
        source: BoxError,
    },
}

impl DeployError {
    /// True when the deployment was refused before anything was created (exit 2), false when
    /// AppConfig failed or the deployment was rolled back (exit 1).
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            DeployError::NotFound { .. }
                | DeployError::InProgress { .. }
                | DeployError::UndeclaredFlag { .. }
                | DeployError::NothingToDeploy
                | DeployError::StrategyTooLong(_)
                | DeployError::NotEditable(_)
                | DeployError::Stamp(_)
        )
    }
}

fn sdk<E>(operation: &'static str) -> impl FnOnce(SdkError<E>) -> DeployError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    move |error| DeployError::AppConfig {
        operation,
        code: error.code().unwrap_or("unreachable").to_owned(),
        source: Box::new(error),
    }
}

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

/// One flag after a deployment was started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FlagReport {
    /// Its value in the new content.
    pub value: bool,
    /// `new`, `changed` or `kept`.
    pub change: Change,
    /// T: its stamp.
    pub last_modified_timestamp: DateTime<Utc>,
    /// Δ of the deployment that introduced its value, seconds.
    pub deployment_duration_seconds: u64,
    /// `T + Δ + P + ε` for the reported P and ε.
    pub consistent_at: Option<DateTime<Utc>>,
    /// `T + Δ + Q + ε`: when a journey may open for clients that send the journey token.
    pub journey_opens_at: Option<DateTime<Utc>>,
    /// The drain time a switched-off flag carries, seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drain_seconds: Option<u64>,
    /// `T + Δ + P + ε + drain`: when journeys in flight meet the closed gate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drain_ends_at: Option<DateTime<Utc>>,
}

/// A started deployment.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Started {
    /// Application, environment and profile ids.
    #[serde(skip)]
    pub resolved: Resolved,
    /// The deployment's number in its environment.
    pub deployment_number: i32,
    /// The hosted configuration version deployed.
    pub configuration_version: i32,
    /// Its label: what instances report as `configurationVersion`.
    pub version_label: String,
    /// The strategy, with Δ.
    pub strategy: Strategy,
    /// T: this deployment's stamp.
    pub last_modified_timestamp: DateTime<Utc>,
    /// Every flag of the new content.
    pub flags: BTreeMap<String, FlagReport>,
    /// When every flag this deployment changed is consistent (the latest `consistentAt` of the
    /// new and changed flags; none when it changed nothing).
    pub consistent_at: Option<DateTime<Utc>>,
    /// The same for token-carrying clients (the latest `journeyOpensAt`).
    pub journey_opens_at: Option<DateTime<Utc>>,
    /// What happened to the journey key (kept, created, rotated; never the key).
    pub journey_key: KeyChange,
}

impl Started {
    /// One line per flag, then the deployment.
    pub fn report(&self) -> String {
        let at = |t: DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let mut out = String::new();
        for (name, flag) in &self.flags {
            out.push_str(&format!(
                "{name}={}: {} (lastModifiedTimestamp {}, deploymentDurationSeconds {}, consistentAt {}, journeyOpensAt {}",
                flag.value,
                flag.change,
                at(flag.last_modified_timestamp),
                flag.deployment_duration_seconds,
                flag.consistent_at.map(at).unwrap_or_else(|| "-".into()),
                flag.journey_opens_at.map(at).unwrap_or_else(|| "-".into()),
            ));
            if let (Some(drain), Some(ends)) = (flag.drain_seconds, flag.drain_ends_at) {
                out.push_str(&format!(", drain {drain} s until {}", at(ends)));
            }
            out.push_str(")\n");
        }
        out.push_str(&format!(
            "deployment {} of version {} with {} (Δ = {} s) started at {}",
            self.deployment_number,
            self.configuration_version,
            self.strategy.name,
            self.strategy.duration.as_secs(),
            at(self.last_modified_timestamp)
        ));
        out
    }
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

/// Deploys through the AppConfig control plane.
#[derive(Debug, Clone)]
pub struct Deployer {
    client: Client,
    catalog: Option<FlagCatalog>,
    window: Window,
}

impl Deployer {
    /// A deployer with `client`; `window` (P and ε of the instances) only computes the reported
    /// `consistentAt`; with a `catalog`, undeclared flags are refused.
    pub fn new(client: Client, window: Window, catalog: Option<FlagCatalog>) -> Self {
        Self {
            client,
            catalog,
            window,
        }
    }

    /// The control-plane client.
    pub fn client(&self) -> &Client {
        &self.client
    }

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

    /// Stamps and starts one deployment (see the module's steps); `now` gives T and is read
    /// after every read of AppConfig.
    pub async fn deploy(
        &self,
        request: &Request,
        now: impl Fn() -> DateTime<Utc>,
    ) -> Result<Started, DeployError> {
        if let Changes::Set(flags) = &request.changes {
            if flags.is_empty() {
                return Err(DeployError::NothingToDeploy);
            }
            self.check_declared(flags.keys())?;
        }
        let ids = self.resolve(&request.target).await?;
        let strategy = self.strategy(&request.strategy).await?;
        if let Some(active) = self.in_progress(&ids).await? {
            return Err(DeployError::InProgress {
                number: active.deployment_number,
                environment: request.target.environment.clone(),
            });
        }
        let previous = self.deployed_content(&ids).await?.map(|(_, c)| c);
        if let (Changes::Set(flags), None, false) =
            (&request.changes, &self.catalog, request.allow_new_flags)
        {
            let deployed = previous
                .as_deref()
                .and_then(|p| lockstep::document::parse(&retrieval(p)).ok())
                .map(|doc| doc.flags)
                .unwrap_or_default();
            if let Some(unknown) = flags.keys().find(|n| !deployed.contains_key(*n)) {
                return Err(DeployError::UndeclaredFlag {
                    name: unknown.clone(),
                    declared: deployed.keys().cloned().collect::<Vec<_>>().join(", "),
                });
            }
        }
        let next = match &request.changes {
            Changes::Set(flags) => with_values(previous.as_deref(), flags)?,
            Changes::Content(content) => content.clone(),
        };
        // T after the reads: the deployment starts right after it.
        let at = now();
        let options = StampOptions {
            drain: request.drain,
            rotate_key: request.rotate_journey_key,
            new_key: None,
        };
        let stamped = stamp_with(&next, previous.as_deref(), at, strategy.duration, &options)?;
        if let Changes::Content(_) = &request.changes {
            self.check_declared(stamped.flags.keys())?;
        }
        let description = request.description.clone().unwrap_or_else(|| {
            format!(
                "lockstep deploy with {} (Δ {} s)",
                strategy.name,
                strategy.duration.as_secs()
            )
        });
        // The label instances report as their configuration version: the stamp, unique per
        // deployment and readable (AppConfig refuses an all-digit label).
        let label = format!(
            "T{}",
            at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        );
        let version = self
            .client
            .create_hosted_configuration_version()
            .application_id(&ids.application)
            .configuration_profile_id(&ids.profile)
            .content_type("application/json")
            .description(&description)
            .version_label(&label)
            .content(Blob::new(stamped.content.clone()))
            .send()
            .await
            .map_err(sdk("CreateHostedConfigurationVersion"))?
            .version_number();
        let started = self
            .client
            .start_deployment()
            .application_id(&ids.application)
            .environment_id(&ids.environment)
            .configuration_profile_id(&ids.profile)
            .configuration_version(version.to_string())
            .deployment_strategy_id(&strategy.id)
            .description(&description)
            .send()
            .await;
        let started = match started {
            Ok(out) => out,
            Err(error) if error.code() == Some("ConflictException") => {
                let number = self
                    .in_progress(&ids)
                    .await?
                    .map_or(0, |p| p.deployment_number);
                return Err(DeployError::InProgress {
                    number,
                    environment: request.target.environment.clone(),
                });
            }
            Err(error) => return Err(sdk("StartDeployment")(error)),
        };
        let values = lockstep::document::parse(&retrieval(&stamped.content))
            .map(|doc| doc.flags)
            .unwrap_or_default();
        let flags: BTreeMap<String, FlagReport> = stamped
            .flags
            .iter()
            .map(|(name, (change, s))| {
                let drain = stamped.drains.get(name).copied();
                let report = FlagReport {
                    value: values.get(name).is_some_and(|f| f.enabled),
                    change: *change,
                    last_modified_timestamp: s.at,
                    deployment_duration_seconds: s.deployment_duration.as_secs(),
                    consistent_at: consistent_at(Some(*s), false, self.window),
                    journey_opens_at: journey_opens_at(Some(*s), false, self.window),
                    drain_seconds: drain.map(|d| d.as_secs()),
                    drain_ends_at: drain_ends_at(Some(*s), false, drain, self.window),
                };
                (name.clone(), report)
            })
            .collect();
        let this = Stamp {
            at,
            deployment_duration: strategy.duration,
        };
        let changed = || flags.values().filter(|f| f.change != Change::Kept);
        let consistent = changed().filter_map(|f| f.consistent_at).max();
        let journey_opens = changed().filter_map(|f| f.journey_opens_at).max();
        tracing::info!(
            deployment = started.deployment_number(),
            version,
            strategy = %strategy.name,
            delta_s = strategy.duration.as_secs(),
            path = "deployment_started",
            "deployment started"
        );
        Ok(Started {
            resolved: ids,
            deployment_number: started.deployment_number(),
            configuration_version: version,
            version_label: label,
            strategy,
            last_modified_timestamp: DateTime::from_timestamp_millis(this.at.timestamp_millis())
                .unwrap_or(this.at),
            flags,
            consistent_at: consistent,
            journey_opens_at: journey_opens,
            journey_key: stamped.key,
        })
    }

    /// One look at a deployment.
    pub async fn progress(&self, ids: &Resolved, number: i32) -> Result<Progress, DeployError> {
        let got = self
            .client
            .get_deployment()
            .application_id(&ids.application)
            .environment_id(&ids.environment)
            .deployment_number(number)
            .send()
            .await
            .map_err(sdk("GetDeployment"))?;
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
                return Err(DeployError::RolledBack {
                    number: started.deployment_number,
                });
            }
            if done(&progress) {
                return Ok(progress);
            }
            tokio::time::sleep(every).await;
        }
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

    fn check_declared<'a>(
        &self,
        names: impl IntoIterator<Item = &'a String>,
    ) -> Result<(), DeployError> {
        let Some(catalog) = &self.catalog else {
            return Ok(());
        };
        if let Some(unknown) = names.into_iter().find(|n| catalog.get(n).is_none()) {
            return Err(DeployError::UndeclaredFlag {
                name: unknown.clone(),
                declared: catalog
                    .flags()
                    .iter()
                    .map(|f| f.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        Ok(())
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

/// The current Freeform document with `values` set; the stamps are written anew by stamping.
fn with_values(
    current: Option<&[u8]>,
    values: &BTreeMap<String, bool>,
) -> Result<Vec<u8>, DeployError> {
    let mut root = match current {
        None => Map::new(),
        Some(bytes) => match serde_json::from_slice(bytes) {
            Ok(Value::Object(root))
                if !(root.contains_key("version") && root.contains_key("flags")) =>
            {
                root
            }
            Ok(Value::Object(_)) => {
                return Err(DeployError::NotEditable(
                    "it is in the feature-flag format".into(),
                ))
            }
            Ok(_) => return Err(DeployError::NotEditable("not a JSON object".into())),
            Err(e) => return Err(DeployError::NotEditable(format!("not JSON: {e}"))),
        },
    };
    for (name, value) in values {
        root.insert(name.clone(), Value::Bool(*value));
    }
    root.remove(METADATA_KEY);
    Ok(serde_json::to_vec_pretty(&Value::Object(root)).expect("a JSON value serialises"))
}

/// Stored feature-flag content in the retrieval form the library reads; Freeform as it is.
fn retrieval(content: &[u8]) -> Vec<u8> {
    lockstep::stamp::retrieval_form(content).unwrap_or_else(|_| content.to_vec())
}
