//! The config function's routes: `GET /config` ([`config_endpoint`]) and OFREP
//! ([`ofrep`]), which answers from `/config`'s body; above both, so neither imports the other's
//! caller.

use crate::config_endpoint;
use crate::ofrep;
use crate::problem::{path_segments, respond, ApiError};
use lambda_http::{Body, Request, Response};
use lockstep::FlagCache;

/// The config function: `GET /config`, `GET /config/me` (the verified caller's) and OFREP (`POST /ofrep/v1/evaluate/flags` and
/// `POST /ofrep/v1/evaluate/flags/{key}`, [`ofrep`]), 404 for any other path; every
/// outcome, errors included, becomes a response.
pub async fn serve(cache: &FlagCache, request: &Request) -> Response<Body> {
    respond(match path_segments(request).as_slice() {
        ["config"] => config_endpoint::handle(cache, request).await,
        ["config", "me"] => config_endpoint::handle_caller(cache, request).await,
        ["ofrep", "v1", "evaluate", "flags"] => ofrep::bulk(cache, request).await,
        ["ofrep", "v1", "evaluate", "flags", key] => ofrep::flag(cache, request, key).await,
        _ => Err(ApiError::NotFound),
    })
}
