//! `GET /config`: what the SPA reads to decide which journeys to open, and when to look again.
//!
//! The original design's readers keep working: every public flag is a top-level boolean, and
//! `isBackendConsistent` is top-level. Beyond it: a per-flag object (value, consistent,
//! consistentAt, forced), the top-level `consistentAt` (when `isBackendConsistent` turns true, if
//! nothing changes), the configuration version, the stamp, P, the server time and the degraded
//! reason. Only public flags appear; never internal flags or attributes.

use crate::cache::{FlagCache, FlagView};
use crate::http::{json_response, ApiError};
use chrono::{DateTime, Utc};
use http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};
use serde::Serialize;
use std::collections::BTreeMap;

/// Response fields a public flag's top-level boolean may not shadow.
const RESERVED: [&str; 8] = [
    "isBackendConsistent",
    "consistentAt",
    "flags",
    "configurationVersion",
    "lastModifiedTimestamp",
    "pollIntervalSeconds",
    "serverTime",
    "degraded",
];

/// One public flag in the response.
#[derive(Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct FlagJson {
    /// The value this instance serves.
    pub value: bool,
    /// Whether every instance serves it now.
    pub consistent: bool,
    /// From when every instance serves it (none: unstamped or forced).
    pub consistent_at: Option<DateTime<Utc>>,
    /// Whether a `FORCE_` variable set it.
    pub forced: bool,
}

/// The `/config` body.
#[derive(Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ConfigBody {
    /// Public flag values, top level (original design).
    #[serde(flatten)]
    pub values: BTreeMap<String, bool>,
    /// True only when every public flag is consistent on a healthy instance.
    pub is_backend_consistent: bool,
    /// When `isBackendConsistent` turns true if nothing changes: the latest public
    /// `consistentAt`; none when a public flag is unstamped or the instance is degraded.
    pub consistent_at: Option<DateTime<Utc>>,
    /// Public flags in detail.
    pub flags: BTreeMap<String, FlagJson>,
    /// The configuration version served.
    pub configuration_version: String,
    /// The profile stamp T.
    pub last_modified_timestamp: Option<DateTime<Utc>>,
    /// P, seconds.
    pub poll_interval_seconds: u64,
    /// This instance's clock at the read.
    pub server_time: DateTime<Utc>,
    /// Why this instance cannot vouch for its configuration, if it cannot.
    pub degraded: Option<&'static str>,
}

/// Builds the body from one read of the cache.
pub fn body(view: &FlagView) -> ConfigBody {
    let mut values = BTreeMap::new();
    let mut flags = BTreeMap::new();
    let mut consistent_at: Option<DateTime<Utc>> = None;
    let mut all_stamped = view.degraded().is_none();
    for (name, status) in view.public_flags() {
        if !RESERVED.contains(&name) {
            values.insert(name.to_owned(), status.value);
        }
        match (status.forced, status.consistent_at) {
            (true, _) => {}
            (false, Some(at)) => consistent_at = consistent_at.max(Some(at)),
            (false, None) => all_stamped = false,
        }
        flags.insert(
            name.to_owned(),
            FlagJson {
                value: status.value,
                consistent: status.consistent,
                consistent_at: status.consistent_at,
                forced: status.forced,
            },
        );
    }
    ConfigBody {
        values,
        is_backend_consistent: view.is_backend_consistent(),
        consistent_at: if all_stamped { consistent_at } else { None },
        flags,
        configuration_version: view.snapshot().version.clone(),
        last_modified_timestamp: view.snapshot().profile_stamp.map(|s| s.at),
        poll_interval_seconds: view.window().poll_interval.as_secs(),
        server_time: view.now(),
        degraded: view.degraded().map(|d| d.reason()),
    }
}

/// Serves `GET /config` (any other method: 405).
#[tracing::instrument(skip_all, fields(route = "/config"))]
pub async fn handle(cache: &FlagCache, request: &Request) -> Result<Response<Body>, ApiError> {
    if request.method() != Method::GET {
        return Err(ApiError::MethodNotAllowed { allowed: &["GET"] });
    }
    let view = cache.read().await;
    let body = body(&view);
    tracing::info!(
        version = %body.configuration_version,
        consistent = body.is_backend_consistent,
        degraded = body.degraded,
        path = "config_served",
        "config served"
    );
    Ok(json_response(StatusCode::OK, &body))
}
