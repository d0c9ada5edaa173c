//! The config function: routes one Lambda event to `GET /config`.

use lambda_http::{Body, Request, Response};
use lockstep::http::{path_segments, respond, ApiError};
use lockstep::FlagCache;

/// Answers one request; every outcome, errors included, is an HTTP response.
pub async fn handle(cache: &FlagCache, request: Request) -> Response<Body> {
    respond(match path_segments(&request).as_slice() {
        ["config"] => lockstep::config_endpoint::handle(cache, &request).await,
        _ => Err(ApiError::NotFound),
    })
}
