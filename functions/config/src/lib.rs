//! The config function: `GET /config` (the handler lives in `lockstep_http::config_endpoint`).

pub use lockstep_http::config_endpoint::serve as handle;
