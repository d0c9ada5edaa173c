//! The HTTP API in front of the functions, as the runner plays it: an HTTP request becomes the
//! payload 2.0 event API Gateway would send ([`event`]), which `lambda_http` turns into the
//! function's request exactly as it does in Lambda ([`request`]); a function's response goes
//! back as API Gateway answers with the payload 2.0 response `lambda_http` returns ([`response`]).
//!
//! What API Gateway does to a request, and so the runner too (payload format 2.0, as documented
//! for HTTP APIs' Lambda integrations):
//!
//! - repeated headers are joined with commas into one (`authorization: a,b`), names in lower
//!   case; `Cookie` headers become `cookies`, one entry per cookie, which `lambda_http` joins
//!   back into one `cookie` header;
//! - repeated query parameters are joined with commas in `queryStringParameters` (`a=1&a=2` gives
//!   `{"a": "1,2"}`) and `rawQueryString` is the query as sent (`lambda_http` reads the
//!   parameters from it, so a handler's `first("a")` is `1` in AWS and here alike);
//! - `x-forwarded-proto` is the gateway's, never the client's;
//! - a body that is not UTF-8 is base64-encoded (`isBase64Encoded`).
//!
//! - the route the request matched among the template's ([`crate::routes`]) is its `routeKey`
//!   (top level and in `requestContext`: the metrics' `route` dimension) with its
//!   `pathParameters`; a request no route matches has neither (the handlers still route by path,
//!   and answer 404 as before).

use crate::routes;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use http::header::{COOKIE, HOST, SET_COOKIE, USER_AGENT};
use http::{HeaderMap, HeaderName, HeaderValue};
use lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpResponse;
use lambda_http::aws_lambda_events::query_map::QueryMap;
use lambda_http::Body;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};
use thiserror::Error;

/// A request API Gateway would not hand to a function.
#[derive(Debug, Error)]
pub enum GatewayError {
    /// `Host` is not a host name with an optional port (API Gateway routes by it; `lambda_http`
    /// builds the request's URI from it).
    #[error("Host is not a host name")]
    BadHost,
    /// The request target is not an absolute path (`OPTIONS *`, say): no route has it.
    #[error("the request target is not a path")]
    NotAPath,
    /// The event did not convert (a bug of ours: the event is made here).
    #[error("the payload 2.0 event did not convert")]
    Event(#[source] serde_json::Error),
}

/// The payload 2.0 event API Gateway sends for `parts` and `body`.
pub fn event(parts: &http::request::Parts, body: &[u8]) -> Result<Value, GatewayError> {
    if !parts.uri.path().starts_with('/') {
        return Err(GatewayError::NotAPath);
    }
    let host = match parts.headers.get(HOST) {
        None => None,
        Some(host) => Some(
            host.to_str()
                .ok()
                .filter(|h| is_host(h))
                .ok_or(GatewayError::BadHost)?,
        ),
    };
    let raw_query = parts.uri.query().unwrap_or("");
    let mut event = Map::new();
    event.insert("version".into(), json!("2.0"));
    event.insert("rawPath".into(), json!(parts.uri.path()));
    event.insert("rawQueryString".into(), json!(raw_query));
    let cookies = cookies(&parts.headers);
    if !cookies.is_empty() {
        event.insert("cookies".into(), json!(cookies));
    }
    event.insert("headers".into(), Value::Object(headers(&parts.headers)));
    let parameters = query_parameters(raw_query);
    if !parameters.is_empty() {
        event.insert("queryStringParameters".into(), json!(parameters));
    }
    let mut context = json!({
        "requestId": request_id(),
        "stage": "$default",
        "timeEpoch": epoch_millis(),
        "http": {
            "method": parts.method.as_str(),
            "path": parts.uri.path(),
            "protocol": "HTTP/1.1",
            "sourceIp": "127.0.0.1",
            "userAgent": parts.headers.get(USER_AGENT).map(|v| String::from_utf8_lossy(v.as_bytes())),
        },
    });
    if let Some(host) = host {
        context["domainName"] = json!(host);
    }
    if let Some(route) = routes::find(
        routes::template_routes(),
        parts.method.as_str(),
        parts.uri.path(),
    ) {
        context["routeKey"] = json!(route.key);
        event.insert("routeKey".into(), json!(route.key));
        if !route.parameters.is_empty() {
            event.insert("pathParameters".into(), json!(route.parameters));
        }
    }
    event.insert("requestContext".into(), context);
    if !body.is_empty() {
        let (text, encoded) = match std::str::from_utf8(body) {
            Ok(text) => (text.to_owned(), false),
            Err(_) => (STANDARD.encode(body), true),
        };
        event.insert("body".into(), json!(text));
        event.insert("isBase64Encoded".into(), json!(encoded));
    }
    Ok(Value::Object(event))
}

/// The function's request for `parts` and `body`: [`event`] as `lambda_http` reads it in Lambda.
pub fn request(
    parts: &http::request::Parts,
    body: &[u8],
) -> Result<lambda_http::Request, GatewayError> {
    let event = event(parts, body)?;
    lambda_http::request::from_str(&event.to_string()).map_err(GatewayError::Event)
}

/// What the client receives for a function's `response`: `lambda_http`'s payload 2.0 response
/// (headers one value per name, `Set-Cookie`s in `cookies`) as API Gateway writes it out.
pub fn response(response: lambda_http::Response<Body>) -> lambda_http::Response<Body> {
    let (mut parts, body) = response.into_parts();
    let mut payload = ApiGatewayV2httpResponse::default();
    payload.cookies = parts
        .headers
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .collect();
    parts.headers.remove(SET_COOKIE);
    payload.headers = std::mem::take(&mut parts.headers);
    // Serialized as Lambda returns it: the serializer keeps one value per header name.
    let written = serde_json::to_value(&payload).unwrap_or_default();
    if let Some(headers) = written.get("headers").and_then(Value::as_object) {
        for (name, value) in headers {
            let (Ok(name), Some(Ok(value))) = (
                HeaderName::from_bytes(name.as_bytes()),
                value.as_str().map(HeaderValue::from_str),
            ) else {
                continue;
            };
            parts.headers.insert(name, value);
        }
    }
    for cookie in &payload.cookies {
        if let Ok(value) = HeaderValue::from_str(cookie) {
            parts.headers.append(SET_COOKIE, value);
        }
    }
    lambda_http::Response::from_parts(parts, body)
}

/// Each header once, lower case, its values joined with `,`; `Cookie` left to [`cookies`].
fn headers(headers: &HeaderMap) -> Map<String, Value> {
    headers
        .keys()
        .filter(|name| *name != COOKIE)
        .map(|name| {
            let joined = headers
                .get_all(name)
                .iter()
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                .collect::<Vec<_>>()
                .join(",");
            (name.as_str().to_owned(), json!(joined))
        })
        .chain([("x-forwarded-proto".to_owned(), json!("http"))])
        .collect()
}

/// Every cookie of every `Cookie` header, in order.
fn cookies(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .flat_map(|v| {
            String::from_utf8_lossy(v.as_bytes())
                .split(';')
                .map(|c| c.trim().to_owned())
                .filter(|c| !c.is_empty())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Each parameter once, its decoded values joined with `,` in the order sent.
fn query_parameters(raw: &str) -> BTreeMap<String, String> {
    let Ok(map) = raw.parse::<QueryMap>();
    let mut joined: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for (name, value) in map.iter() {
        joined.entry(name.to_owned()).or_default().push(value);
    }
    joined
        .into_iter()
        .map(|(name, values)| (name, values.join(",")))
        .collect()
}

/// A host name (letters, digits, `.`, `-`) or a bracketed IPv6 address, with an optional port.
fn is_host(host: &str) -> bool {
    let (name, port) = match host.rsplit_once(':') {
        Some((name, port)) if !name.is_empty() && !port.contains(']') => (name, Some(port)),
        _ => (host, None),
    };
    let name_ok = match name.strip_prefix('[').and_then(|n| n.strip_suffix(']')) {
        Some(v6) => v6.parse::<std::net::Ipv6Addr>().is_ok(),
        None => {
            !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
        }
    };
    name_ok && port.is_none_or(|p| p.parse::<u16>().is_ok())
}

fn request_id() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    format!("local-{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

fn epoch_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use lambda_http::RequestExt;

    fn parts(uri: &str, headers: &[(&str, &str)]) -> http::request::Parts {
        let mut request = http::Request::builder().method("GET").uri(uri);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.body(()).unwrap().into_parts().0
    }

    #[test]
    fn repeated_parameters_and_headers_are_joined_with_commas_as_api_gateway_sends_them() {
        let parts = parts(
            "/feature-x/submissions?limit=1&userId=a&limit=2&note=x%2Cy&empty=",
            &[
                ("Authorization", "Bearer one"),
                ("authorization", "Bearer two"),
                ("Cookie", "a=1; b=2"),
                ("cookie", "c=3"),
                ("X-Forwarded-Proto", "gopher"),
                ("host", "localhost:3000"),
            ],
        );
        let event = event(&parts, b"").unwrap();
        assert_eq!(
            event["rawQueryString"],
            "limit=1&userId=a&limit=2&note=x%2Cy&empty="
        );
        assert_eq!(
            event["queryStringParameters"],
            json!({"limit": "1,2", "userId": "a", "note": "x,y", "empty": ""})
        );
        assert_eq!(event["headers"]["authorization"], "Bearer one,Bearer two");
        assert_eq!(event["headers"]["x-forwarded-proto"], "http");
        assert!(event["headers"].get("cookie").is_none());
        assert_eq!(event["cookies"], json!(["a=1", "b=2", "c=3"]));
        assert_eq!(event["requestContext"]["http"]["method"], "GET");
        assert_eq!(event["requestContext"]["domainName"], "localhost:3000");
        assert!(event.get("body").is_none());
    }

    #[test]
    fn the_function_reads_the_event_as_lambda_http_reads_it_in_lambda() {
        let parts = parts(
            "/feature-x/submissions?limit=1&limit=2",
            &[
                ("authorization", "Bearer one"),
                ("authorization", "Bearer two"),
                ("cookie", "a=1; b=2"),
                ("host", "localhost:3000"),
            ],
        );
        let request = request(&parts, b"{\"x\":1}").unwrap();
        // lambda_http reads the parameters from rawQueryString: every value, in order.
        let params = request.query_string_parameters();
        assert_eq!(params.first("limit"), Some("1"));
        assert_eq!(params.all("limit"), Some(vec!["1", "2"]));
        // One Authorization header, both values in it.
        let auth: Vec<_> = request.headers().get_all("authorization").iter().collect();
        assert_eq!(auth, ["Bearer one,Bearer two"]);
        assert_eq!(request.headers()["cookie"], "a=1; b=2");
        assert_eq!(request.uri().path(), "/feature-x/submissions");
        assert_eq!(request.method(), http::Method::GET);
        assert!(matches!(request.body(), Body::Text(t) if t == "{\"x\":1}"));
        let binary = self::request(&parts, &[0xff, 0x00]).unwrap();
        assert!(matches!(binary.body(), Body::Binary(b) if b == &[0xff, 0x00]));
    }

    #[test]
    fn the_function_gets_the_template_route_key_and_path_parameters_as_in_api_gateway() {
        let one = request(&parts("/feature-x/submissions/01abc?x=1", &[]), b"").unwrap();
        assert_eq!(
            lockstep_http::metered::route_key(one.extensions()).as_deref(),
            Some("GET /feature-x/submissions/{id}")
        );
        assert_eq!(one.path_parameters().first("id"), Some("01abc"));
        let event = event(&parts("/config", &[]), b"").unwrap();
        assert_eq!(event["routeKey"], "GET /config");
        assert_eq!(event["requestContext"]["routeKey"], "GET /config");
        assert!(event.get("pathParameters").is_none());
        let unrouted = request(&parts("/nowhere", &[]), b"").unwrap();
        assert_eq!(
            lockstep_http::metered::route_key(unrouted.extensions()),
            None
        );
    }

    #[test]
    fn a_host_or_target_no_route_could_have_is_refused_before_any_function() {
        for host in [
            "localhost",
            "127.0.0.1:3000",
            "[::1]",
            "[::1]:3000",
            "a-b.example",
        ] {
            assert!(
                event(&parts("/config", &[("host", host)]), b"").is_ok(),
                "{host}"
            );
        }
        assert!(matches!(
            event(&parts("*", &[("host", "localhost")]), b""),
            Err(GatewayError::NotAPath)
        ));
        for host in [
            "a b",
            "x/y",
            "[zz]",
            "host:99999",
            "host:",
            ":80",
            "user@host",
        ] {
            assert!(
                matches!(
                    event(&parts("/config", &[("host", host)]), b""),
                    Err(GatewayError::BadHost)
                ),
                "{host}"
            );
        }
    }

    #[test]
    fn the_client_gets_one_value_per_header_and_every_cookie_as_lambda_returns_them() {
        let response = lambda_http::Response::builder()
            .header("vary", "origin")
            .header("vary", "authorization")
            .header("set-cookie", "a=1")
            .header("set-cookie", "b=2")
            .body(Body::Empty)
            .unwrap();
        let written = super::response(response);
        let vary: Vec<_> = written.headers().get_all("vary").iter().collect();
        assert_eq!(vary, ["origin"]);
        let cookies: Vec<_> = written.headers().get_all("set-cookie").iter().collect();
        assert_eq!(cookies, ["a=1", "b=2"]);
    }
}
