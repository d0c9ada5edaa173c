//! Property tests of the content parsers and the stamping: whatever the bytes, `document::parse`,
//! `stamp::stamp` and the duration parser answer (Ok or a typed error) and never panic; what
//! stamping accepts, the library accepts, with every value kept; stamping its own output again
//! moves no per-flag stamp. Bounded in CI (proptest's default 256 cases per property);
//! `PROPTEST_CASES=<n>` runs them longer (docs/robustness.md records a long run).

use chrono::{DateTime, Utc};
use lockstep::document;
use lockstep::journey::JourneyKey;
use lockstep::settings::parse_duration_text;
use lockstep::stamp::{retrieval_form, stamp_with, StampOptions};
use proptest::prelude::*;
use serde_json::{json, Map, Value};
use std::time::Duration;

fn at() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-21T10:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

fn options() -> StampOptions {
    StampOptions {
        new_key: Some(JourneyKey::from_bytes([3; 32])),
        ..StampOptions::default()
    }
}

/// Flag-like names: mostly valid, sometimes not.
fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-z][a-zA-Z0-9_-]{0,12}",
        1 => "\\PC{0,10}",
        1 => Just("lockstepMetadata".to_owned()),
    ]
}

/// A JSON value of any shape, a few levels deep.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|n| json!(n)),
        "\\PC{0,30}".prop_map(Value::String),
        Just(json!("2026-11-21T09:00:00Z")),
        Just(json!("x=2026-11-21T09:00:00.000Z/60/300")),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map(name(), inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// Documents near the real formats: Freeform booleans, feature flags, metadata with stamps,
/// drains and keys, with values of the wrong type now and then.
fn near_document() -> impl Strategy<Value = Value> {
    let metadata = (
        proptest::option::of(prop_oneof![
            Just(json!("2026-11-21T09:00:00Z")),
            Just(json!("2030-01-01T00:00:00Z")),
            any_json()
        ]),
        proptest::option::of(prop_oneof![
            (0u64..90_000).prop_map(|n| json!(n)),
            any_json()
        ]),
        proptest::option::of(any_json()),
        proptest::option::of(any_json()),
        any::<bool>(),
    )
        .prop_map(|(t, d, flags, keys, enabled)| {
            let mut m = Map::new();
            if let Some(t) = t {
                m.insert("lastModifiedTimestamp".into(), t);
            }
            if let Some(d) = d {
                m.insert("deploymentDurationSeconds".into(), d);
            }
            if let Some(f) = flags {
                m.insert("flags".into(), f.clone());
                m.insert("flagStamps".into(), f);
            }
            if let Some(k) = keys {
                m.insert("journeyKeys".into(), k);
            }
            if enabled {
                m.insert("enabled".into(), json!(true));
            }
            Value::Object(m)
        });
    let flag_value = prop_oneof![
        4 => any::<bool>().prop_map(Value::Bool),
        2 => any::<bool>().prop_map(|b| json!({"enabled": b})),
        1 => any_json(),
    ];
    (
        proptest::collection::btree_map(name(), flag_value, 0..6),
        proptest::option::of(metadata),
    )
        .prop_map(|(flags, metadata)| {
            let mut m: Map<String, Value> = flags.into_iter().collect();
            if let Some(meta) = metadata {
                m.insert("lockstepMetadata".into(), meta);
            }
            Value::Object(m)
        })
}

proptest! {
    #[test]
    fn parsing_answers_every_input_and_accepts_only_valid_names(
        bytes in proptest::collection::vec(any::<u8>(), 0..200),
        doc in near_document(),
    ) {
        let _ = document::parse(&bytes);
        if let Ok(parsed) = document::parse(doc.to_string().as_bytes()) {
            for name in parsed.flags.keys() {
                prop_assert!(lockstep::catalog::is_valid_flag_name(name), "{name:?}");
            }
            prop_assert!(parsed.journey_keys.len() <= document::MAX_JOURNEY_KEYS);
        }
    }

    #[test]
    fn stamping_answers_every_input_and_what_it_writes_the_library_reads(
        content in near_document(),
        previous in proptest::option::of(near_document()),
        raw in proptest::collection::vec(any::<u8>(), 0..120),
        drain in proptest::option::of(0u64..100_000),
    ) {
        let _ = stamp_with(&raw, None, at(), Duration::ZERO, &options());
        let previous = previous.map(|p| p.to_string().into_bytes());
        let opts = StampOptions { drain: drain.map(Duration::from_secs), ..options() };
        let stamped = stamp_with(
            content.to_string().as_bytes(),
            previous.as_deref(),
            at(),
            Duration::from_secs(60),
            &opts,
        );
        if let Ok(stamped) = stamped {
            let doc = document::parse(&stamped.content).expect("stamped Freeform content parses");
            for (name, value) in content.as_object().unwrap() {
                if name != "lockstepMetadata" {
                    prop_assert_eq!(Some(value.as_bool().unwrap()), doc.flags.get(name).map(|f| f.enabled));
                }
            }
            // Stamping its own output again, with itself as the previous content, moves no stamp.
            let again = stamp_with(
                &stamped.content,
                Some(&stamped.content),
                at() + chrono::TimeDelta::seconds(1),
                Duration::ZERO,
                &options(),
            )
            .expect("stamped content stamps again");
            let redone = document::parse(&again.content).unwrap();
            for (name, flag) in &doc.flags {
                prop_assert_eq!(redone.flags[name].stamp, flag.stamp, "{}", name);
                prop_assert_eq!(redone.flags[name].drain, flag.drain, "{}", name);
            }
            prop_assert_eq!(redone.journey_keys, doc.journey_keys);
        }
    }

    #[test]
    fn stored_feature_flag_content_stamps_into_a_retrieval_form_the_library_reads(
        values in proptest::collection::btree_map("[a-z][a-zA-Z0-9]{0,8}", any::<bool>(), 0..6),
    ) {
        let flags: Map<String, Value> = values.keys().map(|k| (k.clone(), json!({"name": k}))).collect();
        let vals: Map<String, Value> = values.iter().map(|(k, v)| (k.clone(), json!({"enabled": v}))).collect();
        let stored = json!({"version": "1", "flags": flags, "values": vals});
        let stamped = stamp_with(stored.to_string().as_bytes(), None, at(), Duration::ZERO, &options())
            .expect("valid stored content stamps");
        let doc = document::parse(&retrieval_form(&stamped.content).unwrap()).unwrap();
        for (name, value) in &values {
            prop_assert_eq!(doc.flags[name].enabled, *value);
        }
        prop_assert_eq!(doc.journey_keys.len(), 1);
    }

    #[test]
    fn durations_parse_or_say_why_and_round_trip(text in "\\PC{0,12}", n in 0u64..86_400) {
        let _ = parse_duration_text(&text);
        prop_assert_eq!(parse_duration_text(&format!("{n}s")), Ok(Duration::from_secs(n)));
        prop_assert_eq!(parse_duration_text(&n.to_string()), Ok(Duration::from_secs(n)));
    }
}
