//! Reading what is stamped: the new content's flags (Freeform values and definitions, or the
//! AppConfig feature-flag stored form) and the previously deployed content in any of its three
//! forms (Freeform, stored, retrieval).

use super::error::StampError;
use crate::catalog::{check_flag_name, METADATA_KEY};
use crate::document::{self, ContentError};
use lockstep_targeting::Definition;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// A flag of the content being stamped: its value (for a definition, whether it may serve
/// true) and, for a flag defined by rules, its definition.
pub(super) struct FlagValue {
    pub(super) on: bool,
    pub(super) definition: Option<Definition>,
}

impl From<bool> for FlagValue {
    fn from(on: bool) -> Self {
        Self {
            on,
            definition: None,
        }
    }
}

pub(super) fn freeform_values(
    root: &Map<String, Value>,
) -> Result<BTreeMap<String, FlagValue>, StampError> {
    let mut values = BTreeMap::new();
    for (name, value) in root {
        if name == METADATA_KEY {
            continue;
        }
        check_flag_name(name)?;
        match value {
            Value::Bool(b) => values.insert(name.clone(), FlagValue::from(*b)),
            _ if Definition::is_definition(value) => {
                let definition = Definition::parse(name, value)
                    .map_err(|e| StampError::Invalid(ContentError::BadDefinition(e)))?;
                values.insert(
                    name.clone(),
                    FlagValue {
                        on: definition.may_serve_true(),
                        definition: Some(definition),
                    },
                )
            }
            _ => {
                return Err(StampError::Invalid(ContentError::BadFlag {
                    flag: name.clone(),
                    why: document::FREEFORM_FLAG_TYPE,
                }))
            }
        };
    }
    Ok(values)
}

pub(super) fn stored_values(
    root: &Map<String, Value>,
) -> Result<BTreeMap<String, FlagValue>, StampError> {
    let bad = |why: String| StampError::FeatureFlags(why);
    if root.get("version") != Some(&json!("1")) {
        return Err(bad("\"version\" must be \"1\"".into()));
    }
    let flags = root
        .get("flags")
        .and_then(Value::as_object)
        .ok_or_else(|| bad("\"flags\" must be an object".into()))?;
    let values = match root.get("values") {
        None => Map::new(),
        Some(Value::Object(v)) => v.clone(),
        Some(_) => return Err(bad("\"values\" must be an object".into())),
    };
    let mut out = BTreeMap::new();
    for (name, declaration) in flags {
        if name == METADATA_KEY {
            continue;
        }
        check_flag_name(name)?;
        if !declaration.is_object() {
            return Err(bad(format!("flags.{name} must be an object")));
        }
        let enabled = match values.get(name).map(|v| v.get("enabled")) {
            None | Some(None) => false,
            Some(Some(Value::Bool(b))) => *b,
            Some(Some(_)) => return Err(bad(format!("values.{name}.enabled must be a boolean"))),
        };
        out.insert(name.clone(), FlagValue::from(enabled));
    }
    if let Some(undeclared) = values
        .keys()
        .find(|k| *k != METADATA_KEY && !flags.contains_key(*k))
    {
        return Err(bad(format!(
            "values.{undeclared} has no declaration in flags"
        )));
    }
    Ok(out)
}

/// The retrieval form of stored feature-flag content: `{flag: {enabled, ...attributes}}`.
pub fn retrieval_form(stored: &[u8]) -> Result<Vec<u8>, StampError> {
    let root: Value = serde_json::from_slice(stored).map_err(StampError::NotJson)?;
    let flags = root
        .get("flags")
        .and_then(Value::as_object)
        .ok_or_else(|| StampError::FeatureFlags("\"flags\" must be an object".into()))?;
    let values = root
        .get("values")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let mut out = Map::new();
    for name in flags.keys() {
        let mut value = values
            .get(name)
            .cloned()
            .unwrap_or_else(|| json!({"enabled": false}));
        if value.get("enabled").is_none() {
            value["enabled"] = json!(false);
        }
        out.insert(name.clone(), value);
    }
    Ok(serde_json::to_vec(&Value::Object(out)).expect("serialises"))
}

/// Previously deployed content, parsed, in any of the three forms.
pub(super) fn previous_document(bytes: &[u8]) -> Result<document::Document, StampError> {
    let root: Value = serde_json::from_slice(bytes).map_err(StampError::NotJson)?;
    let is_stored = root.get("version").is_some() && root.get("flags").is_some();
    let retrieval = if is_stored {
        retrieval_form(bytes)?
    } else {
        bytes.to_vec()
    };
    document::parse(&retrieval).map_err(StampError::Invalid)
}
