use super::*;
use std::collections::BTreeSet;

fn template_alarm(id: &str) -> Alarm {
    let alarms = template_alarms().expect("template.yaml's alarms parse");
    alarms
        .into_iter()
        .find(|a| a.logical_id == id)
        .unwrap_or_else(|| panic!("template.yaml has no alarm {id}"))
}

fn math(alarm: &Alarm) -> &MetricMath {
    match &alarm.query {
        Query::Math(math) => math,
        Query::Metric(_) => panic!("{} is not metric math", alarm.logical_id),
    }
}

/// `!GetAtt X.Arn` (either form) → `X`.
fn get_att_arn(node: &Value) -> String {
    let (function, argument) = intrinsic(node).expect("an intrinsic");
    assert_eq!(function, "GetAtt");
    let target = match argument {
        Value::String(s) => s.clone(),
        Value::Sequence(parts) => format!(
            "{}.{}",
            parts[0].as_str().unwrap(),
            parts[1].as_str().unwrap()
        ),
        other => panic!("unexpected GetAtt {other:?}"),
    };
    target
        .strip_suffix(".Arn")
        .expect("an Arn attribute")
        .to_owned()
}

#[test]
fn the_template_storage_alarm_is_read_from_template_yaml_as_written() {
    let alarm = template_alarm("FeatureXStorageErrorsAlarm");

    assert_eq!(alarm.period_seconds, 60);
    assert_eq!(
        (alarm.evaluation_periods, alarm.datapoints_to_alarm),
        (1, 1)
    );
    assert_eq!(
        alarm.threshold, 3.0,
        "FeatureXStorageErrorsPerMinute's default"
    );
    assert_eq!(alarm.comparison, Comparison::GreaterThanOrEqual);
    assert_eq!(alarm.missing_data, MissingData::NotBreaching);
    let math = math(&alarm);
    assert_eq!(math.returned, "failures");
    assert_eq!(
        math.expressions["failures"].source(),
        "FILL(errors, 0) + FILL(unknown, 0)"
    );
    let errors = &math.metrics["errors"];
    assert_eq!(errors.namespace, "Lockstep");
    assert_eq!(errors.name, "StorageError");
    assert_eq!(errors.statistic, Statistic::Sum);
    assert_eq!(
        errors.dimensions,
        [
            Dimension {
                name: "service".into(),
                value: DimensionValue::Literal("lockstep".into()),
            },
            Dimension {
                name: "function_name".into(),
                value: DimensionValue::Function("FeatureXFunction".into()),
            },
        ]
    );
    assert_eq!(math.metrics["unknown"].name, "StorageUnknownOutcome");
}

#[test]
fn every_template_alarm_treats_missing_data_as_not_breaching() {
    // AppConfig rolls back on INSUFFICIENT_DATA too: an alarm that is not notBreaching would
    // roll back every deployment to an idle stack.
    let alarms = template_alarms().unwrap();
    assert!(!alarms.is_empty());
    for alarm in &alarms {
        assert_eq!(
            alarm.missing_data,
            MissingData::NotBreaching,
            "{}",
            alarm.logical_id
        );
    }
}

#[test]
fn the_appconfig_environment_monitors_every_template_alarm_and_its_role_describes_only_them() {
    let template: Value = serde_norway::from_str(TEMPLATE).unwrap();
    let resources = &template["Resources"];
    let alarms: BTreeSet<String> = template_alarms()
        .unwrap()
        .into_iter()
        .map(|a| a.logical_id)
        .collect();

    let monitors = resources["AppConfigEnvironment"]["Properties"]["Monitors"]
        .as_sequence()
        .expect("the environment has monitors");
    let monitored: BTreeSet<String> = monitors
        .iter()
        .map(|m| get_att_arn(&m["AlarmArn"]))
        .collect();
    let roles: BTreeSet<String> = monitors
        .iter()
        .map(|m| get_att_arn(&m["AlarmRoleArn"]))
        .collect();
    let role = &resources["AppConfigMonitorRole"]["Properties"];
    let statements = role["Policies"][0]["PolicyDocument"]["Statement"]
        .as_sequence()
        .unwrap();
    let described: BTreeSet<String> = statements[0]["Resource"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(get_att_arn)
        .collect();

    assert!(
        monitors.len() <= 5,
        "AppConfig takes at most 5 monitors per environment"
    );
    assert_eq!(monitored, alarms);
    assert_eq!(roles, BTreeSet::from(["AppConfigMonitorRole".to_owned()]));
    assert_eq!(role["Policies"].as_sequence().unwrap().len(), 1);
    assert_eq!(statements.len(), 1);
    assert_eq!(
        statements[0]["Action"].as_str(),
        Some("cloudwatch:DescribeAlarms")
    );
    assert_eq!(described, alarms);
}

#[test]
fn the_gate_alarms_take_their_minimum_from_the_parameter_default() {
    for id in ["GateBehindAlarm", "GateDrainEndedAlarm"] {
        let alarm = template_alarm(id);
        let math = math(&alarm);
        let rate = math.expressions[&math.returned].source();
        assert!(rate.starts_with("IF(decisions >= 20, "), "{id}: {rate}");
        assert_eq!(
            (alarm.evaluation_periods, alarm.datapoints_to_alarm),
            (3, 2)
        );
        assert_eq!(alarm.threshold, 5.0);
    }
}

#[test]
fn a_single_metric_alarm_with_long_form_intrinsics_is_parsed() {
    let yaml = r#"
Parameters:
  Limit: {Type: Number, Default: 7}
Resources:
  Fn:
    Type: AWS::Lambda::Function
    Properties: {}
  Latency:
    Type: AWS::CloudWatch::Alarm
    Properties:
      Namespace: {"Fn::Sub": ["${Prefix}-ns", {"Prefix": "app"}]}
      MetricName: ConfigAge
      Dimensions:
        - Name: function_name
          Value: {"Ref": "Fn"}
      Statistic: Maximum
      Period: 300
      EvaluationPeriods: 2
      Threshold: {"Ref": "Limit"}
      ComparisonOperator: LessThanThreshold
"#;
    let alarms = parse_alarms(yaml).unwrap();

    assert_eq!(
        alarms,
        [Alarm {
            logical_id: "Latency".into(),
            query: Query::Metric(MetricStat {
                namespace: "app-ns".into(),
                name: "ConfigAge".into(),
                dimensions: vec![Dimension {
                    name: "function_name".into(),
                    value: DimensionValue::Function("Fn".into()),
                }],
                statistic: Statistic::Maximum,
            }),
            period_seconds: 300,
            evaluation_periods: 2,
            datapoints_to_alarm: 2,
            threshold: 7.0,
            comparison: Comparison::LessThan,
            missing_data: MissingData::Missing,
        }]
    );
}

/// A math alarm with `extra` appended to its metrics and `threshold` as its threshold.
fn math_alarm(extra: &str, threshold: &str) -> Result<Vec<Alarm>, TemplateError> {
    parse_alarms(&format!(
        r#"
Resources:
  A:
    Type: AWS::CloudWatch::Alarm
    Properties:
      ComparisonOperator: GreaterThanThreshold
      Threshold: {threshold}
      EvaluationPeriods: 1
      Metrics:
        - Id: m
          ReturnData: false
          MetricStat:
            Period: 60
            Stat: Sum
            Metric: {{Namespace: N, MetricName: M}}
{extra}"#
    ))
}

#[test]
fn what_the_local_evaluator_cannot_evaluate_is_refused() {
    let expression = |e: &str| format!("        - Id: e\n          Expression: {e}\n");
    assert!(math_alarm(&expression("m * 2"), "1").is_ok());
    assert!(matches!(
        math_alarm(&expression("RATE(m)"), "1"),
        Err(TemplateError::Expression {
            source: ExpressionError::UnknownFunction(_),
            ..
        })
    ));
    assert!(matches!(
        math_alarm(&expression("m + other"), "1"),
        Err(TemplateError::Id { id, .. }) if id == "other"
    ));
    let circle = "        - Id: e\n          Expression: f + m\n        - Id: f\n          ReturnData: false\n          Expression: e * 2\n";
    assert!(matches!(
        math_alarm(circle, "1"),
        Err(TemplateError::Cycle { .. })
    ));
    let two = format!(
        "{}        - Id: f\n          Expression: m\n",
        expression("m")
    );
    assert!(matches!(
        math_alarm(&two, "1"),
        Err(TemplateError::Returned { count: 2, .. })
    ));
    assert!(matches!(
        math_alarm(&expression("m"), "!Sub ${AWS::StackName}"),
        Err(TemplateError::Unresolvable {
            property: "Threshold",
            ..
        })
    ));
    let p99 = "        - Id: e\n          MetricStat: {Period: 60, Stat: p99, Metric: {Namespace: N, MetricName: M}}\n";
    assert!(matches!(
        math_alarm(p99, "1"),
        Err(TemplateError::Unsupported { property: "Statistic", value, .. }) if value == "p99"
    ));
    let other_period = "        - Id: e\n          MetricStat: {Period: 300, Stat: Sum, Metric: {Namespace: N, MetricName: M}}\n";
    assert!(matches!(
        math_alarm(other_period, "1"),
        Err(TemplateError::Periods { .. })
    ));
}

#[test]
fn a_dimension_naming_no_function_must_resolve_from_the_template_alone() {
    let yaml = r#"
Resources:
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      FunctionName: !Sub ${AWS::StackName}-fn
  A:
    Type: AWS::CloudWatch::Alarm
    Properties:
      Namespace: N
      MetricName: M
      Dimensions:
        - Name: function_name
          Value: !Sub ${AWS::StackName}-fn
        - Name: other
          Value: !Sub ${AWS::StackName}-other
      Statistic: Sum
      Period: 60
      EvaluationPeriods: 1
      Threshold: 1
      ComparisonOperator: GreaterThanThreshold
"#;
    let error = parse_alarms(yaml).unwrap_err();

    // The first dimension is the function's own name (resolved to it); the second needs a stack.
    assert!(
        matches!(&error, TemplateError::Unresolvable { value, .. } if value.contains("-other")),
        "{error:?}"
    );
}

/// Every metric the template's alarms and dashboard name is one the functions emit: a renamed
/// count would leave an alarm that never fires and a graph that stays empty.
#[test]
fn every_metric_the_template_alarms_and_dashboard_name_is_in_the_catalogue() {
    use lockstep::metrics::{Count, Millis};
    let catalogue: BTreeSet<&str> = Count::ALL
        .iter()
        .map(|c| c.name())
        .chain(Millis::ALL.iter().map(|m| m.name()))
        .collect();
    let mut alarmed = BTreeSet::new();
    for alarm in template_alarms().unwrap() {
        match &alarm.query {
            Query::Metric(metric) => {
                alarmed.insert(metric.name.clone());
            }
            Query::Math(math) => alarmed.extend(math.metrics.values().map(|m| m.name.clone())),
        }
    }
    let template: Value = serde_norway::from_str(TEMPLATE).unwrap();
    let sub = &template["Resources"]["FlagsDashboard"]["Properties"]["DashboardBody"];
    let body = intrinsic(sub)
        .filter(|(name, _)| name == "Sub")
        .and_then(|(_, argument)| argument.as_sequence())
        .and_then(|parts| parts[0].as_str())
        .expect("DashboardBody is !Sub [body, variables]");
    let mut graphed = BTreeSet::new();
    for (marker, end) in [("\"${Namespace}\", \"", '"'), ("MetricName=\\\"", '\\')] {
        for (at, _) in body.match_indices(marker) {
            let rest = &body[at + marker.len()..];
            graphed.insert(rest[..rest.find(end).unwrap()].to_owned());
        }
    }

    assert!(alarmed.len() >= 5, "{alarmed:?}");
    assert!(graphed.len() >= 30, "{graphed:?}");
    for name in alarmed.iter().chain(&graphed) {
        assert!(
            catalogue.contains(name.as_str()),
            "{name} is not in lockstep::metrics::catalogue"
        );
    }
    for shown in [
        "RollbackSeen",
        "DeploymentRolledBack",
        "StorageError",
        "GateBehind",
    ] {
        assert!(graphed.contains(shown), "the dashboard shows {shown}");
    }
}
