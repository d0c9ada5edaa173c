//! The one CloudWatch Embedded Metric Format document an invocation writes: namespace and
//! dimensions as Powertools sets them, every metric named in a directive, within the
//! specification's limits (`lockstep_testkit::emf_spec` checks documents against it).
//!
//! Two directives share the document's root members: the instance's counts and values under
//! `[service, function_name]`, and the HTTP counts under both that set (what alarms watch) and
//! `[service, function_name, route]` (what the dashboard breaks down). Counts that are zero are
//! left out; an invocation that counted nothing writes nothing.

use crate::metrics::{Millis, Taken, MAX_VALUES};
use thiserror::Error;

/// The namespace when `POWERTOOLS_METRICS_NAMESPACE` is not set.
pub const DEFAULT_NAMESPACE: &str = "Lockstep";
/// The `service` dimension when `POWERTOOLS_SERVICE_NAME` is not set.
pub const DEFAULT_SERVICE: &str = "lockstep";

/// Longest namespace and dimension value CloudWatch accepts.
const MAX_NAMESPACE_LEN: usize = 255;
const MAX_DIMENSION_VALUE_LEN: usize = 1024;

/// A namespace or dimension value CloudWatch would refuse.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum EmfError {
    /// The namespace is empty, too long or not ASCII.
    #[error("metrics namespace {0:?} must be 1 to 255 ASCII characters")]
    Namespace(String),
    /// A dimension value is empty, too long or has control characters.
    #[error("metrics dimension {name} = {value:?} must be 1 to 1024 characters without control characters")]
    Dimension {
        /// The dimension's name.
        name: &'static str,
        /// The value refused.
        value: String,
    },
}

/// Where an instance's documents go in CloudWatch: the namespace and the dimensions every
/// document carries, kept as the JSON text each document repeats.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Emf {
    function_name: String,
    /// `"Namespace":"…"`.
    namespace_member: String,
    /// `"service":"…","function_name":"…"`.
    dimension_members: String,
}

impl Emf {
    /// For `function_name`, in `namespace` under `service`.
    pub fn new(namespace: &str, service: &str, function_name: &str) -> Result<Self, EmfError> {
        if namespace.is_empty() || namespace.len() > MAX_NAMESPACE_LEN || !namespace.is_ascii() {
            return Err(EmfError::Namespace(namespace.to_owned()));
        }
        check_dimension("service", service)?;
        check_dimension("function_name", function_name)?;
        Ok(Self {
            function_name: function_name.to_owned(),
            namespace_member: format!("\"Namespace\":{}", json_string(namespace)),
            dimension_members: format!(
                "\"service\":{},\"function_name\":{}",
                json_string(service),
                json_string(function_name)
            ),
        })
    }

    /// As Powertools reads it: `POWERTOOLS_METRICS_NAMESPACE`, `POWERTOOLS_SERVICE_NAME` and
    /// Lambda's `AWS_LAMBDA_FUNCTION_NAME`, with `function_name` when that is not set (the local
    /// runner, tests).
    pub fn from_env(function_name: &str) -> Result<Self, EmfError> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        Self::new(
            &var("POWERTOOLS_METRICS_NAMESPACE").unwrap_or_else(|| DEFAULT_NAMESPACE.into()),
            &var("POWERTOOLS_SERVICE_NAME").unwrap_or_else(|| DEFAULT_SERVICE.into()),
            &var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_else(|| function_name.into()),
        )
    }

    /// The `function_name` dimension.
    pub fn function_name(&self) -> &str {
        &self.function_name
    }

    /// The document for `taken` at `timestamp_ms`, with the HTTP counts under `route` (an API
    /// Gateway route key) when given; `None` when nothing was counted.
    ///
    /// Written straight into one string (the names are the catalogue's, the namespace and
    /// dimensions escaped once in [`Emf::new`]): it is on every invocation's path.
    pub fn render(&self, taken: &Taken, route: Option<&str>, timestamp_ms: i64) -> Option<String> {
        if taken.is_empty() {
            return None;
        }
        let route = route.filter(|r| check_dimension("route", r).is_ok());
        let counted = |per_route: bool| {
            taken
                .counted()
                .filter(move |(c, _)| c.per_route() == per_route)
        };
        let measured = || {
            Millis::ALL
                .into_iter()
                .filter(|m| taken.values(*m).next().is_some())
        };
        let has_instance = counted(false).next().is_some() || measured().next().is_some();
        let has_http = counted(true).next().is_some();
        let mut numbers = itoa::Buffer::new();
        let mut floats = ryu::Buffer::new();

        let mut out = String::with_capacity(512 + self.dimension_members.len());
        out.push_str("{\"_aws\":{\"Timestamp\":");
        out.push_str(numbers.format(timestamp_ms));
        out.push_str(",\"CloudWatchMetrics\":[");
        if has_instance {
            self.directive(&mut out, "[[\"service\",\"function_name\"]]");
            let definitions = counted(false)
                .map(|(c, _)| (c.name(), "Count"))
                .chain(measured().map(|m| (m.name(), "Milliseconds")));
            definitions_into(&mut out, definitions);
        }
        if has_http {
            if has_instance {
                out.push(',');
            }
            self.directive(
                &mut out,
                match route {
                    Some(_) => "[[\"service\",\"function_name\"],[\"service\",\"function_name\",\"route\"]]",
                    None => "[[\"service\",\"function_name\"]]",
                },
            );
            definitions_into(&mut out, counted(true).map(|(c, _)| (c.name(), "Count")));
        }
        out.push_str("]},");
        out.push_str(&self.dimension_members);
        if let (Some(route), true) = (route, has_http) {
            out.push_str(",\"route\":");
            crate::json_text::push_string(&mut out, route);
        }
        for (count, number) in counted(false).chain(counted(true)) {
            member(&mut out, count.name());
            out.push_str(numbers.format(number));
        }
        for metric in measured() {
            let recorded = taken.values(metric).count();
            if recorded > MAX_VALUES {
                tracing::warn!(
                    metric = metric.name(),
                    recorded,
                    kept = MAX_VALUES,
                    path = "metric_values_dropped",
                    "more values than one document holds; the first are kept"
                );
            }
            member(&mut out, metric.name());
            let mut values = taken.values(metric).take(MAX_VALUES);
            if recorded == 1 {
                out.push_str(floats.format_finite(values.next().unwrap_or_default()));
                continue;
            }
            out.push('[');
            for (i, value) in values.enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(floats.format_finite(value));
            }
            out.push(']');
        }
        out.push('}');
        Some(out)
    }

    /// A directive's opening, up to its `Metrics` array's `[`.
    fn directive(&self, out: &mut String, dimensions: &str) {
        out.push('{');
        out.push_str(&self.namespace_member);
        out.push_str(",\"Dimensions\":");
        out.push_str(dimensions);
        out.push_str(",\"Metrics\":[");
    }
}

/// The metric definitions `{"Name":…,"Unit":…}` of one directive, and its closing `]}`.
fn definitions_into<'a>(out: &mut String, definitions: impl Iterator<Item = (&'a str, &'a str)>) {
    for (i, (name, unit)) in definitions.enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("{\"Name\":\"");
        out.push_str(name);
        out.push_str("\",\"Unit\":\"");
        out.push_str(unit);
        out.push_str("\"}");
    }
    out.push_str("]}");
}

/// `,"name":` (a catalogue name: nothing to escape).
fn member(out: &mut String, name: &str) {
    out.push_str(",\"");
    out.push_str(name);
    out.push_str("\":");
}

/// `text` as a JSON string (quoted and escaped).
fn json_string(text: &str) -> String {
    let mut out = String::new();
    crate::json_text::push_string(&mut out, text);
    out
}

fn check_dimension(name: &'static str, value: &str) -> Result<(), EmfError> {
    if value.is_empty()
        || value.len() > MAX_DIMENSION_VALUE_LEN
        || value.chars().any(char::is_control)
    {
        return Err(EmfError::Dimension {
            name,
            value: value.to_owned(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{Count, Metrics};
    use serde_json::{json, Value};

    fn emf() -> Emf {
        Emf::new("Lockstep", "lockstep", "feature-x").unwrap()
    }

    #[test]
    fn an_invocation_that_counted_nothing_writes_nothing() {
        assert_eq!(
            emf().render(&Metrics::new().take(), Some("GET /config"), 0),
            None
        );
    }

    #[test]
    fn instance_counts_go_per_function_and_http_counts_per_function_and_per_route() {
        let metrics = Metrics::new();
        metrics.count(Count::GateBehind);
        metrics.count(Count::Requests);
        metrics.count(Count::Http5xx);
        metrics.record(Millis::ConfigAge, 1500.0);
        let text = emf()
            .render(
                &metrics.take(),
                Some("POST /feature-x/submissions"),
                1_700_000_000_000,
            )
            .unwrap();
        let doc: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            doc["_aws"],
            json!({"Timestamp": 1_700_000_000_000_i64, "CloudWatchMetrics": [
                {"Namespace": "Lockstep", "Dimensions": [["service", "function_name"]], "Metrics": [
                    {"Name": "GateBehind", "Unit": "Count"},
                    {"Name": "ConfigAge", "Unit": "Milliseconds"}]},
                {"Namespace": "Lockstep",
                 "Dimensions": [["service", "function_name"], ["service", "function_name", "route"]],
                 "Metrics": [{"Name": "Requests", "Unit": "Count"}, {"Name": "Http5xx", "Unit": "Count"}]}
            ]})
        );
        assert_eq!(doc["service"], "lockstep");
        assert_eq!(doc["function_name"], "feature-x");
        assert_eq!(doc["route"], "POST /feature-x/submissions");
        assert_eq!(
            (doc["GateBehind"].clone(), doc["Http5xx"].clone()),
            (json!(1), json!(1))
        );
        assert_eq!(doc["ConfigAge"], json!(1500.0));
        assert!(doc.get("GateOpen").is_none(), "zero counts are left out");
    }

    #[test]
    fn without_a_route_http_counts_are_published_per_function_only() {
        let metrics = Metrics::new();
        metrics.count(Count::Requests);
        let doc: Value =
            serde_json::from_str(&emf().render(&metrics.take(), None, 0).unwrap()).unwrap();
        assert_eq!(
            doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["service", "function_name"]])
        );
        assert!(doc.get("route").is_none());
    }

    #[test]
    fn more_values_than_a_document_holds_keep_the_first_hundred() {
        let metrics = Metrics::new();
        for i in 0..150 {
            metrics.record(Millis::DeploymentLag, f64::from(i));
        }
        let doc: Value =
            serde_json::from_str(&emf().render(&metrics.take(), None, 0).unwrap()).unwrap();
        let values = doc["DeploymentLag"].as_array().unwrap();
        assert_eq!(values.len(), MAX_VALUES);
        assert_eq!(values[99], json!(99.0));
    }

    #[test]
    fn names_and_values_with_json_syntax_are_escaped_and_non_finite_values_dropped() {
        let emf = Emf::new("Name\"space", "svc\\1", "fn \"x\"").unwrap();
        let metrics = Metrics::new();
        metrics.count(Count::Requests);
        metrics.record(Millis::ConfigAge, f64::NAN);
        metrics.record(Millis::ConfigAge, 12.5);
        let text = emf.render(&metrics.take(), Some("GET /a\"b"), 1).unwrap();
        let doc: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            doc["_aws"]["CloudWatchMetrics"][0]["Namespace"],
            "Name\"space"
        );
        assert_eq!(doc["service"], "svc\\1");
        assert_eq!(doc["function_name"], "fn \"x\"");
        assert_eq!(doc["route"], "GET /a\"b");
        assert_eq!(doc["ConfigAge"], json!(12.5));
    }

    #[test]
    fn a_namespace_or_dimension_cloudwatch_would_refuse_is_an_error_at_init() {
        assert!(matches!(
            Emf::new("", "s", "f"),
            Err(EmfError::Namespace(_))
        ));
        assert!(matches!(
            Emf::new(&"n".repeat(256), "s", "f"),
            Err(EmfError::Namespace(_))
        ));
        assert!(matches!(
            Emf::new("n", "", "f"),
            Err(EmfError::Dimension {
                name: "service",
                ..
            })
        ));
        assert!(matches!(
            Emf::new("n", "s", "a\nb"),
            Err(EmfError::Dimension {
                name: "function_name",
                ..
            })
        ));
    }
}
