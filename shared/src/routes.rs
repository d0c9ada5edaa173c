//! Which handler serves which path, for each function and for the local runner (the same routes
//! as template.yaml). Every outcome, errors included, becomes an HTTP response here.

use crate::cache::FlagCache;
use crate::feature_x::FeatureX;
use crate::http::{path_segments, respond, ApiError};
use lambda_http::{Body, Request, Response};

/// The config function: `GET /config`.
pub async fn config_function(cache: &FlagCache, request: &Request) -> Response<Body> {
    respond(match path_segments(request).first() {
        Some(&"config") if path_segments(request).len() == 1 => {
            crate::config_endpoint::handle(cache, request).await
        }
        _ => Err(ApiError::NotFound),
    })
}

/// The feature-x function: `/feature-x/...`.
pub async fn feature_x_function(feature_x: &FeatureX, request: &Request) -> Response<Body> {
    respond(feature_x.handle(request).await)
}

/// The local runner: every route of template.yaml, each to its own function's state.
pub async fn local(config: &FlagCache, feature_x: &FeatureX, request: &Request) -> Response<Body> {
    match path_segments(request).first() {
        Some(&"feature-x") => feature_x_function(feature_x, request).await,
        _ => config_function(config, request).await,
    }
}
