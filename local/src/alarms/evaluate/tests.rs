use super::*;
use crate::alarms::{template_alarms, Comparison, Dimension};
use serde_json::json;

const SECOND: i64 = 1000;
const MINUTE: i64 = 60 * SECOND;
/// A minute boundary (2026-01-01T10:00:00Z).
const T0: i64 = 1_767_261_600_000;

fn functions() -> BTreeMap<String, String> {
    BTreeMap::from([
        ("ConfigFunction".to_owned(), "config".to_owned()),
        ("FeatureXFunction".to_owned(), "feature-x".to_owned()),
    ])
}

/// One invocation's EMF document, as docs/metrics.md describes it: per-function dimensions.
fn emf(at: i64, function: &str, counts: &[(&str, f64)]) -> Value {
    emf_with(at, function, counts, json!([["service", "function_name"]]))
}

fn emf_with(at: i64, function: &str, counts: &[(&str, f64)], dimensions: Value) -> Value {
    let metrics: Vec<Value> = counts
        .iter()
        .map(|(name, _)| json!({"Name": name, "Unit": "Count"}))
        .collect();
    let mut document = json!({
        "_aws": {
            "Timestamp": at,
            "CloudWatchMetrics": [
                {"Namespace": "Lockstep", "Dimensions": dimensions, "Metrics": metrics}
            ]
        },
        "service": "lockstep",
        "function_name": function,
        "route": "POST /feature-x/submissions",
    });
    for (name, value) in counts {
        document[*name] = json!(value);
    }
    document
}

/// `times` invocations of `function` at `at`, each counting `counts`.
fn invocations(
    observations: &mut Observations,
    times: usize,
    at: i64,
    function: &str,
    counts: &[(&str, f64)],
) {
    for _ in 0..times {
        observations
            .record(&emf(at, function, counts))
            .expect("a valid document");
    }
}

fn state(id: &str, observations: &Observations, now: i64) -> AlarmState {
    let alarms = template_alarms().expect("template.yaml's alarms parse");
    let alarm = alarms
        .iter()
        .find(|a| a.logical_id == id)
        .expect("a template alarm");
    evaluate(alarm, observations, &functions(), now).expect("every function is named")
}

#[test]
fn storage_errors_in_the_last_complete_minute_raise_the_template_storage_alarm() {
    let mut breaking = Observations::default();
    invocations(
        &mut breaking,
        2,
        T0 + 10 * SECOND,
        "feature-x",
        &[("StorageError", 1.0)],
    );
    invocations(
        &mut breaking,
        1,
        T0 + 50 * SECOND,
        "feature-x",
        &[("StorageUnknownOutcome", 1.0)],
    );
    let mut coping = Observations::default();
    invocations(
        &mut coping,
        2,
        T0 + 10 * SECOND,
        "feature-x",
        &[("StorageError", 1.0)],
    );

    assert_eq!(
        state(
            "FeatureXStorageErrorsAlarm",
            &breaking,
            T0 + MINUTE + SECOND
        ),
        AlarmState::Alarm
    );
    assert_eq!(
        state("FeatureXStorageErrorsAlarm", &coping, T0 + MINUTE + SECOND),
        AlarmState::Ok
    );
}

#[test]
fn an_idle_stack_leaves_every_template_alarm_ok_not_insufficient_data() {
    let idle = Observations::default();
    for alarm in template_alarms().unwrap() {
        let state = evaluate(&alarm, &idle, &functions(), T0).unwrap();
        assert_eq!(state, AlarmState::Ok, "{}", alarm.logical_id);
    }
}

#[test]
fn samples_count_once_their_minute_is_complete_and_until_it_leaves_the_window() {
    let mut observations = Observations::default();
    invocations(
        &mut observations,
        3,
        T0 + 10 * SECOND,
        "feature-x",
        &[("StorageError", 1.0)],
    );
    let at = |now| state("FeatureXStorageErrorsAlarm", &observations, now);

    assert_eq!(
        at(T0 + 59 * SECOND),
        AlarmState::Ok,
        "the minute is still filling"
    );
    assert_eq!(at(T0 + MINUTE), AlarmState::Alarm);
    assert_eq!(
        at(T0 + 2 * MINUTE),
        AlarmState::Ok,
        "one period: out of the window"
    );
}

#[test]
fn the_gate_behind_rate_alarms_on_two_minutes_out_of_three() {
    let minute = |observations: &mut Observations, m: i64, behind: usize| {
        let at = T0 + m * MINUTE + SECOND;
        invocations(
            observations,
            20 - behind,
            at,
            "feature-x",
            &[("GateOpen", 1.0)],
        );
        invocations(
            observations,
            behind,
            at,
            "feature-x",
            &[("GateBehind", 1.0), ("Http5xx", 1.0)],
        );
    };
    let (mut twice, mut once) = (Observations::default(), Observations::default());
    for (m, behind) in [(0, 2), (1, 0), (2, 2)] {
        minute(&mut twice, m, behind); // 10 %, 0 %, 10 %
    }
    for (m, behind) in [(0, 2), (1, 1), (2, 0)] {
        minute(&mut once, m, behind); // 10 %, 5 % (not above 5), 0 %
    }

    assert_eq!(
        state("GateBehindAlarm", &twice, T0 + 3 * MINUTE),
        AlarmState::Alarm
    );
    assert_eq!(
        state("GateBehindAlarm", &once, T0 + 3 * MINUTE),
        AlarmState::Ok
    );
    assert_eq!(
        state("GateDrainEndedAlarm", &twice, T0 + 3 * MINUTE),
        AlarmState::Ok
    );
}

#[test]
fn the_gate_rates_count_minutes_without_or_with_too_few_decisions_as_zero() {
    let mut observations = Observations::default();
    // Minute 0: requests but no gate decision at all (a zero denominator).
    invocations(
        &mut observations,
        30,
        T0 + SECOND,
        "feature-x",
        &[("Requests", 1.0)],
    );
    // Minutes 1 and 2: every decision is drain-ended, but 19 are fewer than the minimum (20).
    for m in 1..=2 {
        invocations(
            &mut observations,
            19,
            T0 + m * MINUTE + SECOND,
            "feature-x",
            &[("GateDrainEnded", 1.0)],
        );
    }
    assert_eq!(
        state("GateDrainEndedAlarm", &observations, T0 + 3 * MINUTE),
        AlarmState::Ok
    );

    // One more decision a minute reaches the minimum: 100 % in minutes 1 and 2.
    for m in 1..=2 {
        invocations(
            &mut observations,
            1,
            T0 + m * MINUTE + SECOND,
            "feature-x",
            &[("GateOpen", 1.0)],
        );
    }
    assert_eq!(
        state("GateDrainEndedAlarm", &observations, T0 + 3 * MINUTE),
        AlarmState::Alarm
    );
}

#[test]
fn the_gates_503s_are_not_feature_x_server_errors() {
    let mut flag_off = Observations::default();
    invocations(
        &mut flag_off,
        50,
        T0 + SECOND,
        "feature-x",
        &[("GateDisabled", 1.0), ("Http5xx", 1.0)],
    );
    let mut failing = Observations::default();
    invocations(
        &mut failing,
        5,
        T0 + SECOND,
        "feature-x",
        &[("StorageError", 1.0), ("Http5xx", 1.0)],
    );

    assert_eq!(
        state("FeatureXServerErrorsAlarm", &flag_off, T0 + MINUTE),
        AlarmState::Ok
    );
    assert_eq!(
        state("FeatureXServerErrorsAlarm", &failing, T0 + MINUTE),
        AlarmState::Alarm
    );
}

#[test]
fn degraded_invocations_of_both_functions_add_up() {
    let mut five = Observations::default();
    invocations(
        &mut five,
        3,
        T0 + SECOND,
        "config",
        &[("Degraded", 1.0), ("DegradedFetchFailed", 1.0)],
    );
    invocations(
        &mut five,
        2,
        T0 + SECOND,
        "feature-x",
        &[("Degraded", 1.0), ("DegradedTimeout", 1.0)],
    );
    let mut four = Observations::default();
    invocations(&mut four, 3, T0 + SECOND, "config", &[("Degraded", 1.0)]);
    invocations(&mut four, 1, T0 + SECOND, "feature-x", &[("Degraded", 1.0)]);

    assert_eq!(
        state("DegradedAlarm", &five, T0 + MINUTE),
        AlarmState::Alarm
    );
    assert_eq!(state("DegradedAlarm", &four, T0 + MINUTE), AlarmState::Ok);
}

#[test]
fn a_sample_published_only_per_route_does_not_count_for_the_per_function_alarm() {
    let counts = [("StorageError", 5.0)];
    let mut per_route = Observations::default();
    let route = json!([["service", "function_name", "route"]]);
    per_route
        .record(&emf_with(T0, "feature-x", &counts, route))
        .unwrap();
    let mut both = Observations::default();
    let sets = json!([
        ["service", "function_name"],
        ["service", "function_name", "route"]
    ]);
    assert_eq!(
        both.record(&emf_with(T0, "feature-x", &counts, sets))
            .unwrap(),
        2
    );

    assert_eq!(
        state("FeatureXStorageErrorsAlarm", &per_route, T0 + MINUTE),
        AlarmState::Ok
    );
    assert_eq!(
        state("FeatureXStorageErrorsAlarm", &both, T0 + MINUTE),
        AlarmState::Alarm
    );
}

/// A single-metric alarm on feature-x's `ConfigAge`.
fn config_age_alarm(statistic: Statistic, threshold: f64, missing_data: MissingData) -> Alarm {
    Alarm {
        logical_id: "ConfigAgeAlarm".into(),
        query: Query::Metric(MetricStat {
            namespace: "Lockstep".into(),
            name: "ConfigAge".into(),
            dimensions: vec![
                Dimension {
                    name: "function_name".into(),
                    value: DimensionValue::Function("FeatureXFunction".into()),
                },
                Dimension {
                    name: "service".into(),
                    value: DimensionValue::Literal("lockstep".into()),
                },
            ],
            statistic,
        }),
        period_seconds: 60,
        evaluation_periods: 2,
        datapoints_to_alarm: 1,
        threshold,
        comparison: Comparison::GreaterThan,
        missing_data,
    }
}

#[test]
fn every_value_of_an_emf_array_is_a_sample_of_each_statistic() {
    let mut observations = Observations::default();
    let mut document = emf(T0 + SECOND, "feature-x", &[("ConfigAge", 0.0)]);
    document["ConfigAge"] = json!([10, 30, 20]);
    assert_eq!(observations.record(&document).unwrap(), 3);
    let expected = [
        (Statistic::Sum, 60.0),
        (Statistic::Average, 20.0),
        (Statistic::Minimum, 10.0),
        (Statistic::Maximum, 30.0),
        (Statistic::SampleCount, 3.0),
    ];
    for (statistic, value) in expected {
        let alarm = |threshold| config_age_alarm(statistic, threshold, MissingData::NotBreaching);
        let at = |threshold| evaluate(&alarm(threshold), &observations, &functions(), T0 + MINUTE);
        assert_eq!(at(value - 0.5), Ok(AlarmState::Alarm), "{statistic:?}");
        assert_eq!(at(value), Ok(AlarmState::Ok), "{statistic:?}");
    }
}

#[test]
fn missing_data_counts_as_the_alarm_says() {
    let idle = Observations::default();
    let mut quiet = Observations::default();
    quiet
        .record(&emf(T0, "feature-x", &[("ConfigAge", 5.0)]))
        .unwrap();
    let at = |missing, observations| {
        let alarm = config_age_alarm(Statistic::Maximum, 100.0, missing);
        evaluate(&alarm, observations, &functions(), T0 + 2 * MINUTE).unwrap()
    };

    assert_eq!(at(MissingData::NotBreaching, &idle), AlarmState::Ok);
    assert_eq!(at(MissingData::Breaching, &idle), AlarmState::Alarm);
    assert_eq!(
        at(MissingData::Breaching, &quiet),
        AlarmState::Alarm,
        "1 of 2 is missing"
    );
    assert_eq!(
        at(MissingData::Missing, &idle),
        AlarmState::InsufficientData
    );
    assert_eq!(at(MissingData::Missing, &quiet), AlarmState::Ok);
}

#[test]
fn a_malformed_document_records_nothing() {
    let mut observations = Observations::default();
    let mut document = emf(
        T0,
        "feature-x",
        &[("StorageError", 9.0), ("StorageUnknownOutcome", 1.0)],
    );
    document
        .as_object_mut()
        .unwrap()
        .remove("StorageUnknownOutcome");
    assert_eq!(
        observations.record(&document),
        Err(EmfError::Value("StorageUnknownOutcome".into()))
    );
    assert_eq!(
        observations.record(&json!({"StorageError": 1})),
        Err(EmfError::Envelope)
    );
    let mut no_dimension = emf(T0, "feature-x", &[("StorageError", 9.0)]);
    no_dimension.as_object_mut().unwrap().remove("service");
    assert_eq!(
        observations.record(&no_dimension),
        Err(EmfError::Dimension("service".into()))
    );

    assert_eq!(
        state("FeatureXStorageErrorsAlarm", &observations, T0 + MINUTE),
        AlarmState::Ok
    );
    assert!(observations.series.is_empty());
}

#[test]
fn forgotten_samples_no_longer_count() {
    let mut observations = Observations::default();
    invocations(
        &mut observations,
        3,
        T0 + SECOND,
        "feature-x",
        &[("StorageError", 1.0)],
    );
    observations.forget_before(T0 + MINUTE);
    assert_eq!(
        state("FeatureXStorageErrorsAlarm", &observations, T0 + MINUTE),
        AlarmState::Ok
    );
}

#[test]
fn an_alarm_on_a_function_the_caller_did_not_name_is_an_error() {
    let alarm = config_age_alarm(Statistic::Sum, 1.0, MissingData::NotBreaching);
    assert_eq!(
        evaluate(&alarm, &Observations::default(), &BTreeMap::new(), T0),
        Err(EvaluateError::UnknownFunction {
            alarm: "ConfigAgeAlarm".into(),
            function: "FeatureXFunction".into(),
        })
    );
}
