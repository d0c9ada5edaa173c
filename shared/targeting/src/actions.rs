//! The condition actions: Powertools' 21, each one small function, registered in one table
//! ([`ACTIONS`]). An action parses its operand once (at validation) and then tests a context
//! value against it at evaluation.
//!
//! A condition whose context key is missing does not match (as in Powertools), whatever the
//! action, `NOT_EQUALS` and `…_NOT_IN_…` included. A context value of a type the action cannot
//! use (a number for `STARTSWITH`, a string for `ALL_IN_VALUE`) does not match either: where
//! Python raises and Powertools answers false, the answer here is the same false. The choices
//! that differ from Python are marked *Choice* below and listed in docs/targeting.md.

use crate::compare::{self, as_i128};
use crate::schedule::{DateTimeRange, Days, TimeRange};
use chrono::{DateTime, Utc};
use serde_json::Value;
use std::cmp::Ordering;

/// A condition's operand, parsed by its action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operand {
    /// Any JSON value but null.
    Any(Value),
    /// A list.
    List(Vec<Value>),
    /// `MODULO_RANGE`: `START <= context % BASE <= END`.
    Modulo {
        /// `BASE`, at least 1.
        base: i128,
        /// `START`.
        start: i128,
        /// `END`.
        end: i128,
    },
    /// `SCHEDULE_BETWEEN_TIME_RANGE`.
    TimeRange(TimeRange),
    /// `SCHEDULE_BETWEEN_DATETIME_RANGE`.
    DateTimeRange(DateTimeRange),
    /// `SCHEDULE_BETWEEN_DAYS_OF_WEEK`.
    Days(Days),
}

/// One action: its name, what it reads, how it parses its operand and how it tests.
#[derive(Debug)]
pub struct Action {
    /// Its name in the schema.
    pub name: &'static str,
    /// For the time-based actions, the key the condition must name (`CURRENT_TIME`, …): they
    /// read the clock, not the context. `None` for the actions that read the context.
    pub clock_key: Option<&'static str>,
    /// Parses the condition's `value`.
    pub parse: fn(&Value) -> Result<Operand, String>,
    /// Whether the context value (null for the time-based actions) matches the operand at `now`.
    pub test: fn(&Value, &Operand, DateTime<Utc>) -> bool,
}

/// Finds an action by its schema name.
pub fn find(name: &str) -> Option<&'static Action> {
    ACTIONS.iter().find(|action| action.name == name)
}

const fn context(
    name: &'static str,
    parse: fn(&Value) -> Result<Operand, String>,
    test: fn(&Value, &Operand, DateTime<Utc>) -> bool,
) -> Action {
    Action {
        name,
        clock_key: None,
        parse,
        test,
    }
}

/// Every action, in Powertools' order.
pub static ACTIONS: [Action; 21] = [
    context("EQUALS", any, equals),
    context("NOT_EQUALS", any, not_equals),
    context("KEY_GREATER_THAN_VALUE", any, greater),
    context("KEY_GREATER_THAN_OR_EQUAL_VALUE", any, greater_or_equal),
    context("KEY_LESS_THAN_VALUE", any, less),
    context("KEY_LESS_THAN_OR_EQUAL_VALUE", any, less_or_equal),
    context("STARTSWITH", any, starts_with),
    context("ENDSWITH", any, ends_with),
    context("IN", list, key_in_value),
    context("NOT_IN", list, key_not_in_value),
    context("KEY_IN_VALUE", list, key_in_value),
    context("KEY_NOT_IN_VALUE", list, key_not_in_value),
    context("VALUE_IN_KEY", any, value_in_key),
    context("VALUE_NOT_IN_KEY", any, value_not_in_key),
    context("ALL_IN_VALUE", list, all_in_value),
    context("ANY_IN_VALUE", list, any_in_value),
    context("NONE_IN_VALUE", list, none_in_value),
    Action {
        name: "SCHEDULE_BETWEEN_TIME_RANGE",
        clock_key: Some("CURRENT_TIME"),
        parse: |v| TimeRange::parse(v).map(Operand::TimeRange),
        test: in_time_range,
    },
    Action {
        name: "SCHEDULE_BETWEEN_DATETIME_RANGE",
        clock_key: Some("CURRENT_DATETIME"),
        parse: |v| DateTimeRange::parse(v).map(Operand::DateTimeRange),
        test: in_datetime_range,
    },
    Action {
        name: "SCHEDULE_BETWEEN_DAYS_OF_WEEK",
        clock_key: Some("CURRENT_DAY_OF_WEEK"),
        parse: |v| Days::parse(v).map(Operand::Days),
        test: on_days,
    },
    context("MODULO_RANGE", modulo, modulo_range),
];

// Operand parsers.

fn any(value: &Value) -> Result<Operand, String> {
    Ok(Operand::Any(value.clone()))
}

/// *Choice*: the `IN` family takes a list. Python's `in` also tests a substring when the value is
/// a string (`"prem" IN "premium"`) or a key when it is an object: an accident we refuse loudly
/// rather than copy.
fn list(value: &Value) -> Result<Operand, String> {
    match value {
        Value::Array(items) => Ok(Operand::List(items.clone())),
        _ => Err("the value must be a list".to_owned()),
    }
}

/// *Choice*: `BASE`, `START` and `END` are JSON integers, not booleans (Python's `isinstance(True,
/// int)` admits them), with `0 <= START <= END <= BASE - 1` (as Powertools checks).
fn modulo(value: &Value) -> Result<Operand, String> {
    let shape = "the value must be a dictionary with integer 'BASE', 'START' and 'END'";
    let fields = value.as_object().ok_or(shape)?;
    let int = |key: &str| match fields.get(key) {
        Some(Value::Number(n)) => as_i128(n).ok_or(shape),
        _ => Err(shape),
    };
    let (base, start, end) = (int("BASE")?, int("START")?, int("END")?);
    if !(0 <= start && start <= end && end < base) {
        return Err("'MODULO_RANGE' must satisfy 0 <= START <= END <= BASE - 1".to_owned());
    }
    Ok(Operand::Modulo { base, start, end })
}

// Tests. Each reads only the operand variant its parser makes; any other cannot occur.

fn operand(op: &Operand) -> Option<&Value> {
    match op {
        Operand::Any(value) => Some(value),
        _ => None,
    }
}

fn items(op: &Operand) -> &[Value] {
    match op {
        Operand::List(items) => items,
        _ => &[],
    }
}

fn equals(ctx: &Value, op: &Operand, _: DateTime<Utc>) -> bool {
    operand(op).is_some_and(|v| compare::equal(ctx, v))
}

fn not_equals(ctx: &Value, op: &Operand, _: DateTime<Utc>) -> bool {
    operand(op).is_some_and(|v| !compare::equal(ctx, v))
}

fn ordered(ctx: &Value, op: &Operand, accept: fn(Ordering) -> bool) -> bool {
    operand(op)
        .and_then(|v| compare::order(ctx, v))
        .is_some_and(accept)
}

fn greater(ctx: &Value, op: &Operand, _: DateTime<Utc>) -> bool {
    ordered(ctx, op, Ordering::is_gt)
}

fn greater_or_equal(ctx: &Value, op: &Operand, _: DateTime<Utc>) -> bool {
    ordered(ctx, op, Ordering::is_ge)
}

fn less(ctx: &Value, op: &Operand, _: DateTime<Utc>) -> bool {
    ordered(ctx, op, Ordering::is_lt)
}

fn less_or_equal(ctx: &Value, op: &Operand, _: DateTime<Utc>) -> bool {
    ordered(ctx, op, Ordering::is_le)
}

fn starts_with(ctx: &Value, op: &Operand, _: DateTime<Utc>) -> bool {
    match (ctx, operand(op)) {
        (Value::String(s), Some(Value::String(prefix))) => s.starts_with(prefix.as_str()),
        _ => false,
    }
}

fn ends_with(ctx: &Value, op: &Operand, _: DateTime<Utc>) -> bool {
    match (ctx, operand(op)) {
        (Value::String(s), Some(Value::String(suffix))) => s.ends_with(suffix.as_str()),
        _ => false,
    }
}

fn key_in_value(ctx: &Value, op: &Operand, _: DateTime<Utc>) -> bool {
    compare::member(ctx, items(op))
}

fn key_not_in_value(ctx: &Value, op: &Operand, _: DateTime<Utc>) -> bool {
    !compare::member(ctx, items(op))
}

/// *Choice*: the context value must be a list. Python's `in` would also test a substring of a
/// string context value (`"read" VALUE_IN_KEY` of the claim `"readonly write"` would match) or a
/// key of an object.
fn value_in_key(ctx: &Value, op: &Operand, _: DateTime<Utc>) -> bool {
    match (ctx, operand(op)) {
        (Value::Array(list), Some(v)) => compare::member(v, list),
        _ => false,
    }
}

/// *Choice*: as [`value_in_key`], a context value that is not a list does not match.
fn value_not_in_key(ctx: &Value, op: &Operand, _: DateTime<Utc>) -> bool {
    match (ctx, operand(op)) {
        (Value::Array(list), Some(v)) => !compare::member(v, list),
        _ => false,
    }
}

fn all_in_value(ctx: &Value, op: &Operand, _: DateTime<Utc>) -> bool {
    match ctx {
        Value::Array(list) => list.iter().all(|item| compare::member(item, items(op))),
        _ => false,
    }
}

fn any_in_value(ctx: &Value, op: &Operand, _: DateTime<Utc>) -> bool {
    match ctx {
        Value::Array(list) => list.iter().any(|item| compare::member(item, items(op))),
        _ => false,
    }
}

fn none_in_value(ctx: &Value, op: &Operand, _: DateTime<Utc>) -> bool {
    match ctx {
        Value::Array(list) => !list.iter().any(|item| compare::member(item, items(op))),
        _ => false,
    }
}

fn in_time_range(_: &Value, op: &Operand, now: DateTime<Utc>) -> bool {
    matches!(op, Operand::TimeRange(range) if range.contains(now))
}

fn in_datetime_range(_: &Value, op: &Operand, now: DateTime<Utc>) -> bool {
    matches!(op, Operand::DateTimeRange(range) if range.contains(now))
}

fn on_days(_: &Value, op: &Operand, now: DateTime<Utc>) -> bool {
    matches!(op, Operand::Days(days) if days.contains(now))
}

/// *Choice*: the context value must be an integer (a float with no fraction counts; a boolean
/// does not, where Python computes `True % 2`). A negative value takes the mathematical modulo,
/// `-1 % 5 = 4`, which for the positive `BASE` validation demands is what Python computes too.
fn modulo_range(ctx: &Value, op: &Operand, _: DateTime<Utc>) -> bool {
    let Operand::Modulo { base, start, end } = *op else {
        return false;
    };
    let Value::Number(n) = ctx else {
        return false;
    };
    let value = as_i128(n).or_else(|| {
        n.as_f64()
            .filter(|f| f.fract() == 0.0 && f.abs() < 1e30)
            .map(|f| f as i128)
    });
    value.is_some_and(|v| (start..=end).contains(&v.rem_euclid(base)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn test(action: &str, ctx: Value, value: Value) -> bool {
        let action = find(action).unwrap();
        let operand = (action.parse)(&value).unwrap();
        (action.test)(&ctx, &operand, Utc::now())
    }

    #[test]
    fn the_table_holds_every_powertools_action_once() {
        assert_eq!(ACTIONS.len(), 21);
        for (i, a) in ACTIONS.iter().enumerate() {
            assert!(
                ACTIONS[i + 1..].iter().all(|b| b.name != a.name),
                "{}",
                a.name
            );
        }
    }

    #[test]
    fn comparisons_follow_the_compare_rules() {
        assert!(test("EQUALS", json!(3), json!(3.0)));
        assert!(!test("EQUALS", json!(true), json!(1)));
        assert!(test("NOT_EQUALS", json!("1"), json!(1)));
        assert!(test("KEY_GREATER_THAN_VALUE", json!(10), json!(9.5)));
        assert!(!test("KEY_GREATER_THAN_VALUE", json!("10"), json!(9)));
        assert!(test(
            "KEY_LESS_THAN_OR_EQUAL_VALUE",
            json!("abc"),
            json!("abc")
        ));
    }

    #[test]
    fn membership_actions_take_lists_and_test_elements() {
        assert!(test("IN", json!("gold"), json!(["gold", "silver"])));
        assert!(test("NOT_IN", json!("bronze"), json!(["gold"])));
        assert!(test(
            "VALUE_IN_KEY",
            json!(["admin", "dev"]),
            json!("admin")
        ));
        assert!(!test(
            "VALUE_IN_KEY",
            json!("administrator"),
            json!("admin")
        ));
        assert!(!test(
            "VALUE_NOT_IN_KEY",
            json!("administrator"),
            json!("x")
        ));
        assert!(test("ALL_IN_VALUE", json!([]), json!(["a"])));
        assert!(!test("ANY_IN_VALUE", json!([]), json!(["a"])));
        assert!(test("NONE_IN_VALUE", json!(["b"]), json!(["a"])));
        assert!(!test("ALL_IN_VALUE", json!("a"), json!(["a"])));
        assert!((find("IN").unwrap().parse)(&json!("premium,gold")).is_err());
    }

    #[test]
    fn modulo_range_takes_integers_and_the_mathematical_modulo() {
        let range = json!({"BASE": 5, "START": 4, "END": 4});
        assert!(test("MODULO_RANGE", json!(-1), range.clone()));
        assert!(test("MODULO_RANGE", json!(9.0), range.clone()));
        assert!(!test("MODULO_RANGE", json!(9.5), range.clone()));
        assert!(!test(
            "MODULO_RANGE",
            json!(true),
            json!({"BASE": 2, "START": 1, "END": 1})
        ));
        let parse = find("MODULO_RANGE").unwrap().parse;
        assert!(parse(&json!({"BASE": 5, "START": 3, "END": 5})).is_err());
        assert!(parse(&json!({"BASE": 5, "START": true, "END": 1})).is_err());
        assert!(parse(&json!({"BASE": 5.0, "START": 0, "END": 1})).is_err());
    }
}
