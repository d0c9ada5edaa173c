//! Deploy-time stamping: the one implementation behind the AppConfig extension
//! (`PRE_START_DEPLOYMENT`) and the pipeline command.
//!
//! It writes the profile stamp (`lastModifiedTimestamp` = the deployment's start, and Δ) and
//! per-flag stamps: a flag whose value equals its value in the previously deployed content keeps
//! that content's stamp (T and Δ); a changed or new flag gets this deployment's. Without previous
//! content every flag gets this deployment's stamp: stamps already inside the new content are
//! never trusted on their own, because an edited value under an old stamp would make a flag look
//! consistent too early. Stamping its own output again, with that output as the previous
//! content, moves no per-flag stamp.
//!
//! Formats: Freeform JSON, and the AppConfig feature-flag *stored* format
//! (`{"version": "1", "flags": {...}, "values": {...}}`), where the metadata flag is declared in
//! `flags` with its attributes and enabled in `values`, so AppConfig's own validation still
//! passes. The previous content may be in either the stored or the retrieval form.

mod error;
mod read;

pub use error::StampError;
pub use read::retrieval_form;

use crate::catalog::METADATA_KEY;
use crate::consistency::{Stamp, MAX_DEPLOYMENT_DURATION};
use crate::document::{self, format_flag_stamp};
use crate::history;
use crate::journey_key::JourneyKey;
use chrono::{DateTime, SecondsFormat, Utc};
use lockstep_targeting::Definition;
use read::{freeform_values, previous_document, stored_values};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::time::Duration;

/// What happened to one flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Change {
    /// Not in the previous content.
    New,
    /// A different value than before.
    Changed,
    /// The same value: its stamp is kept.
    Kept,
}

impl Change {
    /// `new`, `changed` or `kept`: what the command line, logs and the local runner print.
    pub fn as_str(self) -> &'static str {
        match self {
            Change::New => "new",
            Change::Changed => "changed",
            Change::Kept => "kept",
        }
    }
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The stamped content and a report per flag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stamped {
    /// The content to deploy.
    pub content: Vec<u8>,
    /// Each flag, what happened, and its resulting stamp.
    pub flags: BTreeMap<String, (Change, Stamp)>,
    /// The flags that carry a drain time (switched off by this deployment with `--drain`, or
    /// kept from the deployment that did).
    pub drains: BTreeMap<String, Duration>,
    /// What happened to the journey key.
    pub key: KeyChange,
}

/// What stamping did with the journey key (never the key itself: it is a secret).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyChange {
    /// The previous content's keys were kept.
    Kept,
    /// There was none: one was made.
    Created,
    /// A new key signs from now on; the previous one still verifies.
    Rotated,
}

/// Choices a deployment can make beyond its content and strategy.
#[derive(Debug, Clone, Default)]
pub struct StampOptions {
    /// A drain time for the flags this deployment switches from on to off (rule 9): journeys
    /// in flight may finish until `T + Δ + P + ε + drain`. None: a kill switch.
    pub drain: Option<Duration>,
    /// Make a new journey key to sign with; the current one stays accepted for verification.
    pub rotate_key: bool,
    /// The key to use when one is made (default: fresh from the operating system's random
    /// source); for reproducible output in tests.
    pub new_key: Option<JourneyKey>,
    /// Content is deployed but could not be read (an error, a timeout, content that does not
    /// parse), so `previous` is `None`: every flag still gets this deployment's stamp, but the
    /// drain times and journey keys come from the content's own metadata (what `lockstep
    /// deploy` wrote), never dropped or made anew; content without keys is refused
    /// ([`StampError::KeysUnknown`]).
    pub previous_unreadable: bool,
}

/// Stamps `content` for a deployment starting `at` with strategy duration `deployment_duration`,
/// keeping the stamps of flags unchanged since `previous` and its journey keys: [`stamp_with`]
/// without a drain or a key rotation.
pub fn stamp(
    content: &[u8],
    previous: Option<&[u8]>,
    at: DateTime<Utc>,
    deployment_duration: Duration,
) -> Result<Stamped, StampError> {
    stamp_with(
        content,
        previous,
        at,
        deployment_duration,
        &StampOptions::default(),
    )
}

/// Stamps `content` as [`stamp`] does, with a drain time for the flags it switches off and an
/// optional key rotation.
///
/// Journey keys come from the previous content, except that the content's own keys are taken
/// when they are a rotation of the previous ones (one new key, then the previous current key:
/// `lockstep deploy --rotate-journey-key` stamped it, and the AppConfig extension stamps it
/// again); any other keys in the content are ignored. Without previous content they come from
/// the content's own metadata (a redeploy of exported content, or `previous_unreadable`); else
/// a new key is made. A key rotated in carries this deployment's stamp (`journeyKeyStamp`) and
/// only verifies until that stamp is consistent ([`crate::snapshot::Snapshot::signing_key`]).
/// A flag switched off takes `options.drain`, else a drain time the content's own metadata
/// gives it (content that `lockstep deploy --drain` stamped, stamped again by the AppConfig
/// extension), else none; with `previous_unreadable`, every flag that is off keeps the drain
/// time the content's own metadata gives it.
pub fn stamp_with(
    content: &[u8],
    previous: Option<&[u8]>,
    at: DateTime<Utc>,
    deployment_duration: Duration,
    options: &StampOptions,
) -> Result<Stamped, StampError> {
    if deployment_duration > MAX_DEPLOYMENT_DURATION {
        return Err(StampError::Duration);
    }
    if options.drain.is_some_and(|d| d > MAX_DEPLOYMENT_DURATION) {
        return Err(StampError::Drain);
    }
    // Stamps are written with millisecond precision; keep the report equal to what is written.
    let at = DateTime::from_timestamp_millis(at.timestamp_millis()).unwrap_or(at);
    let now = Stamp {
        at,
        deployment_duration,
    };
    // The previous content as deployed, for the raw definitions its flags had (per-user
    // consistency keeps them: `crate::history`). Freeform only: definitions live nowhere else.
    let previous_raw: Option<Value> = previous
        .and_then(|b| serde_json::from_slice::<Value>(b).ok())
        .filter(|v| !(v.get("version").is_some() && v.get("flags").is_some()));
    let previous = previous
        .map(previous_document)
        .transpose()
        .map_err(|e| StampError::Previous(Box::new(e)))?;
    let root: Value = serde_json::from_slice(content).map_err(StampError::NotJson)?;
    let Value::Object(mut root) = root else {
        return Err(StampError::NotObject);
    };
    // The content's own metadata, when it has any (content `lockstep deploy` stamped, then
    // stamped again by the extension; or exported content): only its journey keys (a rotation
    // of the previous ones, or when no previous content is readable) and its drain times are
    // taken from it, never its stamps.
    let own = previous_document(content).ok();
    let make_key = || match &options.new_key {
        Some(key) => Ok(key.clone()),
        None => JourneyKey::generate().map_err(|e| StampError::KeyGeneration(e.to_string())),
    };
    let stored = root.contains_key("version") && root.contains_key("flags");
    let values = if stored {
        stored_values(&root)?
    } else {
        freeform_values(&root)?
    };
    let keys = choose_keys(previous.as_ref(), own.as_ref(), options, now, make_key)?;
    let previous_definitions = previous
        .as_ref()
        .map(|doc| doc.definitions.clone())
        .unwrap_or_default();
    let previous = previous.map(|doc| doc.flags).unwrap_or_default();
    let mut flags = BTreeMap::new();
    let mut drains = BTreeMap::new();
    let mut histories = BTreeMap::new();
    for (name, flag) in &values {
        let value = &flag.on;
        // Unchanged: the same value, and for a flag defined by rules the same definition (a
        // changed rule keeps no stamp, even if the flag may still serve true).
        let same_definition =
            previous_definitions.get(name).map(|d| &**d) == flag.definition.as_ref();
        let entry = match previous.get(name) {
            Some(old) if old.enabled == *value && old.stamp.is_some() && same_definition => {
                // A flag defined by rules keeps its drain while on: its narrowing dropped users.
                if let Some(drain) = old.drain.filter(|_| !*value || flag.definition.is_some()) {
                    drains.insert(name.clone(), drain);
                }
                if let Some(kept) = kept_previous(previous_raw.as_ref(), name) {
                    histories.insert(name.clone(), kept.as_array().cloned().unwrap_or_default());
                }
                (Change::Kept, old.stamp.expect("checked"))
            }
            Some(old) => {
                // A flag defined by rules, before or now: its previous definition is kept, so
                // that callers whose value did not change stay consistent (rule 10).
                let by_rules = flag.definition.is_some() || previous_definitions.contains_key(name);
                let old_raw = previous_raw
                    .as_ref()
                    .and_then(|raw| raw.get(name))
                    .filter(|v| v.is_boolean() || Definition::is_definition(v));
                if let (true, Some(old_raw), Some(old_stamp)) = (by_rules, old_raw, old.stamp) {
                    if old_stamp.at < now.at {
                        histories.insert(
                            name.clone(),
                            history::push_previous(
                                old_raw,
                                old_stamp,
                                old.drain,
                                kept_previous(previous_raw.as_ref(), name),
                            ),
                        );
                    }
                }
                let own_drain = own
                    .as_ref()
                    .and_then(|doc| doc.flags.get(name))
                    .and_then(|f| f.drain);
                // A switch-off, or a change of rules that may switch some callers off (a
                // narrowing): rule 9 then applies to the callers it dropped (rule 10).
                let may_switch_off = !*value || flag.definition.is_some();
                if let Some(drain) = options
                    .drain
                    .or(own_drain)
                    .filter(|_| old.enabled && may_switch_off)
                {
                    drains.insert(name.clone(), drain);
                }
                (Change::Changed, now)
            }
            None => {
                // Content is deployed but unreadable: the drain the content's own metadata
                // gives a flag that is off is carried, never turned into a kill switch.
                let own_drain = own
                    .as_ref()
                    .filter(|_| options.previous_unreadable && !*value)
                    .and_then(|doc| doc.flags.get(name))
                    .and_then(|f| f.drain);
                if let Some(drain) = own_drain {
                    drains.insert(name.clone(), drain);
                }
                (Change::New, now)
            }
        };
        flags.insert(name.clone(), entry);
    }
    let switched_off_now = drains.keys().any(|name| {
        flags
            .get(name)
            .is_some_and(|(change, _)| *change == Change::Changed)
    });
    if options.drain.is_some() && !switched_off_now {
        return Err(StampError::DrainWithoutSwitchOff);
    }
    let written = Written {
        flags: &flags,
        drains: &drains,
        histories: &histories,
        keys: &keys,
        now,
    };
    let key = keys.change;
    if stored {
        write_stored(&mut root, &written);
    } else {
        write_freeform(&mut root, &written);
        // A document of Powertools features only stays readable by Powertools itself: the
        // metadata entry reads as one more feature, always on (docs/targeting.md).
        if !values.is_empty() && values.values().all(|v| v.definition.is_some()) {
            if let Some(Value::Object(metadata)) = root.get_mut(METADATA_KEY) {
                metadata.insert("default".into(), Value::Bool(true));
            }
        }
    }
    let content = serde_json::to_vec_pretty(&Value::Object(root)).expect("a JSON value serialises");
    // What we deploy must be what the flag library accepts.
    let check = if stored {
        retrieval_form(&content)?
    } else {
        content.clone()
    };
    document::parse(&check).map_err(StampError::Invalid)?;
    Ok(Stamped {
        content,
        flags,
        drains,
        key,
    })
}

/// The journey keys to write, the stamp of the deployment that rotated the first one in (with
/// two keys), and what happened.
struct Keys {
    keys: Vec<JourneyKey>,
    stamp: Option<Stamp>,
    change: KeyChange,
}

/// Which journey keys this deployment writes (see [`stamp_with`]). The deployed keys are kept
/// unless the operator rotates them, here or in the stamping of this content's own metadata;
/// keys the content merely carries never replace them.
fn choose_keys(
    deployed: Option<&document::Document>,
    own: Option<&document::Document>,
    options: &StampOptions,
    now: Stamp,
    make_key: impl Fn() -> Result<JourneyKey, StampError>,
) -> Result<Keys, StampError> {
    let rotated = |new: JourneyKey, current: &JourneyKey| Keys {
        keys: vec![new, current.clone()],
        stamp: Some(now),
        change: KeyChange::Rotated,
    };
    let created = || {
        Ok(Keys {
            keys: vec![make_key()?],
            stamp: None,
            change: KeyChange::Created,
        })
    };
    let own_keys = own.map(|doc| doc.journey_keys.as_slice()).unwrap_or(&[]);
    let Some(deployed) = deployed else {
        // Nothing deployed (a first deployment, or exported content deployed again), or what
        // is deployed cannot be read: the content's own keys, which cannot be dated, so a
        // second one keeps signing until this deployment is consistent.
        return match (own_keys.first(), options.rotate_key) {
            (None, _) if options.previous_unreadable => Err(StampError::KeysUnknown),
            (None, _) => created(),
            (Some(current), true) => Ok(rotated(make_key()?, current)),
            (Some(_), false) => Ok(Keys {
                keys: own_keys.to_vec(),
                stamp: (own_keys.len() > 1).then_some(now),
                change: KeyChange::Kept,
            }),
        };
    };
    let kept = Keys {
        keys: deployed.journey_keys.clone(),
        stamp: deployed.journey_key_stamp,
        change: KeyChange::Kept,
    };
    match (deployed.journey_keys.first(), options.rotate_key) {
        (None, _) => created(),
        (Some(current), true) => Ok(rotated(make_key()?, current)),
        (Some(_), false) if own_keys == deployed.journey_keys.as_slice() => Ok(kept),
        (Some(current), false) => match own_keys {
            // One new key, then the deployed current one (a prefix of the deployed keys).
            [new, previous] if previous == current && !deployed.journey_keys.contains(new) => {
                Ok(rotated(new.clone(), current))
            }
            _ => Ok(kept),
        },
    }
}

/// What the metadata block is written from.
struct Written<'a> {
    flags: &'a BTreeMap<String, (Change, Stamp)>,
    drains: &'a BTreeMap<String, Duration>,
    /// Each flag's previous definitions (`previous`, Freeform only): [`crate::history`].
    histories: &'a BTreeMap<String, Vec<Value>>,
    keys: &'a Keys,
    now: Stamp,
}

impl Written<'_> {
    fn keys(&self) -> Vec<String> {
        self.keys.keys.iter().map(JourneyKey::to_text).collect()
    }

    /// `journeyKeyStamp`, written only while two keys are listed.
    fn key_stamp(&self) -> Option<String> {
        self.keys
            .stamp
            .filter(|_| self.keys.keys.len() > 1)
            .map(|s| document::format_stamp_text(&s))
    }
}

/// The `previous` list the deployed content keeps for `name` (Freeform metadata), if any.
fn kept_previous<'v>(deployed: Option<&'v Value>, name: &str) -> Option<&'v Value> {
    deployed?
        .get(METADATA_KEY)?
        .get("flags")?
        .get(name)?
        .get("previous")
        .filter(|p| p.as_array().is_some_and(|a| !a.is_empty()))
}

fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn write_freeform(root: &mut Map<String, Value>, written: &Written<'_>) {
    let per_flag: Map<String, Value> = written
        .flags
        .iter()
        .map(|(name, (_, s))| {
            let mut entry = json!({"lastModifiedTimestamp": iso(s.at), "deploymentDurationSeconds": s.deployment_duration.as_secs()});
            if let Some(drain) = written.drains.get(name) {
                entry["drainSeconds"] = json!(drain.as_secs());
            }
            if let Some(previous) = written.histories.get(name) {
                entry["previous"] = json!(previous);
            }
            (name.clone(), entry)
        })
        .collect();
    let now = written.now;
    let mut metadata = json!({
        "lastModifiedTimestamp": iso(now.at),
        "deploymentDurationSeconds": now.deployment_duration.as_secs(),
        "flags": per_flag,
        "journeyKeys": written.keys(),
    });
    if let Some(stamp) = written.key_stamp() {
        metadata["journeyKeyStamp"] = json!(stamp);
    }
    root.insert(METADATA_KEY.into(), metadata);
}

fn write_stored(root: &mut Map<String, Value>, written: &Written<'_>) {
    let now = written.now;
    let stamps: Vec<Value> = written
        .flags
        .iter()
        .map(|(name, (_, s))| {
            json!(format_flag_stamp(
                name,
                s,
                written.drains.get(name).copied()
            ))
        })
        .collect();
    if let Some(Value::Object(declared)) = root.get_mut("flags") {
        declared.insert(
            METADATA_KEY.into(),
            json!({
                "name": "Lockstep deployment metadata",
                "description": "Written by Lockstep's stamping at deployment; keep enabled.",
                "attributes": {
                    "lastModifiedTimestamp": {"constraints": {"type": "string", "required": true}},
                    "deploymentDurationSeconds": {"constraints": {"type": "number", "required": true}},
                    "flagStamps": {"constraints": {"type": "array", "elements": {"type": "string"}}},
                    "journeyKeys": {"constraints": {"type": "array", "elements": {"type": "string"}}}
                }
            }),
        );
        // Declared only while it is written (a rotation in its verify-only time), so content
        // without a rotation keeps its exact form.
        if written.key_stamp().is_some() {
            declared[METADATA_KEY]["attributes"]["journeyKeyStamp"] =
                json!({"constraints": {"type": "string"}});
        }
    }
    let values = root.entry("values").or_insert_with(|| json!({}));
    if let Value::Object(values) = values {
        let mut metadata = json!({
            "enabled": true,
            "lastModifiedTimestamp": iso(now.at),
            "deploymentDurationSeconds": now.deployment_duration.as_secs(),
            "flagStamps": stamps,
            "journeyKeys": written.keys(),
        });
        if let Some(stamp) = written.key_stamp() {
            metadata["journeyKeyStamp"] = json!(stamp);
        }
        values.insert(METADATA_KEY.into(), metadata);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_duration_over_a_day_is_refused() {
        let err = stamp(b"{}", None, Utc::now(), Duration::from_secs(86_401)).unwrap_err();
        assert!(matches!(err, StampError::Duration), "{err}");
    }
}
