//! `GET /config`: what the SPA reads to decide which journeys to open, and when to look again.
//!
//! The original design's readers keep working: every public flag is a top-level boolean, and
//! `isBackendConsistent` is top-level. Beyond it: a per-flag object (value, consistent,
//! consistentAt, journeyOpensAt, forced), the top-level `consistentAt` (when `isBackendConsistent`
//! turns true, if nothing changes) and `journeyOpensAt` (the same for clients that send the
//! journey token back: rule 8), the journey token itself, the configuration version, the stamp,
//! P, Q, the server time and the degraded reason; after this instance saw a rollback (a flag's
//! stamp going backwards, rule 7), `rolledBackAt` at the top level and on the flags concerned. Only public flags appear; never internal flags,
//! attributes or the journey key. `GET /config/me` is the same body for the verified caller
//! ([`handle_caller`]): flags defined by rules evaluated for their identity.

use crate::problem::{json_text_response, ApiError};
use chrono::{DateTime, Utc};
use http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};
use lockstep::targeted::Context;
use lockstep::{journey, FlagCache, FlagStatus, FlagView, CATCH_UP_INTERVAL};
use serde::Serialize;
use std::collections::BTreeMap;

/// Response fields a public flag's top-level boolean may not shadow.
const RESERVED: [&str; 12] = [
    "isBackendConsistent",
    "consistentAt",
    "rolledBackAt",
    "journeyOpensAt",
    "journeyToken",
    "catchUpIntervalSeconds",
    "flags",
    "configurationVersion",
    "lastModifiedTimestamp",
    "pollIntervalSeconds",
    "serverTime",
    "degraded",
];

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
    #[serde(serialize_with = "lockstep::rfc3339::serialize_opt")]
    pub consistent_at: Option<DateTime<Utc>>,
    /// When a journey may open for a client that sends [`ConfigBody::journey_token`] on its
    /// feature calls: the latest public `journeyOpensAt` (`T + Δ + Q + ε`, rule 8); none when
    /// `consistentAt` is none.
    #[serde(serialize_with = "lockstep::rfc3339::serialize_opt")]
    pub journey_opens_at: Option<DateTime<Utc>>,
    /// When this instance last saw a public flag's stamp go backwards (a rollback happened no
    /// later than this: design rule 7); left out when it never did, or when every flag it saw
    /// roll back has since been deployed again. The flags concerned carry their own
    /// `rolledBackAt`, and their `consistentAt` is no earlier than it + P + ε.
    #[serde(
        serialize_with = "lockstep::rfc3339::serialize_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub rolled_back_at: Option<DateTime<Utc>>,
    /// The journey token naming what this instance serves: send it back in the
    /// `Lockstep-Journey` header of every feature call of a journey opened with this answer.
    /// The same for every anonymous read of this version within one second
    /// (`journey::issue_reused`); for a caller with a targeting key (`/config/me`, OFREP), bound
    /// to them and claiming their own values; `null` when none can be issued (logged as
    /// `journey_token_not_issued`).
    pub journey_token: Option<String>,
    /// Public flags in detail (value, consistent, consistentAt, journeyOpensAt, forced,
    /// `rolledBackAt` after a rollback, and `changesAt` when the caller's value next changes by
    /// a schedule or a ramp).
    pub flags: BTreeMap<String, FlagStatus>,
    /// The configuration version served.
    pub configuration_version: String,
    /// The profile stamp T.
    #[serde(serialize_with = "lockstep::rfc3339::serialize_opt")]
    pub last_modified_timestamp: Option<DateTime<Utc>>,
    /// P, seconds.
    pub poll_interval_seconds: u64,
    /// Q, seconds: the catch-up interval of rule 8.
    pub catch_up_interval_seconds: u64,
    /// This instance's clock at the read.
    #[serde(serialize_with = "lockstep::rfc3339::serialize")]
    pub server_time: DateTime<Utc>,
    /// Why this instance cannot vouch for its configuration, if it cannot.
    pub degraded: Option<&'static str>,
}

impl ConfigBody {
    /// The body as JSON text: the same text as `serde_json::to_string` (a test compares them on
    /// arbitrary bodies), written straight from the fields ([`lockstep::json_text`]) because
    /// every `GET /config` pays for it and serde's escaping of its fixed keys was the largest part
    /// of the handler (BENCHMARKS.md, "`/config` handler").
    pub fn to_json(&self) -> String {
        use lockstep::json_text::{
            push_bool, push_key, push_opt_string, push_opt_time, push_string, push_time, push_u64,
        };
        let token = self.journey_token.as_deref().map_or(0, str::len);
        let mut out = String::with_capacity(448 + token + 200 * self.flags.len());
        out.push('{');
        for (name, value) in &self.values {
            push_string(&mut out, name);
            out.push(':');
            push_bool(&mut out, *value);
            out.push(',');
        }
        push_key(&mut out, "isBackendConsistent");
        push_bool(&mut out, self.is_backend_consistent);
        out.push(',');
        push_key(&mut out, "consistentAt");
        push_opt_time(&mut out, self.consistent_at.as_ref());
        out.push(',');
        push_key(&mut out, "journeyOpensAt");
        push_opt_time(&mut out, self.journey_opens_at.as_ref());
        out.push(',');
        if let Some(at) = &self.rolled_back_at {
            push_key(&mut out, "rolledBackAt");
            push_time(&mut out, at);
            out.push(',');
        }
        push_key(&mut out, "journeyToken");
        push_opt_string(&mut out, self.journey_token.as_deref());
        out.push_str(",\"flags\":{");
        for (i, (name, flag)) in self.flags.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            push_string(&mut out, name);
            out.push_str(":{\"value\":");
            push_bool(&mut out, flag.value);
            out.push_str(",\"consistent\":");
            push_bool(&mut out, flag.consistent);
            out.push_str(",\"consistentAt\":");
            push_opt_time(&mut out, flag.consistent_at.as_ref());
            out.push_str(",\"journeyOpensAt\":");
            push_opt_time(&mut out, flag.journey_opens_at.as_ref());
            out.push_str(",\"forced\":");
            push_bool(&mut out, flag.forced);
            if let Some(at) = &flag.rolled_back_at {
                out.push_str(",\"rolledBackAt\":");
                push_time(&mut out, at);
            }
            if let Some(at) = &flag.changes_at {
                out.push_str(",\"changesAt\":");
                push_time(&mut out, at);
            }
            out.push('}');
        }
        out.push_str("},");
        push_key(&mut out, "configurationVersion");
        push_string(&mut out, &self.configuration_version);
        out.push(',');
        push_key(&mut out, "lastModifiedTimestamp");
        push_opt_time(&mut out, self.last_modified_timestamp.as_ref());
        out.push(',');
        push_key(&mut out, "pollIntervalSeconds");
        push_u64(&mut out, self.poll_interval_seconds);
        out.push(',');
        push_key(&mut out, "catchUpIntervalSeconds");
        push_u64(&mut out, self.catch_up_interval_seconds);
        out.push(',');
        push_key(&mut out, "serverTime");
        push_time(&mut out, &self.server_time);
        out.push(',');
        push_key(&mut out, "degraded");
        push_opt_string(&mut out, self.degraded);
        out.push('}');
        out
    }
}

/// Builds the body from one read of the cache, for an anonymous caller.
pub fn body(view: &FlagView) -> ConfigBody {
    body_for(view, lockstep::targeted::anonymous())
}

/// Builds the body from one read of the cache for the caller `context`: flags defined by rules
/// are evaluated with it (design rule 10), and the backend verdict is over those values.
pub fn body_for(view: &FlagView, context: &Context) -> ConfigBody {
    let flags: BTreeMap<String, FlagStatus> = view
        .public_flags_for(context)
        .map(|(name, status)| (name.to_owned(), status))
        .collect();
    let values = flags
        .iter()
        .filter(|(name, _)| !RESERVED.contains(&name.as_str()))
        .map(|(name, status)| (name.clone(), status.value))
        .collect();
    let backend =
        lockstep::consistency::backend(flags.values().copied(), view.degraded().is_some());
    ConfigBody {
        values,
        is_backend_consistent: backend.consistent,
        consistent_at: backend.consistent_at,
        journey_opens_at: backend.journey_opens_at,
        rolled_back_at: flags.values().filter_map(|f| f.rolled_back_at).max(),
        journey_token: journey::issue_reused(
            view.snapshot(),
            context,
            view.now().timestamp_millis(),
        )
        .map(|token| token.to_string()),
        flags,
        configuration_version: view.snapshot().version.clone(),
        last_modified_timestamp: view.snapshot().profile_stamp.map(|s| s.at),
        poll_interval_seconds: view.window().poll_interval.as_secs(),
        catch_up_interval_seconds: CATCH_UP_INTERVAL.as_secs(),
        server_time: view.now(),
        degraded: view.degraded().map(|d| d.reason()),
    }
}

/// Serves `GET /config/me` (any other method: 405): `/config` for the verified caller, behind
/// the JWT authorizer (design rule 10). A signed-in SPA reads its journeys here, so what it
/// shows for a flag defined by rules is the evaluation the gate makes for the same identity and
/// claims ([`crate::identity::verified_context`]), not a context the page chose. A request
/// without a verified `sub` (a function deployed without the authorizer) is refused with 401,
/// never answered for an anonymous caller.
#[tracing::instrument(skip_all, fields(route = "/config/me"))]
pub async fn handle_caller(
    cache: &FlagCache,
    request: &Request,
) -> Result<Response<Body>, ApiError> {
    if request.method() != Method::GET {
        return Err(ApiError::MethodNotAllowed { allowed: &["GET"] });
    }
    let context = crate::identity::verified_context(request.extensions());
    if !context.contains_key(lockstep_targeting::TARGETING_KEY) {
        tracing::info!(
            status = 401,
            path = "config_caller_unverified",
            "refused: no verified subject claim"
        );
        return Err(ApiError::Unauthorized);
    }
    serve(cache, &context, "config_served_for_caller").await
}

/// Serves `GET /config` (any other method: 405).
#[tracing::instrument(skip_all, fields(route = "/config"))]
pub async fn handle(cache: &FlagCache, request: &Request) -> Result<Response<Body>, ApiError> {
    if request.method() != Method::GET {
        return Err(ApiError::MethodNotAllowed { allowed: &["GET"] });
    }
    serve(cache, lockstep::targeted::anonymous(), "config_served").await
}

/// One read (refreshing first when due), the body for `context`, its log line (`path`) and the
/// 200.
async fn serve(
    cache: &FlagCache,
    context: &Context,
    path: &'static str,
) -> Result<Response<Body>, ApiError> {
    let view = cache.read().await;
    let body = body_for(&view, context);
    tracing::info!(
        version = %body.configuration_version,
        consistent = body.is_backend_consistent,
        degraded = body.degraded,
        journey_token = body.journey_token.is_some(),
        path,
        "config served"
    );
    Ok(json_text_response(StatusCode::OK, body.to_json()))
}
