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
//! 5. Report each flag's change and `consistentAt = T + Δ + P + ε` for the given P and ε. When
//!    AppConfig says an extension ran on the deployment (`AppliedExtensions`: Lockstep's stamping
//!    extension stamps the content again, at its own, later T), T of the flags this deployment
//!    changes is reported as the clock read once `StartDeployment` returned: `PRE_START_DEPLOYMENT`
//!    actions run inside that call, so the extension's T is no later, and nothing reported
//!    (`consistentAt`, `journeyOpensAt`, `drainEndsAt`, `--wait`) is earlier than the truth.
//!
//! [`Deployer::wait`] then follows the deployment (state, percentage, time to `consistentAt`)
//! until every changed flag is consistent, and fails on `ROLLED_BACK` (or `REVERTED`) with who
//! rolled it back, read from the deployment's event log ([`Rollback`]: which alarm, or a user).

mod control;
mod edit;
mod error;
mod report;
mod rollback;

pub use control::{Progress, Resolved, Strategy};
pub use edit::{parse_ramp, parse_share, RampTo};
pub use error::DeployError;
pub use report::{FlagReport, Started};
pub use rollback::{Cause, Event, Rollback};

use aws_sdk_appconfig::error::ProvideErrorMetadata;
use aws_sdk_appconfig::primitives::Blob;
use aws_sdk_appconfig::Client;
use chrono::{DateTime, Utc};
use error::sdk;
use lockstep::catalog::FlagCatalog;
use lockstep::consistency::Window;
use lockstep::stamp::{stamp_with, StampOptions};
use report::Report;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

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
    /// Set the share of users served `true` by each named flag's split (basis points: 2500 is
    /// 25 %) in the content deployed now (Freeform, a flag defined by rules with one two-variant
    /// boolean split); everything else is kept. Widening keeps the users already in, and they
    /// stay consistent (design rule 10).
    Split(BTreeMap<String, u32>),
    /// Start a ramp on each named flag's split (as for `Split`): its `true` share grows from
    /// now's to the given one over the given time, starting when every instance holds the
    /// deployment (`T + Δ + P + ε`); each user enters at their own instant.
    Ramp(BTreeMap<String, RampTo>),
    /// Hold each named flag's ramp: its split set to the share the ramp reaches when every
    /// instance holds the deployment, rounded up (nobody the ramp let in is dropped).
    Hold(BTreeSet<String>),
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

    /// Stamps and starts one deployment (see the module's steps); `now` gives T and is read
    /// after every read of AppConfig.
    pub async fn deploy(
        &self,
        request: &Request,
        now: impl Fn() -> DateTime<Utc>,
    ) -> Result<Started, DeployError> {
        match &request.changes {
            Changes::Set(flags) if flags.is_empty() => return Err(DeployError::NothingToDeploy),
            Changes::Split(shares) if shares.is_empty() => {
                return Err(DeployError::NothingToDeploy)
            }
            Changes::Ramp(ramps) if ramps.is_empty() => return Err(DeployError::NothingToDeploy),
            Changes::Hold(names) if names.is_empty() => return Err(DeployError::NothingToDeploy),
            Changes::Set(flags) => self.check_declared(flags.keys())?,
            Changes::Split(shares) => self.check_declared(shares.keys())?,
            Changes::Ramp(ramps) => self.check_declared(ramps.keys())?,
            Changes::Hold(names) => self.check_declared(names.iter())?,
            Changes::Content(_) => {}
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
        // T after the reads: the deployment starts right after it.
        let at = now();
        // When every instance holds this deployment: a ramp starts, a hold holds.
        let everywhere = lockstep::consistency::consistent_at(
            Some(lockstep::Stamp {
                at,
                deployment_duration: strategy.duration,
            }),
            false,
            self.window,
        )
        .unwrap_or(at);
        let next = match &request.changes {
            Changes::Set(flags) => edit::with_values(previous.as_deref(), flags)?,
            Changes::Split(shares) => edit::with_split(previous.as_deref(), shares)?,
            Changes::Ramp(ramps) => edit::with_ramp(previous.as_deref(), ramps, everywhere)?,
            Changes::Hold(names) => edit::with_hold(previous.as_deref(), names, everywhere)?,
            Changes::Content(content) => content.clone(),
        };
        let options = StampOptions {
            drain: request.drain,
            rotate_key: request.rotate_journey_key,
            ..StampOptions::default()
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
        // PRE_START_DEPLOYMENT extensions run inside StartDeployment: T of what an extension
        // stamped is no later than now.
        let returned = now();
        let restamped = !started.applied_extensions().is_empty();
        let report = Report::of(
            &stamped,
            at,
            strategy.duration,
            self.window,
            restamped.then_some(returned),
        );
        tracing::info!(
            deployment = started.deployment_number(),
            version,
            strategy = %strategy.name,
            delta_s = strategy.duration.as_secs(),
            restamped,
            path = "deployment_started",
            "deployment started"
        );
        Ok(Started {
            resolved: ids,
            deployment_number: started.deployment_number(),
            configuration_version: version,
            version_label: label,
            strategy,
            last_modified_timestamp: report.at,
            restamped,
            flags: report.flags,
            consistent_at: report.consistent_at,
            journey_opens_at: report.journey_opens_at,
            journey_key: stamped.key,
        })
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

/// Stored feature-flag content in the retrieval form the library reads; Freeform as it is.
fn retrieval(content: &[u8]) -> Vec<u8> {
    lockstep::stamp::retrieval_form(content).unwrap_or_else(|_| content.to_vec())
}
