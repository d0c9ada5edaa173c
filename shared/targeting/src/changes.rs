//! When a caller's answer next changes without a deployment (design rule 10, `changesAt`): a
//! time-based condition's boundary or a ramp's inclusion instant, the first such instant at
//! which the evaluation's value differs from now's. Every instance knows these instants and
//! reaches them on its own clock, so instances may disagree only within ε of one.
//!
//! Candidates are each time-based condition's next boundary ([`crate::schedule`]: a time
//! range's first and last-plus-one minute, a day's midnight, a date-time range's ends, in its
//! zone) and, for each ramped split, the caller's inclusion instant ([`crate::ramp`]); a
//! candidate at which the value does not change (a boundary of a rule that does not match, a
//! day that is still in the list) is passed over, up to [`MAX_STEPS`] candidates or
//! [`HORIZON_DAYS`] ahead. Instants are whole milliseconds, rounded up.

use crate::actions::Operand;
use crate::definition::{Definition, Outcome};
use crate::evaluate::evaluate;
use crate::{Context, TARGETING_KEY};
use chrono::{DateTime, TimeDelta, Utc};
use serde_json::Value;

/// The most candidate instants looked at.
pub const MAX_STEPS: usize = 64;

/// How far ahead a change is looked for.
pub const HORIZON_DAYS: i64 = 400;

/// The first instant after `now` at which `definition` serves `context` a different value, if
/// one comes within the horizon; `None` for a definition that does not read the clock.
pub fn next_change(
    definition: &Definition,
    context: &Context,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    next_change_until(
        definition,
        context,
        now,
        now + TimeDelta::days(HORIZON_DAYS),
    )
}

/// [`next_change`], looking no later than `until`.
pub fn next_change_until(
    definition: &Definition,
    context: &Context,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    if !definition.reads_clock() {
        return None;
    }
    let current = evaluate(definition, context, now).value;
    let mut at = now;
    for _ in 0..MAX_STEPS {
        let next = next_candidate(definition, context, at)?;
        if next > until {
            return None;
        }
        if evaluate(definition, context, next).value != current {
            return Some(next);
        }
        at = next;
    }
    None
}

/// The earliest candidate instant strictly after `at`.
fn next_candidate(
    definition: &Definition,
    context: &Context,
    at: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let mut earliest: Option<DateTime<Utc>> = None;
    let mut consider = |candidate: Option<DateTime<Utc>>| {
        if let Some(candidate) = candidate.map(ceil_millis).filter(|c| *c > at) {
            earliest = Some(earliest.map_or(candidate, |e| e.min(candidate)));
        }
    };
    for rule in &definition.rules {
        for condition in &rule.conditions {
            consider(match &condition.operand {
                Operand::TimeRange(range) => range.next_boundary(at),
                Operand::DateTimeRange(range) => range.next_boundary(at),
                Operand::Days(days) => days.next_boundary(at),
                _ => None,
            });
        }
        if let Outcome::Split(split) = &rule.outcome {
            let key = split.by.as_deref().unwrap_or(TARGETING_KEY);
            if let Some(Value::String(by)) = context.get(key) {
                consider(
                    split
                        .inclusion_at(&definition.name, by)
                        .and_then(DateTime::from_timestamp_millis),
                );
            }
        }
    }
    earliest
}

/// `at` rounded up to a whole millisecond.
fn ceil_millis(at: DateTime<Utc>) -> DateTime<Utc> {
    let sub = at.timestamp_subsec_nanos() % 1_000_000;
    if sub == 0 {
        at
    } else {
        at + TimeDelta::nanoseconds(i64::from(1_000_000 - sub))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    fn user(key: &str) -> Context {
        json!({"targetingKey": key}).as_object().cloned().unwrap()
    }

    #[test]
    fn a_ramp_changes_each_caller_at_their_inclusion_instant() {
        let definition = Definition::parse("f", &json!({"default": false, "rules": {"r": {
            "split": [{"variant": "on", "value": true, "weight": 0}, {"variant": "off", "value": false, "weight": 100}],
            "ramp": {"weight": 100, "start": "2026-12-07T09:00:00Z", "end": "2026-12-07T10:40:00Z"}
        }}}))
        .unwrap();
        let Outcome::Split(split) = &definition.rules[0].outcome else {
            unreachable!()
        };
        for key in ["ana", "bo", "cy", "dee"] {
            let context = user(key);
            let expected = split.inclusion_at("f", key).unwrap();
            let changes = next_change(&definition, &context, at("2026-12-07T08:00:00Z")).unwrap();
            assert_eq!(changes.timestamp_millis(), expected, "{key}");
            assert_eq!(evaluate(&definition, &context, changes).value, &json!(true));
            let before = changes - TimeDelta::milliseconds(1);
            assert_eq!(evaluate(&definition, &context, before).value, &json!(false));
            // Once in, in for good.
            assert_eq!(next_change(&definition, &context, changes), None);
        }
    }

    #[test]
    fn a_time_range_changes_at_its_first_and_after_its_last_minute() {
        let definition = Definition::parse(
            "f",
            &json!({"default": false, "rules": {"r": {
                "when_match": true,
                "conditions": [{"action": "SCHEDULE_BETWEEN_TIME_RANGE", "key": "CURRENT_TIME",
                    "value": {"START": "09:00", "END": "17:00", "TIMEZONE": "Europe/Berlin"}}]
            }}}),
        )
        .unwrap();
        let anyone = Context::new();
        // Winter: Berlin is UTC+1.
        assert_eq!(
            next_change(&definition, &anyone, at("2026-12-07T06:00:00Z")),
            Some(at("2026-12-07T08:00:00Z"))
        );
        assert_eq!(
            next_change(&definition, &anyone, at("2026-12-07T08:00:00Z")),
            Some(at("2026-12-07T16:01:00Z"))
        );
    }

    #[test]
    fn a_boundary_that_changes_nothing_is_passed_over() {
        let definition = Definition::parse("f", &json!({"default": false, "rules": {"r": {
            "when_match": true,
            "conditions": [{"action": "SCHEDULE_BETWEEN_DAYS_OF_WEEK", "key": "CURRENT_DAY_OF_WEEK",
                "value": {"DAYS": ["SATURDAY", "SUNDAY"]}}]
        }}}))
        .unwrap();
        // Thursday 2026-12-10: Friday's midnight changes nothing, Saturday's does.
        assert_eq!(
            next_change(&definition, &Context::new(), at("2026-12-10T12:00:00Z")),
            Some(at("2026-12-12T00:00:00Z"))
        );
        assert_eq!(
            next_change(&definition, &Context::new(), at("2026-12-12T12:00:00Z")),
            Some(at("2026-12-14T00:00:00Z"))
        );
    }

    #[test]
    fn a_datetime_range_changes_at_its_start_and_just_after_its_end() {
        let definition = Definition::parse("f", &json!({"default": false, "rules": {"r": {
            "when_match": true,
            "conditions": [{"action": "SCHEDULE_BETWEEN_DATETIME_RANGE", "key": "CURRENT_DATETIME",
                "value": {"START": "2026-12-24T18:00:00", "END": "2026-12-26", "TIMEZONE": "America/New_York"}}]
        }}}))
        .unwrap();
        let anyone = Context::new();
        assert_eq!(
            next_change(&definition, &anyone, at("2026-12-01T00:00:00Z")),
            Some(at("2026-12-24T23:00:00Z"))
        );
        assert_eq!(
            next_change(&definition, &anyone, at("2026-12-25T00:00:00Z")),
            Some(at("2026-12-26T05:00:00.001Z"))
        );
        assert_eq!(
            next_change(&definition, &anyone, at("2026-12-27T00:00:00Z")),
            None
        );
    }

    #[test]
    fn a_definition_without_the_clock_never_changes_by_itself() {
        let definition = Definition::parse("f", &json!({"default": true})).unwrap();
        assert_eq!(
            next_change(&definition, &user("ana"), at("2026-12-07T08:00:00Z")),
            None
        );
    }
}
