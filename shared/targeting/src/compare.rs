//! What "equal", "greater" and "member of" mean between JSON values: the one home of the choices
//! where Powertools' Python behaviour is accidental (docs/targeting.md lists each).
//!
//! - Numbers compare by value, whatever their JSON spelling: `1 == 1.0`, as in Python, and
//!   exactly: an integer beyond 2^53 is not rounded to a float to compare with one (as Python).
//! - A boolean is not a number: `true == 1` is false here (Python says true, since `bool` is a
//!   subclass of `int`), and `true > 0` does not match.
//! - Ordering (`KEY_GREATER_THAN_VALUE` and its family) is defined between two numbers or two
//!   strings (Unicode code point order, as Python compares `str`); anything else does not match
//!   (Python orders lists too, and raises, then answers false, for mixed types).
//! - Arrays and objects are equal when their members are, recursively, by these rules; object
//!   key order does not matter.

use serde_json::{Number, Value};
use std::cmp::Ordering;

/// Equality between two JSON values, by the rules above.
pub fn equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => number_cmp(x, y) == Some(Ordering::Equal),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| equal(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(key, a)| y.get(key).is_some_and(|b| equal(a, b)))
        }
        _ => a == b,
    }
}

/// Whether `item` equals a member of `list`.
pub fn member(item: &Value, list: &[Value]) -> bool {
    list.iter().any(|candidate| equal(item, candidate))
}

/// The order of two numbers or two strings; `None` for anything else.
pub fn order(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => number_cmp(x, y),
        // Rust orders `str` by UTF-8 bytes, which is Unicode code point order.
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

/// Two numbers by value, exactly, as Python compares `int` and `float`: an integer beyond 2^53
/// is not rounded to a float first (`9007199254740993 == 9007199254740992.0` is false).
fn number_cmp(x: &Number, y: &Number) -> Option<Ordering> {
    match (as_i128(x), as_i128(y)) {
        (Some(a), Some(b)) => Some(a.cmp(&b)),
        (Some(a), None) => integer_float_cmp(a, y.as_f64()?),
        (None, Some(b)) => integer_float_cmp(b, x.as_f64()?).map(Ordering::reverse),
        (None, None) => x.as_f64()?.partial_cmp(&y.as_f64()?),
    }
}

/// An integer against a float, exactly: their whole parts as integers, then the fraction.
fn integer_float_cmp(integer: i128, float: f64) -> Option<Ordering> {
    const BEYOND: f64 = 170_141_183_460_469_231_731_687_303_715_884_105_728.0; // 2^127
    if float.is_nan() {
        return None;
    }
    if float >= BEYOND {
        return Some(Ordering::Less);
    }
    if float < -BEYOND {
        return Some(Ordering::Greater);
    }
    let whole = float.trunc();
    // Exact: `whole` is an integer within i128's range.
    match integer.cmp(&(whole as i128)) {
        Ordering::Equal => 0.0.partial_cmp(&(float - whole)),
        unequal => Some(unequal),
    }
}

/// A JSON integer (not a float) as `i128`.
pub fn as_i128(n: &Number) -> Option<i128> {
    n.as_i64()
        .map(i128::from)
        .or_else(|| n.as_u64().map(i128::from))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numbers_are_equal_by_value_whatever_their_spelling() {
        assert!(equal(&json!(1), &json!(1.0)));
        assert!(equal(&json!([1, {"a": 2}]), &json!([1.0, {"a": 2.0}])));
        assert!(!equal(&json!(1), &json!(1.5)));
    }

    #[test]
    fn a_boolean_is_not_a_number() {
        assert!(!equal(&json!(true), &json!(1)));
        assert_eq!(order(&json!(true), &json!(0)), None);
    }

    #[test]
    fn big_integers_compare_exactly() {
        let big = json!(9_007_199_254_740_993_u64);
        let near = json!(9_007_199_254_740_992_u64);
        assert_eq!(order(&big, &near), Some(Ordering::Greater));
    }

    #[test]
    fn an_integer_and_a_float_compare_exactly_as_python_does() {
        let two_53 = 9_007_199_254_740_992_u64;
        assert!(!equal(&json!(two_53 + 1), &json!(two_53 as f64)));
        assert_eq!(
            order(&json!(two_53 + 1), &json!(two_53 as f64)),
            Some(Ordering::Greater)
        );
        assert_eq!(
            order(&json!(two_53 as f64), &json!(two_53 + 1)),
            Some(Ordering::Less)
        );
        assert!(equal(&json!(two_53), &json!(two_53 as f64)));
        assert_eq!(
            order(&json!(u64::MAX), &json!(u64::MAX as f64)),
            Some(Ordering::Less)
        );
        assert_eq!(
            order(&json!(i64::MIN), &json!(i64::MIN as f64)),
            Some(Ordering::Equal)
        );
        assert_eq!(order(&json!(5), &json!(5.5)), Some(Ordering::Less));
        assert_eq!(order(&json!(-5), &json!(-5.5)), Some(Ordering::Greater));
        assert_eq!(order(&json!(0), &json!(-0.0)), Some(Ordering::Equal));
        assert_eq!(order(&json!(3), &json!(1e300)), Some(Ordering::Less));
        assert_eq!(order(&json!(-3), &json!(-1e300)), Some(Ordering::Greater));
    }

    #[test]
    fn strings_order_by_code_point_and_mixed_types_do_not_order() {
        assert_eq!(order(&json!("B"), &json!("a")), Some(Ordering::Less));
        assert_eq!(order(&json!("é"), &json!("z")), Some(Ordering::Greater));
        assert_eq!(order(&json!("1"), &json!(1)), None);
        assert_eq!(order(&json!([1]), &json!([2])), None);
    }

    #[test]
    fn objects_are_equal_whatever_their_key_order() {
        let a: Value = serde_json::from_str(r#"{"x": 1, "y": 2}"#).unwrap();
        let b: Value = serde_json::from_str(r#"{"y": 2, "x": 1}"#).unwrap();
        assert!(equal(&a, &b));
        assert!(!equal(&a, &json!({"x": 1})));
    }
}
