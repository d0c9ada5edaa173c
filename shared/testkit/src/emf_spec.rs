//! The CloudWatch Embedded Metric Format specification's rules, as a check a test runs on a
//! document a function wrote ("Specification: Embedded metric format", Amazon CloudWatch User
//! Guide; limits as CloudWatch states them and as Powertools enforces them):
//!
//! - the document is one JSON object, at most 1 MB (a CloudWatch Logs event);
//! - `_aws` is an object with `Timestamp` (a number of milliseconds since the epoch) and
//!   `CloudWatchMetrics`, an array of metric directives, and no other member;
//! - a directive has `Namespace` (a string of 1 to 255 characters), `Dimensions` (an array of
//!   dimension sets, each an array of at most 30 strings) and `Metrics` (an array of at most 100
//!   metric definitions), and no other member;
//! - a definition has `Name` (1 to 255 characters), and optionally `Unit` (one of CloudWatch's
//!   units) and `StorageResolution` (1 or 60), and no other member;
//! - every dimension a set names is a member of the root whose value is a string (1 to 1024
//!   characters); every metric a definition names is a member of the root whose value is a
//!   number or an array of at most 100 numbers;
//! - a metric is defined once per directive.

use serde_json::{Map, Value};
use std::collections::HashSet;

/// CloudWatch's units (`MetricDatum.Unit`).
const UNITS: [&str; 27] = [
    "Seconds",
    "Microseconds",
    "Milliseconds",
    "Bytes",
    "Kilobytes",
    "Megabytes",
    "Gigabytes",
    "Terabytes",
    "Bits",
    "Kilobits",
    "Megabits",
    "Gigabits",
    "Terabits",
    "Percent",
    "Count",
    "Bytes/Second",
    "Kilobytes/Second",
    "Megabytes/Second",
    "Gigabytes/Second",
    "Terabytes/Second",
    "Bits/Second",
    "Kilobits/Second",
    "Megabits/Second",
    "Gigabits/Second",
    "Terabits/Second",
    "Count/Second",
    "None",
];

/// Checks `document` (one log line) against the specification; the parsed document, or what
/// breaks the rules.
pub fn check(document: &str) -> Result<Value, String> {
    if document.len() > 1_000_000 {
        return Err(format!(
            "{} bytes: more than a log event holds",
            document.len()
        ));
    }
    if document.contains('\n') {
        return Err("a document is one line".into());
    }
    let value: Value = serde_json::from_str(document).map_err(|e| format!("not JSON: {e}"))?;
    let root = value.as_object().ok_or("the root is not an object")?;
    let aws = root
        .get("_aws")
        .and_then(Value::as_object)
        .ok_or("no _aws object")?;
    only(aws, &["Timestamp", "CloudWatchMetrics"], "_aws")?;
    match aws.get("Timestamp") {
        Some(Value::Number(n)) if n.as_i64().is_some_and(|t| t > 0) => {}
        other => {
            return Err(format!(
                "_aws.Timestamp is not epoch milliseconds: {other:?}"
            ))
        }
    }
    let directives = aws
        .get("CloudWatchMetrics")
        .and_then(Value::as_array)
        .ok_or("_aws.CloudWatchMetrics is not an array")?;
    for (i, directive) in directives.iter().enumerate() {
        check_directive(root, directive).map_err(|e| format!("directive {i}: {e}"))?;
    }
    Ok(value)
}

fn check_directive(root: &Map<String, Value>, directive: &Value) -> Result<(), String> {
    let directive = directive.as_object().ok_or("not an object")?;
    only(
        directive,
        &["Namespace", "Dimensions", "Metrics"],
        "a directive",
    )?;
    let namespace = directive
        .get("Namespace")
        .and_then(Value::as_str)
        .ok_or("no Namespace string")?;
    if namespace.is_empty() || namespace.chars().count() > 255 {
        return Err(format!(
            "Namespace {namespace:?} is not 1 to 255 characters"
        ));
    }
    let sets = directive
        .get("Dimensions")
        .and_then(Value::as_array)
        .ok_or("Dimensions is not an array")?;
    for set in sets {
        let set = set.as_array().ok_or("a dimension set is not an array")?;
        if set.len() > 30 {
            return Err(format!(
                "a dimension set has {} dimensions (at most 30)",
                set.len()
            ));
        }
        for name in set {
            let name = name.as_str().ok_or("a dimension name is not a string")?;
            match root.get(name) {
                Some(Value::String(v)) if !v.is_empty() && v.chars().count() <= 1024 => {}
                other => return Err(format!("dimension {name} is not a root string: {other:?}")),
            }
        }
    }
    let metrics = directive
        .get("Metrics")
        .and_then(Value::as_array)
        .ok_or("Metrics is not an array")?;
    if metrics.len() > 100 {
        return Err(format!(
            "{} metric definitions (at most 100)",
            metrics.len()
        ));
    }
    let mut seen = HashSet::new();
    for definition in metrics {
        let definition = definition
            .as_object()
            .ok_or("a definition is not an object")?;
        only(
            definition,
            &["Name", "Unit", "StorageResolution"],
            "a definition",
        )?;
        let name = definition
            .get("Name")
            .and_then(Value::as_str)
            .ok_or("a definition has no Name string")?;
        if name.is_empty() || name.chars().count() > 255 {
            return Err(format!("metric name {name:?} is not 1 to 255 characters"));
        }
        if !seen.insert(name) {
            return Err(format!("metric {name} is defined twice"));
        }
        if let Some(unit) = definition.get("Unit") {
            if !unit.as_str().is_some_and(|u| UNITS.contains(&u)) {
                return Err(format!(
                    "metric {name} has unit {unit}, not a CloudWatch unit"
                ));
            }
        }
        if let Some(resolution) = definition.get("StorageResolution") {
            if resolution != 1 && resolution != 60 {
                return Err(format!("metric {name} has StorageResolution {resolution}"));
            }
        }
        match root.get(name) {
            Some(Value::Number(_)) => {}
            Some(Value::Array(values))
                if values.len() <= 100 && values.iter().all(Value::is_number) => {}
            other => {
                return Err(format!(
                    "metric {name} is not a root number or array of at most 100 numbers: {other:?}"
                ))
            }
        }
    }
    Ok(())
}

fn only(object: &Map<String, Value>, allowed: &[&str], what: &str) -> Result<(), String> {
    match object.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(extra) => Err(format!(
            "{what} has a member the specification does not define: {extra}"
        )),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::check;

    const GOOD: &str = r#"{"_aws":{"Timestamp":1700000000000,"CloudWatchMetrics":[{"Namespace":"N","Dimensions":[["service"]],"Metrics":[{"Name":"A","Unit":"Count"},{"Name":"B"}]}]},"service":"s","A":1,"B":[1,2.5]}"#;

    #[test]
    fn a_document_by_the_specification_passes() {
        check(GOOD).unwrap();
    }

    #[test]
    fn each_rule_the_specification_states_is_enforced() {
        let broken = [
            (
                GOOD.replace(r#""Timestamp":1700000000000,"#, ""),
                "Timestamp",
            ),
            (GOOD.replace(r#","service":"s""#, ""), "dimension service"),
            (
                GOOD.replace(r#""service":"s""#, r#""service":3"#),
                "dimension service",
            ),
            (GOOD.replace(r#","A":1"#, ""), "metric A"),
            (GOOD.replace(r#""A":1"#, r#""A":"1""#), "metric A"),
            (
                GOOD.replace(r#""Unit":"Count""#, r#""Unit":"Counts""#),
                "unit",
            ),
            (
                GOOD.replace(r#"{"Name":"B"}"#, r#"{"Name":"A"}"#),
                "defined twice",
            ),
            (
                GOOD.replace(r#""Namespace":"N""#, r#""Namespace":"""#),
                "Namespace",
            ),
            (
                GOOD.replace(r#""Metrics":["#, r#""Extra":1,"Metrics":["#),
                "does not define",
            ),
            (
                GOOD.replace(r#""B":[1,2.5]"#, &format!(r#""B":{:?}"#, vec![1; 101])),
                "metric B",
            ),
        ];
        for (document, expected) in broken {
            let error = check(&document).expect_err(&document);
            assert!(error.contains(expected), "{error} (expected {expected})");
        }
    }
}
