//! The template's alarms: every `AWS::CloudWatch::Alarm` of `template.yaml` as an [`Alarm`].
//!
//! Values are resolved the way CloudFormation would at deployment with the parameters' defaults:
//! `!Ref Parameter`, `!FindInMap`, `!Sub` over parameters and its own variables (short and long
//! forms alike). A dimension value that names one of the template's functions (`!Ref Function`,
//! or the very expression the function's `FunctionName` is) becomes
//! [`DimensionValue::Function`] with the function's logical id: only where it runs is its name
//! known. Anything else that needs a deployed stack (`${AWS::StackName}`, an attribute) is an
//! error, as is anything the evaluator would not understand: better a failing test than an alarm
//! that silently never fires.

use super::expr::{Expression, ExpressionError};
use super::{
    Alarm, Comparison, Dimension, DimensionValue, MetricMath, MetricStat, MissingData, Query,
    Statistic,
};
use serde_norway::{Mapping, Value};
use std::collections::BTreeMap;
use thiserror::Error;

/// `template.yaml`, as this runner was built with it.
const TEMPLATE: &str = include_str!("../../../template.yaml");

/// The alarms of the project's `template.yaml`.
pub fn template_alarms() -> Result<Vec<Alarm>, TemplateError> {
    parse_alarms(TEMPLATE)
}

/// Why the template's alarms could not be read.
#[derive(Debug, Error)]
pub enum TemplateError {
    /// The template is not YAML.
    #[error("the template is not YAML")]
    Yaml(#[from] serde_norway::Error),
    /// A required property is absent (or has the wrong type).
    #[error("{alarm}: {property} is missing or malformed")]
    Missing {
        /// The alarm's logical id.
        alarm: String,
        /// The property.
        property: &'static str,
    },
    /// A property holds something the local evaluator does not implement.
    #[error("{alarm}: {property} {value} is not supported by the local evaluator")]
    Unsupported {
        /// The alarm's logical id.
        alarm: String,
        /// The property.
        property: &'static str,
        /// The value found.
        value: String,
    },
    /// A value that only a deployed stack knows.
    #[error("{alarm}: {property} cannot be resolved from the template alone: {value}")]
    Unresolvable {
        /// The alarm's logical id.
        alarm: String,
        /// The property.
        property: &'static str,
        /// The value, as YAML.
        value: String,
    },
    /// A metric-math expression that does not parse.
    #[error("{alarm}: expression {id}")]
    Expression {
        /// The alarm's logical id.
        alarm: String,
        /// The expression's id.
        id: String,
        /// What is wrong with it.
        #[source]
        source: ExpressionError,
    },
    /// Two queries with the same id, or an expression naming an id that is not there.
    #[error("{alarm}: id {id} is duplicated or unknown")]
    Id {
        /// The alarm's logical id.
        alarm: String,
        /// The id.
        id: String,
    },
    /// Expressions that name each other in a circle.
    #[error("{alarm}: expression {id} depends on itself")]
    Cycle {
        /// The alarm's logical id.
        alarm: String,
        /// An expression on the circle.
        id: String,
    },
    /// Not exactly one query with `ReturnData: true`.
    #[error("{alarm}: {count} queries return data; an alarm needs exactly one")]
    Returned {
        /// The alarm's logical id.
        alarm: String,
        /// How many do.
        count: usize,
    },
    /// Metrics of one alarm with different periods (CloudWatch refuses them too).
    #[error("{alarm}: its metrics have different periods")]
    Periods {
        /// The alarm's logical id.
        alarm: String,
    },
}

/// Every `AWS::CloudWatch::Alarm` of a CloudFormation or SAM template, in template order.
pub fn parse_alarms(yaml: &str) -> Result<Vec<Alarm>, TemplateError> {
    let template: Value = serde_norway::from_str(yaml)?;
    let empty = Mapping::new();
    let section = |name: &str| template.get(name).and_then(Value::as_mapping);
    let resources = section("Resources").unwrap_or(&empty);
    let functions = resources
        .iter()
        .filter(|(_, r)| {
            let kind = r.get("Type").and_then(Value::as_str);
            matches!(
                kind,
                Some("AWS::Serverless::Function" | "AWS::Lambda::Function")
            )
        })
        .filter_map(|(id, r)| {
            let name = r.get("Properties").and_then(|p| p.get("FunctionName"));
            Some((id.as_str()?, name))
        })
        .collect();
    let mut resolver = Resolver {
        alarm: "",
        parameters: section("Parameters").unwrap_or(&empty),
        mappings: section("Mappings").unwrap_or(&empty),
        functions,
    };
    let mut alarms = Vec::new();
    for (id, resource) in resources {
        if resource.get("Type").and_then(Value::as_str) != Some("AWS::CloudWatch::Alarm") {
            continue;
        }
        resolver.alarm = id.as_str().unwrap_or_default();
        let properties = resource.get("Properties").unwrap_or(&Value::Null);
        alarms.push(resolver.alarm(properties)?);
    }
    Ok(alarms)
}

struct Resolver<'a> {
    alarm: &'a str,
    parameters: &'a Mapping,
    mappings: &'a Mapping,
    /// The template's functions: logical id and `FunctionName` (if given).
    functions: Vec<(&'a str, Option<&'a Value>)>,
}

/// An intrinsic function, short form (`!Sub x`) or long (`{"Fn::Sub": x}`): its name without
/// `!` or `Fn::`, and its argument.
fn intrinsic(node: &Value) -> Option<(String, &Value)> {
    match node {
        Value::Tagged(tagged) => {
            let tag = tagged.tag.to_string();
            Some((tag.trim_start_matches('!').to_owned(), &tagged.value))
        }
        Value::Mapping(map) if map.len() == 1 => {
            let (key, argument) = map.iter().next()?;
            let key = key.as_str()?;
            let name = key.strip_prefix("Fn::").or((key == "Ref").then_some(key))?;
            Some((name.to_owned(), argument))
        }
        _ => None,
    }
}

impl Resolver<'_> {
    fn alarm(&self, p: &Value) -> Result<Alarm, TemplateError> {
        for unsupported in ["ExtendedStatistic", "ThresholdMetricId"] {
            if let Some(value) = p.get(unsupported) {
                return Err(self.unsupported(unsupported, &yaml(value)));
            }
        }
        let operator = self.string(self.get(p, "ComparisonOperator")?, "ComparisonOperator")?;
        let comparison = match operator.as_str() {
            "GreaterThanOrEqualToThreshold" => Comparison::GreaterThanOrEqual,
            "GreaterThanThreshold" => Comparison::GreaterThan,
            "LessThanThreshold" => Comparison::LessThan,
            "LessThanOrEqualToThreshold" => Comparison::LessThanOrEqual,
            other => return Err(self.unsupported("ComparisonOperator", other)),
        };
        let missing_data = match p.get("TreatMissingData") {
            None => MissingData::Missing,
            Some(node) => match self.string(node, "TreatMissingData")?.as_str() {
                "notBreaching" => MissingData::NotBreaching,
                "breaching" => MissingData::Breaching,
                "ignore" => MissingData::Ignore,
                "missing" => MissingData::Missing,
                other => return Err(self.unsupported("TreatMissingData", other)),
            },
        };
        let evaluation_periods =
            self.count(self.get(p, "EvaluationPeriods")?, "EvaluationPeriods")?;
        let datapoints_to_alarm = match p.get("DatapointsToAlarm") {
            Some(node) => self.count(node, "DatapointsToAlarm")?,
            None => evaluation_periods,
        };
        let (query, period_seconds) = match p.get("Metrics") {
            Some(metrics) => self.math(metrics)?,
            None => {
                let period = self.count(self.get(p, "Period")?, "Period")?;
                let statistic = self.statistic(self.get(p, "Statistic")?)?;
                (Query::Metric(self.metric(p, statistic)?), period)
            }
        };
        Ok(Alarm {
            logical_id: self.alarm.to_owned(),
            query,
            period_seconds: u32::try_from(period_seconds)
                .map_err(|_| self.unsupported("Period", &period_seconds.to_string()))?,
            evaluation_periods,
            datapoints_to_alarm,
            threshold: self.number(self.get(p, "Threshold")?, "Threshold")?,
            comparison,
            missing_data,
        })
    }

    /// A metric-math `Metrics` list, and the period its metrics share.
    fn math(&self, metrics: &Value) -> Result<(Query, usize), TemplateError> {
        let queries = metrics
            .as_sequence()
            .ok_or_else(|| self.missing("Metrics"))?;
        let mut math = MetricMath {
            metrics: BTreeMap::new(),
            expressions: BTreeMap::new(),
            returned: String::new(),
        };
        let (mut period, mut returning) = (None, Vec::new());
        for query in queries {
            let id = self.string(self.get(query, "Id")?, "Id")?;
            let duplicate = math.metrics.contains_key(&id) || math.expressions.contains_key(&id);
            if duplicate {
                return Err(self.id(&id));
            }
            if query.get("ReturnData").and_then(Value::as_bool) != Some(false) {
                returning.push(id.clone());
            }
            if let Some(source) = query.get("Expression") {
                let source = self.string(source, "Expression")?;
                let expression =
                    Expression::parse(&source).map_err(|source| TemplateError::Expression {
                        alarm: self.alarm.to_owned(),
                        id: id.clone(),
                        source,
                    })?;
                math.expressions.insert(id, expression);
            } else {
                let stat = self.get(query, "MetricStat")?;
                let this = self.count(self.get(stat, "Period")?, "Period")?;
                if period.is_some_and(|p| p != this) {
                    return Err(TemplateError::Periods {
                        alarm: self.alarm.to_owned(),
                    });
                }
                period = Some(this);
                let statistic = self.statistic(self.get(stat, "Stat")?)?;
                let metric = self.metric(self.get(stat, "Metric")?, statistic)?;
                math.metrics.insert(id, metric);
            }
        }
        math.returned = match <[String; 1]>::try_from(returning) {
            Ok([id]) => id,
            Err(returning) => {
                return Err(TemplateError::Returned {
                    alarm: self.alarm.to_owned(),
                    count: returning.len(),
                })
            }
        };
        self.check_references(&math)?;
        let period = period.ok_or_else(|| self.missing("MetricStat"))?;
        Ok((Query::Math(math), period))
    }

    /// Every id an expression names exists, and no expression depends on itself.
    fn check_references(&self, math: &MetricMath) -> Result<(), TemplateError> {
        fn visit<'m>(
            id: &'m str,
            math: &'m MetricMath,
            path: &mut Vec<&'m str>,
        ) -> Result<(), (&'m str, bool)> {
            if math.metrics.contains_key(id) {
                return Ok(());
            }
            let Some(expression) = math.expressions.get(id) else {
                return Err((id, false));
            };
            if path.contains(&id) {
                return Err((id, true));
            }
            path.push(id);
            for next in expression.ids() {
                visit(next, math, path)?;
            }
            path.pop();
            Ok(())
        }
        for id in math.expressions.keys() {
            visit(id, math, &mut Vec::new()).map_err(|(id, cycle)| match cycle {
                true => TemplateError::Cycle {
                    alarm: self.alarm.to_owned(),
                    id: id.to_owned(),
                },
                false => self.id(id),
            })?;
        }
        Ok(())
    }

    /// `Namespace`, `MetricName` and `Dimensions` of `node`, with `statistic`.
    fn metric(&self, node: &Value, statistic: Statistic) -> Result<MetricStat, TemplateError> {
        let dimensions = match node.get("Dimensions") {
            None => Vec::new(),
            Some(list) => list
                .as_sequence()
                .ok_or_else(|| self.missing("Dimensions"))?
                .iter()
                .map(|d| {
                    Ok(Dimension {
                        name: self.string(self.get(d, "Name")?, "Dimensions")?,
                        value: self.dimension_value(self.get(d, "Value")?)?,
                    })
                })
                .collect::<Result<_, TemplateError>>()?,
        };
        Ok(MetricStat {
            namespace: self.string(self.get(node, "Namespace")?, "Namespace")?,
            name: self.string(self.get(node, "MetricName")?, "MetricName")?,
            dimensions,
            statistic,
        })
    }

    fn statistic(&self, node: &Value) -> Result<Statistic, TemplateError> {
        Ok(match self.string(node, "Statistic")?.as_str() {
            "Sum" => Statistic::Sum,
            "Average" => Statistic::Average,
            "Minimum" => Statistic::Minimum,
            "Maximum" => Statistic::Maximum,
            "SampleCount" => Statistic::SampleCount,
            other => return Err(self.unsupported("Statistic", other)),
        })
    }

    fn dimension_value(&self, node: &Value) -> Result<DimensionValue, TemplateError> {
        let function = self.functions.iter().find(|(id, name)| {
            *name == Some(node)
                || matches!(intrinsic(node), Some((f, Value::String(r))) if f == "Ref" && r == id)
        });
        match function {
            Some((id, _)) => Ok(DimensionValue::Function((*id).to_owned())),
            None => Ok(DimensionValue::Literal(self.string(node, "Dimensions")?)),
        }
    }

    /// A scalar, with `!Ref` to a parameter, `!FindInMap` and `!Sub` resolved.
    fn string(&self, node: &Value, property: &'static str) -> Result<String, TemplateError> {
        match node {
            Value::String(s) => return Ok(s.clone()),
            Value::Number(n) => return Ok(n.to_string()),
            Value::Bool(b) => return Ok(b.to_string()),
            _ => {}
        }
        let unresolvable = || self.unresolvable(property, node);
        let (function, argument) = intrinsic(node).ok_or_else(unresolvable)?;
        match (function.as_str(), argument) {
            ("Ref", Value::String(name)) => self.parameter(name).ok_or_else(unresolvable),
            ("FindInMap", Value::Sequence(keys)) if keys.len() == 3 => {
                let mut found = Some(self.mappings);
                for key in &keys[..2] {
                    let key = self.string(key, property)?;
                    found = found.and_then(|m| m.get(key.as_str())?.as_mapping());
                }
                let key = self.string(&keys[2], property)?;
                let value = found.and_then(|m| m.get(key.as_str()));
                self.string(value.ok_or_else(unresolvable)?, property)
            }
            ("Sub", Value::String(text)) => self.substitute(text, None, property, node),
            ("Sub", Value::Sequence(args)) if args.len() == 2 => {
                let text = args[0].as_str().ok_or_else(unresolvable)?;
                self.substitute(text, args[1].as_mapping(), property, node)
            }
            _ => Err(unresolvable()),
        }
    }

    /// `!Sub`'s text with its variables and the parameters' defaults filled in.
    fn substitute(
        &self,
        text: &str,
        variables: Option<&Mapping>,
        property: &'static str,
        node: &Value,
    ) -> Result<String, TemplateError> {
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end = after
                .find('}')
                .ok_or_else(|| self.unresolvable(property, node))?;
            let name = &after[..end];
            if let Some(literal) = name.strip_prefix('!') {
                out.push_str("${");
                out.push_str(literal);
                out.push('}');
            } else if let Some(value) = variables.and_then(|v| v.get(name)) {
                out.push_str(&self.string(value, property)?);
            } else {
                let value = self.parameter(name);
                out.push_str(&value.ok_or_else(|| self.unresolvable(property, node))?);
            }
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }

    fn parameter(&self, name: &str) -> Option<String> {
        match self.parameters.get(name)?.get("Default")? {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    }

    fn number(&self, node: &Value, property: &'static str) -> Result<f64, TemplateError> {
        let text = self.string(node, property)?;
        text.parse().map_err(|_| self.unsupported(property, &text))
    }

    fn count(&self, node: &Value, property: &'static str) -> Result<usize, TemplateError> {
        let text = self.string(node, property)?;
        match text.parse() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(self.unsupported(property, &text)),
        }
    }

    fn get<'v>(&self, node: &'v Value, property: &'static str) -> Result<&'v Value, TemplateError> {
        node.get(property).ok_or_else(|| self.missing(property))
    }

    fn missing(&self, property: &'static str) -> TemplateError {
        TemplateError::Missing {
            alarm: self.alarm.to_owned(),
            property,
        }
    }

    fn unsupported(&self, property: &'static str, value: &str) -> TemplateError {
        TemplateError::Unsupported {
            alarm: self.alarm.to_owned(),
            property,
            value: value.to_owned(),
        }
    }

    fn unresolvable(&self, property: &'static str, node: &Value) -> TemplateError {
        TemplateError::Unresolvable {
            alarm: self.alarm.to_owned(),
            property,
            value: yaml(node),
        }
    }

    fn id(&self, id: &str) -> TemplateError {
        TemplateError::Id {
            alarm: self.alarm.to_owned(),
            id: id.to_owned(),
        }
    }
}

fn yaml(node: &Value) -> String {
    serde_norway::to_string(node)
        .map(|s| s.trim_end().to_owned())
        .unwrap_or_else(|_| format!("{node:?}"))
}

#[cfg(test)]
mod tests;
