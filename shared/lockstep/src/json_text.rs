//! JSON text written straight into a `String`, for the bodies on every request's path (the EMF
//! document, `/config`): serde_json's serializer escapes every key and value byte by byte, and
//! those bodies are mostly fixed keys, numbers, booleans and timestamps. Strings that may need
//! escaping still go through serde_json; tests compare each writer with serde_json's output.

use chrono::{DateTime, Utc};

/// Appends `text` as a JSON string: as it is between quotes when nothing in it needs escaping
/// (a route key, a flag name), else escaped by serde_json.
pub fn push_string(out: &mut String, text: &str) {
    if text.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20) {
        out.push_str(&serde_json::Value::from(text).to_string());
    } else {
        out.push('"');
        out.push_str(text);
        out.push('"');
    }
}

/// Appends `text` as a JSON string, or `null`.
pub fn push_opt_string(out: &mut String, text: Option<&str>) {
    match text {
        Some(text) => push_string(out, text),
        None => out.push_str("null"),
    }
}

/// Appends `"name":` (`name` a fixed key: nothing to escape).
pub fn push_key(out: &mut String, name: &str) {
    out.push('"');
    out.push_str(name);
    out.push_str("\":");
}

/// Appends `true` or `false`.
pub fn push_bool(out: &mut String, value: bool) {
    out.push_str(if value { "true" } else { "false" });
}

/// Appends an unsigned integer.
pub fn push_u64(out: &mut String, value: u64) {
    out.push_str(itoa::Buffer::new().format(value));
}

/// Appends `at` as the JSON string its serde serialization gives ([`crate::rfc3339`]).
pub fn push_time(out: &mut String, at: &DateTime<Utc>) {
    crate::rfc3339::push_json(out, at);
}

/// Appends `at` as a JSON string, or `null`.
pub fn push_opt_time(out: &mut String, at: Option<&DateTime<Utc>>) {
    match at {
        Some(at) => push_time(out, at),
        None => out.push_str("null"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn a_string_is_written_as_serde_json_writes_it(text in "\\PC{0,40}|[a-z\"\\\\/ \\x00-\\x1f]{0,20}") {
            let mut out = String::new();
            push_string(&mut out, &text);
            prop_assert_eq!(out, serde_json::to_string(&text).unwrap());
        }
    }

    #[test]
    fn the_small_values_are_written_as_serde_json_writes_them() {
        let mut out = String::new();
        push_bool(&mut out, true);
        out.push(',');
        push_u64(&mut out, u64::MAX);
        out.push(',');
        push_opt_string(&mut out, None);
        out.push(',');
        push_opt_time(&mut out, None);
        assert_eq!(
            out,
            format!(
                "true,{},null,null",
                serde_json::to_string(&u64::MAX).unwrap()
            )
        );
    }
}
