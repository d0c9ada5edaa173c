//! EMF documents in, alarm states out: what CloudWatch does with the functions' logs and the
//! template's alarms, for the runner's instances.
//!
//! [`Observations::record`] takes one Embedded Metric Format document (`_aws.Timestamp` in epoch
//! milliseconds, `_aws.CloudWatchMetrics[]` directives of `Namespace`, `Dimensions` (sets of
//! root keys) and `Metrics`, every value at the root: a number, or an array of numbers, each a
//! sample) and keeps one sample per metric, dimension set and value, as CloudWatch publishes them.
//!
//! [`evaluate`] computes an alarm's state at a caller-given instant:
//! - its datapoints are the N latest *complete* periods (the period holding "now" is still
//!   filling; periods are aligned to the epoch, as CloudWatch aligns them);
//! - a metric's datapoint is its statistic over the samples of exactly its dimension set in the
//!   period (a sample published per route does not count for the per-function metric);
//! - metric math is evaluated per period ([`super::expr`]);
//! - ALARM when at least M of the N datapoints breach, where a missing datapoint breaches only
//!   under `breaching`; under `missing` and `ignore` only present datapoints count, and none at
//!   all is INSUFFICIENT_DATA (CloudWatch keeps the previous state under `ignore`: this evaluator
//!   keeps no history).
//!
//! [`assess`] is the same with the datapoints it decided on, for a state's reason.

use super::{Alarm, AlarmState, DimensionValue, MetricStat, MissingData, Query, Statistic};
use serde_json::Value;
use std::collections::BTreeMap;
use thiserror::Error;

/// The samples recorded so far, by metric.
#[derive(Debug, Default)]
pub struct Observations {
    series: BTreeMap<SeriesKey, Vec<Sample>>,
}

/// A metric as CloudWatch keys it: namespace, name and the exact set of dimensions.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct SeriesKey {
    namespace: String,
    name: String,
    /// Sorted by name.
    dimensions: Vec<(String, String)>,
}

#[derive(Debug, Clone, Copy)]
struct Sample {
    at_millis: i64,
    value: f64,
}

/// Why a document was not recorded (nothing of it is).
#[derive(Debug, Error, PartialEq)]
pub enum EmfError {
    /// No `_aws` object at the root.
    #[error("not an EMF document: no _aws object")]
    Envelope,
    /// `_aws.Timestamp` absent or not whole milliseconds.
    #[error("_aws.Timestamp is missing or not a whole number of milliseconds")]
    Timestamp,
    /// `_aws.CloudWatchMetrics`, or a directive's `Namespace`, `Dimensions` or `Metrics`,
    /// absent or malformed.
    #[error("_aws.CloudWatchMetrics: {0} is missing or malformed")]
    Directive(&'static str),
    /// A metric named in a directive without a number or array of numbers at the root.
    #[error("metric {0} is named in a directive but has no numeric value at the root")]
    Value(String),
    /// A dimension named in a directive without a string value at the root.
    #[error("dimension {0} is named in a directive but has no string value at the root")]
    Dimension(String),
}

/// Why an alarm could not be evaluated.
#[derive(Debug, Error, PartialEq)]
pub enum EvaluateError {
    /// A dimension names a function the caller gave no name for.
    #[error("{alarm}: no name was given for the function {function}")]
    UnknownFunction {
        /// The alarm's logical id.
        alarm: String,
        /// The function's logical id.
        function: String,
    },
}

impl Observations {
    /// Records one EMF document; returns how many samples it held.
    pub fn record(&mut self, document: &Value) -> Result<usize, EmfError> {
        let envelope = document.get("_aws").ok_or(EmfError::Envelope)?;
        let at_millis = envelope
            .get("Timestamp")
            .and_then(Value::as_i64)
            .ok_or(EmfError::Timestamp)?;
        let directives = envelope
            .get("CloudWatchMetrics")
            .and_then(Value::as_array)
            .ok_or(EmfError::Directive("CloudWatchMetrics"))?;
        let mut samples = Vec::new();
        for directive in directives {
            let field = |name| directive.get(name).ok_or(EmfError::Directive(name));
            let namespace = field("Namespace")?
                .as_str()
                .ok_or(EmfError::Directive("Namespace"))?;
            let sets = field("Dimensions")?
                .as_array()
                .ok_or(EmfError::Directive("Dimensions"))?;
            let mut dimension_sets = Vec::new();
            for set in sets {
                let keys = set.as_array().ok_or(EmfError::Directive("Dimensions"))?;
                let mut dimensions = keys
                    .iter()
                    .map(|key| {
                        let key = key.as_str().ok_or(EmfError::Directive("Dimensions"))?;
                        let value = document.get(key).and_then(Value::as_str);
                        let value = value.ok_or_else(|| EmfError::Dimension(key.to_owned()))?;
                        Ok((key.to_owned(), value.to_owned()))
                    })
                    .collect::<Result<Vec<_>, EmfError>>()?;
                dimensions.sort();
                dimension_sets.push(dimensions);
            }
            // No dimension set at all: the metrics are published without dimensions.
            if dimension_sets.is_empty() {
                dimension_sets.push(Vec::new());
            }
            let metrics = field("Metrics")?
                .as_array()
                .ok_or(EmfError::Directive("Metrics"))?;
            for metric in metrics {
                let name = metric.get("Name").and_then(Value::as_str);
                let name = name.ok_or(EmfError::Directive("Metrics"))?;
                let values = values(document.get(name)).ok_or(EmfError::Value(name.to_owned()))?;
                for dimensions in &dimension_sets {
                    let key = SeriesKey {
                        namespace: namespace.to_owned(),
                        name: name.to_owned(),
                        dimensions: dimensions.clone(),
                    };
                    for &value in &values {
                        samples.push((key.clone(), Sample { at_millis, value }));
                    }
                }
            }
        }
        let recorded = samples.len();
        for (key, sample) in samples {
            self.series.entry(key).or_default().push(sample);
        }
        Ok(recorded)
    }

    /// Drops the samples older than `millis` (no alarm looks that far back any more).
    pub fn forget_before(&mut self, millis: i64) {
        self.series.retain(|_, samples| {
            samples.retain(|s| s.at_millis >= millis);
            !samples.is_empty()
        });
    }

    /// `statistic` of the samples of `key` in `[start, end)`; `None` when there are none.
    fn statistic(
        &self,
        key: &SeriesKey,
        statistic: Statistic,
        start: i64,
        end: i64,
    ) -> Option<f64> {
        let samples = self.series.get(key)?;
        let values = samples
            .iter()
            .filter(|s| (start..end).contains(&s.at_millis))
            .map(|s| s.value);
        let (count, sum, min, max) = values.fold((0u64, 0.0, f64::MAX, f64::MIN), |acc, v| {
            (acc.0 + 1, acc.1 + v, acc.2.min(v), acc.3.max(v))
        });
        if count == 0 {
            return None;
        }
        Some(match statistic {
            Statistic::Sum => sum,
            Statistic::Average => sum / count as f64,
            Statistic::Minimum => min,
            Statistic::Maximum => max,
            Statistic::SampleCount => count as f64,
        })
    }
}

/// A metric's value in a document: a number, or an array of numbers (each a sample).
fn values(value: Option<&Value>) -> Option<Vec<f64>> {
    match value? {
        Value::Number(n) => Some(vec![n.as_f64()?]),
        Value::Array(items) => items.iter().map(Value::as_f64).collect(),
        _ => None,
    }
}

/// One datapoint an alarm looked at: a complete period and its value there.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Datapoint {
    /// The period's start, Unix milliseconds.
    pub start_millis: i64,
    /// The alarm's value in it; `None` when it had no data.
    pub value: Option<f64>,
}

/// An alarm's state and the datapoints it was decided on (what a state's reason names).
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    /// The state.
    pub state: AlarmState,
    /// The N latest complete periods, oldest first.
    pub datapoints: Vec<Datapoint>,
    /// How many of them breach (a missing one only under `breaching`).
    pub breaching: usize,
}

/// `alarm`'s state at `now_millis` over `observations`; `functions` names the template's
/// functions by logical id (`FeatureXFunction` → `feature-x` in the runner).
pub fn evaluate(
    alarm: &Alarm,
    observations: &Observations,
    functions: &BTreeMap<String, String>,
    now_millis: i64,
) -> Result<AlarmState, EvaluateError> {
    assess(alarm, observations, functions, now_millis).map(|evaluation| evaluation.state)
}

/// [`evaluate`], with the datapoints the state was decided on.
pub fn assess(
    alarm: &Alarm,
    observations: &Observations,
    functions: &BTreeMap<String, String>,
    now_millis: i64,
) -> Result<Evaluation, EvaluateError> {
    let key = |metric: &MetricStat| -> Result<SeriesKey, EvaluateError> {
        let mut dimensions = metric
            .dimensions
            .iter()
            .map(|d| {
                let value = match &d.value {
                    DimensionValue::Literal(value) => value.clone(),
                    DimensionValue::Function(id) => {
                        functions.get(id).cloned().ok_or_else(|| {
                            EvaluateError::UnknownFunction {
                                alarm: alarm.logical_id.clone(),
                                function: id.clone(),
                            }
                        })?
                    }
                };
                Ok((d.name.clone(), value))
            })
            .collect::<Result<Vec<_>, _>>()?;
        dimensions.sort();
        Ok(SeriesKey {
            namespace: metric.namespace.clone(),
            name: metric.name.clone(),
            dimensions,
        })
    };
    let metrics = match &alarm.query {
        Query::Metric(metric) => BTreeMap::from([("", (key(metric)?, metric.statistic))]),
        Query::Math(math) => math
            .metrics
            .iter()
            .map(|(id, metric)| Ok((id.as_str(), (key(metric)?, metric.statistic))))
            .collect::<Result<_, EvaluateError>>()?,
    };
    let period = i64::from(alarm.period_seconds) * 1000;
    let last_end = now_millis.div_euclid(period) * period;
    let datapoints: Vec<Datapoint> = (1..=alarm.evaluation_periods as i64)
        .rev()
        .map(|back| {
            let start = last_end - back * period;
            let context = Period {
                alarm,
                observations,
                metrics: &metrics,
                start,
                end: start + period,
            };
            let value = match &alarm.query {
                Query::Metric(_) => context.value(""),
                Query::Math(math) => context.value(&math.returned),
            };
            Datapoint {
                start_millis: start,
                value,
            }
        })
        .collect();
    let present = datapoints.iter().filter(|d| d.value.is_some()).count();
    let breaching = datapoints
        .iter()
        .filter(|datapoint| match datapoint.value {
            Some(value) => alarm.comparison.breaches(value, alarm.threshold),
            None => alarm.missing_data == MissingData::Breaching,
        })
        .count();
    let counts_only_present = matches!(
        alarm.missing_data,
        MissingData::Missing | MissingData::Ignore
    );
    let state = if counts_only_present && present == 0 {
        AlarmState::InsufficientData
    } else if breaching >= alarm.datapoints_to_alarm {
        AlarmState::Alarm
    } else {
        AlarmState::Ok
    };
    Ok(Evaluation {
        state,
        datapoints,
        breaching,
    })
}

/// One period of one alarm: the values of its ids there.
struct Period<'a> {
    alarm: &'a Alarm,
    observations: &'a Observations,
    metrics: &'a BTreeMap<&'a str, (SeriesKey, Statistic)>,
    start: i64,
    end: i64,
}

impl Period<'_> {
    /// The value of a metric or expression id (parsing checked every id exists and no
    /// expression depends on itself).
    fn value(&self, id: &str) -> Option<f64> {
        if let Some((key, statistic)) = self.metrics.get(id) {
            return self
                .observations
                .statistic(key, *statistic, self.start, self.end);
        }
        let Query::Math(math) = &self.alarm.query else {
            return None;
        };
        let expression = math.expressions.get(id)?;
        expression.evaluate(&mut |name| self.value(name))
    }
}

#[cfg(test)]
mod tests;
