//! The OpenFeature `EvaluationContext` as the JSON context Lockstep's rules read (design rule 10).
//!
//! Only flags defined by rules read it, so the provider converts it only for them: a plain read
//! pays nothing.

use lockstep_targeting::{Context, TARGETING_KEY};
use open_feature::{EvaluationContext, EvaluationContextFieldValue, StructValue, Value};
use serde_json::{Map, Value as Json};

/// `targetingKey` and the custom fields as one JSON object: booleans, integers, floats and
/// strings as themselves; a date-time as its RFC 3339 text with its offset (`Z` for UTC); a
/// struct holding a `serde_json::Value` as that value (`null` included: the SDK's fields have no
/// null of their own), a `serde_json::Map`, a `StructValue` or an `open_feature::Value` as its
/// JSON. A field JSON cannot hold (a struct of another type, a NaN or infinite float, a date-time
/// beyond RFC 3339's years) is left out, which a condition reads as a missing key. The targeting
/// key wins over a custom field named `targetingKey`.
pub(crate) fn to_context(context: &EvaluationContext) -> Context {
    let mut out: Context = context
        .custom_fields
        .iter()
        .filter_map(|(key, field)| Some((key.clone(), field_json(field)?)))
        .collect();
    if let Some(key) = &context.targeting_key {
        out.insert(TARGETING_KEY.to_owned(), Json::String(key.clone()));
    }
    out
}

fn field_json(field: &EvaluationContextFieldValue) -> Option<Json> {
    Some(match field {
        EvaluationContextFieldValue::Bool(b) => Json::Bool(*b),
        EvaluationContextFieldValue::Int(i) => Json::from(*i),
        EvaluationContextFieldValue::Float(f) => Json::Number(serde_json::Number::from_f64(*f)?),
        EvaluationContextFieldValue::String(s) => Json::String(s.clone()),
        EvaluationContextFieldValue::DateTime(at) => {
            let offset = chrono::FixedOffset::east_opt(at.offset().whole_seconds())?;
            let local = chrono::DateTime::from_timestamp(at.unix_timestamp(), at.nanosecond())?
                .with_timezone(&offset);
            // RFC 3339 has four-digit years only.
            if !(0..=9999).contains(&chrono::Datelike::year(&local)) {
                return None;
            }
            Json::String(local.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
        }
        EvaluationContextFieldValue::Struct(any) => {
            if let Some(json) = any.downcast_ref::<Json>() {
                json.clone()
            } else if let Some(map) = any.downcast_ref::<Map<String, Json>>() {
                Json::Object(map.clone())
            } else if let Some(fields) = any.downcast_ref::<StructValue>() {
                crate::to_json(&Value::Struct(fields.clone()))
            } else {
                crate::to_json(any.downcast_ref::<Value>()?)
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use time::{Duration, OffsetDateTime, UtcOffset};

    #[test]
    fn the_targeting_key_and_every_scalar_field_become_json() {
        let context = EvaluationContext::default()
            .with_targeting_key("u1")
            .with_custom_field("admin", true)
            .with_custom_field("age", 65)
            .with_custom_field("score", 0.5)
            .with_custom_field("email", "a@example.com");

        let converted = to_context(&context);

        assert_eq!(
            Json::Object(converted),
            json!({"targetingKey": "u1", "admin": true, "age": 65, "score": 0.5, "email": "a@example.com"})
        );
    }

    #[test]
    fn a_date_time_is_its_rfc_3339_text_with_its_offset() {
        let at = OffsetDateTime::from_unix_timestamp(1_767_225_600).unwrap(); // 2026-01-01T00:00:00Z
        let berlin =
            (at + Duration::milliseconds(250)).to_offset(UtcOffset::from_hms(1, 0, 0).unwrap());
        let context = EvaluationContext::default()
            .with_custom_field("signedUpAt", at)
            .with_custom_field("lastSeen", berlin);

        let converted = to_context(&context);

        assert_eq!(converted["signedUpAt"], json!("2026-01-01T00:00:00Z"));
        assert_eq!(
            converted["lastSeen"],
            json!("2026-01-01T01:00:00.250+01:00")
        );
    }

    #[test]
    fn a_struct_is_its_json_and_one_of_an_unknown_type_is_left_out() {
        let mut plan = StructValue::default();
        plan.add_field("tier", Value::String("pro".into()));
        plan.add_field(
            "seats",
            Value::Array(vec![Value::Int(1), Value::Float(2.5)]),
        );
        let map: Map<String, Json> = [("region".to_owned(), json!("eu"))].into_iter().collect();
        let context = EvaluationContext::default()
            .with_custom_field("plan", EvaluationContextFieldValue::new_struct(plan))
            .with_custom_field("where", EvaluationContextFieldValue::new_struct(map))
            .with_custom_field(
                "tags",
                EvaluationContextFieldValue::new_struct(json!(["a", "b"])),
            )
            .with_custom_field("email", EvaluationContextFieldValue::new_struct(Json::Null))
            .with_custom_field(
                "role",
                EvaluationContextFieldValue::new_struct(Value::Bool(true)),
            )
            .with_custom_field("opaque", EvaluationContextFieldValue::new_struct(42_u8));

        let converted = to_context(&context);

        assert_eq!(
            Json::Object(converted),
            json!({
                "plan": {"tier": "pro", "seats": [1, 2.5]},
                "where": {"region": "eu"},
                "tags": ["a", "b"],
                "email": null,
                "role": true,
            })
        );
    }

    #[test]
    fn a_float_json_cannot_hold_is_left_out_and_the_targeting_key_wins_over_a_field() {
        let context = EvaluationContext::default()
            .with_targeting_key("u1")
            .with_custom_field("targetingKey", "spoofed")
            .with_custom_field("ratio", f64::NAN)
            .with_custom_field("limit", f64::INFINITY);

        let converted = to_context(&context);

        assert_eq!(Json::Object(converted), json!({"targetingKey": "u1"}));
    }

    #[test]
    fn an_empty_context_is_the_anonymous_caller() {
        assert_eq!(
            &to_context(&EvaluationContext::default()),
            lockstep::targeted::anonymous()
        );
    }
}
