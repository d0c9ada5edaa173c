//! The runner's local-only control endpoints under `/local/` (never deployed): what each path
//! is, which method it answers, the guards every one of them passes (a loopback `Host`; for the
//! ones that change state, a same-origin `Origin`), and one handler per endpoint.
//!
//! | path | method | handler |
//! | --- | --- | --- |
//! | `/local/fleet` | GET | [`fleet`]: the instances, what is deployed, the strategies, the alarms |
//! | `/local/metrics?after={ms}` | GET | [`metrics`]: the EMF documents the instances wrote after a timestamp |
//! | `/local/instances/{name}/freeze`, `…/thaw` | POST | [`freeze`] |
//! | `/local/deployments` | POST | [`deploy`]: a deployment through `lockstep deploy`'s code (`flags` to set, or a whole `content`) |
//! | `/local/deployments/stop` | POST | [`stop`]: rolls the deployment in progress back |
//! | `/local/auth/jwks.json` | GET | [`jwks`]: the local issuer's public keys |
//! | `/local/auth/sign-in` | POST | [`sign_in`]: a bearer token from the local issuer |
//! | `/local/probe` | POST | [`crate::probe`]: what one flag answers one user, deployed and per instance |

use crate::alarms::watch::AlarmStatus;
use crate::{appconfig, auth, fleet, Runner};
use appconfig::Deployed;
use chrono::{DateTime, Utc};
use http::{Method, StatusCode};
use lambda_http::{Body, Request, RequestExt, Response};
use lockstep_cli::deploy::{Changes, DeployError, Strategy};
use lockstep_http::problem::{json_response, parse_json_body, path_segments, ApiError};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One control endpoint, as its path names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Endpoint<'a> {
    Fleet,
    Metrics,
    Freeze { instance: &'a str, frozen: bool },
    Deploy,
    Stop,
    Jwks,
    SignIn,
    Probe,
}

impl<'a> Endpoint<'a> {
    /// The endpoint at `segments` (the path split on `/`), if any.
    fn parse(segments: &[&'a str]) -> Option<Self> {
        Some(match segments {
            ["local", "fleet"] => Endpoint::Fleet,
            ["local", "metrics"] => Endpoint::Metrics,
            ["local", "instances", instance, action @ ("freeze" | "thaw")] => Endpoint::Freeze {
                instance,
                frozen: *action == "freeze",
            },
            ["local", "deployments"] => Endpoint::Deploy,
            ["local", "deployments", "stop"] => Endpoint::Stop,
            ["local", "auth", "jwks.json"] => Endpoint::Jwks,
            ["local", "auth", "sign-in"] => Endpoint::SignIn,
            ["local", "probe"] => Endpoint::Probe,
            _ => return None,
        })
    }

    /// Reads answer GET; everything that changes state (or signs a token) answers POST, and
    /// only to the runner's own pages.
    fn reads(self) -> bool {
        matches!(self, Endpoint::Fleet | Endpoint::Metrics | Endpoint::Jwks)
    }
}

/// Answers one request under `/local/`.
pub(crate) async fn serve(runner: &Runner, request: &Request) -> Result<Response<Body>, ApiError> {
    // DNS rebinding: a page of another site whose name resolves to 127.0.0.1 reaches the
    // runner with its own name in `Host` (and a matching `Origin`). Every control route,
    // reads included, answers only to a loopback name.
    loopback_host(request)?;
    let segments = path_segments(request);
    let endpoint = Endpoint::parse(&segments).ok_or(ApiError::NotFound)?;
    let (method, allowed): (Method, &'static [&'static str]) = if endpoint.reads() {
        (Method::GET, &["GET"])
    } else {
        (Method::POST, &["POST"])
    };
    if request.method() != method {
        return Err(ApiError::MethodNotAllowed { allowed });
    }
    if !endpoint.reads() {
        same_origin(request)?;
    }
    match endpoint {
        Endpoint::Fleet => fleet(runner).await,
        Endpoint::Metrics => metrics(runner, request),
        Endpoint::Freeze { instance, frozen } => freeze(runner, instance, frozen),
        Endpoint::Deploy => deploy(runner, request).await,
        Endpoint::Stop => stop(runner).await,
        Endpoint::Jwks => Ok(json_response(StatusCode::OK, runner.auth.jwks())),
        Endpoint::SignIn => sign_in(runner, request),
        Endpoint::Probe => crate::probe::probe(runner, request).await,
    }
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
    /// The template's alarms as the runner's alarm loop last set them.
    alarms: Vec<AlarmStatus>,
}

async fn fleet(runner: &Runner) -> Result<Response<Body>, ApiError> {
    let body = FleetBody {
        server_time: runner.clock.now(),
        poll_interval_seconds: runner.window.poll_interval.as_secs(),
        catch_up_interval_seconds: lockstep::CATCH_UP_INTERVAL.as_secs(),
        epsilon_seconds: runner.window.epsilon.as_secs_f64(),
        functions: runner.fleet.view(),
        deployed: runner.appconfig.deployed(runner.window).await,
        strategies: runner.appconfig.strategies().await,
        alarms: runner.alarms.statuses(),
    };
    Ok(json_response(StatusCode::OK, &body))
}

/// `GET /local/metrics?after={ms}`: the EMF documents the instances wrote after `after` (Unix
/// milliseconds; all kept ones without it), oldest first.
fn metrics(runner: &Runner, request: &Request) -> Result<Response<Body>, ApiError> {
    let after = match request
        .query_string_parameters_ref()
        .and_then(|q| q.first("after"))
    {
        None => i64::MIN,
        Some(value) => value.parse().map_err(|_| {
            ApiError::BadRequest("after must be a whole number of Unix milliseconds.".into())
        })?,
    };
    Ok(json_response(
        StatusCode::OK,
        &runner.fleet.metrics().since(after),
    ))
}

/// `POST /local/instances/{name}/freeze|thaw`.
fn freeze(runner: &Runner, instance: &str, frozen: bool) -> Result<Response<Body>, ApiError> {
    let instance = runner
        .fleet
        .set_frozen(instance, frozen)
        .ok_or_else(|| ApiError::ResourceNotFound("No such instance.".into()))?;
    Ok(json_response(StatusCode::OK, &instance))
}

/// `POST /local/deployments`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct DeployBody {
    /// Flags to set in the deployed content (`lockstep deploy --set`)…
    #[serde(default)]
    flags: Option<BTreeMap<String, bool>>,
    /// …or a whole document to deploy instead (`lockstep deploy --content`): flags defined by
    /// rules (docs/targeting.md) are deployed this way.
    #[serde(default)]
    content: Option<serde_json::Value>,
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

async fn deploy(runner: &Runner, request: &Request) -> Result<Response<Body>, ApiError> {
    let body: DeployBody = parse_json_body(request)?;
    let changes = match (body.flags, body.content) {
        (Some(flags), None) => Changes::Set(flags),
        (None, Some(content)) => Changes::Content(content.to_string().into_bytes()),
        _ => {
            return Err(ApiError::BadRequest(
                "Give either \"flags\" or \"content\".".into(),
            ))
        }
    };
    let request = lockstep_cli::deploy::Request {
        target: appconfig::target(),
        changes,
        strategy: body.strategy,
        description: Some("local deployment (fleet view)".into()),
        allow_new_flags: false,
        drain: body.drain_seconds.map(std::time::Duration::from_secs),
        rotate_journey_key: false,
    };
    let _one_at_a_time = runner.deploying.lock().await;
    let started = runner
        .appconfig
        .deployer
        .deploy(&request, || runner.clock.now())
        .await
        .map_err(deploy_error)?;
    Ok(json_response(StatusCode::CREATED, &started))
}

/// `POST /local/deployments/stop`.
async fn stop(runner: &Runner) -> Result<Response<Body>, ApiError> {
    let deployer = &runner.appconfig.deployer;
    let ids = runner.appconfig.resolved().await.map_err(deploy_error)?;
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

/// `POST /local/auth/sign-in`.
fn sign_in(runner: &Runner, request: &Request) -> Result<Response<Body>, ApiError> {
    let body: auth::SignIn = parse_json_body(request)?;
    let user = lockstep_sample::submissions::Ident::parse("user", &body.user)
        .map_err(|invalid| ApiError::BadRequest(invalid.0))?;
    tracing::info!(path = "local_sign_in", "local issuer signed a token");
    let signed = auth::SignedIn {
        access_token: runner.auth.issue(user.as_str()),
        token_type: "Bearer",
        expires_in: auth::TOKEN_LIFETIME.as_secs(),
        user: user.as_str().to_owned(),
    };
    Ok(json_response(StatusCode::OK, &signed))
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
fn loopback_host(request: &Request) -> Result<(), ApiError> {
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
fn same_origin(request: &Request) -> Result<(), ApiError> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(path: &str) -> Option<Endpoint<'_>> {
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        // The segments borrow `path`, not the vector.
        Endpoint::parse(&segments)
    }

    #[test]
    fn every_control_path_names_its_endpoint_and_nothing_else_does() {
        assert_eq!(parse("/local/fleet"), Some(Endpoint::Fleet));
        assert_eq!(parse("/local/metrics"), Some(Endpoint::Metrics));
        assert_eq!(
            parse("/local/instances/config-2/freeze"),
            Some(Endpoint::Freeze {
                instance: "config-2",
                frozen: true
            })
        );
        assert_eq!(
            parse("/local/instances/config-2/thaw"),
            Some(Endpoint::Freeze {
                instance: "config-2",
                frozen: false
            })
        );
        assert_eq!(parse("/local/deployments"), Some(Endpoint::Deploy));
        assert_eq!(parse("/local/deployments/stop"), Some(Endpoint::Stop));
        assert_eq!(parse("/local/auth/jwks.json"), Some(Endpoint::Jwks));
        assert_eq!(parse("/local/auth/sign-in"), Some(Endpoint::SignIn));
        for other in [
            "/local",
            "/local/instances/config-2/reboot",
            "/local/instances/freeze",
            "/local/deployments/stop/now",
            "/local/auth",
        ] {
            assert_eq!(parse(other), None, "{other}");
        }
    }

    #[test]
    fn only_the_fleet_the_metrics_and_the_keys_are_reads() {
        let reads: Vec<_> = [
            "/local/fleet",
            "/local/metrics",
            "/local/auth/jwks.json",
            "/local/instances/a/freeze",
            "/local/deployments",
            "/local/deployments/stop",
            "/local/auth/sign-in",
        ]
        .into_iter()
        .filter(|path| parse(path).unwrap().reads())
        .collect();

        assert_eq!(
            reads,
            ["/local/fleet", "/local/metrics", "/local/auth/jwks.json"]
        );
    }
}
