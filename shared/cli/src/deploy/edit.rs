//! The content deployed now, edited by `lockstep deploy` (Freeform JSON only; its metadata is
//! left to the stamping code): `--set FLAG=BOOL` ([`with_values`]) and `--split FLAG=PERCENT`
//! ([`with_split`]).
//!
//! `--split` widens or narrows a rollout in one command. The
//! content deployed now is taken as it is, and only the share of one flag's split changes: the
//! flag must be defined by rules with exactly one `split` rule of two variants, one serving
//! `true` and one `false`. The variants keep their order and names, so a user's bucket stays
//! where it was (flagd's bucketing depends on the cumulative fractions only): widening keeps
//! everyone already in, and per-user consistency (design rule 10) keeps them consistent; only
//! the newly included wait for the deployment's `consistentAt`.

use super::error::DeployError;
use lockstep::catalog::METADATA_KEY;
use lockstep_targeting::Definition;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// A share in basis points (1/100 of a percent): the split's weights total this much.
pub const TOTAL: u32 = 10_000;

/// Reads `PERCENT` (`25`, `0.5`, `12.25`: 0 to 100, at most two decimals) as basis points.
pub fn parse_share(text: &str) -> Result<u32, String> {
    let bad = || format!("{text:?}: expected a percentage from 0 to 100, at most two decimals");
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    if whole.is_empty()
        || fraction.len() > 2
        || !whole
            .bytes()
            .chain(fraction.bytes())
            .all(|b| b.is_ascii_digit())
    {
        return Err(bad());
    }
    let whole: u32 = whole.parse().map_err(|_| bad())?;
    let fraction: u32 = format!("{fraction:0<2}").parse().map_err(|_| bad())?;
    let share = whole
        .checked_mul(100)
        .and_then(|w| w.checked_add(fraction))
        .ok_or_else(bad)?;
    if share > TOTAL {
        return Err(bad());
    }
    Ok(share)
}

/// The content deployed now as an editable Freeform object: none, or the reason it is not one.
fn editable(current: &[u8]) -> Result<Map<String, Value>, DeployError> {
    match serde_json::from_slice(current) {
        Ok(Value::Object(root))
            if !(root.contains_key("version") && root.contains_key("flags")) =>
        {
            Ok(root)
        }
        Ok(Value::Object(_)) => Err(DeployError::NotEditable(
            "it is in the feature-flag format".into(),
        )),
        Ok(_) => Err(DeployError::NotEditable("not a JSON object".into())),
        Err(e) => Err(DeployError::NotEditable(format!("not JSON: {e}"))),
    }
}

/// The edited object as content, without its metadata (written anew by stamping).
fn content(mut root: Map<String, Value>) -> Vec<u8> {
    root.remove(METADATA_KEY);
    serde_json::to_vec_pretty(&Value::Object(root)).expect("a JSON value serialises")
}

/// The current Freeform document with `values` set.
pub(super) fn with_values(
    current: Option<&[u8]>,
    values: &BTreeMap<String, bool>,
) -> Result<Vec<u8>, DeployError> {
    let mut root = current.map(editable).transpose()?.unwrap_or_default();
    for (name, value) in values {
        root.insert(name.clone(), Value::Bool(*value));
    }
    Ok(content(root))
}

/// The content deployed now (`current`, Freeform) with each named flag's split set to its
/// share (basis points of users served `true`).
pub(super) fn with_split(
    current: Option<&[u8]>,
    shares: &BTreeMap<String, u32>,
) -> Result<Vec<u8>, DeployError> {
    let not_editable = |why: String| DeployError::NotEditable(why);
    let current = current.ok_or_else(|| not_editable("nothing is deployed yet".into()))?;
    let mut root = editable(current)?;
    for (name, share) in shares {
        let flag = root
            .get_mut(name)
            .filter(|v| Definition::is_definition(v))
            .ok_or_else(|| not_editable(format!("flag {name:?} is not defined by rules")))?;
        set_share(flag, *share).map_err(|why| not_editable(format!("flag {name:?}: {why}")))?;
        Definition::parse(name, flag).map_err(|e| not_editable(e.to_string()))?;
    }
    Ok(content(root))
}

/// Sets the weights of the definition's one two-variant boolean split.
fn set_share(definition: &mut Value, share: u32) -> Result<(), &'static str> {
    let rules = definition
        .get_mut("rules")
        .and_then(Value::as_object_mut)
        .ok_or("it has no rules")?;
    let mut splits = rules
        .values_mut()
        .filter_map(|rule| rule.get_mut("split").and_then(Value::as_array_mut));
    let split = splits.next().ok_or("it has no split rule")?;
    if splits.next().is_some() {
        return Err("it has more than one split rule: edit it with --content");
    }
    let values: Vec<Option<bool>> = split
        .iter()
        .map(|v| v.get("value").and_then(Value::as_bool))
        .collect();
    if values.len() != 2 || !values.contains(&Some(true)) || !values.contains(&Some(false)) {
        return Err(
            "its split is not two variants, one true and one false: edit it with --content",
        );
    }
    for variant in split.iter_mut() {
        let on = variant.get("value").and_then(Value::as_bool) == Some(true);
        variant["weight"] = Value::from(if on { share } else { TOTAL - share });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_percentage_reads_as_basis_points() {
        assert_eq!(parse_share("25"), Ok(2500));
        assert_eq!(parse_share("0.5"), Ok(50));
        assert_eq!(parse_share("12.25"), Ok(1225));
        assert_eq!(parse_share("100"), Ok(10_000));
        assert_eq!(parse_share("0"), Ok(0));
        for bad in ["", "-1", "100.01", "1.234", "x", "1e2", ".5", "5%"] {
            assert!(parse_share(bad).is_err(), "{bad}");
        }
    }

    fn deployed() -> Vec<u8> {
        json!({
            "checkout": {"default": false, "rules": {
                "staff": {"when_match": true, "conditions": [{"action": "ENDSWITH", "key": "email", "value": "@example.com"}]},
                "rollout": {"split": [
                    {"variant": "on", "value": true, "weight": 25},
                    {"variant": "off", "value": false, "weight": 75}]}}},
            "plain": true,
            "lockstepMetadata": {"lastModifiedTimestamp": "2026-12-01T09:00:00Z"}
        })
        .to_string()
        .into_bytes()
    }

    #[test]
    fn only_the_splits_weights_change_and_the_variants_keep_their_order() {
        let shares = BTreeMap::from([("checkout".to_owned(), 5000)]);
        let next: Value =
            serde_json::from_slice(&with_split(Some(&deployed()), &shares).unwrap()).unwrap();
        let mut expected: Value = serde_json::from_slice(&deployed()).unwrap();
        expected["checkout"]["rules"]["rollout"]["split"][0]["weight"] = json!(5000);
        expected["checkout"]["rules"]["rollout"]["split"][1]["weight"] = json!(5000);
        expected.as_object_mut().unwrap().remove(METADATA_KEY);
        assert_eq!(next, expected);
    }

    #[test]
    fn a_flag_without_one_boolean_split_is_refused_naming_it() {
        for (name, shares) in [("plain", 5000), ("missing", 5000)] {
            let error = with_split(
                Some(&deployed()),
                &BTreeMap::from([(name.to_owned(), shares)]),
            )
            .unwrap_err();
            assert!(error.to_string().contains(name), "{error}");
        }
        let mut two = serde_json::from_slice::<Value>(&deployed()).unwrap();
        two["checkout"]["rules"]["again"] = two["checkout"]["rules"]["rollout"].clone();
        let error = with_split(
            Some(two.to_string().as_bytes()),
            &BTreeMap::from([("checkout".to_owned(), 100)]),
        )
        .unwrap_err();
        assert!(error.to_string().contains("more than one split"), "{error}");
        assert!(with_split(None, &BTreeMap::from([("checkout".to_owned(), 1)])).is_err());
    }
}
