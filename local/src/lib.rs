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
//! - [`auth`]: the HTTP API's JWT authorizer as the runner plays it (every feature-x route needs
//!   a bearer token; its claims reach the function as API Gateway passes them), and a local
//!   issuer to sign in with.
//! - Local-only control endpoints under `/local/` (never deployed): `GET /local/fleet`,
//!   `POST /local/instances/{name}/freeze|thaw`, `POST /local/deployments`,
//!   `POST /local/deployments/stop`, `POST /local/auth/sign-in`, `GET /local/auth/jwks.json`.

pub mod appconfig;
pub mod assets;
pub mod auth;
pub mod fleet;
pub mod gateway;

use appconfig::{Deployed, LocalAppConfig};
use axum::body::{to_bytes, Body as AxumBody};
use axum::extract::{Request as AxumRequest, State};
use axum::response::Response as AxumResponse;
use chrono::{DateTime, Utc};
use fleet::{Builder, Fleet, FleetOptions, Function};
use http::{Method, StatusCode};
use lambda_http::Body;
use lockstep::catalog::CatalogError;
use lockstep::durable::SnapshotStore;
use lockstep::{Clock, Overrides, Settings, Window};
use lockstep_cli::deploy::{Changes, DeployError, Request, Strategy};
use lockstep_http::problem::MAX_BODY_BYTES;
use lockstep_http::problem::{json_response, parse_json_body, path_segments, respond, ApiError};
use lockstep_sample::submissions::SubmissionStore;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Environment defaults of a local run (set only when missing): dummy AWS credentials for the
/// SDK clients and P = 15 s.
pub const LOCAL_DEFAULTS: [(&str, &str); 5] = [
    ("AWS_ACCESS_KEY_ID", "local"),
    ("AWS_SECRET_ACCESS_KEY", "local"),
    ("AWS_REGION", "us-east-1"),
    ("AWS_EC2_METADATA_DISABLED", "true"),
    (lockstep::settings::POLL_INTERVAL_VAR, "15"),
];

/// The sample flags a local run deploys first (tracked; never written by a local run: local
/// deployments go to the local AppConfig).
pub const SAMPLE_FLAGS: &str = "local/config/lockstep:local:flags.json";

/// Where a running runner writes its local AppConfig endpoint, for `./scripts/deploy-local`.
pub const ENDPOINT_FILE: &str = ".lockstep/local/appconfig-endpoint";

/// The functions' instances and the local control state.
pub struct Runner {
    fleet: Fleet,
    appconfig: LocalAppConfig,
    window: Window,
    clock: Arc<dyn Clock>,
    deploying: tokio::sync::Mutex<()>,
    auth: auth::LocalAuth,
}

impl Runner {
    /// Builds every function's instances over `appconfig` (each instance its own AppConfigData
    /// session) and `store` (instance 1 of each prefetched before this returns, the others on
    /// their staggered schedule), with a durable last-known-good snapshot when `durable` is
    /// given; fails when `LOCKSTEP_PUBLIC_FLAGS` names an undeclared flag.
    #[allow(clippy::too_many_arguments)]
    pub async fn new(
        appconfig: LocalAppConfig,
        settings: Settings,
        overrides: Overrides,
        clock: Arc<dyn Clock>,
        store: Arc<dyn SubmissionStore>,
        durable: Option<Arc<dyn SnapshotStore>>,
        fleet: FleetOptions,
    ) -> Result<Self, CatalogError> {
        let catalog = lockstep_sample::product::catalog();
        let catalog = match &settings.public_flags {
            Some(names) => catalog.with_public(names)?,
            None => catalog,
        };
        let window = settings.window();
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
        })
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
            Some(&"local") => respond(self.control(&request).await),
            // The JWT authorizer of every feature-x route runs before the function, as in AWS.
            Some(&"feature-x") => match self.auth.authorize(request.headers()) {
                Ok(claims) => {
                    let request = lockstep_sample::auth::with_claims(request, claims);
                    self.fleet.serve(Function::FeatureX, request).await
                }
                Err(refusal) => auth::LocalAuth::refuse(refusal),
            },
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

    /// The local-only control endpoints.
    async fn control(
        &self,
        request: &lambda_http::Request,
    ) -> Result<lambda_http::Response<Body>, ApiError> {
        // DNS rebinding: a page of another site whose name resolves to 127.0.0.1 reaches the
        // runner with its own name in `Host` (and a matching `Origin`). Every control route,
        // reads included, answers only to a loopback name.
        loopback_host(request)?;
        let segments = path_segments(request);
        let post_only = || {
            if request.method() != Method::POST {
                return Err(ApiError::MethodNotAllowed { allowed: &["POST"] });
            }
            same_origin(request)
        };
        match segments.as_slice() {
            ["local", "fleet"] => {
                if request.method() != Method::GET {
                    return Err(ApiError::MethodNotAllowed { allowed: &["GET"] });
                }
                let body = FleetBody {
                    server_time: self.clock.now(),
                    poll_interval_seconds: self.window.poll_interval.as_secs(),
                    catch_up_interval_seconds: lockstep::CATCH_UP_INTERVAL.as_secs(),
                    epsilon_seconds: self.window.epsilon.as_secs_f64(),
                    functions: self.fleet.view(),
                    deployed: self.appconfig.deployed(self.window).await,
                    strategies: self.appconfig.strategies().await,
                };
                Ok(json_response(StatusCode::OK, &body))
            }
            ["local", "instances", name, action @ ("freeze" | "thaw")] => {
                post_only()?;
                let instance = self
                    .fleet
                    .set_frozen(name, *action == "freeze")
                    .ok_or_else(|| ApiError::ResourceNotFound("No such instance.".into()))?;
                Ok(json_response(StatusCode::OK, &instance))
            }
            ["local", "deployments"] => {
                post_only()?;
                let body: DeployBody = parse_json_body(request)?;
                let request = Request {
                    target: appconfig::deploy_target(),
                    changes: Changes::Set(body.flags),
                    strategy: body.strategy,
                    description: Some("local deployment (fleet view)".into()),
                    allow_new_flags: false,
                    drain: body.drain_seconds.map(std::time::Duration::from_secs),
                    rotate_journey_key: false,
                };
                let _one_at_a_time = self.deploying.lock().await;
                let started = self
                    .appconfig
                    .deployer
                    .deploy(&request, || self.clock.now())
                    .await
                    .map_err(deploy_error)?;
                Ok(json_response(StatusCode::CREATED, &started))
            }
            ["local", "auth", "jwks.json"] => {
                if request.method() != Method::GET {
                    return Err(ApiError::MethodNotAllowed { allowed: &["GET"] });
                }
                Ok(json_response(StatusCode::OK, self.auth.jwks()))
            }
            ["local", "auth", "sign-in"] => {
                post_only()?;
                let body: auth::SignIn = parse_json_body(request)?;
                let user = lockstep_sample::submissions::Ident::parse("user", &body.user)
                    .map_err(|invalid| ApiError::BadRequest(invalid.0))?;
                tracing::info!(path = "local_sign_in", "local issuer signed a token");
                let signed = auth::SignedIn {
                    access_token: self.auth.issue(user.as_str()),
                    token_type: "Bearer",
                    expires_in: auth::TOKEN_LIFETIME.as_secs(),
                    user: user.as_str().to_owned(),
                };
                Ok(json_response(StatusCode::OK, &signed))
            }
            ["local", "deployments", "stop"] => {
                post_only()?;
                let deployer = &self.appconfig.deployer;
                let ids = self.appconfig.resolved().await.map_err(deploy_error)?;
                let running = deployer
                    .in_progress(&ids)
                    .await
                    .map_err(deploy_error)?
                    .ok_or_else(|| ApiError::Conflict("No deployment is in progress.".into()))?;
                let stopped = deployer
                    .stop(&ids, running.deployment_number)
                    .await
                    .map_err(deploy_error)?;
                tracing::warn!(deployment = stopped.deployment_number, state = %stopped.state, path = "local_deployment_stopped", "local deployment stopped: rolled back");
                Ok(json_response(StatusCode::OK, &stopped))
            }
            _ => Err(ApiError::NotFound),
        }
    }
}

/// `POST /local/deployments`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct DeployBody {
    flags: BTreeMap<String, bool>,
    /// A strategy's name (`GET /local/fleet` lists them); Δ is its duration.
    #[serde(default = "all_at_once")]
    strategy: String,
    /// A drain time for the flags this deployment switches off (rule 9); none: a kill switch.
    #[serde(default)]
    drain_seconds: Option<u64>,
}

fn all_at_once() -> String {
    lockstep_testkit::ministack::LOCAL_STRATEGIES[0]
        .0
        .to_owned()
}

/// `GET /local/fleet`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct FleetBody {
    server_time: DateTime<Utc>,
    poll_interval_seconds: u64,
    /// Q: the catch-up interval of rule 8 (journeys open at `T + Δ + Q + ε`).
    catch_up_interval_seconds: u64,
    epsilon_seconds: f64,
    functions: Vec<fleet::FunctionJson>,
    deployed: Deployed,
    strategies: Vec<Strategy>,
}

/// A refused deployment is told why (400; 409 while another is in progress); a failure of the
/// local AppConfig is logged and answered 500 without its detail.
fn deploy_error(error: DeployError) -> ApiError {
    match &error {
        DeployError::InProgress { .. } => ApiError::Conflict(format!("{error}.")),
        _ if error.is_refusal() => {
            ApiError::BadRequest(format!("{}.", lockstep::error_chain(&error)))
        }
        _ => ApiError::Internal(Box::new(error)),
    }
}

/// The runner listens on 127.0.0.1 only, so a browser that reaches it under another name than
/// `localhost`, `127.0.0.1` or `[::1]` was sent there by DNS (rebinding). A request without
/// `Host` (not a browser's) passes; `Origin` is checked too, by [`same_origin`].
fn loopback_host(request: &lambda_http::Request) -> Result<(), ApiError> {
    let Some(host) = request.headers().get("host") else {
        return Ok(());
    };
    let name = host.to_str().ok().map(|h| match h.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => h,
    });
    match name {
        Some("localhost" | "127.0.0.1" | "[::1]") => Ok(()),
        _ => {
            tracing::warn!(
                path = "control_host_refused",
                "control endpoint refused: Host is not a loopback name"
            );
            Err(ApiError::BadRequest(
                "The local control endpoints answer only to localhost, 127.0.0.1 or [::1].".into(),
            ))
        }
    }
}

/// The control endpoints change state: a page from another origin (which a browser lets POST
/// to localhost) must not drive them.
fn same_origin(request: &lambda_http::Request) -> Result<(), ApiError> {
    let header = |name| {
        request
            .headers()
            .get(name)
            .and_then(|v: &http::HeaderValue| v.to_str().ok())
    };
    match (header("origin"), header("host")) {
        (None, _) => Ok(()),
        (Some(origin), Some(host))
            if origin
                .split_once("://")
                .is_some_and(|(_, authority)| authority == host) =>
        {
            Ok(())
        }
        _ => Err(ApiError::BadRequest(
            "The local control endpoints accept requests from the runner's own pages only.".into(),
        )),
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
