//! The two content formats, parsed and validated once per fetched version.
//!
//! Both formats carry the same information: a boolean per flag, and a metadata entry under the
//! reserved key `lockstepMetadata` holding the profile stamp (`lastModifiedTimestamp`, UTC,
//! RFC 3339), the deployment duration Δ (`deploymentDurationSeconds`) and optional per-flag stamps
//! (each a T and the Δ of the deployment that introduced that flag's value, and for a flag switched
//! off with a drain time, `drainSeconds`: rule 9). A flag without a per-flag stamp takes the
//! profile stamp. `journeyKeys` (at most two, unpadded base64url of 32 bytes: the current key,
//! then the one it replaced) sign and verify journey tokens ([`crate::journey`]); the stamping
//! code writes and keeps them, and nothing Lockstep serves ever shows them. With two keys,
//! `journeyKeyStamp` (`T/Δseconds`, a string in both formats) is the stamp of the deployment that
//! introduced the first one: it only verifies until `T + Δ + P + ε`, when every instance holds it,
//! and the second signs until then ([`crate::snapshot::Snapshot::signing_key`]).
//!
//! **Freeform JSON** (recommended): flags are top-level booleans, so the original design's readers
//! of `isFeatureXEnabled` keep working.
//!
//! ```json
//! {
//!   "isFeatureXEnabled": true,
//!   "useSubmissionsGsi": false,
//!   "lockstepMetadata": {
//!     "lastModifiedTimestamp": "2026-11-21T10:00:00Z",
//!     "deploymentDurationSeconds": 60,
//!     "flags": {
//!       "useSubmissionsGsi": { "lastModifiedTimestamp": "2026-11-20T08:00:00Z", "deploymentDurationSeconds": 1200 }
//!     }
//!   }
//! }
//! ```
//!
//! **AppConfig feature flags** (`AWS.AppConfig.FeatureFlags`, as `GetLatestConfiguration` returns
//! it): every flag is `{"enabled": bool, ...attributes}`, and attributes of a disabled flag may be
//! missing, so the stamps live on the reserved metadata flag, which must be enabled. Attributes
//! cannot be objects, so per-flag stamps are strings `name=T/Δseconds[/drainSeconds]` in a string
//! array, and `journeyKeys` is a string array too. The attributes of ordinary flags are kept as
//! they are ([`Document::attributes`]) for in-process readers (the OpenFeature provider's typed
//! values); `/config` never shows them.
//!
//! ```json
//! {
//!   "isFeatureXEnabled": { "enabled": true },
//!   "useSubmissionsGsi": { "enabled": false },
//!   "lockstepMetadata": {
//!     "enabled": true,
//!     "lastModifiedTimestamp": "2026-11-21T10:00:00Z",
//!     "deploymentDurationSeconds": 60,
//!     "flagStamps": ["useSubmissionsGsi=2026-11-20T08:00:00Z/1200"]
//!   }
//! }
//! ```
//!
//! Anything else is rejected with a [`ContentError`] naming the problem: content that is not a
//! JSON object, a flag name outside `^[a-z][a-zA-Z\d_-]{0,63}$`, a flag value of the wrong type,
//! formats mixed in one document, an unparsable or future-dated per-flag stamp, a Δ outside
//! 0..=86400 seconds. Content without metadata is valid but unstamped: its flags can be read,
//! never shown consistent.

use crate::catalog::{check_flag_name, BadFlagName, METADATA_KEY};
use crate::consistency::{Stamp, MAX_DEPLOYMENT_DURATION};
pub use crate::flag_stamp::{format_flag_stamp, format_stamp_text};
use crate::flag_stamp::{parse_flag_stamp, parse_stamp_text, parse_time};
use crate::history::{parse_previous, Previous, PreviousError};
use crate::journey_key::JourneyKey;
use chrono::{DateTime, Utc};
use lockstep_targeting::{Definition, DefinitionError};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;

/// Why a Freeform flag was refused.
pub const FREEFORM_FLAG_TYPE: &str =
    "a Freeform flag must be true or false, or a definition {\"default\": …, \"rules\": …}";

/// Which format a document was written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Format {
    /// Freeform JSON: flags are top-level booleans.
    Freeform,
    /// AppConfig's feature-flag retrieval format.
    FeatureFlags,
}

/// One flag as the document states it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DocFlag {
    /// Its value; for a flag defined by rules ([`Document::definitions`]), whether some caller
    /// may be served `true` ([`Definition::may_serve_true`]: what switching it off means).
    pub enabled: bool,
    /// Its stamp: the per-flag stamp, else the profile stamp, else none.
    pub stamp: Option<Stamp>,
    /// The drain time of the deployment that switched it off (rule 9), if it had one.
    pub drain: Option<Duration>,
}

/// A parsed, validated document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    /// The format it was written in.
    pub format: Format,
    /// The profile stamp (`lastModifiedTimestamp` and Δ of the latest deployment).
    pub profile_stamp: Option<Stamp>,
    /// Every flag, by name.
    pub flags: BTreeMap<String, DocFlag>,
    /// The journey keys (`journeyKeys`): the first signs tokens (the second until the first's
    /// [`Document::journey_key_stamp`] is consistent), every one verifies them.
    pub journey_keys: Vec<JourneyKey>,
    /// `journeyKeyStamp`: the stamp of the deployment that introduced the first journey key
    /// (rotated in), when there are two.
    pub journey_key_stamp: Option<Stamp>,
    /// The attributes of each feature flag that has any (every field but `enabled`), unvalidated;
    /// empty for Freeform documents. Never the metadata entry's.
    pub attributes: BTreeMap<String, Map<String, Value>>,
    /// The flags defined by rules (Freeform only: a flag written as a Powertools feature,
    /// `{"default": …, "rules": …}`), validated: design rule 10, `lockstep_targeting`.
    pub definitions: BTreeMap<String, Arc<Definition>>,
    /// Each flag's previous definitions that some instance may still hold, newest first, with
    /// their stamps (Freeform `flags.<name>.previous`, written by the stamping code): per-user
    /// consistency, [`crate::history`]. Absent for a flag that keeps none.
    pub previous: BTreeMap<String, Vec<Previous>>,
}

/// Why content was rejected.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ContentError {
    /// Not JSON at all.
    #[error("content is not JSON: {0}")]
    NotJson(String),
    /// JSON, but not an object.
    #[error("content must be a JSON object")]
    NotObject,
    /// A flag key AppConfig would refuse.
    #[error(transparent)]
    BadFlagName(#[from] BadFlagName),
    /// A flag whose value is of the wrong type for the document's format.
    #[error("flag {flag:?}: {why}")]
    BadFlag {
        /// The flag.
        flag: String,
        /// What is wrong.
        why: &'static str,
    },
    /// A stamp later than this instance's clock plus ε.
    #[error("stamped {at}, in the future beyond ε of this instance's clock")]
    FutureStamp {
        /// The stamp.
        at: DateTime<Utc>,
    },
    /// A flag definition (rules) that does not validate: names the flag and the rule.
    #[error(transparent)]
    BadDefinition(#[from] DefinitionError),
    /// A metadata field that is missing, of the wrong type or out of range.
    #[error("{METADATA_KEY}.{field}: {why}")]
    BadMetadata {
        /// The field.
        field: String,
        /// What is wrong.
        why: String,
    },
}

/// Refuses a document stamped later than `now + epsilon` on this instance's clock: a stamp from
/// the future (a wrong stamping clock, or tampering) would make a flag look consistent early once
/// that moment comes, or never consistent; either way it is not a deployment that started.
pub fn check_not_future(
    doc: &Document,
    now: DateTime<Utc>,
    epsilon: Duration,
) -> Result<(), ContentError> {
    let limit = now + chrono::TimeDelta::from_std(epsilon).unwrap_or(chrono::TimeDelta::MAX);
    let latest = doc
        .flags
        .values()
        .filter_map(|f| f.stamp)
        .chain(doc.profile_stamp)
        .map(|s| s.at)
        .max();
    match latest {
        Some(at) if at > limit => Err(ContentError::FutureStamp { at }),
        _ => Ok(()),
    }
}

/// Parses and validates content in either format.
pub fn parse(bytes: &[u8]) -> Result<Document, ContentError> {
    let value: Value =
        serde_json::from_slice(bytes).map_err(|e| ContentError::NotJson(e.to_string()))?;
    let Value::Object(mut object) = value else {
        return Err(ContentError::NotObject);
    };
    let metadata = object.remove(METADATA_KEY);
    let format = detect_format(metadata.as_ref(), &object)?;

    let mut flags = BTreeMap::new();
    let mut attributes = BTreeMap::new();
    let mut definitions = BTreeMap::new();
    for (name, value) in &object {
        check_flag_name(name)?;
        if format == Format::Freeform && Definition::is_definition(value) {
            let definition = Definition::parse(name, value)?;
            flags.insert(
                name.clone(),
                DocFlag {
                    enabled: definition.may_serve_true(),
                    stamp: None,
                    drain: None,
                },
            );
            definitions.insert(name.clone(), Arc::new(definition));
            continue;
        }
        if let Value::Object(fields) = value {
            let kept: Map<String, Value> = fields
                .iter()
                .filter(|(key, _)| *key != "enabled")
                .map(|(key, value)| (key.clone(), value.clone()))
                .collect();
            if !kept.is_empty() {
                attributes.insert(name.clone(), kept);
            }
        }
        let enabled = match (format, value) {
            (Format::Freeform, Value::Bool(b)) => *b,
            (Format::Freeform, _) => {
                return Err(ContentError::BadFlag {
                    flag: name.clone(),
                    why: FREEFORM_FLAG_TYPE,
                })
            }
            (Format::FeatureFlags, Value::Object(fields)) => match fields.get("enabled") {
                Some(Value::Bool(b)) => *b,
                _ => {
                    return Err(ContentError::BadFlag {
                        flag: name.clone(),
                        why: "a feature flag must have a boolean \"enabled\"",
                    })
                }
            },
            (Format::FeatureFlags, _) => {
                return Err(ContentError::BadFlag {
                    flag: name.clone(),
                    why: "a feature flag must be an object {\"enabled\": ...}",
                })
            }
        };
        flags.insert(
            name.clone(),
            DocFlag {
                enabled,
                stamp: None,
                drain: None,
            },
        );
    }

    let (profile_stamp, per_flag, (journey_keys, journey_key_stamp)) = match metadata {
        None => (None, BTreeMap::new(), (Vec::new(), None)),
        Some(Value::Object(fields)) => parse_metadata(format, &fields)?,
        Some(_) => {
            return Err(ContentError::BadMetadata {
                field: String::new(),
                why: "must be an object".into(),
            })
        }
    };
    let mut previous = BTreeMap::new();
    for (name, (stamp, drain, earlier)) in per_flag {
        let Some(flag) = flags.get_mut(&name) else {
            return Err(ContentError::BadMetadata {
                field: format!("stamp of {name}"),
                why: "names a flag the document does not contain".into(),
            });
        };
        if profile_stamp.is_some_and(|p| stamp.at > p.at) {
            return Err(ContentError::BadMetadata {
                field: format!("stamp of {name}"),
                why: "is later than lastModifiedTimestamp".into(),
            });
        }
        flag.stamp = Some(stamp);
        flag.drain = drain;
        if !earlier.is_empty() {
            previous.insert(name, earlier);
        }
    }
    if let (Some(key), Some(profile)) = (journey_key_stamp, profile_stamp) {
        if key.at > profile.at {
            return Err(bad(
                "journeyKeyStamp",
                "is later than lastModifiedTimestamp",
            ));
        }
    }
    for flag in flags.values_mut() {
        flag.stamp = flag.stamp.or(profile_stamp);
    }
    Ok(Document {
        format,
        profile_stamp,
        flags,
        journey_keys,
        journey_key_stamp,
        attributes,
        definitions,
        previous,
    })
}

fn detect_format(
    metadata: Option<&Value>,
    flags: &Map<String, Value>,
) -> Result<Format, ContentError> {
    let from_metadata = metadata.and_then(|m| match m {
        Value::Object(fields) if fields.contains_key("enabled") => Some(Format::FeatureFlags),
        Value::Object(_) => Some(Format::Freeform),
        _ => None,
    });
    // A flag written as a definition (`{"default": …}`) is Freeform; another object is a
    // feature flag (`{"enabled": …}`).
    let from_flags = flags.values().next().map(|v| match v {
        Value::Object(_) if !Definition::is_definition(v) => Format::FeatureFlags,
        _ => Format::Freeform,
    });
    match (from_metadata, from_flags) {
        (Some(a), Some(b)) if a != b => Err(ContentError::BadMetadata {
            field: "enabled".into(),
            why: "the metadata entry and the flags are in different formats".into(),
        }),
        (Some(f), _) | (None, Some(f)) => Ok(f),
        (None, None) => Ok(Format::Freeform),
    }
}

/// The profile stamp, per-flag stamps with their drain times, and the journey keys with the
/// stamp that introduced the first.
type Stamps = (
    Option<Stamp>,
    BTreeMap<String, (Stamp, Option<Duration>, Vec<Previous>)>,
    (Vec<JourneyKey>, Option<Stamp>),
);

/// The most journey keys a document may hold: the current one and the one it replaced.
pub const MAX_JOURNEY_KEYS: usize = 2;

fn parse_journey_keys(
    fields: &Map<String, Value>,
) -> Result<(Vec<JourneyKey>, Option<Stamp>), ContentError> {
    let stamp = match fields.get("journeyKeyStamp") {
        None => None,
        Some(Value::String(text)) => {
            Some(parse_stamp_text(text).map_err(|why| bad("journeyKeyStamp", &why))?)
        }
        Some(_) => return Err(bad("journeyKeyStamp", "must be a string T/seconds")),
    };
    let keys = match fields.get("journeyKeys") {
        None => Ok(Vec::new()),
        Some(Value::Array(items)) if items.len() <= MAX_JOURNEY_KEYS => items
            .iter()
            .map(|item| {
                item.as_str()
                    .and_then(|text| JourneyKey::from_text(text).ok())
                    .ok_or_else(|| {
                        bad(
                            "journeyKeys",
                            "must hold 32-byte keys in unpadded base64url",
                        )
                    })
            })
            .collect(),
        Some(_) => Err(bad(
            "journeyKeys",
            "must be an array of at most 2 keys (current, previous)",
        )),
    }?;
    Ok((keys, stamp))
}

fn parse_metadata(format: Format, fields: &Map<String, Value>) -> Result<Stamps, ContentError> {
    if format == Format::FeatureFlags && fields.get("enabled") != Some(&Value::Bool(true)) {
        return Err(bad(
            "enabled",
            "the metadata flag must be enabled, or AppConfig may drop its attributes",
        ));
    }
    let journey_keys = parse_journey_keys(fields)?;
    let at = match fields.get("lastModifiedTimestamp") {
        None => return Ok((None, BTreeMap::new(), journey_keys)),
        Some(Value::String(s)) => {
            parse_time(s).map_err(|why| bad("lastModifiedTimestamp", &why))?
        }
        Some(_) => return Err(bad("lastModifiedTimestamp", "must be an RFC 3339 string")),
    };
    let deployment_duration = match fields.get("deploymentDurationSeconds") {
        None => Duration::ZERO,
        Some(v) => parse_duration(v).map_err(|why| bad("deploymentDurationSeconds", why))?,
    };
    let profile = Stamp {
        at,
        deployment_duration,
    };
    let mut per_flag = BTreeMap::new();
    match format {
        Format::Freeform => match fields.get("flags") {
            None => {}
            Some(Value::Object(entries)) => {
                for (name, entry) in entries {
                    let field = format!("flags.{name}");
                    let Value::Object(entry) = entry else {
                        return Err(bad(&field, "must be an object"));
                    };
                    let at = match entry.get("lastModifiedTimestamp") {
                        Some(Value::String(s)) => parse_time(s).map_err(|why| bad(&field, &why))?,
                        _ => {
                            return Err(bad(
                                &field,
                                "needs lastModifiedTimestamp as an RFC 3339 string",
                            ))
                        }
                    };
                    let deployment_duration = match entry.get("deploymentDurationSeconds") {
                        None => Duration::ZERO,
                        Some(v) => parse_duration(v).map_err(|why| bad(&field, why))?,
                    };
                    let drain = entry
                        .get("drainSeconds")
                        .map(|v| parse_duration(v).map_err(|why| bad(&field, why)))
                        .transpose()?;
                    let stamp = Stamp {
                        at,
                        deployment_duration,
                    };
                    let previous =
                        parse_previous(name, entry, stamp, parse_duration).map_err(|error| {
                            match error {
                                PreviousError::Metadata(why) => {
                                    bad(&format!("{field}.previous"), &why)
                                }
                                PreviousError::Definition(error) => {
                                    ContentError::BadDefinition(error)
                                }
                            }
                        })?;
                    per_flag.insert(name.clone(), (stamp, drain, previous));
                }
            }
            Some(_) => return Err(bad("flags", "must be an object")),
        },
        Format::FeatureFlags => match fields.get("flagStamps") {
            None => {}
            Some(Value::Array(items)) => {
                for item in items {
                    let Value::String(text) = item else {
                        return Err(bad("flagStamps", "must hold strings name=T/seconds"));
                    };
                    let (name, stamp, drain) =
                        parse_flag_stamp(text).map_err(|why| bad("flagStamps", &why))?;
                    per_flag.insert(name, (stamp, drain, Vec::new()));
                }
            }
            Some(_) => return Err(bad("flagStamps", "must be an array of strings")),
        },
    }
    Ok((Some(profile), per_flag, journey_keys))
}

fn parse_duration(v: &Value) -> Result<Duration, &'static str> {
    let seconds = v
        .as_u64()
        .ok_or("must be a whole, non-negative number of seconds")?;
    let d = Duration::from_secs(seconds);
    if d > MAX_DEPLOYMENT_DURATION {
        return Err("must be at most 86400 (AppConfig's longest deployment)");
    }
    Ok(d)
}

fn bad(field: &str, why: &str) -> ContentError {
    ContentError::BadMetadata {
        field: field.to_owned(),
        why: why.to_owned(),
    }
}

#[cfg(test)]
mod tests;
