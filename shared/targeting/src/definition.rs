//! A flag definition in Powertools' feature-flag schema, parsed and validated once per fetched
//! version, so evaluation never meets a malformed rule.
//!
//! ```json
//! {
//!   "default": false,
//!   "rules": {
//!     "staff": {
//!       "when_match": true,
//!       "conditions": [{"action": "ENDSWITH", "key": "email", "value": "@example.com"}]
//!     },
//!     "a quarter of everyone else": {
//!       "split": [
//!         {"variant": "on", "value": true, "weight": 25},
//!         {"variant": "off", "value": false, "weight": 75}
//!       ]
//!     }
//!   }
//! }
//! ```
//!
//! As in Powertools: `default` is required and not null; `boolean_type` (default true) makes the
//! flag boolean, so `default` and every rule's value must be booleans; rules are tried in the
//! order written; a `when_match` rule needs at least one condition, every one of which must
//! match; a condition has an `action` from [`crate::actions::ACTIONS`], a non-empty `key` (for the
//! time-based actions, the `CURRENT_…` key Powertools names) and a `value` that is not null.
//!
//! The Lockstep extension: a rule may `split` the users it matches (its `conditions` are then
//! optional) into weighted variants, bucketed by [`crate::split`]; `split_seed` replaces the flag
//! key as the hash's prefix (flagd's shared seed) and `split_by` names the context key hashed
//! instead of `targetingKey`. A rule has `when_match` or `split`, never both.
//!
//! *Choices* beyond Powertools (docs/targeting.md): `boolean_type` must be a boolean, not any
//! truthy value; a non-boolean flag's rule must have a `when_match` (Powertools would answer
//! `null`); `rules` is an object, null or an empty list, where Powertools reads any falsy value
//! (`false`, `0`, `""`) as no rules; unknown actions, keys and values are refused here exactly as
//! Powertools refuses them. (tests/powertools_differential.rs checks each against Powertools.)

use crate::actions::{self, Action, Operand};
use crate::ramp::Ramp;
use crate::split::{Bucket, Split};
use serde_json::{Map, Value};
use thiserror::Error;

/// A validated flag definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Definition {
    /// The flag's key (a split's default seed).
    pub name: String,
    /// The value when no rule matches.
    pub default: Value,
    /// Whether the flag is boolean (`boolean_type`, default true).
    pub boolean: bool,
    /// The rules, in the order written.
    pub rules: Vec<Rule>,
}

/// One rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// Its name (the key it is written under).
    pub name: String,
    /// Its conditions, all of which must match.
    pub conditions: Vec<Condition>,
    /// What it serves when they do.
    pub outcome: Outcome,
}

/// What a matching rule serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// `when_match`: one value.
    Value(Value),
    /// `split`: a weighted variant per user.
    Split(Split),
}

/// One condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    /// The context key it reads (for a time-based action, the `CURRENT_…` name).
    pub key: String,
    /// Its action.
    pub action: &'static Action,
    /// Its parsed `value`.
    pub operand: Operand,
}

impl PartialEq for Action {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Eq for Action {}

/// Why a definition was refused: the flag, the rule when the problem is in one, and what.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
#[error("flag {flag:?}{}: {why}", rule.as_ref().map(|r| format!(", rule {r:?}")).unwrap_or_default())]
pub struct DefinitionError {
    /// The flag.
    pub flag: String,
    /// The rule, when the problem is in one.
    pub rule: Option<String>,
    /// What is wrong.
    pub why: String,
}

impl Definition {
    /// Parses and validates the definition of flag `flag`.
    pub fn parse(flag: &str, value: &Value) -> Result<Self, DefinitionError> {
        let error = |rule: Option<&str>, why: String| DefinitionError {
            flag: flag.to_owned(),
            rule: rule.map(str::to_owned),
            why,
        };
        let fields = match value {
            Value::Object(fields) if !fields.is_empty() => fields,
            _ => {
                return Err(error(
                    None,
                    "a definition must be a non-empty object".into(),
                ))
            }
        };
        let boolean = match fields.get("boolean_type") {
            None => true,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err(error(None, "'boolean_type' must be true or false".into())),
        };
        let default = match fields.get("default") {
            None | Some(Value::Null) => {
                return Err(error(None, "'default' must be present and not null".into()))
            }
            Some(v) if boolean && !v.is_boolean() => {
                return Err(error(
                    None,
                    "'default' must be true or false (boolean_type)".into(),
                ))
            }
            Some(v) => v.clone(),
        };
        let rules = match fields.get("rules") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Object(rules)) => rules
                .iter()
                .map(|(name, rule)| {
                    parse_rule(name, rule, boolean).map_err(|why| error(Some(name), why))
                })
                .collect::<Result<_, _>>()?,
            Some(Value::Array(items)) if items.is_empty() => Vec::new(),
            Some(_) => {
                return Err(error(
                    None,
                    "'rules' must be an object of named rules".into(),
                ))
            }
        };
        Ok(Self {
            name: flag.to_owned(),
            default,
            boolean,
            rules,
        })
    }

    /// Whether a document's flag entry is written as a definition (an object with `default`)
    /// rather than a plain value.
    pub fn is_definition(value: &Value) -> bool {
        value
            .as_object()
            .is_some_and(|fields| fields.contains_key("default"))
    }

    /// Whether some caller may be served `true`: the default, a rule's value or a split bucket
    /// with weight is `true`. (What a switch-off is, for a boolean flag defined by rules.)
    pub fn may_serve_true(&self) -> bool {
        let is_true = |v: &Value| v == &Value::Bool(true);
        is_true(&self.default)
            || self.rules.iter().any(|rule| match &rule.outcome {
                Outcome::Value(v) => is_true(v),
                // A ramp's first variant grows from its weight, even from 0.
                Outcome::Split(split) => split.buckets.iter().enumerate().any(|(i, b)| {
                    (b.weight > 0 || (i == 0 && split.ramp.is_some())) && is_true(&b.value)
                }),
            })
    }

    /// Whether any rule reads the clock (a time-based condition or a ramp), so the answer can
    /// change without a deployment.
    pub fn reads_clock(&self) -> bool {
        self.rules.iter().any(|rule| {
            rule.conditions.iter().any(|c| c.action.clock_key.is_some())
                || matches!(&rule.outcome, Outcome::Split(split) if split.ramp.is_some())
        })
    }
}

fn parse_rule(name: &str, rule: &Value, boolean: bool) -> Result<Rule, String> {
    if name.is_empty() {
        return Err("a rule's name must be a non-empty string".into());
    }
    let fields = match rule {
        Value::Object(fields) if !fields.is_empty() => fields,
        _ => return Err("a rule must be a non-empty object".into()),
    };
    let outcome = match (fields.get("when_match"), fields.get("split")) {
        (Some(_), Some(_)) => return Err("a rule has 'when_match' or 'split', not both".into()),
        (Some(value), None) => {
            if boolean && !value.is_boolean() {
                return Err("'when_match' must be true or false (boolean_type)".into());
            }
            if value.is_null() {
                return Err("'when_match' must not be null".into());
            }
            Outcome::Value(value.clone())
        }
        (None, Some(split)) => Outcome::Split(parse_split(fields, split, boolean)?),
        (None, None) => return Err("a rule needs 'when_match' (or a 'split')".into()),
    };
    if fields.contains_key("ramp") && !matches!(outcome, Outcome::Split(_)) {
        return Err("a 'ramp' grows a 'split': this rule has none".into());
    }
    let conditions = match (fields.get("conditions"), &outcome) {
        (Some(Value::Array(items)), _) if !items.is_empty() => items
            .iter()
            .map(parse_condition)
            .collect::<Result<_, _>>()?,
        // A split may apply to everyone its earlier rules left.
        (None | Some(Value::Null), Outcome::Split(_)) => Vec::new(),
        (Some(Value::Array(_)), Outcome::Split(_)) => Vec::new(),
        _ => return Err("'conditions' must be a non-empty list".into()),
    };
    Ok(Rule {
        name: name.to_owned(),
        conditions,
        outcome,
    })
}

fn parse_condition(condition: &Value) -> Result<Condition, String> {
    let fields = match condition {
        Value::Object(fields) if !fields.is_empty() => fields,
        _ => return Err("a condition must be a non-empty object".into()),
    };
    let name = fields.get("action").and_then(Value::as_str).unwrap_or("");
    let action = actions::find(name).ok_or_else(|| {
        let names: Vec<&str> = actions::ACTIONS.iter().map(|a| a.name).collect();
        format!("'action' {name:?} is not one of {names:?}")
    })?;
    let key = match fields.get("key") {
        Some(Value::String(key)) if !key.is_empty() => key.clone(),
        _ => return Err("a condition's 'key' must be a non-empty string".into()),
    };
    if let Some(clock_key) = action.clock_key {
        if key != clock_key {
            return Err(format!(
                "a {} condition's 'key' must be {clock_key:?}",
                action.name
            ));
        }
    }
    let operand = match fields.get("value") {
        None | Some(Value::Null) => return Err("a condition's 'value' must not be null".into()),
        Some(value) => (action.parse)(value).map_err(|why| format!("{}: {why}", action.name))?,
    };
    Ok(Condition {
        key,
        action,
        operand,
    })
}

fn parse_split(rule: &Map<String, Value>, split: &Value, boolean: bool) -> Result<Split, String> {
    let Value::Array(items) = split else {
        return Err("'split' must be a list of {variant, value, weight}".into());
    };
    if items.is_empty() {
        return Err("'split' must have at least one variant".into());
    }
    let mut buckets: Vec<Bucket> = Vec::with_capacity(items.len());
    for item in items {
        let fields = item
            .as_object()
            .ok_or("each 'split' entry must be an object {variant, value, weight}")?;
        let variant = match fields.get("variant") {
            Some(Value::String(v)) if !v.is_empty() => v.clone(),
            _ => return Err("a split entry's 'variant' must be a non-empty string".into()),
        };
        if buckets.iter().any(|b| b.variant == variant) {
            return Err(format!("split variant {variant:?} is named twice"));
        }
        let value = match fields.get("value") {
            None | Some(Value::Null) => {
                return Err(format!("split variant {variant:?} needs a 'value'"))
            }
            Some(v) if boolean && !v.is_boolean() => {
                return Err(format!(
                    "split variant {variant:?}: 'value' must be true or false (boolean_type)"
                ))
            }
            Some(v) => v.clone(),
        };
        let weight = fields
            .get("weight")
            .and_then(Value::as_u64)
            .and_then(|w| u32::try_from(w).ok())
            .ok_or_else(|| {
                format!("split variant {variant:?}: 'weight' must be a non-negative integer")
            })?;
        buckets.push(Bucket {
            variant,
            value,
            weight,
        });
    }
    let text = |key: &str| match rule.get(key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(format!("'{key}' must be a string")),
    };
    let by = text("split_by")?;
    if by.as_deref() == Some("") {
        return Err("'split_by' must name a context key".into());
    }
    let weights: Vec<u32> = buckets.iter().map(|b| b.weight).collect();
    let split = Split::new(buckets, text("split_seed")?, by)?;
    match rule.get("ramp") {
        None => Ok(split),
        Some(ramp) => Ok(split.ramped(Ramp::parse(ramp, &weights)?)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn refused(value: Value) -> DefinitionError {
        Definition::parse("flag", &value).expect_err("should be refused")
    }

    #[test]
    fn a_powertools_feature_parses_with_its_rules_in_order() {
        let text = r#"{"default": false, "rules": {
            "z first": {"when_match": true, "conditions": [{"action": "EQUALS", "key": "tier", "value": "gold"}]},
            "a second": {"when_match": true, "conditions": [{"action": "IN", "key": "tier", "value": ["silver"]}]}
        }}"#;
        let definition =
            Definition::parse("premium", &serde_json::from_str(text).unwrap()).unwrap();
        let names: Vec<&str> = definition.rules.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["z first", "a second"]);
        assert!(definition.boolean);
        assert!(!definition.reads_clock());
    }

    #[test]
    fn errors_name_the_flag_and_the_rule() {
        let error = refused(
            json!({"default": false, "rules": {"vip": {"when_match": true, "conditions": [
                {"action": "EQUALZ", "key": "tier", "value": "gold"}
            ]}}}),
        );
        assert_eq!(error.flag, "flag");
        assert_eq!(error.rule.as_deref(), Some("vip"));
        assert!(
            error
                .to_string()
                .starts_with(r#"flag "flag", rule "vip": 'action' "EQUALZ""#),
            "{error}"
        );
    }

    #[test]
    fn what_powertools_refuses_is_refused() {
        for bad in [
            json!({}),
            json!({"default": null}),
            json!({"default": "on"}),
            json!({"default": false, "rules": "x"}),
            json!({"default": false, "rules": {"r": {"when_match": true, "conditions": []}}}),
            json!({"default": false, "rules": {"r": {"when_match": "yes", "conditions": [{"action": "EQUALS", "key": "k", "value": 1}]}}}),
            json!({"default": false, "rules": {"r": {"when_match": true, "conditions": [{"action": "EQUALS", "key": "", "value": 1}]}}}),
            json!({"default": false, "rules": {"r": {"when_match": true, "conditions": [{"action": "EQUALS", "key": "k", "value": null}]}}}),
            json!({"default": false, "rules": {"r": {"when_match": true, "conditions": [{"action": "SCHEDULE_BETWEEN_TIME_RANGE", "key": "NOW", "value": {"START": "10:00", "END": "11:00"}}]}}}),
            json!({"default": false, "rules": {"r": {"when_match": true, "conditions": [{"action": "MODULO_RANGE", "key": "k", "value": {"BASE": 2, "START": 0, "END": 2}}]}}}),
        ] {
            refused(bad);
        }
    }

    #[test]
    fn lockstep_refuses_what_powertools_would_answer_strangely() {
        refused(json!({"default": false, "boolean_type": "no"}));
        for falsy in [json!(false), json!(0), json!("")] {
            refused(json!({"default": false, "rules": falsy}));
        }
        refused(
            json!({"default": "a", "boolean_type": false, "rules": {"r": {"conditions": [{"action": "EQUALS", "key": "k", "value": 1}]}}}),
        );
        refused(
            json!({"default": false, "rules": {"r": {"when_match": true, "conditions": [{"action": "IN", "key": "k", "value": "abc"}]}}}),
        );
    }

    #[test]
    fn a_split_needs_named_weighted_typed_variants() {
        let split =
            |entries: Value| json!({"default": false, "rules": {"rollout": {"split": entries}}});
        assert!(Definition::parse(
            "f",
            &split(json!([
                {"variant": "on", "value": true, "weight": 1},
                {"variant": "off", "value": false, "weight": 9999}
            ]))
        )
        .is_ok());
        for bad in [
            json!([]),
            json!([{"variant": "on", "value": true, "weight": -1}]),
            json!([{"variant": "on", "value": true, "weight": 0}]),
            json!([{"variant": "on", "value": "yes", "weight": 1}]),
            json!([{"variant": "on", "value": true, "weight": 1}, {"variant": "on", "value": false, "weight": 1}]),
            json!([{"value": true, "weight": 1}]),
            json!([{"variant": "on", "value": true, "weight": 1.5}]),
        ] {
            let error = refused(split(bad.clone()));
            assert_eq!(error.rule.as_deref(), Some("rollout"), "{bad}");
        }
        refused(json!({"default": false, "rules": {"r": {"when_match": true, "split": []}}}));
    }

    #[test]
    fn a_time_based_condition_makes_the_definition_read_the_clock() {
        let definition = Definition::parse("f", &json!({"default": false, "rules": {"weekend": {
            "when_match": true,
            "conditions": [{"action": "SCHEDULE_BETWEEN_DAYS_OF_WEEK", "key": "CURRENT_DAY_OF_WEEK", "value": {"DAYS": ["SATURDAY"]}}]
        }}}))
        .unwrap();
        assert!(definition.reads_clock());
    }
}
