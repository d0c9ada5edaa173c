//! The config function: `GET /config` (routing in `lockstep::routes`).

pub use lockstep::routes::config_function as handle;
