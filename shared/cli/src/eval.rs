//! `lockstep eval` and `lockstep validate`: a definition checked, and evaluated for one caller,
//! before anything is deployed (design rule 10).
//!
//! The content is what `lockstep deploy --content` takes: a Lockstep document in either format
//! (Freeform, AppConfig feature flags in the stored or the retrieval form) or a Powertools
//! feature document (features at the top level, which is a Freeform document whose flags are
//! all definitions). Validation is the one the flag library runs on every fetched version
//! (`lockstep::document::parse`), so what passes here is what an instance accepts.

use chrono::{DateTime, Utc};
use lockstep::document::{self, ContentError, Document};
use lockstep::stamp::{self, StampError};
use lockstep::targeted::{Context, Reason};
use serde::Serialize;
use serde_json::Value;
use thiserror::Error;

/// Why a check or an evaluation was refused (exit 2).
#[derive(Debug, Error)]
pub enum EvalError {
    /// The content does not validate: names the flag and the rule when the problem is in one.
    #[error("invalid content")]
    Invalid(#[source] ContentError),
    /// Stored feature-flag content that cannot be read.
    #[error("invalid content")]
    Stored(#[source] StampError),
    /// The flag is not in the content.
    #[error("flag {0:?} is not in the content")]
    NoSuchFlag(String),
    /// `--context` is not a JSON object.
    #[error("--context must be a JSON object {{\"targetingKey\": …, <attributes>…}}: {0}")]
    BadContext(String),
}

/// What `lockstep validate` reports for valid content.
#[derive(Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Verdict {
    /// How many flags the content holds.
    pub flags: usize,
    /// The flags defined by rules.
    pub defined_by_rules: Vec<String>,
    /// Whether the content carries a stamp (`lockstepMetadata.lastModifiedTimestamp`).
    pub stamped: bool,
}

/// What `lockstep eval` prints: OpenFeature's value, reason and variant.
#[derive(Debug, Serialize, PartialEq)]
pub struct Answer {
    /// The value served to this caller.
    pub value: Value,
    /// `TARGETING_MATCH`, `SPLIT`, `DEFAULT` or `STATIC` (a flag without rules).
    pub reason: Reason,
    /// The rule's name, the split bucket's variant, `default`; `on` or `off` for a plain flag.
    pub variant: String,
    /// When this caller's value next changes by a schedule or a ramp, if it does
    /// (`lockstep_targeting::changes`); left out when none.
    #[serde(rename = "changesAt", skip_serializing_if = "Option::is_none")]
    pub changes_at: Option<DateTime<Utc>>,
}

/// Parses and validates content as an instance would.
pub fn validate(content: &[u8]) -> Result<(Document, Verdict), EvalError> {
    let stored = serde_json::from_slice::<Value>(content)
        .ok()
        .is_some_and(|v| v.get("version").is_some() && v.get("flags").is_some());
    let document = if stored {
        let retrieval = stamp::retrieval_form(content).map_err(EvalError::Stored)?;
        document::parse(&retrieval)
    } else {
        document::parse(content)
    }
    .map_err(EvalError::Invalid)?;
    let verdict = Verdict {
        flags: document.flags.len(),
        defined_by_rules: document.definitions.keys().cloned().collect(),
        stamped: document.profile_stamp.is_some(),
    };
    Ok((document, verdict))
}

/// Parses `--context`: a JSON object.
pub fn parse_context(text: &str) -> Result<Context, EvalError> {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(context)) => Ok(context),
        Ok(_) => Err(EvalError::BadContext("not an object".into())),
        Err(e) => Err(EvalError::BadContext(e.to_string())),
    }
}

/// Evaluates `flag` in `content` for `context` at `at`.
pub fn evaluate(
    content: &[u8],
    flag: &str,
    context: &Context,
    at: DateTime<Utc>,
) -> Result<Answer, EvalError> {
    let (document, _) = validate(content)?;
    if let Some(definition) = document.definitions.get(flag) {
        let evaluation = lockstep_targeting::evaluate(definition, context, at);
        return Ok(Answer {
            value: evaluation.value.clone(),
            reason: evaluation.reason,
            variant: evaluation.variant.to_owned(),
            changes_at: lockstep_targeting::changes::next_change(definition, context, at),
        });
    }
    let plain = document
        .flags
        .get(flag)
        .ok_or_else(|| EvalError::NoSuchFlag(flag.to_owned()))?;
    Ok(Answer {
        value: Value::Bool(plain.enabled),
        reason: Reason::Static,
        variant: if plain.enabled { "on" } else { "off" }.to_owned(),
        changes_at: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const POWERTOOLS: &str = r#"{
      "premium_features": {
        "default": false,
        "rules": {
          "customer tier equals premium": {
            "when_match": true,
            "conditions": [{"action": "EQUALS", "key": "tier", "value": "premium"}]
          }
        }
      },
      "ten_percent_off_campaign": {"default": false}
    }"#;

    fn at() -> DateTime<Utc> {
        "2026-12-06T10:00:00Z".parse().unwrap()
    }

    #[test]
    fn a_powertools_document_evaluates_unchanged() {
        let context = parse_context(r#"{"targetingKey": "u1", "tier": "premium"}"#).unwrap();
        let answer = evaluate(POWERTOOLS.as_bytes(), "premium_features", &context, at()).unwrap();
        assert_eq!(answer.value, json!(true));
        assert_eq!(answer.reason, Reason::TargetingMatch);
        assert_eq!(answer.variant, "customer tier equals premium");
        let plain = evaluate(
            POWERTOOLS.as_bytes(),
            "ten_percent_off_campaign",
            &Context::new(),
            at(),
        )
        .unwrap();
        assert_eq!((plain.value, plain.reason), (json!(false), Reason::Static));
    }

    #[test]
    fn a_ramped_split_says_when_the_callers_value_changes() {
        let content = json!({"checkout": {"default": false, "rules": {"rollout": {
            "split": [{"variant": "on", "value": true, "weight": 0},
                      {"variant": "off", "value": false, "weight": 100}],
            "ramp": {"weight": 100, "start": "2026-12-07T09:00:00Z", "end": "2026-12-07T10:00:00Z"}}}}})
        .to_string();
        let context = parse_context(r#"{"targetingKey": "u1"}"#).unwrap();
        let before = "2026-12-07T08:00:00Z".parse().unwrap();
        let answer = evaluate(content.as_bytes(), "checkout", &context, before).unwrap();
        let changes = answer.changes_at.expect("u1 enters during the ramp");
        assert_eq!(answer.value, json!(false));
        let after = evaluate(content.as_bytes(), "checkout", &context, changes).unwrap();
        assert_eq!((after.value, after.changes_at), (json!(true), None));
        let text = serde_json::to_value(&answer).unwrap();
        assert!(text.get("changesAt").is_some(), "{text}");
    }

    #[test]
    fn a_plain_lockstep_flag_is_static_on_or_off() {
        let answer = evaluate(
            br#"{"isFeatureXEnabled": true}"#,
            "isFeatureXEnabled",
            &Context::new(),
            at(),
        )
        .unwrap();
        assert_eq!(
            (answer.value, answer.reason, answer.variant.as_str()),
            (json!(true), Reason::Static, "on")
        );
    }

    #[test]
    fn an_invalid_rule_is_named_with_its_flag() {
        let bad = br#"{"f": {"default": false, "rules": {"r": {"when_match": true, "conditions": [{"action": "NOPE", "key": "k", "value": 1}]}}}}"#;
        let error = validate(bad).unwrap_err();
        let text = lockstep::error_chain(&error);
        assert!(text.contains(r#"flag "f", rule "r""#), "{text}");
    }

    #[test]
    fn a_missing_flag_and_a_bad_context_are_refused() {
        assert!(matches!(
            evaluate(POWERTOOLS.as_bytes(), "nope", &Context::new(), at()),
            Err(EvalError::NoSuchFlag(_))
        ));
        assert!(parse_context("[1]").is_err());
        assert!(parse_context("{").is_err());
    }

    #[test]
    fn validate_counts_the_flags_defined_by_rules() {
        let (_, verdict) = validate(POWERTOOLS.as_bytes()).unwrap();
        assert_eq!(
            verdict,
            Verdict {
                flags: 2,
                defined_by_rules: vec![
                    "premium_features".into(),
                    "ten_percent_off_campaign".into()
                ],
                stamped: false
            }
        );
    }
}
