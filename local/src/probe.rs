//! `POST /local/probe`: what one flag answers one user (design rule 10), for the fleet view's
//! probe: the deployed content's evaluation (`lockstep eval`'s code, at the runner's clock) and
//! each started instance's, from what its cache holds now (read without refreshing), so an
//! instance still holding an older definition shows its different answer. Each instance also
//! tells the user's own consistency as it computes it now (`consistent`, `consistentAt`,
//! `journeyOpensAt`, `changesAt`: what its `/config/me` would say to that user), so a widening
//! shows the users already in keeping their `consistentAt` and the newly included ones waiting.

use crate::Runner;
use chrono::{DateTime, Utc};
use http::StatusCode;
use lambda_http::{Body, Request, Response};
use lockstep::targeted::Context;
use lockstep::FlagView;
use lockstep_cli::eval;
use lockstep_http::problem::{json_response, parse_json_body, ApiError};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The probe's request: a flag and a caller.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProbeBody {
    flag: String,
    /// `{"targetingKey": …, <attributes>…}`; none: an anonymous caller.
    #[serde(default)]
    context: Context,
}

/// The probe's answer.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Probe {
    /// The deployed content's answer…
    deployed: Option<eval::Answer>,
    /// …or why there is none.
    deployed_error: Option<String>,
    /// Each started instance's answer.
    instances: Vec<InstanceAnswer>,
}

/// One instance's answer for the caller, from what its cache holds now.
#[derive(Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
struct InstanceAnswer {
    name: String,
    configuration_version: String,
    value: Value,
    reason: &'static str,
    variant: String,
    /// Whether every instance serves the caller this value now, as this instance can vouch.
    consistent: bool,
    /// From when every instance serves the caller this value (design rule 10: the latest
    /// definition that changed their value, `T_k + Δ_k + P + ε`).
    consistent_at: Option<DateTime<Utc>>,
    /// From when a journey may open for the caller (their step's `T + Δ + Q + ε`).
    journey_opens_at: Option<DateTime<Utc>>,
    /// When the caller's value next changes by a schedule or a ramp.
    changes_at: Option<DateTime<Utc>>,
}

/// `POST /local/probe`.
pub(crate) async fn probe(runner: &Runner, request: &Request) -> Result<Response<Body>, ApiError> {
    let body: ProbeBody = parse_json_body(request)?;
    let now = runner.clock.now();
    let (deployed, deployed_error) = match runner.appconfig.deployed_content().await {
        Ok(content) => match eval::evaluate(&content, &body.flag, &body.context, now) {
            Ok(answer) => (Some(answer), None),
            Err(e) => (None, Some(lockstep::error_chain(&e))),
        },
        Err(why) => (None, Some(why)),
    };
    let instances = runner
        .fleet
        .instances()
        .filter_map(|instance| {
            let view = instance.peek()?;
            answer(instance.name(), &view, &body.flag, &body.context)
        })
        .collect();
    tracing::info!(path = "local_probe", "fleet view probe evaluated");
    let probe = Probe {
        deployed,
        deployed_error,
        instances,
    };
    Ok(json_response(StatusCode::OK, &probe))
}

/// What the instance `name` answers `context` for `flag` from the read `view` (its cache as it
/// is, at the read's moment); `None` for a flag it neither declares nor holds.
fn answer(name: &str, view: &FlagView, flag: &str, context: &Context) -> Option<InstanceAnswer> {
    let resolved = view.snapshot().flag(flag)?;
    let now_ms = view.now().timestamp_millis();
    // What its `/config/me` would say to this caller (`ResolvedFlag::status_for`).
    let status = resolved.status_for(context, now_ms, view.degraded().is_some());
    let (value, reason, variant) = match view.evaluate(flag, context) {
        Some(e) => (e.value.clone(), e.reason.as_str(), e.variant.to_owned()),
        None => (
            Value::Bool(status.value),
            "STATIC",
            if status.value { "on" } else { "off" }.to_owned(),
        ),
    };
    Some(InstanceAnswer {
        name: name.to_owned(),
        configuration_version: view.snapshot().version.clone(),
        value,
        reason,
        variant,
        consistent: status.consistent,
        consistent_at: status.consistent_at,
        journey_opens_at: status.journey_opens_at,
        changes_at: status.changes_at,
    })
}

#[cfg(test)]
mod tests;
