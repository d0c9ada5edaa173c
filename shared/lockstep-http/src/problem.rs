//! The one place that turns errors into HTTP responses, plus the request and response helpers
//! every function shares (JSON responses, problem+json, request paths; JSON request bodies are
//! [`crate::body`]'s, re-exported here).
//!
//! Responses are built for any body type that can be made from a `String` (`lambda_http::Body`,
//! `axum::body::Body`, ...), so the same mapping serves Lambda and a local server.
//!
//! Every error a handler can meet becomes an [`ApiError`]; [`ApiError::into_response`] logs the
//! detail (never a request body) and tells the client only what it may know, as RFC 9457
//! `application/problem+json`.

use http::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE, RETRY_AFTER};
use http::StatusCode;
use lambda_http::{Body, Request, Response};
use lockstep::ClosedReason;
use serde::Serialize;
use serde_json::json;
use thiserror::Error;

pub use crate::body::parse_json_body;
pub use lockstep::source::BoxError;

/// The largest request body Lockstep's functions accept (bytes); larger answers 413.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// Everything a handler can answer other than success.
#[derive(Debug, Error)]
pub enum ApiError {
    /// No route matches the path.
    #[error("no route for this path")]
    NotFound,
    /// The route exists, the method does not.
    #[error("method not allowed")]
    MethodNotAllowed {
        /// Methods the route accepts.
        allowed: &'static [&'static str],
    },
    /// The body is not `application/json`.
    #[error("unsupported media type")]
    UnsupportedMediaType,
    /// The body is over [`MAX_BODY_BYTES`].
    #[error("payload too large")]
    PayloadTooLarge,
    /// The body or a parameter is malformed; the detail is safe to show the caller.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// No verified caller: no bearer token, or one the authorizer refused (401 with
    /// `WWW-Authenticate: Bearer`).
    #[error("unauthorized")]
    Unauthorized,
    /// The caller may not do this (e.g. names another user); the detail is safe to show.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// A resource that does not exist.
    #[error("not found: {0}")]
    ResourceNotFound(String),
    /// The request conflicts with stored state (e.g. an idempotency key reused with another body).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The feature's flag is disabled on this instance (design rule 4).
    #[error("feature disabled by flag {flag}")]
    FeatureDisabled {
        /// The flag.
        flag: String,
        /// Seconds the client should wait: P (by then this instance has refreshed), or for an
        /// instance behind the request's journey token the wait until it may poll again.
        retry_after: u64,
        /// Why the gate is closed.
        reason: ClosedReason,
    },
    /// Storage throttled or unreachable; nothing was written.
    #[error("storage unavailable")]
    StorageUnavailable(#[source] BoxError),
    /// Storage did not confirm a write in time: it may have happened (503 with `Retry-After`);
    /// the detail says how to retry safely.
    #[error("storage did not confirm the write")]
    StorageOutcomeUnknown {
        /// What the client is told.
        detail: String,
        /// The storage error, logged, never shown.
        #[source]
        cause: BoxError,
    },
    /// A concurrent request holds what this one needs: retry after `retry_after` seconds (409
    /// with `Retry-After`).
    #[error("conflict, retry later: {detail}")]
    ConflictRetry {
        /// What the client is told.
        detail: String,
        /// Seconds to wait.
        retry_after: u64,
    },
    /// A fault of ours; the detail is logged, never shown.
    #[error("internal error")]
    Internal(#[source] BoxError),
}

/// `disabled`, `drain-ended` or `behind`: the problem body's `reason`.
pub fn closed_reason(reason: ClosedReason) -> &'static str {
    match reason {
        ClosedReason::Disabled => "disabled",
        ClosedReason::DrainEnded => "drain-ended",
        ClosedReason::Behind => "behind",
    }
}

/// Seconds a client should wait after a storage failure.
pub const STORAGE_RETRY_AFTER_SECONDS: u64 = 1;

impl ApiError {
    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::NotFound | ApiError::ResourceNotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::ConflictRetry { .. } => StatusCode::CONFLICT,
            ApiError::FeatureDisabled { .. }
            | ApiError::StorageUnavailable(_)
            | ApiError::StorageOutcomeUnknown { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The problem+json response; logs what the client is not told.
    pub fn into_response<B: From<String>>(self) -> Response<B> {
        let status = self.status();
        let (kind, title, detail) = match &self {
            ApiError::NotFound => (
                "not-found",
                "Not Found",
                "No route matches this path.".to_owned(),
            ),
            ApiError::MethodNotAllowed { allowed } => (
                "method-not-allowed",
                "Method Not Allowed",
                format!("This route accepts {}.", allowed.join(", ")),
            ),
            ApiError::UnsupportedMediaType => (
                "unsupported-media-type",
                "Unsupported Media Type",
                "The body must be application/json.".to_owned(),
            ),
            ApiError::PayloadTooLarge => (
                "payload-too-large",
                "Payload Too Large",
                format!("The body must be at most {MAX_BODY_BYTES} bytes."),
            ),
            ApiError::BadRequest(detail) => ("bad-request", "Bad Request", detail.clone()),
            ApiError::Unauthorized => (
                "unauthorized",
                "Unauthorized",
                "Sign in: this route needs a valid bearer token.".to_owned(),
            ),
            ApiError::Forbidden(detail) => ("forbidden", "Forbidden", detail.clone()),
            ApiError::ResourceNotFound(detail) => ("not-found", "Not Found", detail.clone()),
            ApiError::Conflict(detail) => ("conflict", "Conflict", detail.clone()),
            ApiError::FeatureDisabled { flag, reason, .. } => (
                "feature-disabled",
                "Feature Disabled",
                match reason {
                    ClosedReason::Disabled => format!(
                        "This feature is disabled by the flag {flag}. Nothing was written."
                    ),
                    ClosedReason::DrainEnded => format!(
                        "This feature was switched off by the flag {flag} and the time for journeys in flight to finish is over. Nothing was written."
                    ),
                    ClosedReason::Behind => format!(
                        "This server has not caught up with the flag {flag} yet. Nothing was written; retry after the time given."
                    ),
                },
            ),
            ApiError::StorageOutcomeUnknown { detail, .. } => (
                "storage-outcome-unknown",
                "Service Unavailable",
                detail.clone(),
            ),
            ApiError::ConflictRetry { detail, .. } => ("conflict", "Conflict", detail.clone()),
            ApiError::StorageUnavailable(_) => (
                "storage-unavailable",
                "Service Unavailable",
                "Storage is unavailable. Nothing was written; retry later.".to_owned(),
            ),
            ApiError::Internal(_) => (
                "internal",
                "Internal Server Error",
                "An internal error occurred.".to_owned(),
            ),
        };
        match &self {
            ApiError::StorageUnavailable(cause)
            | ApiError::Internal(cause)
            | ApiError::StorageOutcomeUnknown { cause, .. } => {
                tracing::error!(status = status.as_u16(), kind, error = %cause, source = ?cause.source(), "request failed");
            }
            ApiError::FeatureDisabled { flag, reason, .. } => {
                tracing::info!(status = 503, kind, flag = %flag, reason = closed_reason(*reason), "feature gate closed");
            }
            _ => tracing::info!(status = status.as_u16(), kind, "request refused"),
        }
        let mut body = json!({
            "type": format!("urn:lockstep:problem:{kind}"),
            "title": title,
            "status": status.as_u16(),
            "detail": detail,
        });
        if let ApiError::FeatureDisabled { flag, reason, .. } = &self {
            body["flag"] = json!(flag);
            body["reason"] = json!(closed_reason(*reason));
        }
        let mut response = Response::builder()
            .status(status)
            .header(CONTENT_TYPE, "application/problem+json")
            .header(CACHE_CONTROL, "no-store")
            .body(B::from(body.to_string()))
            .expect("static headers are valid");
        let retry_after = match &self {
            ApiError::FeatureDisabled { retry_after, .. } => Some(*retry_after),
            ApiError::StorageUnavailable(_) | ApiError::StorageOutcomeUnknown { .. } => {
                Some(STORAGE_RETRY_AFTER_SECONDS)
            }
            ApiError::ConflictRetry { retry_after, .. } => Some(*retry_after),
            _ => None,
        };
        if let Some(seconds) = retry_after {
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from(seconds));
        }
        if let ApiError::Unauthorized = &self {
            response.headers_mut().insert(
                http::header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer"),
            );
        }
        if let ApiError::MethodNotAllowed { allowed } = &self {
            if let Ok(value) = HeaderValue::from_str(&allowed.join(", ")) {
                response.headers_mut().insert(http::header::ALLOW, value);
            }
        }
        response
    }
}

/// A JSON response with `Cache-Control: no-store`.
pub fn json_response<T: Serialize, B: From<String>>(status: StatusCode, body: &T) -> Response<B> {
    match serde_json::to_string(body) {
        Ok(text) => json_text_response(status, text),
        Err(error) => ApiError::Internal(Box::new(error)).into_response(),
    }
}

/// A JSON response whose body is already JSON text (`application/json`, `no-store`, as
/// [`json_response`] answers).
pub fn json_text_response<B: From<String>>(status: StatusCode, text: String) -> Response<B> {
    Response::builder()
        .status(status)
        .header(CONTENT_TYPE, "application/json")
        .header(CACHE_CONTROL, "no-store")
        .body(B::from(text))
        .expect("static headers are valid")
}

/// Turns a handler's result into a response.
pub fn respond(result: Result<Response<Body>, ApiError>) -> Response<Body> {
    result.unwrap_or_else(ApiError::into_response)
}

/// The route a request resolves to, before method checks: a path split on `/`.
pub fn path_segments(request: &Request) -> Vec<&str> {
    request
        .uri()
        .path()
        .split('/')
        .filter(|s| !s.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(response: &Response<Body>) -> serde_json::Value {
        match response.body() {
            Body::Text(t) => serde_json::from_str(t).unwrap(),
            other => panic!("unexpected body {other:?}"),
        }
    }

    #[test]
    fn a_disabled_feature_answers_503_problem_json_with_retry_after_naming_the_flag() {
        let response = ApiError::FeatureDisabled {
            flag: "isFeatureXEnabled".into(),
            retry_after: 45,
            reason: ClosedReason::Disabled,
        }
        .into_response();

        assert_eq!(response.status(), 503);
        assert_eq!(response.headers()[CONTENT_TYPE], "application/problem+json");
        assert_eq!(response.headers()[RETRY_AFTER], "45");
        let body = problem(&response);
        assert_eq!(body["flag"], "isFeatureXEnabled");
        assert_eq!(body["reason"], "disabled");
        assert_eq!(body["status"], 503);
    }

    #[test]
    fn internal_errors_never_reach_the_client() {
        let response = ApiError::Internal("secret table name xyz".into()).into_response();
        assert_eq!(response.status(), 500);
        assert!(!problem(&response).to_string().contains("xyz"));
    }
}
