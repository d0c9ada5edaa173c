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
//! degraded instance, `CACHED` otherwise. `docs/openfeature.md` ("OFREP") is the full mapping.
//!
//! The flags, their consistency and the journey token come from [`config_endpoint::body`], the
//! same function `/config` answers with; the journey rule and the catch-up are the core's token
//! policy ([`lockstep::token_policy`], asked through [`FlagCache::answer_read`]): a token newer
//! than this instance makes it catch up (rule 8); when AppConfig gives it nothing newer yet (its
//! session allows no call, or the poll fails) the answer is `429` with `Retry-After`, rather
//! than a value older than what the client already holds.
//!
//! The request's evaluation context is accepted (and checked: an object, `targetingKey` a string
//! when present) but changes nothing: Lockstep's flags are the same for every user. It is never
//! logged, and neither is the journey token.

use crate::config_endpoint::{self, ConfigBody};
use crate::problem::{json_response, ApiError, MAX_BODY_BYTES};
use chrono::{DateTime, SecondsFormat, Utc};
use http::header::{HeaderValue, CACHE_CONTROL, ETAG, IF_NONE_MATCH, RETRY_AFTER, VARY};
use http::{HeaderMap, Method, StatusCode};
use lambda_http::{Body, Request, Response};
use lockstep::cache::Degraded;
use lockstep::journey;
use lockstep::token_policy::{self, Answer};
use lockstep::{FlagCache, FlagView};
use serde::Serialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::time::Duration;

/// The bulk evaluation route.
pub const BULK_PATH: &str = "/ofrep/v1/evaluate/flags";

/// The OpenFeature resolution reason of an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Reason {
    /// A `FORCE_<FLAG>` override set the value (rule 6): no source is involved.
    Static,
    /// The value of the configuration this instance polled, on a healthy instance.
    Cached,
    /// Nothing was ever fetched: the bundled safe default (rule 5), on a degraded instance.
    Default,
    /// Last-known-good on a degraded instance (a failed or timed-out refresh, rejected content,
    /// a service interval longer than P, or the durable snapshot at a cold start): it vouches for
    /// nothing, so the value is never journey-open (rule 7).
    Stale,
}

/// Which moment opens a journey for the client that asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum OpenRule {
    /// The client sent a journey token (`Lockstep-Journey`): `journeyOpensAt`, `T + Δ + Q + ε`.
    #[serde(rename = "journeyOpensAt")]
    JourneyOpensAt,
    /// No (readable) token: `consistentAt`, `T + Δ + P + ε`.
    #[serde(rename = "consistentAt")]
    ConsistentAt,
}

/// One flag's OFREP evaluation (`evaluationSuccess`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Evaluation {
    /// The flag's key.
    pub key: String,
    /// The journey-safe value.
    pub value: bool,
    /// Why the value is what it is.
    pub reason: Reason,
    /// `on` or `off`, as `value`.
    pub variant: &'static str,
    /// What the value was decided from (strings, numbers and booleans only, per the protocol).
    pub metadata: FlagMetadata,
}

/// A flag's OFREP metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FlagMetadata {
    /// The value this instance serves (what `/config` shows), before the journey rule.
    pub raw_value: bool,
    /// Whether every instance serves `rawValue` now, as far as this instance can vouch.
    pub consistent: bool,
    /// `T + Δ + P + ε`; absent for an unstamped or forced flag.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consistent_at: Option<String>,
    /// `T + Δ + Q + ε`; absent for an unstamped or forced flag.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub journey_opens_at: Option<String>,
    /// When `value` turns true if nothing changes (re-evaluate then): present only while the
    /// flag is on, the journey not open yet and the moment known, on a healthy instance.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub opens_at: Option<String>,
    /// The moment that opens the journey for this client.
    pub open_rule: OpenRule,
    /// Whether a `FORCE_` variable set the value.
    pub forced: bool,
    /// The configuration version served.
    pub configuration_version: String,
    /// Why this instance cannot vouch for its configuration, if it cannot.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub degraded: Option<&'static str>,
    /// The journey token naming what this instance serves (as `/config`'s `journeyToken`): send
    /// it in `Lockstep-Journey` on the journey's feature calls (and on later evaluations).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub journey_token: Option<String>,
    /// This instance's clock at the read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_time: Option<String>,
}

/// The flag set's metadata in a bulk answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SetMetadata {
    /// The configuration version served.
    pub configuration_version: String,
    /// `/config`'s `isBackendConsistent`.
    pub is_backend_consistent: bool,
    /// `/config`'s top-level `consistentAt`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consistent_at: Option<String>,
    /// `/config`'s top-level `journeyOpensAt`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub journey_opens_at: Option<String>,
    /// P, seconds.
    pub poll_interval_seconds: u64,
    /// Q, seconds.
    pub catch_up_interval_seconds: u64,
    /// Why this instance cannot vouch for its configuration, if it cannot.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub degraded: Option<&'static str>,
    /// This instance's clock at the read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_time: Option<String>,
}

/// The bulk answer (`bulkEvaluationSuccess`): every public flag, sorted by key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BulkAnswer {
    /// The flags.
    pub flags: Vec<Evaluation>,
    /// The flag set's metadata.
    pub metadata: SetMetadata,
}

fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// The OFREP answer for every public flag of one read, for a client that opens journeys by
/// `rule`. Built on [`config_endpoint::body`]: the same flags, statuses and token as `/config`.
pub fn answer(view: &FlagView, rule: OpenRule) -> BulkAnswer {
    let config = config_endpoint::body(view);
    let flags = config
        .flags
        .keys()
        .filter_map(|key| evaluation(&config, view.degraded(), key, rule))
        .collect();
    BulkAnswer {
        flags,
        metadata: SetMetadata {
            configuration_version: config.configuration_version.clone(),
            is_backend_consistent: config.is_backend_consistent,
            consistent_at: config.consistent_at.map(rfc3339),
            journey_opens_at: config.journey_opens_at.map(rfc3339),
            poll_interval_seconds: config.poll_interval_seconds,
            catch_up_interval_seconds: config.catch_up_interval_seconds,
            degraded: config.degraded,
            server_time: Some(rfc3339(config.server_time)),
        },
    }
}

/// One public flag's evaluation from `/config`'s body; `None` for a key that is not public.
fn evaluation(
    config: &ConfigBody,
    degraded: Option<&Degraded>,
    key: &str,
    rule: OpenRule,
) -> Option<Evaluation> {
    let status = config.flags.get(key)?;
    let now = config.server_time;
    // Rule 8's own answer: may a journey open on this flag now, for this client?
    let opening = token_policy::journey_opening(
        status,
        now,
        degraded.is_some(),
        rule == OpenRule::JourneyOpensAt,
    );
    let (value, opens_at) = (opening.open, opening.opens_at);
    let reason = match degraded {
        _ if status.forced => Reason::Static,
        Some(Degraded::NeverFetched { .. }) => Reason::Default,
        Some(_) => Reason::Stale,
        None => Reason::Cached,
    };
    Some(Evaluation {
        key: key.to_owned(),
        value,
        reason,
        variant: if value { "on" } else { "off" },
        metadata: FlagMetadata {
            raw_value: status.value,
            consistent: status.consistent,
            consistent_at: status.consistent_at.map(rfc3339),
            journey_opens_at: status.journey_opens_at.map(rfc3339),
            opens_at: opens_at.map(rfc3339),
            open_rule: rule,
            forced: status.forced,
            configuration_version: config.configuration_version.clone(),
            degraded: config.degraded,
            journey_token: config.journey_token.clone(),
            server_time: Some(rfc3339(now)),
        },
    })
}

/// The bulk answer's entity tag: a digest of everything the answer says except the server time
/// (which changes with every read and says nothing new), so it is the same on every instance
/// that would say the same, and changes whenever a value, a reason or any metadata changes,
/// including a journey-safe value turning true when the clock passes `journeyOpensAt` (or
/// `consistentAt`), the client's kind (`openRule`), and the journey token. The token is the same
/// for every read of a version within one second (`journey::issue_reused`) and changes with the
/// second: a client answered `304` keeps a token as fresh as its last poll, which a drain
/// honours, never one from the first `200` hours ago. Weak (`W/`): two answers with one tag
/// differ in the server time.
pub fn etag(answer: &BulkAnswer) -> String {
    let mut stable = answer.clone();
    stable.metadata.server_time = None;
    for flag in &mut stable.flags {
        flag.metadata.server_time = None;
    }
    let bytes = serde_json::to_vec(&stable).expect("an OFREP answer serialises");
    let digest = Sha256::digest(&bytes);
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("W/\"{hex}\"")
}

/// What `If-None-Match` says of the bulk answer (RFC 9110 §13.1.2, weak comparison).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Precondition {
    /// No `If-None-Match`, or none of its tags is the answer's: answer it.
    Proceed,
    /// It names the answer's tag: `304 Not Modified`, as OFREP defines for this POST.
    NotModified,
    /// `*`: "only if you have nothing", and there is always an answer; for a method other than
    /// GET or HEAD the RFC says `412 Precondition Failed`.
    Failed,
}

/// Evaluates `If-None-Match` against `etag`.
fn precondition(headers: &HeaderMap, etag: &str) -> Precondition {
    let ours = etag.trim_start_matches("W/");
    let tags = headers
        .get_all(IF_NONE_MATCH)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|list| list.split(','))
        .map(str::trim);
    let mut verdict = Precondition::Proceed;
    for tag in tags {
        if tag == "*" {
            return Precondition::Failed;
        }
        if tag.trim_start_matches("W/") == ours {
            verdict = Precondition::NotModified;
        }
    }
    verdict
}

/// A request the protocol refuses with 400.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Refusal {
    /// The body is not an evaluation request (not JSON, not an object, empty, too large).
    Parse(String),
    /// `context` is not an object, or its `targetingKey` not a string.
    InvalidContext(String),
}

/// Checks the evaluation request: a JSON object whose `context`, when present, is an object
/// whose `targetingKey`, when present, is a string. A missing `context` is an empty one (the
/// OFREP JavaScript core sends `{}` when it has no context). The content type is not checked.
fn check_request(request: &Request) -> Result<(), Refusal> {
    let bytes: &[u8] = match request.body() {
        Body::Text(text) => text.as_bytes(),
        Body::Binary(bytes) => bytes,
        _ => b"",
    };
    if bytes.is_empty() {
        return Err(Refusal::Parse(
            "The body is empty; an evaluation request {\"context\": {...}} is required.".into(),
        ));
    }
    if bytes.len() > MAX_BODY_BYTES {
        return Err(Refusal::Parse(format!(
            "The body must be at most {MAX_BODY_BYTES} bytes."
        )));
    }
    let body: Value = serde_json::from_slice(bytes)
        .map_err(|_| Refusal::Parse("The body is not valid JSON.".into()))?;
    let Value::Object(body) = body else {
        return Err(Refusal::Parse(
            "The body must be a JSON object: {\"context\": {...}}.".into(),
        ));
    };
    match body.get("context") {
        None => Ok(()),
        Some(Value::Object(context)) => match context.get("targetingKey") {
            None | Some(Value::String(_)) => Ok(()),
            Some(_) => Err(Refusal::InvalidContext(
                "The context's targetingKey must be a string.".into(),
            )),
        },
        Some(_) => Err(Refusal::InvalidContext(
            "The context must be a JSON object.".into(),
        )),
    }
}

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
async fn read(cache: &FlagCache, token: Option<&str>, only: Option<&str>) -> Result<Read, u64> {
    let ready = |view| {
        Ok(Read {
            view,
            rule: OpenRule::JourneyOpensAt,
        })
    };
    match cache.answer_read(token, only).await {
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

fn journey_token(request: &Request) -> Option<&str> {
    request
        .headers()
        .get(journey::HEADER)
        .and_then(|v| v.to_str().ok())
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
    if let Err(refusal) = check_request(request) {
        return Ok(refused(refusal, None));
    }
    let read = match read(cache, journey_token(request), None).await {
        Ok(read) => read,
        Err(seconds) => return Ok(with_vary(rate_limited(None, seconds))),
    };
    let answer = answer(&read.view, read.rule);
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
    if let Err(refusal) = check_request(request) {
        return Ok(refused(refusal, Some(&key)));
    }
    // Only a public flag can be behind a token (`token_policy::behind`), so only a public key
    // may catch up or be answered 429; any other key, private or unknown, is not found, and
    // nothing about it is told.
    let read = match read(cache, journey_token(request), Some(&key)).await {
        Ok(read) => read,
        Err(seconds) => return Ok(with_vary(rate_limited(Some(&key), seconds))),
    };
    let config = config_endpoint::body(&read.view);
    let Some(evaluated) = evaluation(&config, read.view.degraded(), &key, read.rule) else {
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

    fn request(body: &str) -> Request {
        http::Request::builder()
            .method("POST")
            .uri(BULK_PATH)
            .body(Body::Text(body.to_owned()))
            .unwrap()
    }

    #[test]
    fn evaluation_requests_are_checked_as_the_protocol_says() {
        for ok in [
            r#"{"context": {}}"#,
            r#"{"context": {"targetingKey": "u1", "plan": "basic"}}"#,
            r#"{}"#,
        ] {
            assert_eq!(check_request(&request(ok)), Ok(()), "{ok}");
        }
        for parse in ["", "{not json", "[]", "5", r#""context""#] {
            assert!(
                matches!(check_request(&request(parse)), Err(Refusal::Parse(_))),
                "{parse:?}"
            );
        }
        let too_large = format!(
            r#"{{"context": {{"x": "{}"}}}}"#,
            "a".repeat(MAX_BODY_BYTES)
        );
        assert!(matches!(
            check_request(&request(&too_large)),
            Err(Refusal::Parse(_))
        ));
        for invalid in [
            r#"{"context": null}"#,
            r#"{"context": []}"#,
            r#"{"context": "u1"}"#,
            r#"{"context": {"targetingKey": 7}}"#,
        ] {
            assert!(
                matches!(
                    check_request(&request(invalid)),
                    Err(Refusal::InvalidContext(_))
                ),
                "{invalid}"
            );
        }
    }

    #[test]
    fn if_none_match_compares_weakly_reads_lists_and_fails_on_a_star() {
        let tag = "W/\"abc\"";
        let headers = |value: &str| {
            let mut h = HeaderMap::new();
            h.insert(IF_NONE_MATCH, HeaderValue::from_str(value).unwrap());
            h
        };
        let check = |value: &str| precondition(&headers(value), tag);
        assert_eq!(check("W/\"abc\""), Precondition::NotModified);
        assert_eq!(check("\"abc\""), Precondition::NotModified);
        assert_eq!(check("\"x\", W/\"abc\""), Precondition::NotModified);
        assert_eq!(check("*"), Precondition::Failed);
        assert_eq!(check("W/\"abc\", *"), Precondition::Failed);
        assert_eq!(check("W/\"abd\""), Precondition::Proceed);
        assert_eq!(precondition(&HeaderMap::new(), tag), Precondition::Proceed);
    }

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
