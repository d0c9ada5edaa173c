//! The local runner: the functions' handlers on localhost, on the routes of template.yaml, each
//! function with its own flag cache (as separate Lambda functions have), flags from a local
//! directory (AppConfig Agent naming), submissions in DynamoDB Local.

use axum::body::{to_bytes, Body as AxumBody};
use axum::extract::{Request as AxumRequest, State};
use axum::response::Response as AxumResponse;
use lambda_http::{Body, RequestExt};
use lockstep::cache::CacheOptions;
use lockstep::catalog::CatalogError;
use lockstep::feature_x::FeatureX;
use lockstep::http::{ApiError, MAX_BODY_BYTES};
use lockstep::local::LocalDirSource;
use lockstep::submissions::SubmissionStore;
use lockstep::{Clock, FlagCache, Overrides, Settings};
use std::path::Path;
use std::sync::Arc;

/// The two functions' state.
pub struct Runner {
    /// The config function's cache.
    pub config: Arc<FlagCache>,
    /// The feature-x function.
    pub feature_x: FeatureX,
}

impl Runner {
    /// Builds both functions over `flags_dir` and `store`, each with its own cache (prefetched);
    /// fails when `LOCKSTEP_PUBLIC_FLAGS` names an undeclared flag.
    pub async fn new(
        flags_dir: &Path,
        settings: Settings,
        overrides: Overrides,
        clock: Arc<dyn Clock>,
        store: Arc<dyn SubmissionStore>,
    ) -> Result<Self, CatalogError> {
        let catalog = lockstep::product::catalog();
        let catalog = match &settings.public_flags {
            Some(names) => catalog.with_public(names)?,
            None => catalog,
        };
        let cache = || async {
            let source = LocalDirSource::new(flags_dir, lockstep::product::local_target());
            let options = CacheOptions {
                catalog: catalog.clone(),
                overrides: overrides.clone(),
                settings: settings.clone(),
                clock: clock.clone(),
            };
            Arc::new(FlagCache::new(Box::new(source), options).await)
        };
        let config = cache().await;
        let feature_x = FeatureX {
            flags: cache().await,
            store,
            clock: clock.clone(),
        };
        Ok(Self { config, feature_x })
    }

    /// Serves one request as API Gateway would hand it to the functions.
    pub async fn serve(&self, request: lambda_http::Request) -> lambda_http::Response<Body> {
        lockstep::routes::local(&self.config, &self.feature_x, &request).await
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
