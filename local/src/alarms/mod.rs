//! The template's deployment alarms, evaluated locally (design rule 11): the CloudWatch alarms of
//! `template.yaml`, read from the template itself (never copied), and a CloudWatch-like evaluator
//! that feeds them the Embedded Metric Format documents the runner's instances emit.
//!
//! - [`parse`]: the template's `AWS::CloudWatch::Alarm` resources as [`Alarm`]s (intrinsics
//!   resolved against parameter defaults and mappings; a function named in a dimension becomes
//!   its logical id, which the runner maps to its own function names).
//! - [`expr`]: the metric-math expressions the alarms use (`FILL`, `IF`, arithmetic,
//!   comparisons), parsed once and evaluated per period.
//! - [`evaluate`]: EMF documents in, each alarm's state out, for a caller-given "now".
//! - [`cloudwatch`]: the alarms in the local CloudWatch (ministack), made the AppConfig
//!   environment's monitors, their state set by the runner.
//! - [`watch`]: the runner's alarm loop: every alarm evaluated on the instances' documents at the
//!   runner's clock, each change of state pushed to the local CloudWatch (whose monitors roll the
//!   deployment back), the states kept for the fleet view.
//!
//! The types below are the alarms as the evaluator sees them: plain data, no YAML.

pub mod cloudwatch;
mod evaluate;
mod expr;
mod parse;
pub mod watch;

pub use evaluate::{
    assess, evaluate, Datapoint, EmfError, EvaluateError, Evaluation, Observations,
};
pub use expr::{Expression, ExpressionError};
pub use parse::{parse_alarms, template_alarms, TemplateError};

use serde::Serialize;
use std::collections::BTreeMap;

/// One `AWS::CloudWatch::Alarm` of the template.
#[derive(Debug, Clone, PartialEq)]
pub struct Alarm {
    /// The resource's logical id (`FeatureXStorageErrorsAlarm`): the alarm's name locally.
    pub logical_id: String,
    /// What is measured: one metric, or metric math over several.
    pub query: Query,
    /// The length of one datapoint, in seconds (every metric of an alarm has the same).
    pub period_seconds: u32,
    /// N: how many of the latest periods are looked at.
    pub evaluation_periods: usize,
    /// M: how many of those N must breach for ALARM.
    pub datapoints_to_alarm: usize,
    /// The value a datapoint is compared with.
    pub threshold: f64,
    /// How a datapoint is compared with the threshold.
    pub comparison: Comparison,
    /// What a period without data counts as.
    pub missing_data: MissingData,
}

/// What an alarm measures.
#[derive(Debug, Clone, PartialEq)]
pub enum Query {
    /// `MetricName`, `Namespace`, `Dimensions`, `Statistic` on the alarm itself.
    Metric(MetricStat),
    /// `Metrics`: metrics and expressions by id, one of them returned.
    Math(MetricMath),
}

/// A metric-math query: the alarm's `Metrics` list.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricMath {
    /// The metrics, by id.
    pub metrics: BTreeMap<String, MetricStat>,
    /// The expressions, by id; they may name metrics and other expressions.
    pub expressions: BTreeMap<String, Expression>,
    /// The id whose value is the alarm's datapoint (`ReturnData: true`).
    pub returned: String,
}

/// A metric and the statistic taken of it per period.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricStat {
    /// The metric's namespace (`Lockstep`).
    pub namespace: String,
    /// The metric's name (`StorageError`).
    pub name: String,
    /// Its dimensions: a datapoint matches only the exact same set (CloudWatch's rule).
    pub dimensions: Vec<Dimension>,
    /// The statistic per period.
    pub statistic: Statistic,
}

/// A dimension of an alarm's metric.
#[derive(Debug, Clone, PartialEq)]
pub struct Dimension {
    /// The dimension's name (`function_name`).
    pub name: String,
    /// Its value.
    pub value: DimensionValue,
}

/// A dimension's value: literal, or the name of one of the template's functions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DimensionValue {
    /// A value known from the template alone (`lockstep`).
    Literal(String),
    /// The name of the function with this logical id (`FeatureXFunction`): known only where it
    /// runs (its stack's name in AWS, the runner's function name locally).
    Function(String),
}

/// The statistics an alarm may take of a metric per period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Statistic {
    /// The values added up.
    Sum,
    /// Sum divided by the number of values.
    Average,
    /// The smallest value.
    Minimum,
    /// The largest value.
    Maximum,
    /// How many values there were.
    SampleCount,
}

/// How a datapoint is compared with the threshold (a datapoint that satisfies it breaches).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    /// `GreaterThanOrEqualToThreshold`.
    GreaterThanOrEqual,
    /// `GreaterThanThreshold`.
    GreaterThan,
    /// `LessThanThreshold`.
    LessThan,
    /// `LessThanOrEqualToThreshold`.
    LessThanOrEqual,
}

impl Comparison {
    /// CloudWatch's name of the operator (`ComparisonOperator`).
    pub fn as_str(self) -> &'static str {
        match self {
            Comparison::GreaterThanOrEqual => "GreaterThanOrEqualToThreshold",
            Comparison::GreaterThan => "GreaterThanThreshold",
            Comparison::LessThan => "LessThanThreshold",
            Comparison::LessThanOrEqual => "LessThanOrEqualToThreshold",
        }
    }

    /// Whether `value` breaches `threshold`.
    pub fn breaches(self, value: f64, threshold: f64) -> bool {
        match self {
            Comparison::GreaterThanOrEqual => value >= threshold,
            Comparison::GreaterThan => value > threshold,
            Comparison::LessThan => value < threshold,
            Comparison::LessThanOrEqual => value <= threshold,
        }
    }
}

/// `TreatMissingData`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MissingData {
    /// A period without data is good (every alarm of the template: AppConfig rolls back on
    /// `INSUFFICIENT_DATA` too, so an idle stack must not look broken).
    NotBreaching,
    /// A period without data breaches.
    Breaching,
    /// Periods without data are skipped.
    Ignore,
    /// Periods without data are skipped; none at all is `INSUFFICIENT_DATA` (CloudWatch's default).
    Missing,
}

impl MissingData {
    /// CloudWatch's name of the treatment (`TreatMissingData`).
    pub fn as_str(self) -> &'static str {
        match self {
            MissingData::NotBreaching => "notBreaching",
            MissingData::Breaching => "breaching",
            MissingData::Ignore => "ignore",
            MissingData::Missing => "missing",
        }
    }
}

impl Statistic {
    /// CloudWatch's name of the statistic.
    pub fn as_str(self) -> &'static str {
        match self {
            Statistic::Sum => "Sum",
            Statistic::Average => "Average",
            Statistic::Minimum => "Minimum",
            Statistic::Maximum => "Maximum",
            Statistic::SampleCount => "SampleCount",
        }
    }
}

/// An alarm's state, as CloudWatch names it (`OK`, `ALARM`, `INSUFFICIENT_DATA` in JSON too).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AlarmState {
    /// `OK`.
    Ok,
    /// `ALARM`: AppConfig rolls the deployment back.
    Alarm,
    /// `INSUFFICIENT_DATA`: AppConfig rolls the deployment back too.
    InsufficientData,
}

impl AlarmState {
    /// CloudWatch's name of the state.
    pub fn as_str(self) -> &'static str {
        match self {
            AlarmState::Ok => "OK",
            AlarmState::Alarm => "ALARM",
            AlarmState::InsufficientData => "INSUFFICIENT_DATA",
        }
    }
}
