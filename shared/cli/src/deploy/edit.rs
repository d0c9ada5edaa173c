//! The content deployed now, edited by `lockstep deploy` (Freeform JSON only; its metadata is
//! left to the stamping code): `--set FLAG=BOOL` ([`with_values`]), `--split FLAG=PERCENT`
//! ([`with_split`]), `--ramp FLAG=PERCENT/DURATION` ([`with_ramp`]) and `--hold FLAG`
//! ([`with_hold`]).
//!
//! `--split` widens or narrows a rollout in one command. The
//! content deployed now is taken as it is, and only the share of one flag's split changes: the
//! flag must be defined by rules with exactly one `split` rule of two variants, one serving
//! `true` and one `false`. The variants keep their order and names, so a user's bucket stays
//! where it was (flagd's bucketing depends on the cumulative fractions only): widening keeps
//! everyone already in, and per-user consistency (design rule 10) keeps them consistent; only
//! the newly included wait for the deployment's `consistentAt`. A split that was ramping stops
//! ramping: `--split` sets its share outright.
//!
//! `--ramp` starts a ramp (`lockstep_targeting::ramp`): the `true` variant, which must come
//! first, grows from its share now to PERCENT over DURATION, starting when every instance holds
//! the deployment (`T + Δ + P + ε`), so each user enters at their own instant with no
//! deployment per step. `--hold` pauses a ramp: the split is set to the share the ramp reaches
//! by the time every instance holds the hold (rounded up), so nobody the ramp let in is
//! dropped; a rollback of a ramp is `--split` to a lower share (with `--drain` for the users it
//! drops).

use super::error::DeployError;
use chrono::{DateTime, Utc};
use lockstep::catalog::METADATA_KEY;
use lockstep_targeting::definition::Outcome;
use lockstep_targeting::Definition;
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

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

/// A ramp to start: the share it grows to (basis points) and over how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RampTo {
    /// The share of users served `true` at the ramp's end, basis points.
    pub share: u32,
    /// How long it grows.
    pub over: Duration,
}

/// Reads `PERCENT/DURATION` (`100/2h`, `50/30m`): a ramp's share and length.
pub fn parse_ramp(text: &str) -> Result<RampTo, String> {
    let (share, over) = text
        .split_once('/')
        .ok_or_else(|| format!("{text:?}: expected PERCENT/DURATION, e.g. 100/2h"))?;
    let over =
        lockstep::settings::parse_duration_text(over).map_err(|why| format!("{over:?}: {why}"))?;
    if over.is_zero() {
        return Err(format!("{text:?}: a ramp takes some time"));
    }
    Ok(RampTo {
        share: parse_share(share)?,
        over,
    })
}

/// Applies `edit` to each named flag's one two-variant boolean split rule of the content
/// deployed now (`current`, Freeform), checking the result as an instance would.
fn edit_splits<'n>(
    current: Option<&[u8]>,
    names: impl IntoIterator<Item = &'n String>,
    mut edit: impl FnMut(&str, &mut Map<String, Value>) -> Result<(), String>,
) -> Result<Vec<u8>, DeployError> {
    let not_editable = |why: String| DeployError::NotEditable(why);
    let current = current.ok_or_else(|| not_editable("nothing is deployed yet".into()))?;
    let mut root = editable(current)?;
    for name in names {
        let flag = root
            .get_mut(name)
            .filter(|v| Definition::is_definition(v))
            .ok_or_else(|| not_editable(format!("flag {name:?} is not defined by rules")))?;
        let rule = split_rule(flag).map_err(|why| not_editable(format!("flag {name:?}: {why}")))?;
        edit(name, rule).map_err(|why| not_editable(format!("flag {name:?}: {why}")))?;
        Definition::parse(name, flag).map_err(|e| not_editable(e.to_string()))?;
    }
    Ok(content(root))
}

/// The content deployed now (`current`, Freeform) with each named flag's split set to its
/// share (basis points of users served `true`); a ramp it had stops.
pub(super) fn with_split(
    current: Option<&[u8]>,
    shares: &BTreeMap<String, u32>,
) -> Result<Vec<u8>, DeployError> {
    edit_splits(current, shares.keys(), |name, rule| {
        set_share(rule, shares[name]);
        Ok(())
    })
}

/// The content deployed now with a ramp started on each named flag's split, from its share now
/// to the ramp's, from `start` on.
pub(super) fn with_ramp(
    current: Option<&[u8]>,
    ramps: &BTreeMap<String, RampTo>,
    start: DateTime<Utc>,
) -> Result<Vec<u8>, DeployError> {
    edit_splits(current, ramps.keys(), |name, rule| {
        let ramp = ramps[name];
        if rule.contains_key("ramp") {
            return Err("it is ramping already: --hold it or --split it first".into());
        }
        let split = rule["split"].as_array().cloned().unwrap_or_default();
        if split[0].get("value") != Some(&Value::Bool(true)) {
            return Err("its true variant is not the first: a ramp grows the first variant".into());
        }
        let weight = |i: usize| split[i].get("weight").and_then(Value::as_u64).unwrap_or(0);
        let total = weight(0) + weight(1);
        let from = (weight(0) * u64::from(TOTAL))
            .checked_div(total)
            .filter(|from| from * total == weight(0) * u64::from(TOTAL))
            .ok_or("its weights are not a whole number of basis points: --split it first")?;
        let from = u32::try_from(from).map_err(|_| "its weights are out of range")?;
        if ramp.share <= from {
            return Err(format!(
                "a ramp only widens, and it serves {} % now: narrow it with --split",
                f64::from(from) / 100.0
            ));
        }
        set_share(rule, from);
        let end = start + chrono::TimeDelta::from_std(ramp.over).map_err(|e| e.to_string())?;
        let instant = |at: DateTime<Utc>| at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        rule.insert(
            "ramp".into(),
            json!({"weight": ramp.share, "start": instant(start), "end": instant(end)}),
        );
        Ok(())
    })
}

/// The content deployed now with each named flag's ramp held: its split set to the share the
/// ramp reaches at `hold_at` (when every instance holds this deployment), rounded up.
pub(super) fn with_hold(
    current: Option<&[u8]>,
    names: &BTreeSet<String>,
    hold_at: DateTime<Utc>,
) -> Result<Vec<u8>, DeployError> {
    edit_splits(current, names, |name, rule| {
        let parsed = Definition::parse(name, &json!({"default": false, "rules": {"r": rule}}))
            .map_err(|e| e.why)?;
        let Some(Outcome::Split(split)) = parsed.rules.first().map(|r| &r.outcome) else {
            return Err("it has no split".into());
        };
        let ramp = split.ramp.as_ref().ok_or("it is not ramping")?;
        let total = u64::from(split.buckets[0].weight) + u64::from(split.buckets[1].weight);
        let reached = ramp.weight_at(hold_at.timestamp_millis());
        let share = (reached * u64::from(TOTAL)).div_ceil(total);
        set_share(rule, u32::try_from(share).map_err(|_| "out of range")?);
        Ok(())
    })
}

/// The definition's one split rule, of two variants, one serving `true` and one `false`.
fn split_rule(definition: &mut Value) -> Result<&mut Map<String, Value>, &'static str> {
    let rules = definition
        .get_mut("rules")
        .and_then(Value::as_object_mut)
        .ok_or("it has no rules")?;
    let mut splits = rules
        .values_mut()
        .filter_map(Value::as_object_mut)
        .filter(|rule| rule.get("split").is_some_and(Value::is_array));
    let rule = splits.next().ok_or("it has no split rule")?;
    if splits.next().is_some() {
        return Err("it has more than one split rule: edit it with --content");
    }
    let values: Vec<Option<bool>> = rule["split"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|v| v.get("value").and_then(Value::as_bool))
        .collect();
    if values.len() != 2 || !values.contains(&Some(true)) || !values.contains(&Some(false)) {
        return Err(
            "its split is not two variants, one true and one false: edit it with --content",
        );
    }
    Ok(rule)
}

/// Sets the weights of a split rule's two boolean variants to `share` basis points for `true`,
/// in their order, and stops any ramp.
fn set_share(rule: &mut Map<String, Value>, share: u32) {
    rule.remove("ramp");
    for variant in rule["split"].as_array_mut().into_iter().flatten() {
        let on = variant.get("value").and_then(Value::as_bool) == Some(true);
        variant["weight"] = Value::from(if on { share } else { TOTAL - share });
    }
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

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    #[test]
    fn a_ramp_grows_the_split_from_its_share_now_and_a_hold_keeps_everyone_it_let_in() {
        let ramps = BTreeMap::from([("checkout".to_owned(), parse_ramp("100/2h").unwrap())]);
        let start = at("2026-12-07T09:00:00Z");
        let ramped = with_ramp(Some(&deployed()), &ramps, start).unwrap();
        let next: Value = serde_json::from_slice(&ramped).unwrap();
        let rule = &next["checkout"]["rules"]["rollout"];
        assert_eq!(rule["split"][0]["weight"], json!(2500));
        assert_eq!(
            rule["ramp"],
            json!({"weight": 10_000, "start": "2026-12-07T09:00:00.000Z", "end": "2026-12-07T11:00:00.000Z"})
        );
        // Ramping already, or not widening: refused.
        assert!(with_ramp(Some(&ramped), &ramps, start).is_err());
        let narrowing = BTreeMap::from([("checkout".to_owned(), parse_ramp("20/1h").unwrap())]);
        let error = with_ramp(Some(&deployed()), &narrowing, start).unwrap_err();
        assert!(error.to_string().contains("only widens"), "{error}");

        // Held halfway through: 62.5 % of users, the ramp gone.
        let names = BTreeSet::from(["checkout".to_owned()]);
        let held = with_hold(Some(&ramped), &names, at("2026-12-07T10:00:00Z")).unwrap();
        let next: Value = serde_json::from_slice(&held).unwrap();
        let rule = &next["checkout"]["rules"]["rollout"];
        assert_eq!(rule["split"][0]["weight"], json!(6250));
        assert_eq!(rule.get("ramp"), None);
        // Every user the ramp had let in by then is in the held split.
        let ramp_def = Definition::parse(
            "checkout",
            &serde_json::from_slice::<Value>(&ramped).unwrap()["checkout"],
        )
        .unwrap();
        let held_def = Definition::parse("checkout", &next["checkout"]).unwrap();
        for i in 0..2_000 {
            let who: lockstep_targeting::Context = json!({"targetingKey": format!("user-{i}")})
                .as_object()
                .cloned()
                .unwrap();
            let moment = at("2026-12-07T10:00:00Z");
            if lockstep_targeting::evaluate(&ramp_def, &who, moment).value == &json!(true) {
                assert_eq!(
                    lockstep_targeting::evaluate(&held_def, &who, moment).value,
                    &json!(true)
                );
            }
        }
        assert!(
            with_hold(Some(&deployed()), &names, start).is_err(),
            "not ramping"
        );
        for bad in ["100", "100/0s", "x/1h", "100/soon"] {
            assert!(parse_ramp(bad).is_err(), "{bad}");
        }
    }
}
