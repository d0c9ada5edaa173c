//! A flag's recent definitions, and per-user consistency (design rule 10).
//!
//! A deployment that changes a flag's definition gives the flag a new stamp, and an instance
//! that has not polled since may still serve the definition before it. For one caller, though,
//! only the definitions under which *their* value changed matter: if every definition some
//! instance may still hold gives a user the same value, every instance already serves that user
//! the same value. So the stamping code keeps, with the flag's stamp, its previous definitions
//! and their stamps (`previous`, newest first, at most [`MAX_KEPT`]), and a user's
//! `consistentAt` is `T_k + Δ_k + P + ε` for the latest definition k under which their value
//! differs from the definition before it. The oldest definition kept counts as different from
//! the one before it (which is not kept): fail closed.
//!
//! Why the bound holds (docs/consistency.md, "Per-user consistency"): an instance serving the
//! user a different value holds some definition j older than k. By `T_k + Δ_k + P + ε` every
//! instance has polled since deployment k completed (rules 1 and 3), so holds k or a later
//! definition, and from k on the user's value does not change.
//!
//! Written by [`crate::stamp`], read by [`crate::document`], applied per read by
//! [`crate::snapshot::ResolvedFlag::status_for`].

use crate::consistency::{self, Stamp, Window};
use crate::flag_stamp::parse_time;
use chrono::{DateTime, Utc};
use lockstep_targeting::{Context, Definition, DefinitionError};
use serde_json::{json, Map, Value};
use std::sync::Arc;
use std::time::Duration;

/// How many previous definitions a flag keeps: enough for the few deployments that can be in
/// flight within `Δ + P + ε` of each other (AppConfig runs one deployment per environment at a
/// time); a definition no longer kept counts as different.
pub const MAX_KEPT: usize = 4;

/// What a flag was under an earlier deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Earlier {
    /// A plain `true` or `false`.
    Plain(bool),
    /// Rules.
    Rules(Arc<Definition>),
}

impl Earlier {
    /// What it serves `context` at `now`: the boolean of a plain flag, or the evaluation's value.
    fn value(&self, context: &Context, now: DateTime<Utc>) -> Value {
        match self {
            Earlier::Plain(value) => Value::Bool(*value),
            Earlier::Rules(definition) => lockstep_targeting::evaluate(definition, context, now)
                .value
                .clone(),
        }
    }
}

/// One previous definition of a flag and the stamp of the deployment that introduced it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Previous {
    /// T and Δ of the deployment that introduced it.
    pub stamp: Stamp,
    /// The definition.
    pub definition: Earlier,
    /// The drain time that deployment carried (rule 9): the callers it switched off finish
    /// their journeys until its `T + Δ + P + ε + drain`, even after later deployments.
    pub drain: Option<Duration>,
}

/// A flag's previous definitions, newest first, with `T + Δ + P + ε` of each for this
/// instance's window.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct History {
    entries: Vec<Kept>,
}

/// One kept definition with its times for this instance's window.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Kept {
    previous: Previous,
    consistent_at: Option<DateTime<Utc>>,
    journey_opens_at: Option<DateTime<Utc>>,
    drain_ends_at: Option<DateTime<Utc>>,
}

/// A caller's step ([`History::step_for`]): the previous definition from which on their value
/// is the current one, and its times for this instance's window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step<'h> {
    /// The definition and its stamp.
    pub previous: &'h Previous,
    /// Its `T + Δ + P + ε`.
    pub consistent_at: Option<DateTime<Utc>>,
    /// Its `T + Δ + Q + ε` (rule 8, for a caller whose journey token claims this step).
    pub journey_opens_at: Option<DateTime<Utc>>,
    /// Its `T + Δ + P + ε + drain`, when its deployment carried a drain (rule 9).
    pub drain_ends_at: Option<DateTime<Utc>>,
}

impl History {
    /// `previous` (newest first) for `window`.
    pub fn new(previous: Vec<Previous>, window: Window) -> Self {
        Self {
            entries: previous
                .into_iter()
                .map(|p| Kept {
                    consistent_at: consistency::consistent_at(Some(p.stamp), false, window),
                    journey_opens_at: consistency::journey_opens_at(Some(p.stamp), false, window),
                    drain_ends_at: consistency::drain_ends_at(
                        Some(p.stamp),
                        false,
                        p.drain,
                        window,
                    ),
                    previous: p,
                })
                .collect(),
        }
    }

    /// Whether a previous definition reads the clock (a time-based condition): then no
    /// caller's answer can be fixed per version.
    pub fn reads_clock(&self) -> bool {
        self.entries
            .iter()
            .any(|kept| match &kept.previous.definition {
                Earlier::Rules(definition) => definition.reads_clock(),
                Earlier::Plain(_) => false,
            })
    }

    /// Whether nothing is kept.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The previous definitions, newest first.
    pub fn previous(&self) -> impl Iterator<Item = &Previous> {
        self.entries.iter().map(|kept| &kept.previous)
    }

    /// The caller's step: the previous definition, newest first, from which on their value is
    /// the one the current definition serves them (`current`), with its `T + Δ + P + ε` for
    /// this window; `None` when the newest kept definition already served them another value
    /// (their step is the current definition). The oldest kept definition counts as different
    /// from the one before it.
    pub fn step_for(
        &self,
        current: &Value,
        context: &Context,
        now: DateTime<Utc>,
    ) -> Option<Step<'_>> {
        let mut step = None;
        let mut newer = current.clone();
        for kept in &self.entries {
            let value = kept.previous.definition.value(context, now);
            if value != newer {
                break;
            }
            step = Some(Step {
                previous: &kept.previous,
                consistent_at: kept.consistent_at,
                journey_opens_at: kept.journey_opens_at,
                drain_ends_at: kept.drain_ends_at,
            });
            newer = value;
        }
        step
    }

    /// The caller's `consistentAt` for a flag whose current definition serves them `current`
    /// and is consistent from `current_at` (`T + Δ + P + ε` of the flag's own stamp): the
    /// `consistentAt` of their step ([`History::step_for`]). Never later than `current_at`.
    pub fn consistent_at_for(
        &self,
        current: &Value,
        current_at: Option<DateTime<Utc>>,
        context: &Context,
        now: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        Self::bounded(self.step_for(current, context, now), current_at)
    }

    /// A caller's `consistentAt` from their step: the step's, never later than `current_at`
    /// (the flag's own); `current_at` when the current definition is their step.
    pub fn bounded(
        step: Option<Step<'_>>,
        current_at: Option<DateTime<Utc>>,
    ) -> Option<DateTime<Utc>> {
        match (step.and_then(|s| s.consistent_at), current_at) {
            (Some(bound), Some(current_at)) => Some(bound.min(current_at)),
            _ => current_at,
        }
    }
}

/// Why a flag's `previous` list was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PreviousError {
    /// The list or an entry is malformed: what is wrong.
    Metadata(String),
    /// An entry's definition does not validate.
    Definition(DefinitionError),
}

/// Reads a flag's `previous` list (Freeform metadata, `flags.<name>.previous`): each entry
/// `{"lastModifiedTimestamp", "deploymentDurationSeconds", "value"}`, newest first, each older
/// than the one before it and than `stamp`, at most [`MAX_KEPT`]; `value` is `true`, `false` or
/// a definition, validated as the flag itself would be. `parse_duration` reads a duration as
/// the rest of the metadata does.
pub fn parse_previous(
    name: &str,
    entry: &Map<String, Value>,
    stamp: Stamp,
    parse_duration: impl Fn(&Value) -> Result<Duration, &'static str>,
) -> Result<Vec<Previous>, PreviousError> {
    let bad = |why: &str| PreviousError::Metadata(why.to_owned());
    let items = match entry.get("previous") {
        None => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(_) => return Err(bad("must be an array")),
    };
    if items.len() > MAX_KEPT {
        return Err(bad(&format!("keeps at most {MAX_KEPT} definitions")));
    }
    let mut newer = stamp.at;
    let mut previous = Vec::with_capacity(items.len());
    for item in items {
        let Value::Object(item) = item else {
            return Err(bad("must hold objects"));
        };
        let at = match item.get("lastModifiedTimestamp") {
            Some(Value::String(s)) => parse_time(s).map_err(|why| bad(&why))?,
            _ => return Err(bad("needs lastModifiedTimestamp as an RFC 3339 string")),
        };
        if at >= newer {
            return Err(bad("must be older than the definition after it"));
        }
        newer = at;
        let deployment_duration = match item.get("deploymentDurationSeconds") {
            None => Duration::ZERO,
            Some(v) => parse_duration(v).map_err(bad)?,
        };
        let definition = match item.get("value") {
            Some(Value::Bool(value)) => Earlier::Plain(*value),
            Some(value) if Definition::is_definition(value) => Earlier::Rules(Arc::new(
                Definition::parse(name, value).map_err(PreviousError::Definition)?,
            )),
            _ => return Err(bad("needs a value: true, false or a definition")),
        };
        let drain = match item.get("drainSeconds") {
            None => None,
            Some(v) => Some(parse_duration(v).map_err(bad)?),
        };
        previous.push(Previous {
            stamp: Stamp {
                at,
                deployment_duration,
            },
            definition,
            drain,
        });
    }
    Ok(previous)
}

/// The `previous` list to write for a flag whose definition changes: the definition it had
/// (`old`, raw JSON as deployed, with its stamp and the drain its deployment carried), then
/// what it kept before, at most [`MAX_KEPT`] in all.
pub fn push_previous(
    old: &Value,
    old_stamp: Stamp,
    old_drain: Option<Duration>,
    old_previous: Option<&Value>,
) -> Vec<Value> {
    let mut entry = json!({
        "lastModifiedTimestamp": old_stamp.at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "deploymentDurationSeconds": old_stamp.deployment_duration.as_secs(),
        "value": old,
    });
    if let Some(drain) = old_drain {
        entry["drainSeconds"] = json!(drain.as_secs());
    }
    let mut entries = vec![entry];
    if let Some(Value::Array(kept)) = old_previous {
        entries.extend(kept.iter().cloned());
    }
    entries.truncate(MAX_KEPT);
    entries
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn window() -> Window {
        Window {
            poll_interval: Duration::from_secs(45),
            epsilon: Duration::from_secs(5),
        }
    }

    fn rollout(percent: u32) -> Earlier {
        let definition = json!({"default": false, "rules": {"rollout": {"split": [
            {"variant": "on", "value": true, "weight": percent},
            {"variant": "off", "value": false, "weight": 100 - percent}]}}});
        Earlier::Rules(Arc::new(
            Definition::parse("checkout", &definition).unwrap(),
        ))
    }

    fn user(key: &str) -> Context {
        let mut context = Context::new();
        context.insert("targetingKey".into(), json!(key));
        context
    }

    /// A user inside 25 %, and one outside 25 % but inside 100 %.
    fn users() -> (Context, Context) {
        let value = |d: &Earlier, c: &Context| d.value(c, t("2026-12-01T00:00:00Z"));
        let mut inside = None;
        let mut outside = None;
        for i in 0..100 {
            let c = user(&format!("u{i}"));
            match value(&rollout(25), &c) == json!(true) {
                true => inside = inside.or(Some(c)),
                false => outside = outside.or(Some(c)),
            }
        }
        (inside.unwrap(), outside.unwrap())
    }

    #[test]
    fn widening_keeps_an_included_users_consistent_at_and_moves_a_newly_included_users() {
        let (inside, outside) = users();
        let t25 = Stamp {
            at: t("2026-12-01T10:00:00Z"),
            deployment_duration: Duration::from_secs(60),
        };
        let history = History::new(
            vec![Previous {
                stamp: t25,
                definition: rollout(25),
                drain: None,
            }],
            window(),
        );
        let at25 = consistency::consistent_at(Some(t25), false, window());
        let at100 = Some(t("2026-12-01T11:01:50Z"));
        let now = t("2026-12-01T11:00:10Z");
        assert_eq!(
            history.consistent_at_for(&json!(true), at100, &inside, now),
            at25,
            "already in: their value did not change, nothing moves"
        );
        assert_eq!(
            history.consistent_at_for(&json!(true), at100, &outside, now),
            at100,
            "newly included: they wait for the widening"
        );
    }

    #[test]
    fn the_oldest_definition_kept_counts_as_different_from_the_one_before_it() {
        let (inside, _) = users();
        let stamps: Vec<Stamp> = ["2026-12-01T08:00:00Z", "2026-12-01T09:00:00Z"]
            .iter()
            .map(|s| Stamp {
                at: t(s),
                deployment_duration: Duration::ZERO,
            })
            .collect();
        // Newest first: 50 % at 09:00, 25 % at 08:00; the user is in both and in 100 %.
        let history = History::new(
            vec![
                Previous {
                    stamp: stamps[1],
                    definition: rollout(50),
                    drain: None,
                },
                Previous {
                    stamp: stamps[0],
                    definition: rollout(25),
                    drain: None,
                },
            ],
            window(),
        );
        let at = history.consistent_at_for(
            &json!(true),
            Some(t("2026-12-01T10:00:50Z")),
            &inside,
            t("2026-12-01T10:00:10Z"),
        );
        assert_eq!(
            at,
            consistency::consistent_at(Some(stamps[0]), false, window())
        );
    }

    #[test]
    fn without_history_or_current_bound_nothing_changes() {
        let (inside, _) = users();
        let now = t("2026-12-01T10:00:00Z");
        assert_eq!(
            History::default().consistent_at_for(&json!(true), Some(now), &inside, now),
            Some(now)
        );
        let history = History::new(
            vec![Previous {
                stamp: Stamp {
                    at: t("2026-12-01T09:00:00Z"),
                    deployment_duration: Duration::ZERO,
                },
                definition: Earlier::Plain(true),
                drain: None,
            }],
            window(),
        );
        assert_eq!(
            history.consistent_at_for(&json!(true), None, &inside, now),
            None,
            "an unstamped flag stays unstamped"
        );
    }

    #[test]
    fn previous_entries_are_written_newest_first_and_bounded() {
        let stamp = |s: &str| Stamp {
            at: t(s),
            deployment_duration: Duration::from_secs(60),
        };
        let mut kept = Value::Array(Vec::new());
        for (i, at) in [
            "2026-12-01T01:00:00Z",
            "2026-12-01T02:00:00Z",
            "2026-12-01T03:00:00Z",
            "2026-12-01T04:00:00Z",
            "2026-12-01T05:00:00Z",
        ]
        .iter()
        .enumerate()
        {
            kept = Value::Array(push_previous(
                &json!(i % 2 == 0),
                stamp(at),
                None,
                Some(&kept),
            ));
        }
        let entries = kept.as_array().unwrap();
        assert_eq!(entries.len(), MAX_KEPT);
        assert_eq!(
            entries[0]["lastModifiedTimestamp"],
            "2026-12-01T05:00:00.000Z"
        );
        assert_eq!(
            entries[3]["lastModifiedTimestamp"],
            "2026-12-01T02:00:00.000Z"
        );
    }
}
