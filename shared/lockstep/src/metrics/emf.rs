//! The one CloudWatch Embedded Metric Format document an invocation writes: namespace and
//! dimensions as Powertools sets them, every metric named in a directive, within the
//! specification's limits (`lockstep_testkit::emf_spec` checks documents against it).
//!
//! Two directives share the document's root members: the instance's counts and values under
//! `[service, function_name]`, and the HTTP counts under both that set (what alarms watch) and
//! `[service, function_name, route]` (what the dashboard breaks down). Counts that are zero are
//! left out; an invocation that counted nothing writes nothing.

use crate::metrics::{Count, Millis, Taken, MAX_VALUES};
use serde_json::{json, Map, Value};
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
/// document carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Emf {
    namespace: String,
    service: String,
    function_name: String,
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
            namespace: namespace.to_owned(),
            service: service.to_owned(),
            function_name: function_name.to_owned(),
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
    pub fn render(&self, taken: &Taken, route: Option<&str>, timestamp_ms: i64) -> Option<String> {
        if taken.is_empty() {
            return None;
        }
        let route = route.filter(|r| check_dimension("route", r).is_ok());
        let mut root = Map::new();
        let mut instance = Vec::new();
        let mut http = Vec::new();
        for count in Count::ALL {
            let n = taken.count(count);
            if n == 0 {
                continue;
            }
            let definition = json!({"Name": count.name(), "Unit": "Count"});
            if count.per_route() {
                http.push(definition);
            } else {
                instance.push(definition);
            }
            root.insert(count.name().into(), n.into());
        }
        for metric in Millis::ALL {
            let mut values: Vec<f64> = taken.values(metric).collect();
            if values.is_empty() {
                continue;
            }
            if values.len() > MAX_VALUES {
                tracing::warn!(
                    metric = metric.name(),
                    recorded = values.len(),
                    kept = MAX_VALUES,
                    path = "metric_values_dropped",
                    "more values than one document holds; the first are kept"
                );
                values.truncate(MAX_VALUES);
            }
            instance.push(json!({"Name": metric.name(), "Unit": "Milliseconds"}));
            let value = match values.as_slice() {
                [one] => json!(one),
                many => json!(many),
            };
            root.insert(metric.name().into(), value);
        }
        let base = ["service", "function_name"];
        let mut directives = Vec::new();
        if !instance.is_empty() {
            directives.push(json!({
                "Namespace": self.namespace,
                "Dimensions": [base],
                "Metrics": instance,
            }));
        }
        if !http.is_empty() {
            let sets = match route {
                Some(_) => json!([base, ["service", "function_name", "route"]]),
                None => json!([base]),
            };
            directives.push(json!({
                "Namespace": self.namespace,
                "Dimensions": sets,
                "Metrics": http,
            }));
        }
        let mut document = Map::new();
        document.insert(
            "_aws".into(),
            json!({"Timestamp": timestamp_ms, "CloudWatchMetrics": directives}),
        );
        document.insert("service".into(), self.service.clone().into());
        document.insert("function_name".into(), self.function_name.clone().into());
        if let (Some(route), false) = (route, http.is_empty()) {
            document.insert("route".into(), route.into());
        }
        document.extend(root);
        Some(Value::Object(document).to_string())
    }
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
    use crate::metrics::Metrics;

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
