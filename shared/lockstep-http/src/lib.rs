//! Lockstep's HTTP and Lambda adapter: what a function needs around the flag library.
//!
//! - [`problem`]: the one error-to-response mapping (RFC 9457 `application/problem+json`) and
//!   request parsing.
//! - [`body`]: JSON request bodies (415, 413, 400), a 400 that says what is wrong and never
//!   repeats the body.
//! - [`gate`]: a `tower` layer that answers 503 + `Retry-After` + problem+json while a flag is off,
//!   for your own routes, from `lambda_http` or axum.
//! - [`identity`]: the verified caller a gate evaluates a flag defined by rules for (the JWT
//!   authorizer's claims, `sub` as the targeting key).
//! - [`config_endpoint`]: `GET /config`, the SPA's view of the flags and of the backend's
//!   consistency.
//! - [`ofrep`]: the same decision over OFREP (`POST /ofrep/v1/evaluate/flags[/{key}]`) for
//!   standard OpenFeature clients, with journey-safe values.
//! - [`config_routes`]: the config function's router, `/config` and OFREP (404 otherwise).
//! - [`catch_panic`]: the last resort, a panic answered 500 problem+json without echoing input.
//! - [`metered`]: the HTTP answer counted and one EMF document written per invocation.
#![warn(missing_docs)]

pub mod body;
pub mod catch_panic;
pub mod config_endpoint;
pub mod config_routes;
pub mod gate;
pub mod identity;
pub mod metered;
pub mod ofrep;
pub mod problem;

pub use catch_panic::CatchPanicLayer;
pub use gate::{Decided, GateLayer};
pub use problem::ApiError;
