//! `/config`'s body written as text (`ConfigBody::to_json`) is exactly what serde_json writes
//! for the same body: same members, same order, same escaping, same timestamps, on arbitrary
//! bodies (names that need escaping, every optional member present or absent, moments chrono
//! alone formats).

use chrono::{DateTime, Utc};
use lockstep::FlagStatus;
use lockstep_http::config_endpoint::ConfigBody;
use proptest::prelude::*;
use std::collections::BTreeMap;

fn moment() -> impl Strategy<Value = DateTime<Utc>> {
    (
        prop_oneof![
            1_700_000_000i64..1_900_000_000,
            -70_000_000_000i64..300_000_000_000
        ],
        prop_oneof![
            Just(0u32),
            (0u32..1000).prop_map(|m| m * 1_000_000),
            0u32..1_000_000_000
        ],
    )
        .prop_map(|(secs, nanos)| DateTime::from_timestamp(secs, nanos).unwrap())
}

fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z][a-zA-Z0-9]{0,24}",
        "\\PC{1,12}",
        "[a-z\"\\\\\\x00-\\x1f]{1,8}"
    ]
}

fn flag() -> impl Strategy<Value = FlagStatus> {
    (
        any::<bool>(),
        any::<bool>(),
        proptest::option::of(moment()),
        proptest::option::of(moment()),
        any::<bool>(),
        proptest::option::of(moment()),
        proptest::option::of(moment()),
    )
        .prop_map(
            |(
                value,
                consistent,
                consistent_at,
                journey_opens_at,
                forced,
                rolled_back_at,
                changes_at,
            )| {
                FlagStatus {
                    value,
                    consistent,
                    consistent_at,
                    journey_opens_at,
                    forced,
                    rolled_back_at,
                    changes_at,
                }
            },
        )
}

fn body() -> impl Strategy<Value = ConfigBody> {
    (
        proptest::collection::btree_map(name(), any::<bool>(), 0..4),
        proptest::collection::btree_map(name(), flag(), 0..4),
        (
            any::<bool>(),
            proptest::option::of(moment()),
            proptest::option::of(moment()),
            proptest::option::of(moment()),
        ),
        proptest::option::of("[A-Za-z0-9_.-]{0,300}|\\PC{0,20}"),
        name(),
        proptest::option::of(moment()),
        (any::<u64>(), any::<u64>(), moment()),
        proptest::option::of(prop_oneof![
            Just("never_fetched"),
            Just("fetch_failed"),
            Just("odd \"reason\"\n")
        ]),
    )
        .prop_map(
            |(
                values,
                flags,
                (is_backend_consistent, consistent_at, journey_opens_at, rolled_back_at),
                journey_token,
                configuration_version,
                last_modified_timestamp,
                (poll_interval_seconds, catch_up_interval_seconds, server_time),
                degraded,
            )| ConfigBody {
                values: values.into_iter().collect::<BTreeMap<_, _>>(),
                is_backend_consistent,
                consistent_at,
                journey_opens_at,
                rolled_back_at,
                journey_token,
                flags,
                configuration_version,
                last_modified_timestamp,
                poll_interval_seconds,
                catch_up_interval_seconds,
                server_time,
                degraded,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn the_body_written_as_text_is_what_serde_json_writes(body in body()) {
        let text = body.to_json();
        prop_assert_eq!(&text, &serde_json::to_string(&body).unwrap());
        serde_json::from_str::<serde_json::Value>(&text).unwrap();
    }
}
