//! JSON request bodies: read once into a typed value ([`parse_json_body`]), and the 400 that
//! says what is wrong with one — where (line and column, the field), what was expected and what
//! kind of value came instead — without repeating a byte of what the caller sent.
//!
//! serde's own messages quote the input (`invalid type: string "<the value>", expected u32`,
//! `unknown field `<the name>``), so a 400 built from them reflects whatever a caller (or a page
//! that tricked a browser into calling) put in the body. The refusal here is assembled only
//! from the target type's own description (its declared fields, serde's "expected ..." text,
//! which comes from the type), fixed words for the kind of value found, and positions.

use crate::problem::{ApiError, MAX_BODY_BYTES};
use http::header::CONTENT_TYPE;
use lambda_http::{Body, Request};
use serde::de::{self, DeserializeOwned, Deserializer, Visitor};
use serde_path_to_error::Segment;
use std::fmt;

/// Reads a JSON body into `T`: 415 unless `application/json`, 413 over [`MAX_BODY_BYTES`], 400
/// for malformed JSON, wrong types or missing fields, with a detail naming the line and column,
/// the field and what it expects, never a value from the body ([`refusal`]).
pub fn parse_json_body<T: DeserializeOwned>(request: &Request) -> Result<T, ApiError> {
    let is_json = request
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/json"));
    if !is_json {
        return Err(ApiError::UnsupportedMediaType);
    }
    let bytes: &[u8] = match request.body() {
        Body::Empty => b"",
        Body::Text(text) => text.as_bytes(),
        Body::Binary(bytes) => bytes,
        _ => b"",
    };
    if bytes.len() > MAX_BODY_BYTES {
        return Err(ApiError::PayloadTooLarge);
    }
    if bytes.is_empty() {
        return Err(ApiError::BadRequest(
            "The body is empty; a JSON object is required.".into(),
        ));
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de)
        .map_err(|error| ApiError::BadRequest(refusal::<T>(&error)))?;
    // Anything after the value (serde_json's `from_slice` checks the same).
    de.end().map_err(|error| {
        ApiError::BadRequest(format!(
            "The body is not valid JSON (line {}, column {}).",
            error.line(),
            error.column()
        ))
    })?;
    Ok(value)
}

/// The 400's detail for `error` met while reading a `T`. Built from `T`'s description, the
/// error's position and fixed words only.
pub fn refusal<T: DeserializeOwned>(
    error: &serde_path_to_error::Error<serde_json::Error>,
) -> String {
    let inner = error.inner();
    let at = format!("line {}, column {}", inner.line(), inner.column());
    if !matches!(inner.classify(), serde_json::error::Category::Data) {
        return format!("The body is not valid JSON ({at}).");
    }
    let fields = declared_fields::<T>();
    let field = field_path(error.path(), fields);
    let at_field = field
        .as_deref()
        .map(|f| format!(" at `{f}`"))
        .unwrap_or_default();
    let detail = match Problem::of(inner, fields) {
        Problem::UnknownField => {
            let accepted = if fields.is_empty() {
                String::new()
            } else {
                format!("; the fields are {}", fields.join(", "))
            };
            return format!("The body has a field this route does not accept ({at}){accepted}.");
        }
        Problem::Missing(Some(name)) => format!("the field `{name}` is required"),
        Problem::Missing(None) => "a required field is missing".to_owned(),
        Problem::Duplicate(Some(name)) => format!("the field `{name}` is given twice"),
        Problem::Duplicate(None) => "a field is given twice".to_owned(),
        Problem::Mismatch { expected, found } => {
            let expected = expected.map(|e| format!("expected {e}"));
            let found = found.map(|f| format!("found {f}"));
            match (expected, found) {
                (Some(e), Some(f)) => format!("{e}, {f}"),
                (Some(e), None) => e,
                (None, Some(f)) => format!("unexpected {f}"),
                (None, None) => "a value of the wrong type or out of range".to_owned(),
            }
        }
        Problem::Other => "a value this route does not accept".to_owned(),
    };
    format!("The body does not match this route's fields ({at}){at_field}: {detail}.")
}

/// What serde found wrong, with only the parts that come from the target type.
#[derive(Debug, PartialEq, Eq)]
enum Problem {
    /// A field the type does not declare (its name is the caller's: never repeated).
    UnknownField,
    /// A required field is missing: its name, when the type declares it.
    Missing(Option<&'static str>),
    /// A field given twice: its name, when the type declares it.
    Duplicate(Option<&'static str>),
    /// A value of the wrong type, out of range, of the wrong length or not among the accepted
    /// ones: what the type expected (serde's text, from the type) and which kind of value came.
    Mismatch {
        expected: Option<String>,
        found: Option<&'static str>,
    },
    /// Anything else (a type's own check): nothing of its message is repeated.
    Other,
}

impl Problem {
    /// Reads serde's message, whose shapes are fixed by `serde::de::Error`'s provided methods
    /// (`invalid type: {unexpected}, expected {expected}` and so on). Only the text after the
    /// last `, expected ` is kept, and only in the shapes where serde puts the type's
    /// description last; names are kept only when `fields` declares them.
    fn of(error: &serde_json::Error, fields: &'static [&'static str]) -> Self {
        let full = error.to_string();
        let suffix = format!(" at line {} column {}", error.line(), error.column());
        let message = full.strip_suffix(&suffix).unwrap_or(&full);
        let declared = |rest: &str| {
            let name = rest.strip_prefix('`')?.strip_suffix('`')?;
            fields.iter().copied().find(|f| *f == name)
        };
        let expected = || {
            message
                .rsplit_once(", expected ")
                .map(|(_, expected)| expected.to_owned())
        };
        if message.starts_with("unknown field `") {
            Problem::UnknownField
        } else if let Some(rest) = message.strip_prefix("missing field ") {
            Problem::Missing(declared(rest))
        } else if let Some(rest) = message.strip_prefix("duplicate field ") {
            Problem::Duplicate(declared(rest))
        } else if let Some(rest) = message
            .strip_prefix("invalid type: ")
            .or_else(|| message.strip_prefix("invalid value: "))
        {
            Problem::Mismatch {
                expected: expected(),
                found: found(rest),
            }
        } else if message.starts_with("invalid length ") {
            Problem::Mismatch {
                expected: expected(),
                found: None,
            }
        } else if message.starts_with("unknown variant `") {
            // `unknown variant `{name}`, expected {variants}`; an enum with no variants says
            // `there are no variants` instead, and the name before it is the caller's.
            Problem::Mismatch {
                expected: if message.ends_with(", there are no variants") {
                    None
                } else {
                    expected()
                },
                found: Some("another value"),
            }
        } else {
            Problem::Other
        }
    }
}

/// The kind of value serde found, in fixed words: the start of its `Unexpected` text, never the
/// value that follows.
fn found(unexpected: &str) -> Option<&'static str> {
    const KINDS: [(&str, &str); 12] = [
        ("boolean", "a boolean"),
        ("integer", "a number"),
        ("floating point", "a number"),
        ("string", "a string"),
        ("character", "a string"),
        ("null", "null"),
        ("unit value", "null"),
        ("map", "an object"),
        ("sequence", "an array"),
        ("byte array", "bytes"),
        ("Option value", "a value"),
        ("enum", "a value"),
    ];
    KINDS
        .iter()
        .find(|(prefix, _)| {
            unexpected
                .strip_prefix(prefix)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', ',']))
        })
        .map(|(_, words)| *words)
}

/// The path to the field in error, as far as it can be told without the caller's text: array
/// positions, and a top-level field only when `T` declares it (a key `T` does not declare, such
/// as an unknown field's or a map's, is the caller's and is never repeated).
fn field_path(path: &serde_path_to_error::Path, fields: &[&str]) -> Option<String> {
    let mut out = String::new();
    for (depth, segment) in path.iter().enumerate() {
        match segment {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } if depth == 0 && fields.contains(&key.as_str()) => {
                out.push_str(key)
            }
            _ => break,
        }
    }
    (!out.is_empty()).then_some(out)
}

/// The field names `T` declares, if it is a struct; empty otherwise. Asked of `T` itself, by a
/// deserializer that records what `deserialize_struct` is told and stops there.
fn declared_fields<T: DeserializeOwned>() -> &'static [&'static str] {
    let mut fields: &'static [&'static str] = &[];
    let _ = T::deserialize(FieldProbe(&mut fields));
    fields
}

struct FieldProbe<'a>(&'a mut &'static [&'static str]);

#[derive(Debug)]
struct Stop;

impl fmt::Display for Stop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("probe")
    }
}

impl std::error::Error for Stop {}

impl de::Error for Stop {
    fn custom<M: fmt::Display>(_: M) -> Self {
        Stop
    }
}

impl<'de> Deserializer<'de> for FieldProbe<'_> {
    type Error = Stop;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Stop> {
        Err(Stop)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        fields: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Stop> {
        *self.0 = fields;
        Err(Stop)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde::Deserialize;

    #[derive(Deserialize, Debug)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    #[allow(dead_code)]
    struct Thing {
        name: String,
        count: u32,
        kind: Kind,
        #[serde(default)]
        tags: Vec<String>,
    }

    #[derive(Deserialize, Debug)]
    #[serde(rename_all = "lowercase")]
    #[allow(dead_code)]
    enum Kind {
        Basic,
        Premium,
    }

    fn request(content_type: Option<&str>, body: &str) -> Request {
        let mut builder = http::Request::builder().method("POST").uri("/x");
        if let Some(ct) = content_type {
            builder = builder.header(CONTENT_TYPE, ct);
        }
        builder.body(Body::Text(body.to_owned())).unwrap()
    }

    fn detail(body: &str) -> String {
        match parse_json_body::<Thing>(&request(Some("application/json"), body)) {
            Err(ApiError::BadRequest(detail)) => detail,
            other => panic!("expected a 400, got {other:?}"),
        }
    }

    #[test]
    fn body_parsing_maps_each_bad_input_to_its_status() {
        let ok: Result<Thing, _> = parse_json_body(&request(
            Some("application/json; charset=utf-8"),
            r#"{"name":"a","count":1,"kind":"basic"}"#,
        ));
        assert!(ok.is_ok());
        let cases = [
            (request(Some("text/plain"), r#"{"name":"a"}"#), 415),
            (request(None, r#"{"name":"a"}"#), 415),
            (
                request(Some("application/json"), &"x".repeat(MAX_BODY_BYTES + 1)),
                413,
            ),
            (request(Some("application/json"), "{not json"), 400),
            (request(Some("application/json"), r#"{"name": 5}"#), 400),
            (request(Some("application/json"), r#"{}"#), 400),
            (request(Some("application/json"), ""), 400),
            (
                request(
                    Some("application/json"),
                    r#"{"name":"a","count":1,"kind":"basic"} trailing"#,
                ),
                400,
            ),
        ];
        for (req, status) in cases {
            let err = parse_json_body::<Thing>(&req).unwrap_err();
            assert_eq!(err.status(), status, "{err}");
        }
    }

    #[test]
    fn a_refusal_names_the_place_the_field_and_the_expectation() {
        assert_eq!(
            detail(r#"{"name": "a", "count": "MARK", "kind": "basic"}"#),
            "The body does not match this route's fields (line 1, column 29) at `count`: \
             expected u32, found a string."
        );
        assert_eq!(
            detail(r#"{"name": "a", "count": 1, "kind": "MARK"}"#),
            "The body does not match this route's fields (line 1, column 40) at `kind`: \
             expected `basic` or `premium`, found another value."
        );
        assert_eq!(
            detail(r#"{"name": "a", "count": 1, "kind": "basic", "MARK": 1}"#),
            "The body has a field this route does not accept (line 1, column 49); the fields \
             are name, count, kind, tags."
        );
        assert_eq!(
            detail(r#"{"name": "a", "kind": "basic"}"#),
            "The body does not match this route's fields (line 1, column 30): the field \
             `count` is required."
        );
        assert_eq!(
            detail(r#"{"name": "a", "count": 1, "kind": "basic", "tags": ["x", 7]}"#),
            "The body does not match this route's fields (line 1, column 58) at `tags[1]`: \
             expected a string, found a number."
        );
        assert_eq!(
            detail(r#"{"name": "a", "count": -1, "kind": "basic"}"#),
            "The body does not match this route's fields (line 1, column 25) at `count`: \
             expected u32, found a number."
        );
        assert_eq!(
            detail(r#"{"name": "MARK"#),
            "The body is not valid JSON (line 1, column 14)."
        );
    }

    proptest! {
        /// Whatever text is put wherever a caller can put text, the refusal holds none of it.
        #[test]
        fn no_refusal_repeats_the_callers_text(
            text in "[A-Za-z<>/\"'`, ]{0,40}",
            place in 0usize..7,
        ) {
            // A marker no fixed text contains, around whatever the caller may write.
            let marker = format!("QZJ{text}QZJ");
            let s = serde_json::to_string(&marker).unwrap();
            let body = match place {
                0 => format!(r#"{{"name": "a", "count": {s}, "kind": "basic"}}"#),
                1 => format!(r#"{{"name": "a", "count": 1, "kind": {s}}}"#),
                2 => format!(r#"{{"name": "a", "count": 1, "kind": "basic", {s}: 1}}"#),
                3 => format!(r#"{{"name": {{{s}: {s}}}, "count": 1, "kind": "basic"}}"#),
                4 => format!(r#"{{"name": "a", "count": 1, "kind": "basic", "tags": [{s}, 1]}}"#),
                5 => format!(r#"{{{s}: "a"}}"#),
                _ => format!(r#"{{"name": {s}"#),
            };
            let refusal = detail(&body);
            prop_assert!(!refusal.contains("QZJ"), "{refusal:?}");
            if text.len() >= 6 {
                prop_assert!(!refusal.contains(&text), "{refusal:?}");
            }
        }
    }
}
