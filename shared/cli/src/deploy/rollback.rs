//! Who rolled a deployment back, read from its event log (`GetDeployment`'s `EventLog`).
//!
//! AppConfig records a rollback as a `ROLLBACK_STARTED` event (a revert after completion, as
//! `REVERT_COMPLETED`) whose `TriggeredBy` says who: `CLOUDWATCH_ALARM` for a monitor of the
//! environment, `USER` for `StopDeployment`, `APPCONFIG` or `INTERNAL_ERROR` for the service
//! itself. Its `Description` names "the AWS account or the Amazon CloudWatch alarm ARN that
//! initiated a rollback" (the `DeploymentEvent` API reference); AWS does not fix the wording
//! around the ARN, and ministack writes `Rollback initiated by <ARN>`. So the alarm is read as
//! the first `arn:…:alarm:NAME` token of the description, whatever surrounds it, and the name
//! is what follows `:alarm:`. An alarm event without a readable ARN still says an alarm did it.

use chrono::{DateTime, Utc};
use serde::Serialize;

/// One event of a deployment's log, as the rollback is read from it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Event {
    /// `EventType`: `ROLLBACK_STARTED`, `REVERT_COMPLETED`, ...
    pub event_type: String,
    /// `TriggeredBy`: `CLOUDWATCH_ALARM`, `USER`, `APPCONFIG`, `INTERNAL_ERROR`.
    pub triggered_by: String,
    /// `Description`.
    pub description: String,
    /// `OccurredAt`.
    pub occurred_at: Option<DateTime<Utc>>,
}

/// Who rolled a deployment back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Cause {
    /// A CloudWatch alarm of the environment's monitors.
    #[serde(rename_all = "camelCase")]
    Alarm {
        /// The alarm's name (from its ARN), when the event log names it.
        alarm_name: Option<String>,
        /// The alarm's ARN, when the event log names it.
        alarm_arn: Option<String>,
    },
    /// A user: `StopDeployment` (with `AllowRevert` after completion).
    User,
    /// AppConfig itself (`APPCONFIG`).
    AppConfig,
    /// An internal error of AppConfig.
    InternalError,
    /// The event log names no rollback event (or an unknown trigger).
    Unknown,
}

/// A deployment that was rolled back, and who did it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Rollback {
    /// The deployment.
    pub deployment_number: i32,
    /// `ROLLED_BACK` or `REVERTED`.
    pub state: String,
    /// Who rolled it back.
    pub rolled_back_by: Cause,
    /// The rollback event's `TriggeredBy`, as AppConfig wrote it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub triggered_by: Option<String>,
    /// The rollback event's description, as AppConfig wrote it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// When the rollback started.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub occurred_at: Option<DateTime<Utc>>,
}

impl Rollback {
    /// The rollback of deployment `number` (now in `state`), read from its `events` (in any
    /// order: AWS lists the most recent first): the latest `ROLLBACK_STARTED` or
    /// `REVERT_COMPLETED` says who.
    pub fn from_events(number: i32, state: &str, events: &[Event]) -> Self {
        let event = events
            .iter()
            .filter(|e| {
                matches!(
                    e.event_type.as_str(),
                    "ROLLBACK_STARTED" | "REVERT_COMPLETED"
                )
            })
            .max_by_key(|e| e.occurred_at);
        let cause = event.map_or(Cause::Unknown, |e| match e.triggered_by.as_str() {
            "CLOUDWATCH_ALARM" => {
                let arn = alarm_arn(&e.description);
                Cause::Alarm {
                    alarm_name: arn.and_then(alarm_name).map(str::to_owned),
                    alarm_arn: arn.map(str::to_owned),
                }
            }
            "USER" => Cause::User,
            "APPCONFIG" => Cause::AppConfig,
            "INTERNAL_ERROR" => Cause::InternalError,
            _ => Cause::Unknown,
        });
        Self {
            deployment_number: number,
            state: state.to_owned(),
            rolled_back_by: cause,
            triggered_by: event.map(|e| e.triggered_by.clone()),
            description: event
                .map(|e| e.description.clone())
                .filter(|d| !d.is_empty()),
            occurred_at: event.and_then(|e| e.occurred_at),
        }
    }

    /// The name of the alarm that rolled it back, if an alarm did and the log names it.
    pub fn alarm_name(&self) -> Option<&str> {
        match &self.rolled_back_by {
            Cause::Alarm { alarm_name, .. } => alarm_name.as_deref(),
            _ => None,
        }
    }
}

impl std::fmt::Display for Cause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Cause::Alarm {
                alarm_name: Some(name),
                alarm_arn: Some(arn),
            } => write!(f, "by alarm {name:?} ({arn})"),
            Cause::Alarm { .. } => f.write_str("by a CloudWatch alarm (the event log names none)"),
            Cause::User => f.write_str("by a user (StopDeployment)"),
            Cause::AppConfig => f.write_str("by AppConfig"),
            Cause::InternalError => f.write_str("by AppConfig after an internal error"),
            Cause::Unknown => f.write_str("(the event log does not say by whom)"),
        }
    }
}

/// The first CloudWatch alarm ARN in `text`: from `arn:` up to whitespace or the end, without
/// trailing punctuation, containing `:alarm:`.
fn alarm_arn(text: &str) -> Option<&str> {
    text.split_whitespace()
        .filter_map(|word| word.find("arn:").map(|at| &word[at..]))
        .map(|arn| arn.trim_end_matches(['.', ',', ';', ')', ']', '"', '\'']))
        .find(|arn| arn.split(':').nth(2) == Some("cloudwatch") && arn.contains(":alarm:"))
}

/// The name in an alarm ARN (`arn:aws:cloudwatch:REGION:ACCOUNT:alarm:NAME`).
fn alarm_name(arn: &str) -> Option<&str> {
    arn.split_once(":alarm:")
        .map(|(_, name)| name)
        .filter(|name| !name.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(event_type: &str, triggered_by: &str, description: &str, at: &str) -> Event {
        Event {
            event_type: event_type.into(),
            triggered_by: triggered_by.into(),
            description: description.into(),
            occurred_at: Some(
                DateTime::parse_from_rfc3339(at)
                    .unwrap()
                    .with_timezone(&Utc),
            ),
        }
    }

    const ARN: &str =
        "arn:aws:cloudwatch:eu-west-1:123456789012:alarm:lockstep-feature-x-server-errors";

    #[test]
    fn an_alarm_rollback_in_ministacks_words_names_the_alarm() {
        let events = [
            event(
                "ROLLBACK_COMPLETED",
                "CLOUDWATCH_ALARM",
                "Rollback completed",
                "2026-11-21T10:00:30Z",
            ),
            event(
                "ROLLBACK_STARTED",
                "CLOUDWATCH_ALARM",
                &format!("Rollback initiated by {ARN}"),
                "2026-11-21T10:00:30Z",
            ),
            event(
                "DEPLOYMENT_STARTED",
                "USER",
                "Deployment started",
                "2026-11-21T10:00:00Z",
            ),
        ];

        let rollback = Rollback::from_events(3, "ROLLED_BACK", &events);

        assert_eq!(
            rollback.alarm_name(),
            Some("lockstep-feature-x-server-errors")
        );
        assert_eq!(
            rollback.rolled_back_by.to_string(),
            format!("by alarm \"lockstep-feature-x-server-errors\" ({ARN})")
        );
        assert_eq!(rollback.triggered_by.as_deref(), Some("CLOUDWATCH_ALARM"));
    }

    #[test]
    fn an_alarm_arn_is_found_whatever_the_words_around_it() {
        // AWS documents only that the description names the alarm ARN.
        for description in [
            format!("The deployment was rolled back because alarm {ARN} went into ALARM."),
            format!("Alarm ({ARN}) triggered a rollback"),
            format!("\"{ARN}\""),
            ARN.to_owned(),
        ] {
            let events = [event(
                "ROLLBACK_STARTED",
                "CLOUDWATCH_ALARM",
                &description,
                "2026-11-21T10:00:30Z",
            )];
            let rollback = Rollback::from_events(3, "ROLLED_BACK", &events);
            assert_eq!(
                rollback.rolled_back_by,
                Cause::Alarm {
                    alarm_name: Some("lockstep-feature-x-server-errors".into()),
                    alarm_arn: Some(ARN.into()),
                },
                "{description}"
            );
        }
    }

    #[test]
    fn an_alarm_rollback_without_an_arn_still_says_an_alarm_did_it() {
        let events = [event(
            "ROLLBACK_STARTED",
            "CLOUDWATCH_ALARM",
            "Rollback initiated by a monitor",
            "2026-11-21T10:00:30Z",
        )];

        let rollback = Rollback::from_events(3, "ROLLED_BACK", &events);

        assert_eq!(rollback.alarm_name(), None);
        assert!(rollback
            .rolled_back_by
            .to_string()
            .contains("CloudWatch alarm"));
    }

    #[test]
    fn a_stop_or_a_revert_by_a_user_says_so() {
        let stopped = [event(
            "ROLLBACK_STARTED",
            "USER",
            "Rollback initiated by 123456789012",
            "2026-11-21T10:00:30Z",
        )];
        let reverted = [event(
            "REVERT_COMPLETED",
            "USER",
            "Revert initiated by 123456789012",
            "2026-11-21T10:00:30Z",
        )];

        for (events, state) in [(&stopped, "ROLLED_BACK"), (&reverted, "REVERTED")] {
            let rollback = Rollback::from_events(3, state, events);
            assert_eq!(rollback.rolled_back_by, Cause::User);
            assert_eq!(rollback.alarm_name(), None);
            assert_eq!(
                rollback.rolled_back_by.to_string(),
                "by a user (StopDeployment)"
            );
        }
    }

    #[test]
    fn the_latest_rollback_event_counts_and_an_empty_log_says_it_does_not_know() {
        let events = [
            event(
                "ROLLBACK_STARTED",
                "USER",
                "Rollback initiated by 1",
                "2026-11-21T10:00:00Z",
            ),
            event(
                "ROLLBACK_STARTED",
                "INTERNAL_ERROR",
                "Try again",
                "2026-11-21T10:00:30Z",
            ),
        ];
        assert_eq!(
            Rollback::from_events(3, "ROLLED_BACK", &events).rolled_back_by,
            Cause::InternalError
        );
        assert_eq!(
            Rollback::from_events(3, "ROLLED_BACK", &[]).rolled_back_by,
            Cause::Unknown
        );
    }

    #[test]
    fn the_json_names_the_kind_and_the_alarm() {
        let events = [event(
            "ROLLBACK_STARTED",
            "CLOUDWATCH_ALARM",
            &format!("Rollback initiated by {ARN}"),
            "2026-11-21T10:00:30Z",
        )];

        let json = serde_json::to_value(Rollback::from_events(3, "ROLLED_BACK", &events)).unwrap();

        assert_eq!(json["deploymentNumber"], 3);
        assert_eq!(json["state"], "ROLLED_BACK");
        assert_eq!(json["rolledBackBy"]["kind"], "alarm");
        assert_eq!(
            json["rolledBackBy"]["alarmName"],
            "lockstep-feature-x-server-errors"
        );
        assert_eq!(json["rolledBackBy"]["alarmArn"], ARN);
        assert_eq!(json["triggeredBy"], "CLOUDWATCH_ALARM");
        assert_eq!(json["occurredAt"], "2026-11-21T10:00:30Z");
    }
}
