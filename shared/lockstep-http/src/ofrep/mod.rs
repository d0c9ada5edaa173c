//! OFREP, the OpenFeature Remote Evaluation Protocol, over the read `/config` answers with, so a
//! standard OpenFeature client (`@openfeature/ofrep-web-provider`, the OFREP server providers)
//! gets Lockstep's decision without Lockstep-specific code:
//!
//! - `POST /ofrep/v1/evaluate/flags`: every public flag (bulk), with an `ETag`; a request whose
//!   `If-None-Match` names the current one is answered `304 Not Modified`, one with
//!   `If-None-Match: *` `412 Precondition Failed` (RFC 9110, a POST);
//! - `POST /ofrep/v1/evaluate/flags/{key}`: one public flag; any other key is `FLAG_NOT_FOUND`.
//!
//! Every public flag is a *journey* flag (the SPA opens journeys on it), so `value` is the
//! **journey-safe** value: true only when the flag is on **and** the journey may open: from
//! `journeyOpensAt` (`T + Δ + Q + ε`, rule 8) for a client that sends a journey token in the
//! `Lockstep-Journey` header, from `consistentAt` (`T + Δ + P + ε`, rule 3) otherwise. The value
//! this instance serves, `consistent`, `consistentAt`, `journeyOpensAt`, `opensAt` (when `value`
//! turns true if nothing changes), `forced`, the version, the degraded reason, the journey token
//! and the server time are in the flag's `metadata`. Reasons: `STATIC` for a `FORCE_` value,
//! `DEFAULT` for the bundled defaults (nothing fetched yet), `STALE` for last-known-good on a
//! degraded instance; on a healthy instance, for a flag defined by rules the evaluation's
//! (`TARGETING_MATCH`, `SPLIT`, `DEFAULT`; `STATIC` without rules), `CACHED` for any other. `docs/openfeature.md`
//! ("OFREP") is the full mapping.
//!
//! The flags, their consistency and the journey token come from [`config_endpoint::body`], the
//! same function `/config` answers with; the journey rule and the catch-up are the core's token
//! policy ([`lockstep::token_policy`], asked through [`FlagCache::answer_read`]): a token newer
//! than this instance makes it catch up (rule 8); when AppConfig gives it nothing newer yet (its
//! session allows no call, or the poll fails) the answer is `429` with `Retry-After`, rather
//! than a value older than what the client already holds.
//!
//! The request's evaluation context (checked: an object, `targetingKey` a string when present) is
//! what a flag defined by rules is evaluated for (design rule 10; the variant names the rule or
//! split bucket); a plain or forced flag has one value for every user. It is the caller's own
//! choice, so OFREP never opens the gate: the gate evaluates the verified identity. It is never
//! logged, and neither is the journey token.

mod answer;
mod etag;
mod request;

use answer::evaluation;
pub use answer::{answer, BulkAnswer, Evaluation, FlagMetadata, OpenRule, Reason, SetMetadata};
pub use etag::etag;
use etag::{precondition, Precondition};
use request::{check_request, Refusal};

use crate::config_endpoint;
use crate::gate;
use crate::problem::{json_response, ApiError};
use http::header::{HeaderValue, CACHE_CONTROL, ETAG, RETRY_AFTER, VARY};
use http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};
use lockstep::targeted::Context;
use lockstep::token_policy::Answer;
use lockstep::{FlagCache, FlagView};
use serde_json::json;
use std::time::Duration;

/// The bulk evaluation route.
pub const BULK_PATH: &str = "/ofrep/v1/evaluate/flags";

/// A failure answer: `evaluationFailure` (with the key) or `bulkEvaluationFailure`.
fn failure(
    status: StatusCode,
    key: Option<&str>,
    code: &'static str,
    details: &str,
) -> Response<Body> {
    let body = match key {
        Some(key) => json!({"key": key, "errorCode": code, "errorDetails": details}),
        None => json!({"errorCode": code, "errorDetails": details}),
    };
    json_response(status, &body)
}

fn refused(refusal: Refusal, key: Option<&str>) -> Response<Body> {
    let (code, path, details) = match &refusal {
        Refusal::Parse(details) => ("PARSE_ERROR", "ofrep_parse_error", details),
        Refusal::InvalidContext(details) => ("INVALID_CONTEXT", "ofrep_invalid_context", details),
    };
    tracing::info!(
        status = 400,
        error_code = code,
        path,
        "evaluation request refused"
    );
    failure(StatusCode::BAD_REQUEST, key, code, details)
}

fn rate_limited(key: Option<&str>, retry_after: u64) -> Response<Body> {
    let mut response = failure(
        StatusCode::TOO_MANY_REQUESTS,
        key,
        "GENERAL",
        "This server holds an older configuration than the journey token sent and may not ask \
         AppConfig for a newer one yet; retry after the time given.",
    );
    response
        .headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from(retry_after));
    response
}

/// What a request is answered from: one read, and the rule its client opens journeys by.
struct Read {
    view: FlagView,
    rule: OpenRule,
}

/// Reads the flags for a request (refreshing first when due, rule 1), asking the core's token
/// policy ([`FlagCache::answer_read`], rule 8) what may be answered: with a readable journey
/// token, the client opens journeys at `journeyOpensAt`, and an instance behind the token
/// catches up first (at most one poll per Q, never before the session allows). Still behind
/// after that, and AppConfig gave it nothing newer since the token's issue, an answer would hand
/// the client a version older than the one it holds, so it is told when to ask again:
/// `Err(seconds)`, 429 with `Retry-After`.
async fn read(
    cache: &FlagCache,
    token: Option<&str>,
    only: Option<&str>,
    context: &Context,
) -> Result<Read, u64> {
    let ready = |view| {
        Ok(Read {
            view,
            rule: OpenRule::JourneyOpensAt,
        })
    };
    match cache.answer_read(token, only, context).await {
        Answer::NoToken(view) => Ok(Read {
            view,
            rule: OpenRule::ConsistentAt,
        }),
        Answer::Current {
            view,
            caught_up: false,
        } => ready(view),
        Answer::Current {
            view,
            caught_up: true,
        } => {
            tracing::info!(version = %view.snapshot().version, path = "ofrep_caught_up", "behind the journey token; caught up before evaluating");
            ready(view)
        }
        Answer::BehindServed(view) => {
            tracing::info!(version = %view.snapshot().version, path = "ofrep_behind_served", "behind the journey token after asking AppConfig; evaluating what it gave");
            ready(view)
        }
        Answer::Behind {
            view,
            catch_up,
            retry_after,
        } => {
            let seconds = retry_seconds(retry_after);
            tracing::info!(
                version = %view.snapshot().version,
                catch_up = ?catch_up,
                degraded = view.degraded().map(|d| d.reason()),
                retry_after_s = seconds,
                status = 429,
                path = "ofrep_rate_limited",
                "behind the journey token, and AppConfig gave nothing newer: retry later"
            );
            Err(seconds)
        }
    }
}

fn retry_seconds(wait: Duration) -> u64 {
    u64::try_from(wait.as_millis().div_ceil(1000))
        .unwrap_or(u64::MAX)
        .max(1)
}

fn with_vary(mut response: Response<Body>) -> Response<Body> {
    // The answer depends on whether the request carried a journey token.
    response
        .headers_mut()
        .insert(VARY, HeaderValue::from_static("Lockstep-Journey"));
    response
}

/// Serves `POST /ofrep/v1/evaluate/flags` (any other method: 405).
#[tracing::instrument(skip_all, fields(route = "/ofrep/v1/evaluate/flags"))]
pub async fn bulk(cache: &FlagCache, request: &Request) -> Result<Response<Body>, ApiError> {
    if request.method() != Method::POST {
        return Err(ApiError::MethodNotAllowed { allowed: &["POST"] });
    }
    let context = match check_request(request) {
        Ok(context) => context,
        Err(refusal) => return Ok(refused(refusal, None)),
    };
    let read = match read(
        cache,
        gate::journey_token(request.headers()),
        None,
        &context,
    )
    .await
    {
        Ok(read) => read,
        Err(seconds) => return Ok(with_vary(rate_limited(None, seconds))),
    };
    let answer = answer(&read.view, read.rule, &context);
    let tag = etag(&answer);
    let tag_value = HeaderValue::from_str(&tag).expect("a hex digest is a valid header");
    let precondition = precondition(request.headers(), &tag);
    if precondition == Precondition::Failed {
        tracing::info!(
            status = 412,
            path = "ofrep_bulk_precondition_failed",
            "bulk evaluation refused: If-None-Match: *"
        );
        let response = Response::builder()
            .status(StatusCode::PRECONDITION_FAILED)
            .header(CACHE_CONTROL, "no-store")
            .body(Body::Empty)
            .expect("static headers are valid");
        return Ok(with_vary(response));
    }
    let response = if precondition == Precondition::NotModified {
        tracing::info!(
            version = %answer.metadata.configuration_version,
            open_rule = ?read.rule,
            status = 304,
            path = "ofrep_bulk_not_modified",
            "bulk evaluation unchanged"
        );
        Response::builder()
            .status(StatusCode::NOT_MODIFIED)
            .header(CACHE_CONTROL, "no-store")
            .body(Body::Empty)
            .expect("static headers are valid")
    } else {
        tracing::info!(
            version = %answer.metadata.configuration_version,
            open_rule = ?read.rule,
            flags = answer.flags.len(),
            open = answer.flags.iter().filter(|f| f.value).count(),
            degraded = answer.metadata.degraded,
            status = 200,
            path = "ofrep_bulk_served",
            "bulk evaluation served"
        );
        json_response(StatusCode::OK, &answer)
    };
    let mut response = with_vary(response);
    response.headers_mut().insert(ETAG, tag_value);
    Ok(response)
}

/// Serves `POST /ofrep/v1/evaluate/flags/{key}` (any other method: 405). `key` is the path
/// segment as received (percent-decoded here).
#[tracing::instrument(skip_all, fields(route = "/ofrep/v1/evaluate/flags/{key}"))]
pub async fn flag(
    cache: &FlagCache,
    request: &Request,
    key: &str,
) -> Result<Response<Body>, ApiError> {
    if request.method() != Method::POST {
        return Err(ApiError::MethodNotAllowed { allowed: &["POST"] });
    }
    let key = percent_decode(key);
    let context = match check_request(request) {
        Ok(context) => context,
        Err(refusal) => return Ok(refused(refusal, Some(&key))),
    };
    // Only a public flag can be behind a token (`token_policy::behind`), so only a public key
    // may catch up or be answered 429; any other key, private or unknown, is not found, and
    // nothing about it is told.
    let read = match read(
        cache,
        gate::journey_token(request.headers()),
        Some(&key),
        &context,
    )
    .await
    {
        Ok(read) => read,
        Err(seconds) => return Ok(with_vary(rate_limited(Some(&key), seconds))),
    };
    let config = config_endpoint::body_for(&read.view, &context);
    let Some(evaluated) = evaluation(&config, &read.view, &key, read.rule, &context) else {
        tracing::info!(
            status = 404,
            error_code = "FLAG_NOT_FOUND",
            path = "ofrep_flag_not_found",
            "evaluation of a flag that is not public"
        );
        return Ok(failure(
            StatusCode::NOT_FOUND,
            Some(&key),
            "FLAG_NOT_FOUND",
            "No public flag has this key.",
        ));
    };
    tracing::info!(
        flag = %evaluated.key,
        value = evaluated.value,
        raw_value = evaluated.metadata.raw_value,
        reason = ?evaluated.reason,
        open_rule = ?evaluated.metadata.open_rule,
        status = 200,
        path = "ofrep_flag_served",
        "flag evaluation served"
    );
    Ok(with_vary(json_response(StatusCode::OK, &evaluated)))
}

/// Decodes `%XX` escapes (a client may encode a key); anything that does not decode to UTF-8
/// stays as received, and then names no flag.
fn percent_decode(segment: &str) -> String {
    if !segment.contains('%') {
        return segment.to_owned();
    }
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(&h), Some(&l)) if hex(h).is_some() && hex(l).is_some() => {
                out.push((hex(h).unwrap_or(0) * 16 + hex(l).unwrap_or(0)) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap_or_else(|_| segment.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_percent_decoded_and_bad_escapes_kept() {
        assert_eq!(percent_decode("isFeatureXEnabled"), "isFeatureXEnabled");
        assert_eq!(percent_decode("%69sFeatureXEnabled"), "isFeatureXEnabled");
        assert_eq!(percent_decode("a%2"), "a%2");
        assert_eq!(percent_decode("%ff"), "%ff");
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds_and_is_never_zero() {
        assert_eq!(retry_seconds(Duration::from_millis(1)), 1);
        assert_eq!(retry_seconds(Duration::ZERO), 1);
        assert_eq!(retry_seconds(Duration::from_millis(14_001)), 15);
    }
}
