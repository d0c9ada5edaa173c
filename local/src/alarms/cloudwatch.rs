//! The template's alarms in the local CloudWatch (ministack), through the real SDK client: each
//! created under its logical id with its definition (as far as the emulator keeps it: ministack
//! stores the threshold, periods and missing-data treatment, not the metric math), the five made
//! the AppConfig environment's `Monitors`, and their state set by the runner.
//!
//! The emulator never evaluates them: no metric reaches its CloudWatch (the instances' EMF
//! documents stay in the runner), so the state it holds is the one the runner's loop
//! ([`super::watch`]) sets. Its AppConfig reads that state's history, as AWS does: an alarm in
//! `ALARM` before a deployment's bake ends rolls the deployment back (`CLOUDWATCH_ALARM`).

use super::{Alarm, DimensionValue, MetricStat, Query};
use aws_sdk_cloudwatch::types::{
    ComparisonOperator, Dimension, Metric, MetricDataQuery, StateValue, Statistic,
};
use lockstep_cli::deploy::Resolved;
use std::collections::BTreeMap;
use thiserror::Error;

/// The role AppConfig assumes to read the monitors (the template's `AppConfigMonitorRole`);
/// ministack checks no permission, so only its shape matters.
pub const MONITOR_ROLE: &str = "lockstep-local-appconfig-monitor";

/// Why the alarms could not be created or made monitors, or a state not set.
#[derive(Debug, Error)]
#[error("the local CloudWatch (ministack) refused {operation}; its CBOR protocol needs cbor2 in ministack's venv (./scripts/venv ministack installs it)")]
pub struct CloudWatchError {
    /// The call that failed.
    pub operation: &'static str,
    /// The SDK error.
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync + 'static>,
}

fn failed<E>(operation: &'static str) -> impl FnOnce(E) -> CloudWatchError
where
    E: std::error::Error + Send + Sync + 'static,
{
    move |e| CloudWatchError {
        operation,
        source: Box::new(e),
    }
}

/// Creates (or updates) every alarm in `cloudwatch` under its logical id, its function
/// dimensions named by `functions` (logical id → the runner's name), and makes them the
/// monitors of the environment `ids` names; returns each alarm's ARN by name.
pub async fn install(
    cloudwatch: &aws_sdk_cloudwatch::Client,
    appconfig: &aws_sdk_appconfig::Client,
    ids: &Resolved,
    alarms: &[Alarm],
    functions: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, CloudWatchError> {
    for alarm in alarms {
        put_alarm(cloudwatch, alarm, functions)
            .send()
            .await
            .map_err(failed("PutMetricAlarm"))?;
    }
    let described = cloudwatch
        .describe_alarms()
        .set_alarm_names(Some(alarms.iter().map(|a| a.logical_id.clone()).collect()))
        .send()
        .await
        .map_err(failed("DescribeAlarms"))?;
    let arns: BTreeMap<String, String> = described
        .metric_alarms()
        .iter()
        .filter_map(|a| Some((a.alarm_name()?.to_owned(), a.alarm_arn()?.to_owned())))
        .collect();
    let mut monitors = Vec::new();
    for alarm in alarms {
        let arn = arns.get(&alarm.logical_id).ok_or_else(|| CloudWatchError {
            operation: "DescribeAlarms",
            source: format!("{} was created but is not described", alarm.logical_id).into(),
        })?;
        let monitor = aws_sdk_appconfig::types::Monitor::builder()
            .alarm_arn(arn)
            .alarm_role_arn(role_arn(arn))
            .build()
            .map_err(failed("UpdateEnvironment"))?;
        monitors.push(monitor);
    }
    appconfig
        .update_environment()
        .application_id(&ids.application)
        .environment_id(&ids.environment)
        .set_monitors(Some(monitors))
        .send()
        .await
        .map_err(failed("UpdateEnvironment"))?;
    Ok(arns)
}

/// Sets `alarm`'s state, with `reason` (what the runner saw).
pub async fn set_state(
    cloudwatch: &aws_sdk_cloudwatch::Client,
    alarm: &str,
    state: super::AlarmState,
    reason: &str,
) -> Result<(), CloudWatchError> {
    cloudwatch
        .set_alarm_state()
        .alarm_name(alarm)
        .state_value(StateValue::from(state.as_str()))
        .state_reason(reason)
        .send()
        .await
        .map_err(failed("SetAlarmState"))?;
    Ok(())
}

/// The monitor role in the alarm's account (`arn:aws:cloudwatch:<region>:<account>:alarm:…`).
fn role_arn(alarm_arn: &str) -> String {
    let account = alarm_arn.split(':').nth(4).unwrap_or_default();
    format!("arn:aws:iam::{account}:role/{MONITOR_ROLE}")
}

/// `PutMetricAlarm` for `alarm`, as the template defines it. Its actions are off: the
/// environment's monitors are what acts on it.
fn put_alarm(
    cloudwatch: &aws_sdk_cloudwatch::Client,
    alarm: &Alarm,
    functions: &BTreeMap<String, String>,
) -> aws_sdk_cloudwatch::operation::put_metric_alarm::builders::PutMetricAlarmFluentBuilder {
    let request = cloudwatch
        .put_metric_alarm()
        .alarm_name(&alarm.logical_id)
        .alarm_description("Lockstep's deployment alarm, from template.yaml; its state is set by the local runner's alarm loop.")
        .actions_enabled(false)
        .comparison_operator(ComparisonOperator::from(alarm.comparison.as_str()))
        .threshold(alarm.threshold)
        .evaluation_periods(count(alarm.evaluation_periods))
        .datapoints_to_alarm(count(alarm.datapoints_to_alarm))
        .treat_missing_data(alarm.missing_data.as_str());
    match &alarm.query {
        Query::Metric(metric) => request
            .namespace(&metric.namespace)
            .metric_name(&metric.name)
            .set_dimensions(Some(dimensions(metric, functions)))
            .statistic(Statistic::from(metric.statistic.as_str()))
            .period(count(alarm.period_seconds as usize)),
        Query::Math(math) => {
            let metrics = math.metrics.iter().map(|(id, metric)| {
                let stat = aws_sdk_cloudwatch::types::MetricStat::builder()
                    .metric(
                        Metric::builder()
                            .namespace(&metric.namespace)
                            .metric_name(&metric.name)
                            .set_dimensions(Some(dimensions(metric, functions)))
                            .build(),
                    )
                    .period(count(alarm.period_seconds as usize))
                    .stat(metric.statistic.as_str())
                    .build();
                MetricDataQuery::builder()
                    .id(id)
                    .metric_stat(stat)
                    .return_data(*id == math.returned)
                    .build()
            });
            let expressions = math.expressions.iter().map(|(id, expression)| {
                MetricDataQuery::builder()
                    .id(id)
                    .expression(expression.source())
                    .return_data(*id == math.returned)
                    .build()
            });
            request.set_metrics(Some(metrics.chain(expressions).collect()))
        }
    }
}

/// A metric's dimensions, a function's named as the runner names it (an unknown one as its
/// logical id: the evaluator reports it, this is only the emulator's copy).
fn dimensions(metric: &MetricStat, functions: &BTreeMap<String, String>) -> Vec<Dimension> {
    metric
        .dimensions
        .iter()
        .map(|d| {
            let value = match &d.value {
                DimensionValue::Literal(value) => value.clone(),
                DimensionValue::Function(id) => functions.get(id).unwrap_or(id).clone(),
            };
            Dimension::builder().name(&d.name).value(value).build()
        })
        .collect()
}

fn count(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_monitor_role_is_in_the_alarms_account() {
        assert_eq!(
            role_arn("arn:aws:cloudwatch:us-east-1:000000000000:alarm:DegradedAlarm"),
            "arn:aws:iam::000000000000:role/lockstep-local-appconfig-monitor"
        );
    }
}
