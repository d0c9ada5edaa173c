//! The evaluation: a pure function of (definition, context, now).
//!
//! Rules are tried in order; the first whose conditions all match serves its value
//! ([`Reason::TargetingMatch`], the variant is the rule's name) or its split's bucket for the
//! caller ([`Reason::Split`], the variant is the bucket's). A split rule whose bucketing key
//! (`targetingKey`, or its `split_by`) is missing, empty or not a string is passed over: there
//! is no stable bucket for an anonymous caller. When no rule serves, the flag's `default`
//! ([`Reason::Default`]); a flag without rules is [`Reason::Static`]. The variant of a default is
//! `"default"`.

use crate::definition::{Condition, Definition, Outcome};
use crate::{Context, TARGETING_KEY};
use chrono::{DateTime, Utc};
use serde_json::Value;

/// Why an evaluation gave its value: OpenFeature's reason names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Reason {
    /// A rule matched.
    TargetingMatch,
    /// A rule matched and split the caller into a bucket.
    Split,
    /// Rules exist and none served: the default.
    Default,
    /// The flag has no rules: its one value.
    Static,
}

impl Reason {
    /// Its OpenFeature name.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::TargetingMatch => "TARGETING_MATCH",
            Reason::Split => "SPLIT",
            Reason::Default => "DEFAULT",
            Reason::Static => "STATIC",
        }
    }
}

/// The variant name of a default or static value.
pub const DEFAULT_VARIANT: &str = "default";

/// An evaluation's answer, borrowing from the definition.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Evaluation<'d> {
    /// The value served.
    pub value: &'d Value,
    /// Why.
    pub reason: Reason,
    /// The rule's name, the split bucket's variant, or [`DEFAULT_VARIANT`].
    pub variant: &'d str,
}

/// Evaluates `definition` for `context` at `now`.
pub fn evaluate<'d>(
    definition: &'d Definition,
    context: &Context,
    now: DateTime<Utc>,
) -> Evaluation<'d> {
    let reason = if definition.rules.is_empty() {
        Reason::Static
    } else {
        Reason::Default
    };
    for rule in &definition.rules {
        if !rule.conditions.iter().all(|c| matches(c, context, now)) {
            continue;
        }
        match &rule.outcome {
            Outcome::Value(value) => {
                return Evaluation {
                    value,
                    reason: Reason::TargetingMatch,
                    variant: &rule.name,
                }
            }
            Outcome::Split(split) => {
                let key = split.by.as_deref().unwrap_or(TARGETING_KEY);
                if let Some(Value::String(by)) = context.get(key) {
                    if !by.is_empty() {
                        let bucket = split.bucket(&definition.name, by, now.timestamp_millis());
                        return Evaluation {
                            value: &bucket.value,
                            reason: Reason::Split,
                            variant: &bucket.variant,
                        };
                    }
                }
            }
        }
    }
    Evaluation {
        value: &definition.default,
        reason,
        variant: DEFAULT_VARIANT,
    }
}

/// Whether one condition matches `context` at `now`: a time-based action reads the clock, any
/// other the context key it names.
pub fn matches(condition: &Condition, context: &Context, now: DateTime<Utc>) -> bool {
    let action = condition.action;
    if action.clock_key.is_some() {
        return (action.test)(&Value::Null, &condition.operand, now);
    }
    // A missing key never matches (Powertools), NOT_EQUALS and NOT_IN included.
    context
        .get(&condition.key)
        .is_some_and(|value| (action.test)(value, &condition.operand, now))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn definition(value: Value) -> Definition {
        Definition::parse("flag", &value).unwrap()
    }

    fn context(value: Value) -> Context {
        value.as_object().cloned().unwrap()
    }

    #[test]
    fn the_first_matching_rule_serves_its_value_and_names_the_variant() {
        let d = definition(json!({"default": "basic", "boolean_type": false, "rules": {
            "gold tier": {"when_match": "gold", "conditions": [{"action": "EQUALS", "key": "tier", "value": "gold"}]},
            "any tier": {"when_match": "any", "conditions": [{"action": "NOT_EQUALS", "key": "tier", "value": ""}]}
        }}));
        let e = evaluate(&d, &context(json!({"tier": "gold"})), Utc::now());
        assert_eq!(
            (e.value, e.reason, e.variant),
            (&json!("gold"), Reason::TargetingMatch, "gold tier")
        );
        let e = evaluate(&d, &context(json!({"tier": "silver"})), Utc::now());
        assert_eq!(e.variant, "any tier");
        let e = evaluate(&d, &context(json!({})), Utc::now());
        assert_eq!(
            (e.value, e.reason, e.variant),
            (&json!("basic"), Reason::Default, "default")
        );
    }

    #[test]
    fn a_flag_without_rules_is_static() {
        let d = definition(json!({"default": true}));
        let e = evaluate(&d, &Context::new(), Utc::now());
        assert_eq!((e.value, e.reason), (&json!(true), Reason::Static));
    }

    #[test]
    fn a_missing_key_matches_no_condition_not_even_a_negative_one() {
        let d = definition(
            json!({"default": false, "rules": {"r": {"when_match": true, "conditions": [
                {"action": "NOT_EQUALS", "key": "tier", "value": "gold"}
            ]}}}),
        );
        assert!(!evaluate(&d, &Context::new(), Utc::now())
            .value
            .as_bool()
            .unwrap());
        assert!(evaluate(&d, &context(json!({"tier": "x"})), Utc::now())
            .value
            .as_bool()
            .unwrap());
    }

    #[test]
    fn a_split_buckets_by_the_targeting_key_and_skips_anonymous_callers() {
        let d = definition(json!({"default": false, "rules": {"half": {"split": [
            {"variant": "on", "value": true, "weight": 50},
            {"variant": "off", "value": false, "weight": 50}
        ]}}}));
        let anonymous = evaluate(&d, &Context::new(), Utc::now());
        assert_eq!(anonymous.reason, Reason::Default);
        let mut on = 0;
        for user in 0..1_000 {
            let ctx = context(json!({"targetingKey": format!("user-{user}")}));
            let first = evaluate(&d, &ctx, Utc::now());
            assert_eq!(first.reason, Reason::Split);
            assert_eq!(first, evaluate(&d, &ctx, Utc::now()), "stable per user");
            on += usize::from(first.variant == "on");
        }
        assert!((400..600).contains(&on), "{on} of 1000 in a 50 % bucket");
    }
}
