//! AppConfig attribute values (JSON, as the document carried them) as OpenFeature values.
//!
//! Every function here answers; none panics, whatever the configuration holds.

use open_feature::{FlagMetadataValue, StructValue, Value};
use serde_json::{Map, Value as Json};

/// Why a value cannot be read as an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum NotStruct {
    /// It is a value of another kind (named), or a string that does not hold a JSON object.
    Mismatch(&'static str),
    /// It holds a JSON `null`, which OpenFeature's `Value` cannot represent.
    Null,
}

/// The JSON kind of a value, for error messages.
pub(crate) fn kind(value: &Json) -> &'static str {
    match value {
        Json::Null => "null",
        Json::Bool(_) => "boolean",
        Json::Number(_) => "number",
        Json::String(_) => "string",
        Json::Array(_) => "array",
        Json::Object(_) => "object",
    }
}

/// A string attribute.
pub(crate) fn to_string(value: &Json) -> Option<String> {
    value.as_str().map(str::to_owned)
}

/// A whole number that fits an `i64` (written without a fraction: `10`, not `10.0`).
pub(crate) fn to_int(value: &Json) -> Option<i64> {
    value.as_i64()
}

/// Any number (a whole one too).
pub(crate) fn to_float(value: &Json) -> Option<f64> {
    value.as_f64()
}

/// An object: a JSON object, or a string holding one (AppConfig's feature-flag attributes cannot
/// be objects, so an object value is written as its JSON text).
pub(crate) fn to_struct(value: &Json) -> Result<StructValue, NotStruct> {
    match value {
        Json::Object(fields) => struct_of(fields),
        Json::String(text) => match serde_json::from_str::<Json>(text) {
            Ok(Json::Object(fields)) => struct_of(&fields),
            _ => Err(NotStruct::Mismatch("string")),
        },
        other => Err(NotStruct::Mismatch(kind(other))),
    }
}

fn struct_of(fields: &Map<String, Json>) -> Result<StructValue, NotStruct> {
    let mut out = StructValue::default();
    for (key, value) in fields {
        out.add_field(key.clone(), value_of(value)?);
    }
    Ok(out)
}

fn value_of(value: &Json) -> Result<Value, NotStruct> {
    Ok(match value {
        Json::Null => return Err(NotStruct::Null),
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => Value::Int(i),
            (None, Some(f)) => Value::Float(f),
            (None, None) => return Err(NotStruct::Mismatch("number")),
        },
        Json::String(s) => Value::String(s.clone()),
        Json::Array(items) => Value::Array(items.iter().map(value_of).collect::<Result<_, _>>()?),
        Json::Object(fields) => Value::Struct(struct_of(fields)?),
    })
}

/// An attribute as flag metadata, which holds booleans, numbers and strings only; `None` for
/// arrays, objects and `null`.
pub(crate) fn metadata_value(value: &Json) -> Option<FlagMetadataValue> {
    match value {
        Json::Bool(b) => Some(FlagMetadataValue::Bool(*b)),
        Json::Number(n) => n
            .as_i64()
            .map(FlagMetadataValue::Int)
            .or_else(|| n.as_f64().map(FlagMetadataValue::Float)),
        Json::String(s) => Some(FlagMetadataValue::String(s.clone())),
        Json::Null | Json::Array(_) | Json::Object(_) => None,
    }
}

/// An OpenFeature value as JSON: the inverse of the conversion the provider makes for typed
/// reads (a struct becomes an object, an array an array).
pub fn to_json(value: &Value) -> Json {
    match value {
        Value::Bool(b) => Json::Bool(*b),
        Value::Int(i) => Json::from(*i),
        Value::Float(f) => Json::from(*f),
        Value::String(s) => Json::String(s.clone()),
        Value::Array(items) => Json::Array(items.iter().map(to_json).collect()),
        Value::Struct(s) => Json::Object(
            s.fields
                .iter()
                .map(|(k, v)| (k.clone(), to_json(v)))
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn has_null(value: &Json) -> bool {
        match value {
            Json::Null => true,
            Json::Array(items) => items.iter().any(has_null),
            Json::Object(fields) => fields.values().any(has_null),
            _ => false,
        }
    }

    /// Any JSON a configuration can carry: `serde_json`'s numbers are an `i64`, a `u64` or a
    /// finite `f64`. Without `big`, no `u64` above `i64::MAX` (which only a float can hold).
    fn any_json(big: bool) -> impl Strategy<Value = Json> {
        let unsigned = if big { u64::MAX } else { i64::MAX as u64 };
        let leaf = prop_oneof![
            Just(Json::Null),
            any::<bool>().prop_map(Json::Bool),
            any::<i64>().prop_map(Json::from),
            (0..=unsigned).prop_map(Json::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(Json::from),
            ".{0,8}".prop_map(Json::String),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Json::Array),
                prop::collection::btree_map(".{0,6}", inner, 0..6)
                    .prop_map(|m| Json::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn an_object_converts_exactly_when_it_holds_no_null_and_round_trips(
            fields in prop::collection::btree_map(".{0,6}", any_json(false), 0..6),
        ) {
            let object = Json::Object(fields.into_iter().collect());

            let converted = to_struct(&object);

            if has_null(&object) {
                prop_assert_eq!(converted, Err(NotStruct::Null));
            } else {
                let converted = converted.expect("a null-free object converts");
                prop_assert_eq!(to_json(&Value::Struct(converted)), object);
            }
        }

        #[test]
        fn an_object_written_as_json_text_reads_like_the_object(
            fields in prop::collection::btree_map(".{0,6}", any_json(true), 0..6),
        ) {
            let object = Json::Object(fields.into_iter().collect());
            let text = object.to_string();
            // The same object inline in a document, parsed like the document is (serde_json
            // parses a float to within one ulp, so compare two parses of the same text).
            let inline: Json = serde_json::from_str(&text).expect("serde_json's own output");

            prop_assert_eq!(to_struct(&Json::String(text)), to_struct(&inline));
        }

        #[test]
        fn every_reader_answers_any_value_with_its_own_kind_only(value in any_json(true)) {
            prop_assert_eq!(to_string(&value).is_some(), value.is_string());
            prop_assert_eq!(to_int(&value).is_some(), value.is_i64());
            prop_assert_eq!(to_float(&value).is_some(), value.is_number());
            let is_object_text = value
                .as_str()
                .is_some_and(|s| matches!(serde_json::from_str::<Json>(s), Ok(Json::Object(_))));
            if !value.is_object() && !is_object_text {
                prop_assert_eq!(to_struct(&value), Err(NotStruct::Mismatch(kind(&value))));
            }
            prop_assert_eq!(
                metadata_value(&value).is_some(),
                value.is_boolean() || value.is_number() || value.is_string()
            );
        }
    }

    #[test]
    fn numbers_keep_their_kind_and_text_that_is_not_an_object_is_a_string() {
        assert_eq!(to_int(&Json::from(10)), Some(10));
        assert_eq!(to_int(&serde_json::from_str("10.0").unwrap()), None);
        assert_eq!(to_float(&Json::from(10)), Some(10.0));
        assert_eq!(to_int(&Json::from(u64::MAX)), None);
        assert_eq!(
            to_struct(&Json::from("[1, 2]")),
            Err(NotStruct::Mismatch("string"))
        );
        assert_eq!(
            to_struct(&Json::from("not json")),
            Err(NotStruct::Mismatch("string"))
        );
        let nested = to_struct(&serde_json::json!({"a": {"b": [1, 2.5, "x", true]}})).unwrap();
        let Some(Value::Struct(a)) = nested.fields.get("a") else {
            panic!("a nested object is a struct: {nested:?}");
        };
        assert_eq!(
            a.fields.get("b"),
            Some(&Value::Array(vec![
                Value::Int(1),
                Value::Float(2.5),
                Value::String("x".into()),
                Value::Bool(true)
            ]))
        );
    }
}
