//! What an OFREP evaluation request must be (a JSON object with an optional context), and the
//! refusal when it is not.

use crate::problem::MAX_BODY_BYTES;
use lambda_http::{Body, Request};
use lockstep::targeted::Context;
use serde_json::Value;

/// A request the protocol refuses with 400.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Refusal {
    /// The body is not an evaluation request (not JSON, not an object, empty, too large).
    Parse(String),
    /// `context` is not an object, or its `targetingKey` not a string.
    InvalidContext(String),
}

/// Checks the evaluation request and returns its context: a JSON object whose `context`, when
/// present, is an object whose `targetingKey`, when present, is a string. A missing `context` is
/// an empty one (the OFREP JavaScript core sends `{}` when it has no context). The content type
/// is not checked. The context is the caller's own choice: it selects what OFREP evaluates
/// (design rule 10), never what a feature endpoint's gate decides.
pub(super) fn check_request(request: &Request) -> Result<Context, Refusal> {
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
    let Value::Object(mut body) = body else {
        return Err(Refusal::Parse(
            "The body must be a JSON object: {\"context\": {...}}.".into(),
        ));
    };
    match body.remove("context") {
        None => Ok(Context::new()),
        Some(Value::Object(context)) => match context.get("targetingKey") {
            None | Some(Value::String(_)) => Ok(context),
            Some(_) => Err(Refusal::InvalidContext(
                "The context's targetingKey must be a string.".into(),
            )),
        },
        Some(_) => Err(Refusal::InvalidContext(
            "The context must be a JSON object.".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::super::BULK_PATH;
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
            assert!(check_request(&request(ok)).is_ok(), "{ok}");
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
}
