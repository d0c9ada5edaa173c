//! The HTTP API's routes, read from `template.yaml` (every function's `HttpApi` events), so the
//! runner hands each function the route key and path parameters API Gateway would: the metrics'
//! `route` dimension (`GET /feature-x/submissions/{id}`, never the path) is the same locally as
//! in AWS.
//!
//! A route matches a request when the methods are equal and the paths have as many segments,
//! each literal segment equal and each `{name}` segment non-empty (API Gateway's rule for
//! routes without a greedy `{proxy+}`; the template has none). A literal route wins over one with
//! parameters, as in API Gateway.

use serde_norway::Value;
use std::collections::BTreeMap;
use std::sync::OnceLock;
use thiserror::Error;

/// `template.yaml`, as this runner was built with it.
const TEMPLATE: &str = include_str!("../../template.yaml");

/// One route of the HTTP API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// `GET /feature-x/submissions/{id}`.
    pub key: String,
    method: String,
    segments: Vec<Segment>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Parameter(String),
}

/// What a request matched: its route's key and the path parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matched<'r> {
    /// The route key.
    pub key: &'r str,
    /// The `{name}` segments' values, by name.
    pub parameters: BTreeMap<String, String>,
}

/// Why the template's routes could not be read.
#[derive(Debug, Error)]
pub enum RoutesError {
    /// The template is not YAML.
    #[error("the template is not YAML")]
    Yaml(#[from] serde_norway::Error),
    /// An `HttpApi` event without a `Method` or `Path` string.
    #[error("{function}: HttpApi event {event} has no Method or Path")]
    Incomplete {
        /// The function's logical id.
        function: String,
        /// The event's name.
        event: String,
    },
}

impl Route {
    fn new(method: &str, path: &str) -> Self {
        let segments = path
            .split('/')
            .filter(|s| !s.is_empty())
            .map(
                |s| match s.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                    Some(name) => Segment::Parameter(name.to_owned()),
                    None => Segment::Literal(s.to_owned()),
                },
            )
            .collect();
        Self {
            key: format!("{} {path}", method.to_ascii_uppercase()),
            method: method.to_ascii_uppercase(),
            segments,
        }
    }

    fn parameters(&self, method: &str, path: &str) -> Option<BTreeMap<String, String>> {
        if !self.method.eq_ignore_ascii_case(method) {
            return None;
        }
        let parts: Vec<&str> = path.split('/').skip(1).collect();
        if parts.len() != self.segments.len() {
            return None;
        }
        let mut parameters = BTreeMap::new();
        for (segment, part) in self.segments.iter().zip(parts) {
            match segment {
                Segment::Literal(literal) if literal == part => {}
                Segment::Parameter(name) if !part.is_empty() => {
                    parameters.insert(name.clone(), part.to_owned());
                }
                _ => return None,
            }
        }
        Some(parameters)
    }

    fn literal(&self) -> bool {
        self.segments
            .iter()
            .all(|s| matches!(s, Segment::Literal(_)))
    }
}

/// The routes of `yaml`'s functions (`AWS::Serverless::Function` events of type `HttpApi`).
pub fn parse_routes(yaml: &str) -> Result<Vec<Route>, RoutesError> {
    let template: Value = serde_norway::from_str(yaml)?;
    let mut routes = Vec::new();
    let Some(resources) = template["Resources"].as_mapping() else {
        return Ok(routes);
    };
    for (id, resource) in resources {
        if resource["Type"].as_str() != Some("AWS::Serverless::Function") {
            continue;
        }
        let Some(events) = resource["Properties"]["Events"].as_mapping() else {
            continue;
        };
        for (name, event) in events {
            if event["Type"].as_str() != Some("HttpApi") {
                continue;
            }
            let properties = &event["Properties"];
            match (properties["Method"].as_str(), properties["Path"].as_str()) {
                (Some(method), Some(path)) => routes.push(Route::new(method, path)),
                _ => {
                    return Err(RoutesError::Incomplete {
                        function: id.as_str().unwrap_or_default().to_owned(),
                        event: name.as_str().unwrap_or_default().to_owned(),
                    })
                }
            }
        }
    }
    // Literal routes first: API Gateway prefers the most specific match.
    routes.sort_by_key(|r| !r.literal());
    Ok(routes)
}

/// The routes of the project's `template.yaml` (read once).
pub fn template_routes() -> &'static [Route] {
    static ROUTES: OnceLock<Vec<Route>> = OnceLock::new();
    ROUTES.get_or_init(|| parse_routes(TEMPLATE).expect("template.yaml's HttpApi events parse"))
}

/// The route `method` and `path` match in `routes`, if any.
pub fn find<'r>(routes: &'r [Route], method: &str, path: &str) -> Option<Matched<'r>> {
    routes.iter().find_map(|route| {
        route.parameters(method, path).map(|parameters| Matched {
            key: &route.key,
            parameters,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_template_routes_are_the_functions_http_api_events() {
        let keys: Vec<&str> = template_routes().iter().map(|r| r.key.as_str()).collect();
        for key in [
            "GET /config",
            "GET /config/me",
            "POST /ofrep/v1/evaluate/flags",
            "POST /ofrep/v1/evaluate/flags/{key}",
            "POST /feature-x/submissions",
            "GET /feature-x/submissions",
            "GET /feature-x/submissions/{id}",
        ] {
            assert!(keys.contains(&key), "{key} in {keys:?}");
        }
    }

    #[test]
    fn a_request_gets_its_route_key_and_path_parameters_never_its_path() {
        let routes = template_routes();
        let matched = find(routes, "GET", "/feature-x/submissions/01abc").unwrap();
        assert_eq!(matched.key, "GET /feature-x/submissions/{id}");
        assert_eq!(matched.parameters["id"], "01abc");
        let listing = find(routes, "GET", "/feature-x/submissions").unwrap();
        assert_eq!(listing.key, "GET /feature-x/submissions");
        assert!(listing.parameters.is_empty());
        assert_eq!(
            find(routes, "POST", "/ofrep/v1/evaluate/flags/isFeatureXEnabled")
                .unwrap()
                .key,
            "POST /ofrep/v1/evaluate/flags/{key}"
        );
    }

    #[test]
    fn no_route_for_another_method_an_empty_parameter_or_another_depth() {
        let routes = template_routes();
        assert_eq!(find(routes, "DELETE", "/config"), None);
        assert_eq!(find(routes, "GET", "/feature-x/submissions/"), None);
        assert_eq!(find(routes, "GET", "/feature-x/submissions/a/b"), None);
        assert_eq!(find(routes, "GET", "/nowhere"), None);
    }

    #[test]
    fn a_literal_route_wins_over_one_with_a_parameter() {
        let routes = parse_routes(
            r#"
Resources:
  F:
    Type: AWS::Serverless::Function
    Properties:
      Events:
        Any: {Type: HttpApi, Properties: {Method: GET, Path: "/items/{id}"}}
        Mine: {Type: HttpApi, Properties: {Method: GET, Path: /items/mine}}
"#,
        )
        .unwrap();
        assert_eq!(
            find(&routes, "GET", "/items/mine").unwrap().key,
            "GET /items/mine"
        );
        assert_eq!(
            find(&routes, "GET", "/items/7").unwrap().key,
            "GET /items/{id}"
        );
    }

    #[test]
    fn an_http_api_event_without_a_path_is_an_error() {
        let error = parse_routes(
            "Resources:\n  F:\n    Type: AWS::Serverless::Function\n    Properties:\n      Events:\n        E: {Type: HttpApi, Properties: {Method: GET}}\n",
        )
        .unwrap_err();
        assert!(matches!(error, RoutesError::Incomplete { .. }), "{error}");
    }
}
