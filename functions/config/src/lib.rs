//! The config function: `GET /config` and OFREP, `POST /ofrep/v1/evaluate/flags[/{key}]` (the
//! handlers live in `lockstep_http::config_endpoint` and `lockstep_http::ofrep`).

pub use lockstep_http::config_routes::serve as handle;
