//! The local runner: the functions' handlers on localhost, on the routes of template.yaml, flags
//! from the local AppConfig (ministack) through the real SDK clients, submissions in DynamoDB
//! Local.
//!
//! - [`fleet`]: each function runs as N simulated instances, each with its own flag cache and
//!   AppConfigData session (staggered cold starts, round robin, freeze and thaw), as Lambda runs
//!   execution environments.
//! - [`appconfig`]: what is deployed, and deployments through `lockstep deploy`'s code.
//! - [`assets`]: the SPA (`web/`) at `/` and the fleet view at `/fleet`.
//! - [`gateway`]: the HTTP API's payload 2.0 as the runner plays it (what reaches a function,
//!   what reaches the client).
//! - [`metrics_log`]: the EMF documents the instances write, one per invocation (rule 11).
//! - [`auth`]: the HTTP API's JWT authorizer as the runner plays it (every feature-x route needs
//!   a bearer token; its claims reach the function as API Gateway passes them), and a local
//!   issuer to sign in with.
//! - [`start`]: a local run from start to stop (the binary's `main` parses the command line and
//!   calls it).
//! - [`alarms`]: the template's own deployment alarms (read from `template.yaml`), evaluated on
//!   the EMF documents the instances emit ([`Runner::check_alarms`]), their states pushed to the
//!   local CloudWatch, whose AppConfig monitors roll a deployment back.
//! - `control`: the local-only control endpoints under `/local/` (never deployed):
//!   `GET /local/fleet`, `GET /local/metrics`, `POST /local/instances/{name}/freeze|thaw`,
//!   `POST /local/deployments`,
//!   `POST /local/deployments/stop`, `POST /local/auth/sign-in`, `GET /local/auth/jwks.json`.

pub mod alarms;
pub mod appconfig;
pub mod assets;
pub mod auth;
mod control;
pub mod fleet;
pub mod gateway;
pub mod metrics_log;
mod probe;
pub mod routes;
pub mod start;

use alarms::watch::{AlarmStatus, AlarmWatch};
use appconfig::LocalAppConfig;
use axum::body::{to_bytes, Body as AxumBody};
use axum::extract::{Request as AxumRequest, State};
use axum::response::Response as AxumResponse;
use fleet::{Builder, Fleet, FleetOptions, Function};
use lambda_http::Body;
use lockstep::catalog::CatalogError;
use lockstep::durable::SnapshotStore;
use lockstep::{Clock, Overrides, Settings, Window};
use lockstep_http::problem::MAX_BODY_BYTES;
use lockstep_http::problem::{path_segments, respond, ApiError};
use lockstep_sample::submissions::SubmissionStore;
use std::sync::Arc;
use thiserror::Error;

/// The functions' instances and the local control state.
pub struct Runner {
    fleet: Fleet,
    appconfig: LocalAppConfig,
    window: Window,
    clock: Arc<dyn Clock>,
    deploying: tokio::sync::Mutex<()>,
    auth: auth::LocalAuth,
    alarms: AlarmWatch,
}

/// Why a runner could not be built.
#[derive(Debug, Error)]
pub enum RunnerError {
    /// `LOCKSTEP_PUBLIC_FLAGS` names an undeclared flag.
    #[error("bad public flags")]
    Catalog(#[from] CatalogError),
    /// The template's alarms cannot be read (a test of `alarms` fails too).
    #[error("cannot read the template's alarms")]
    Template(#[from] alarms::TemplateError),
    /// The local AppConfig does not have the runner's application and environment.
    #[error("cannot find the local AppConfig environment")]
    Environment(#[from] lockstep_cli::deploy::DeployError),
    /// The alarms could not be created in the local CloudWatch or made monitors.
    #[error("cannot install the template's alarms in the local CloudWatch")]
    Alarms(#[from] alarms::cloudwatch::CloudWatchError),
}

impl Runner {
    /// Builds every function's instances over `appconfig` (each instance its own AppConfigData
    /// session) and `store` (instance 1 of each prefetched before this returns, the others on
    /// their staggered schedule), with a durable last-known-good snapshot when `durable` is
    /// given, and installs the template's alarms in the local CloudWatch as the environment's
    /// monitors; fails when `LOCKSTEP_PUBLIC_FLAGS` names an undeclared flag or the alarms
    /// cannot be installed.
    #[allow(clippy::too_many_arguments)]
    pub async fn new(
        appconfig: LocalAppConfig,
        settings: Settings,
        overrides: Overrides,
        clock: Arc<dyn Clock>,
        store: Arc<dyn SubmissionStore>,
        durable: Option<Arc<dyn SnapshotStore>>,
        fleet: FleetOptions,
    ) -> Result<Self, RunnerError> {
        let catalog = lockstep_sample::product::catalog();
        let catalog = match &settings.public_flags {
            Some(names) => catalog.with_public(names)?,
            None => catalog,
        };
        let window = settings.window();
        let alarms = AlarmWatch::install(
            alarms::template_alarms()?,
            alarms::watch::runner_functions(),
            appconfig.cloudwatch.clone(),
            appconfig.deployer.client(),
            &appconfig.resolved().await?,
            clock.now(),
        )
        .await?;
        // A fresh key pair per run (tokens of an earlier run do not verify), made before the
        // fleet starts its staggered cold starts.
        let auth = auth::LocalAuth::generate().expect("AWS-LC generates an RSA key pair");
        let builder = Arc::new(Builder {
            data: appconfig.data.clone(),
            catalog,
            overrides,
            settings,
            clock: clock.clone(),
            store,
            durable,
        });
        Ok(Self {
            fleet: Fleet::start(builder, fleet).await,
            appconfig,
            window,
            clock,
            deploying: tokio::sync::Mutex::new(()),
            auth,
            alarms,
        })
    }

    /// The alarm loop's one step: evaluates every template alarm on the instances' metrics at
    /// the runner's clock and pushes each change of state to the local CloudWatch (where an
    /// `ALARM` rolls the deployment in progress back); returns every alarm's state. The real
    /// runner calls it every few seconds; tests call it when they choose.
    pub async fn check_alarms(&self) -> Vec<AlarmStatus> {
        self.alarms
            .check(self.fleet.metrics(), self.clock.now())
            .await
    }

    /// The template's alarms in the local CloudWatch (ARNs, states as last pushed).
    pub fn alarms(&self) -> &AlarmWatch {
        &self.alarms
    }

    /// The instances.
    pub fn fleet(&self) -> &Fleet {
        &self.fleet
    }

    /// The local issuer and authorizer (tests sign tokens with it).
    pub fn auth(&self) -> &auth::LocalAuth {
        &self.auth
    }

    /// Serves one request: a static file, a local control endpoint, or a function's route on
    /// one of its instances (as API Gateway would hand it to Lambda).
    pub async fn serve(&self, request: lambda_http::Request) -> lambda_http::Response<Body> {
        if let Some(asset) = assets::find(request.uri().path()) {
            return assets::respond(asset, request.method());
        }
        match path_segments(&request).first() {
            Some(&"local") => respond(control::serve(self, &request).await),
            // The JWT authorizer of every feature-x route runs before the function, as in AWS.
            Some(&"feature-x") => match self.auth.authorize(request.headers()) {
                Ok(claims) => {
                    let request = lockstep_sample::auth::with_claims(request, claims);
                    self.fleet.serve(Function::FeatureX, request).await
                }
                Err(refusal) => auth::LocalAuth::refuse(refusal),
            },
            // GET /config/me: the config function behind the authorizer (template.yaml).
            Some(&"config") if path_segments(&request).get(1) == Some(&"me") => {
                match self.auth.authorize(request.headers()) {
                    Ok(claims) => {
                        let request = lockstep_sample::auth::with_claims(request, claims);
                        self.fleet.serve(Function::Config, request).await
                    }
                    Err(refusal) => auth::LocalAuth::refuse(refusal),
                }
            }
            _ => self.fleet.serve(Function::Config, request).await,
        }
    }

    /// An API Gateway event as a function receives it, after the authorizer (the `events/`
    /// fixtures): its own request context, claims included, is kept; no bearer token is checked.
    pub async fn serve_event(&self, request: lambda_http::Request) -> lambda_http::Response<Body> {
        match path_segments(&request).first() {
            Some(&"feature-x") => self.fleet.serve(Function::FeatureX, request).await,
            _ => self.fleet.serve(Function::Config, request).await,
        }
    }
}

/// The HTTP router: every path goes through [`Runner::serve`]; a panic answers 500
/// problem+json (the functions' last-resort layer) instead of dropping the connection.
pub fn router(runner: Arc<Runner>) -> axum::Router {
    axum::Router::new()
        .fallback(handle)
        .with_state(runner)
        .layer(lockstep_http::CatchPanicLayer)
}

async fn handle(State(runner): State<Arc<Runner>>, request: AxumRequest) -> AxumResponse {
    let response = match to_lambda(request).await {
        Ok(request) => runner.serve(request).await,
        Err(error) => error.into_response(),
    };
    from_lambda(response)
}

/// An HTTP request as the function receives it behind API Gateway: the payload 2.0 event API
/// Gateway would send, read by `lambda_http` ([`gateway`]). 413 past the body limit; 400 for a
/// `Host` that is not a host name or a target that is not a path.
pub async fn to_lambda(request: AxumRequest) -> Result<lambda_http::Request, ApiError> {
    let (parts, body) = request.into_parts();
    let bytes = to_bytes(body, MAX_BODY_BYTES + 1)
        .await
        .map_err(|_| ApiError::PayloadTooLarge)?;
    gateway::request(&parts, &bytes).map_err(|error| match error {
        gateway::GatewayError::BadHost | gateway::GatewayError::NotAPath => {
            ApiError::BadRequest(format!("{error}."))
        }
        gateway::GatewayError::Event(_) => ApiError::Internal(Box::new(error)),
    })
}

/// A function's response as API Gateway writes it out ([`gateway::response`]).
fn from_lambda(response: lambda_http::Response<Body>) -> AxumResponse {
    let (parts, body) = gateway::response(response).into_parts();
    let body = match body {
        Body::Empty => AxumBody::empty(),
        Body::Text(text) => AxumBody::from(text),
        Body::Binary(bytes) => AxumBody::from(bytes),
        _ => AxumBody::empty(),
    };
    AxumResponse::from_parts(parts, body)
}
