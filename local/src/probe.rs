//! `POST /local/probe`: what one flag answers one user (design rule 10), for the fleet view's
//! probe: the deployed content's evaluation (`lockstep eval`'s code, at the runner's clock) and
//! each started instance's, from what its cache holds now (read without refreshing), so an
//! instance still holding an older definition shows its different answer.

use crate::Runner;
use http::StatusCode;
use lambda_http::{Body, Request, Response};
use lockstep::targeted::Context;
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

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct InstanceAnswer {
    name: String,
    configuration_version: String,
    value: Value,
    reason: &'static str,
    variant: String,
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
            let (value, reason, variant) = match view.evaluate(&body.flag, &body.context) {
                Some(e) => (e.value.clone(), e.reason.as_str(), e.variant.to_owned()),
                None => {
                    let on = view.status(&body.flag)?.value;
                    (
                        Value::Bool(on),
                        "STATIC",
                        if on { "on" } else { "off" }.to_owned(),
                    )
                }
            };
            Some(InstanceAnswer {
                name: instance.name().to_owned(),
                configuration_version: view.snapshot().version.clone(),
                value,
                reason,
                variant,
            })
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
