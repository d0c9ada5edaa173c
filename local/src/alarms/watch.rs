//! The runner's alarm loop (design rule 11, locally): what CloudWatch does with the functions'
//! logs in AWS, done by the runner for its instances.
//!
//! Each [`AlarmWatch::check`] evaluates every template alarm on the EMF documents the instances
//! wrote ([`MetricsLog`]) at the runner's clock (so a test's manual clock decides which periods
//! are complete), and pushes each *change* of state to the local CloudWatch with `SetAlarmState`,
//! the reason naming the datapoints seen. The alarms are the AppConfig environment's monitors
//! ([`super::cloudwatch::install`]), so ministack rolls a deployment back when one goes to
//! `ALARM` before its bake ends, as AppConfig does. The states are kept for the fleet view.
//!
//! Until its first check an alarm is `INSUFFICIENT_DATA`, as CloudWatch creates it: the first
//! check of an idle runner pushes `OK` for every alarm. A push that fails leaves the kept state
//! as it was, so the next check pushes the change again.

use super::cloudwatch::{self, CloudWatchError};
use super::{assess, Alarm, AlarmState, Evaluation, Observations};
use crate::fleet::Function;
use crate::metrics_log::MetricsLog;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};

/// The template's functions (logical id) as the runner names them (`FeatureXFunction` →
/// `feature-x`): what the alarms' function dimensions mean locally.
pub fn runner_functions() -> BTreeMap<String, String> {
    Function::ALL
        .iter()
        .map(|f| (f.logical_id().to_owned(), f.name().to_owned()))
        .collect()
}

/// One alarm as the fleet view shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlarmStatus {
    /// The alarm's name: its logical id in `template.yaml`.
    pub name: String,
    /// Its state.
    pub state: AlarmState,
    /// Since when (the runner's clock), as far as this run knows.
    pub since: DateTime<Utc>,
    /// Why: the datapoints that decided it.
    pub reason: String,
}

/// The template's alarms, their ARNs in the local CloudWatch and their states.
pub struct AlarmWatch {
    alarms: Vec<Alarm>,
    functions: BTreeMap<String, String>,
    cloudwatch: aws_sdk_cloudwatch::Client,
    arns: BTreeMap<String, String>,
    statuses: Mutex<Vec<AlarmStatus>>,
    /// One check at a time: two would push the same change twice.
    checking: tokio::sync::Mutex<()>,
}

impl AlarmWatch {
    /// Creates `alarms` in `cloudwatch` and makes them the monitors of the environment `ids`
    /// names; `functions` maps the template's functions (logical id) to the runner's names;
    /// `now` starts every alarm's `INSUFFICIENT_DATA`.
    pub async fn install(
        alarms: Vec<Alarm>,
        functions: BTreeMap<String, String>,
        cloudwatch: aws_sdk_cloudwatch::Client,
        appconfig: &aws_sdk_appconfig::Client,
        ids: &lockstep_cli::deploy::Resolved,
        now: DateTime<Utc>,
    ) -> Result<Self, CloudWatchError> {
        let arns = cloudwatch::install(&cloudwatch, appconfig, ids, &alarms, &functions).await?;
        tracing::info!(
            alarms = alarms.len(),
            path = "alarms_installed",
            "the template's alarms are the local AppConfig environment's monitors"
        );
        let statuses = alarms
            .iter()
            .map(|alarm| AlarmStatus {
                name: alarm.logical_id.clone(),
                state: AlarmState::InsufficientData,
                since: now,
                reason: "Unchecked: initial alarm creation".into(),
            })
            .collect();
        Ok(Self {
            alarms,
            functions,
            cloudwatch,
            arns,
            statuses: Mutex::new(statuses),
            checking: tokio::sync::Mutex::new(()),
        })
    }

    /// Each alarm's ARN in the local CloudWatch, by name.
    pub fn arns(&self) -> &BTreeMap<String, String> {
        &self.arns
    }

    /// Every alarm's state as last pushed, in template order.
    pub fn statuses(&self) -> Vec<AlarmStatus> {
        self.statuses
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Evaluates every alarm on `metrics` at `now` and pushes each change of state; returns
    /// every alarm's state.
    pub async fn check(&self, metrics: &MetricsLog, now: DateTime<Utc>) -> Vec<AlarmStatus> {
        let _one_at_a_time = self.checking.lock().await;
        let now_millis = now.timestamp_millis();
        let observations = self.observations(metrics, now_millis);
        for (index, alarm) in self.alarms.iter().enumerate() {
            let evaluation = match assess(alarm, &observations, &self.functions, now_millis) {
                Ok(evaluation) => evaluation,
                Err(error) => {
                    tracing::error!(alarm = %alarm.logical_id, error = %error, path = "alarm_not_evaluated", "an alarm could not be evaluated");
                    continue;
                }
            };
            let old = self.statuses.lock().unwrap_or_else(PoisonError::into_inner)[index].state;
            if evaluation.state == old {
                continue;
            }
            let reason = reason(alarm, &evaluation);
            let pushed = cloudwatch::set_state(
                &self.cloudwatch,
                &alarm.logical_id,
                evaluation.state,
                &reason,
            )
            .await;
            if let Err(error) = pushed {
                tracing::warn!(alarm = %alarm.logical_id, error = %lockstep::error_chain(&error), path = "alarm_state_not_pushed", "the local CloudWatch refused an alarm's state; the next check retries");
                continue;
            }
            // ALARM (and INSUFFICIENT_DATA, which AWS's AppConfig also rolls back on) is worth a
            // warning; back to OK is news.
            if evaluation.state == AlarmState::Ok {
                tracing::info!(alarm = %alarm.logical_id, old_state = old.as_str(), new_state = evaluation.state.as_str(), reason = %reason, path = "alarm_state_changed", "alarm state changed");
            } else {
                tracing::warn!(alarm = %alarm.logical_id, old_state = old.as_str(), new_state = evaluation.state.as_str(), reason = %reason, path = "alarm_state_changed", "alarm state changed");
            }
            self.statuses.lock().unwrap_or_else(PoisonError::into_inner)[index] = AlarmStatus {
                name: alarm.logical_id.clone(),
                state: evaluation.state,
                since: now,
                reason,
            };
        }
        self.statuses()
    }

    /// The samples of the documents any alarm may still look at.
    fn observations(&self, metrics: &MetricsLog, now_millis: i64) -> Observations {
        let lookback = self
            .alarms
            .iter()
            .map(|a| i64::from(a.period_seconds) * 1000 * (a.evaluation_periods as i64 + 1))
            .max()
            .unwrap_or(0);
        let mut observations = Observations::default();
        let mut invalid = 0usize;
        for document in metrics.since(now_millis - lookback) {
            if observations.record(&document).is_err() {
                invalid += 1;
            }
        }
        if invalid > 0 {
            tracing::error!(
                documents = invalid,
                path = "metrics_document_not_emf",
                "metrics documents the alarms cannot read"
            );
        }
        observations
    }
}

/// The state's reason, as CloudWatch words it: how many datapoints breached, and each of them.
fn reason(alarm: &Alarm, evaluation: &Evaluation) -> String {
    let datapoints: Vec<String> = evaluation
        .datapoints
        .iter()
        .map(|d| {
            let at = DateTime::from_timestamp_millis(d.start_millis)
                .map(|t| t.format("%H:%M:%S").to_string())
                .unwrap_or_default();
            match d.value {
                Some(value) => format!("{value} ({at})"),
                None => format!("no data ({at})"),
            }
        })
        .collect();
    format!(
        "{} of the last {} datapoints [{}] breached {} {} ({} needed for ALARM; missing data is {})",
        evaluation.breaching,
        evaluation.datapoints.len(),
        datapoints.join(", "),
        alarm.comparison.as_str(),
        alarm.threshold,
        alarm.datapoints_to_alarm,
        alarm.missing_data.as_str(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alarms::{Comparison, Datapoint, MissingData};

    #[test]
    fn every_function_the_template_alarms_name_is_one_the_runner_serves() {
        let observations = Observations::default();

        for alarm in crate::alarms::template_alarms().unwrap() {
            let evaluated = assess(&alarm, &observations, &runner_functions(), 0);
            assert!(evaluated.is_ok(), "{}: {evaluated:?}", alarm.logical_id);
        }
    }

    #[test]
    fn a_reason_names_every_datapoint_and_the_threshold() {
        let alarm = crate::alarms::template_alarms()
            .unwrap()
            .into_iter()
            .find(|a| a.logical_id == "FeatureXStorageErrorsAlarm")
            .unwrap();
        let evaluation = Evaluation {
            state: AlarmState::Alarm,
            datapoints: vec![Datapoint {
                start_millis: 1_795_255_260_000,
                value: Some(3.0),
            }],
            breaching: 1,
        };

        let reason = reason(&alarm, &evaluation);

        assert_eq!(alarm.comparison, Comparison::GreaterThanOrEqual);
        assert_eq!(alarm.missing_data, MissingData::NotBreaching);
        assert_eq!(
            reason,
            "1 of the last 1 datapoints [3 (10:01:00)] breached GreaterThanOrEqualToThreshold 3 \
             (1 needed for ALARM; missing data is notBreaching)"
        );
    }
}
