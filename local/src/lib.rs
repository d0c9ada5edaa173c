//! The local runner: the functions' handlers on localhost, on the routes of template.yaml, flags
//! from a local directory (AppConfig Agent naming), submissions in DynamoDB Local.
//!
//! - [`fleet`]: each function runs as N simulated instances, each with its own flag cache
//!   (staggered cold starts, round robin, freeze and thaw), as Lambda runs execution environments.
//! - [`deploy`]: simulated deployments on the flags file, through the stamping code.
//! - [`assets`]: the SPA (`web/`) at `/` and the fleet view at `/fleet`.
//! - Local-only control endpoints under `/local/` (never deployed): `GET /local/fleet`,
//!   `POST /local/instances/{name}/freeze|thaw`, `POST /local/deployments`.

pub mod assets;
pub mod deploy;
pub mod fleet;

use axum::body::{to_bytes, Body as AxumBody};
use axum::extract::{Request as AxumRequest, State};
use axum::response::Response as AxumResponse;
use chrono::{DateTime, Utc};
use deploy::{DeployError, DeployRequest};
use fleet::{Builder, Fleet, FleetOptions, Function};
use http::{Method, StatusCode};
use lambda_http::{Body, RequestExt};
use lockstep::catalog::CatalogError;
use lockstep::durable::SnapshotStore;
use lockstep::{Clock, FlagCatalog, Overrides, Settings, Window};
use lockstep_http::problem::MAX_BODY_BYTES;
use lockstep_http::problem::{json_response, parse_json_body, path_segments, respond, ApiError};
use lockstep_sample::submissions::SubmissionStore;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Environment defaults of a local run (set only when missing): dummy AWS credentials for the
/// SDK clients and P = 15 s.
pub const LOCAL_DEFAULTS: [(&str, &str); 5] = [
    ("AWS_ACCESS_KEY_ID", "local"),
    ("AWS_SECRET_ACCESS_KEY", "local"),
    ("AWS_REGION", "us-east-1"),
    ("AWS_EC2_METADATA_DISABLED", "true"),
    (lockstep::settings::POLL_INTERVAL_VAR, "15"),
];

/// The tracked sample flags (never written by a local run).
pub const SAMPLE_DIR: &str = "local/config";

/// Where local deployments write by default: an ignored directory, seeded from [`SAMPLE_DIR`],
/// so that a deployment never dirties the work tree.
pub const STATE_DIR: &str = ".lockstep/local/config";

/// The flags directory of a local run: `LOCKSTEP_LOCAL_DIR` when set (used as it is), else
/// [`STATE_DIR`] under `root`, seeded with the sample flags file when it has none yet.
pub fn flags_dir(root: &Path) -> std::io::Result<PathBuf> {
    flags_dir_with(root, std::env::var_os(lockstep::init::LOCAL_DIR_VAR))
}

fn flags_dir_with(root: &Path, configured: Option<std::ffi::OsString>) -> std::io::Result<PathBuf> {
    if let Some(dir) = configured.filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    let dir = root.join(STATE_DIR);
    let file = deploy::flags_file(&dir);
    if !file.exists() {
        std::fs::create_dir_all(&dir)?;
        let sample = deploy::flags_file(&root.join(SAMPLE_DIR));
        std::fs::copy(&sample, &file)?;
        tracing::info!(from = %sample.display(), to = %file.display(), path = "local_state_seeded", "local flags seeded from the sample");
    }
    Ok(dir)
}

/// The functions' instances and the local control state.
pub struct Runner {
    fleet: Fleet,
    flags_dir: PathBuf,
    catalog: FlagCatalog,
    window: Window,
    clock: Arc<dyn Clock>,
    deploying: tokio::sync::Mutex<()>,
}

impl Runner {
    /// Builds every function's instances over `flags_dir` and `store` (instance 1 of each
    /// prefetched before this returns, the others on their staggered schedule), with a durable
    /// last-known-good snapshot when `durable` is given; fails when `LOCKSTEP_PUBLIC_FLAGS` names
    /// an undeclared flag.
    #[allow(clippy::too_many_arguments)]
    pub async fn new(
        flags_dir: &Path,
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
        let builder = Arc::new(Builder {
            flags_dir: flags_dir.to_path_buf(),
            catalog: catalog.clone(),
            overrides,
            settings,
            clock: clock.clone(),
            store,
            durable,
        });
        Ok(Self {
            fleet: Fleet::start(builder, fleet).await,
            flags_dir: flags_dir.to_path_buf(),
            catalog,
            window,
            clock,
            deploying: tokio::sync::Mutex::new(()),
        })
    }

    /// The instances.
    pub fn fleet(&self) -> &Fleet {
        &self.fleet
    }

    /// Serves one request: a static file, a local control endpoint, or a function's route on
    /// one of its instances (as API Gateway would hand it to Lambda).
    pub async fn serve(&self, request: lambda_http::Request) -> lambda_http::Response<Body> {
        if let Some(asset) = assets::find(request.uri().path()) {
            return assets::respond(asset, request.method());
        }
        match path_segments(&request).first() {
            Some(&"local") => respond(self.control(&request).await),
            Some(&"feature-x") => self.fleet.serve(Function::FeatureX, request).await,
            _ => self.fleet.serve(Function::Config, request).await,
        }
    }

    /// The local-only control endpoints.
    async fn control(
        &self,
        request: &lambda_http::Request,
    ) -> Result<lambda_http::Response<Body>, ApiError> {
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
                    epsilon_seconds: self.window.epsilon.as_secs_f64(),
                    functions: self.fleet.view(),
                    deployed: deploy::current(&self.flags_dir, self.window).await,
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
                let request = DeployRequest::new(
                    body.flags,
                    Duration::from_secs(body.duration_seconds),
                    &self.catalog,
                )
                .map_err(deploy_error)?;
                let _one_at_a_time = self.deploying.lock().await;
                let deployment =
                    deploy::deploy(&self.flags_dir, &request, self.clock.now(), self.window)
                        .map_err(deploy_error)?;
                Ok(json_response(StatusCode::CREATED, &deployment))
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
    #[serde(default)]
    duration_seconds: u64,
}

/// `GET /local/fleet`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct FleetBody {
    server_time: DateTime<Utc>,
    poll_interval_seconds: u64,
    epsilon_seconds: f64,
    functions: Vec<fleet::FunctionJson>,
    deployed: deploy::Current,
}

/// A refused request is told why; a fault of the machine (a file it cannot read or edit) is
/// logged with its path and answered 500 without it.
fn deploy_error(error: DeployError) -> ApiError {
    if error.is_bad_request() {
        ApiError::BadRequest(format!("{}.", lockstep::error_chain(&error)))
    } else {
        ApiError::Internal(Box::new(error))
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

/// The HTTP router: every path goes through [`Runner::serve`].
pub fn router(runner: Arc<Runner>) -> axum::Router {
    axum::Router::new().fallback(handle).with_state(runner)
}

async fn handle(State(runner): State<Arc<Runner>>, request: AxumRequest) -> AxumResponse {
    let response = match to_lambda(request).await {
        Ok(request) => runner.serve(request).await,
        Err(error) => error.into_response(),
    };
    from_lambda(response)
}

/// An HTTP request as an API Gateway (payload v2) request: body as text when UTF-8, query string
/// parameters parsed.
pub async fn to_lambda(request: AxumRequest) -> Result<lambda_http::Request, ApiError> {
    let (parts, body) = request.into_parts();
    let bytes = to_bytes(body, MAX_BODY_BYTES + 1)
        .await
        .map_err(|_| ApiError::PayloadTooLarge)?;
    let body = if bytes.is_empty() {
        Body::Empty
    } else {
        match String::from_utf8(bytes.to_vec()) {
            Ok(text) => Body::Text(text),
            Err(e) => Body::Binary(e.into_bytes()),
        }
    };
    let query = parts.uri.query().unwrap_or("").to_owned();
    let request = lambda_http::Request::from_parts(parts, body);
    Ok(
        match query.parse::<lambda_http::aws_lambda_events::query_map::QueryMap>() {
            Ok(map) if !query.is_empty() => request.with_query_string_parameters(map),
            _ => request,
        },
    )
}

fn from_lambda(response: lambda_http::Response<Body>) -> AxumResponse {
    let (parts, body) = response.into_parts();
    let body = match body {
        Body::Empty => AxumBody::empty(),
        Body::Text(text) => AxumBody::from(text),
        Body::Binary(bytes) => AxumBody::from(bytes),
        _ => AxumBody::empty(),
    };
    AxumResponse::from_parts(parts, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_local_deployment_writes_the_seeded_state_and_never_the_tracked_sample() {
        let root = std::env::temp_dir().join(format!("lockstep-state-{}", std::process::id()));
        let sample_dir = root.join(SAMPLE_DIR);
        std::fs::create_dir_all(&sample_dir).unwrap();
        let sample = sample_dir.join("lockstep:local:flags.json");
        std::fs::write(&sample, br#"{"isFeatureXEnabled": false}"#).unwrap();

        let dir = flags_dir_with(&root, None).unwrap();
        let request = DeployRequest::new(
            BTreeMap::from([("isFeatureXEnabled".to_owned(), true)]),
            Duration::ZERO,
            &lockstep_sample::product::catalog(),
        )
        .unwrap();
        deploy::deploy(
            &dir,
            &request,
            chrono::Utc::now(),
            Settings::default().window(),
        )
        .unwrap();

        assert_eq!(dir, root.join(STATE_DIR));
        assert_eq!(
            std::fs::read(&sample).unwrap(),
            br#"{"isFeatureXEnabled": false}"#,
            "the tracked sample is untouched"
        );
        let state = std::fs::read_to_string(deploy::flags_file(&dir)).unwrap();
        assert!(state.contains(r#""isFeatureXEnabled": true"#), "{state}");
        let again = flags_dir_with(&root, None).unwrap();
        let kept = std::fs::read_to_string(deploy::flags_file(&again)).unwrap();
        assert_eq!(kept, state, "an existing state is not seeded again");
        let configured = flags_dir_with(&root, Some("/somewhere/else".into())).unwrap();
        assert_eq!(configured, PathBuf::from("/somewhere/else"));
        std::fs::remove_dir_all(&root).unwrap();
    }
}
