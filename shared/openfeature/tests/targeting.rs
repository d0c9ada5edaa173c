//! Flags defined by rules (design rule 10) through the real `open-feature` SDK: the provider
//! evaluates the caller's `EvaluationContext`, and answers the evaluation's value, reason and
//! variant, over an in-memory Freeform document in virtual time.

use chrono::{DateTime, TimeDelta, Utc};
use lockstep::cache::CacheOptions;
use lockstep::memory::{MemoryHandle, MemorySource};
use lockstep::{FlagCache, FlagCatalog, ManualClock, Overrides, Settings};
use lockstep_openfeature::{metadata, LockstepProvider, STALE};
use lockstep_targeting::{Context, Definition};
use open_feature::{
    Client, EvaluationContext, EvaluationErrorCode, EvaluationReason, FlagMetadataValue,
    OpenFeature,
};
use serde_json::{json, Value as Json};
use std::collections::BTreeSet;
use std::sync::Arc;

const NOW: &str = "2026-01-01T01:00:00Z";

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// The flags of these tests, a Freeform document stamped at 2026-01-01T00:00:00Z.
fn flags() -> Json {
    json!({
        "checkout_v2": {
            "default": false,
            "rules": {
                "staff": {
                    "when_match": true,
                    "conditions": [{"action": "ENDSWITH", "key": "email", "value": "@example.com"}]
                },
                "early adopters": {
                    "when_match": true,
                    "conditions": [{"action": "KEY_LESS_THAN_VALUE", "key": "signedUpAt", "value": "2025-01-01"}]
                }
            }
        },
        "banner_color": {
            "default": "blue",
            "boolean_type": false,
            "rules": {
                "paid plans: A/B/C": {
                    "conditions": [{"action": "IN", "key": "plan", "value": ["pro", "team"]}],
                    "split": [
                        {"variant": "control", "value": "blue", "weight": 3334},
                        {"variant": "green", "value": "green", "weight": 3333},
                        {"variant": "orange", "value": "orange", "weight": 3333}
                    ]
                }
            }
        },
        "page_size": {
            "default": 20,
            "boolean_type": false,
            "rules": {
                "power users": {
                    "when_match": 100,
                    "conditions": [{"action": "EQUALS", "key": "power", "value": true}]
                }
            }
        },
        "new_checkout": {
            "default": false,
            "rules": {
                "everyone, over a day": {
                    "split": [
                        {"variant": "on", "value": true, "weight": 0},
                        {"variant": "off", "value": false, "weight": 10000}
                    ],
                    "ramp": {"weight": 10000, "start": "2026-01-02T00:00:00Z", "end": "2026-01-03T00:00:00Z"}
                }
            }
        },
        "lockstepMetadata": {
            "lastModifiedTimestamp": "2026-01-01T00:00:00Z",
            "deploymentDurationSeconds": 0
        }
    })
}

struct Setup {
    api: OpenFeature,
    source: MemoryHandle,
    clock: ManualClock,
}

impl Setup {
    fn client(&self) -> Client {
        self.api.create_client()
    }
}

/// The SDK's API object with a provider over a cache that prefetched [`flags`] at [`NOW`].
async fn setup(overrides: Overrides) -> Setup {
    let clock = ManualClock::new(t(NOW));
    let (source, handle) = MemorySource::new();
    handle.publish("v1", flags().to_string());
    let options = CacheOptions {
        catalog: FlagCatalog::new(vec![]).unwrap(),
        overrides,
        settings: Settings::default(),
        clock: Arc::new(clock.clone()),
    };
    let cache = FlagCache::new(Box::new(source), options).await;
    let mut api = OpenFeature::default();
    api.set_provider(LockstepProvider::new(Arc::new(cache)))
        .await;
    Setup {
        api,
        source: handle,
        clock,
    }
}

fn user(key: &str) -> EvaluationContext {
    EvaluationContext::default().with_targeting_key(key)
}

#[tokio::test]
async fn a_rule_that_matches_the_context_serves_its_value_named_by_the_rule() {
    let setup = setup(Overrides::none()).await;
    let staff = user("u1").with_custom_field("email", "ada@example.com");

    let details = setup
        .client()
        .get_bool_details("checkout_v2", Some(&staff), None)
        .await
        .unwrap();

    assert!(details.value);
    assert_eq!(details.reason, Some(EvaluationReason::TargetingMatch));
    assert_eq!(details.variant.as_deref(), Some("staff"));
    let m = &details.flag_metadata.values;
    assert_eq!(
        m.get(metadata::CONSISTENT),
        Some(&FlagMetadataValue::Bool(true))
    );
    assert_eq!(
        m.get(metadata::CONSISTENT_AT),
        Some(&FlagMetadataValue::String(
            "2026-01-01T00:00:50.000Z".into()
        ))
    );
    assert_eq!(
        m.get(metadata::FORCED),
        Some(&FlagMetadataValue::Bool(false))
    );
}

#[tokio::test]
async fn a_date_time_in_the_context_is_compared_as_its_rfc_3339_text() {
    let setup = setup(Overrides::none()).await;
    let signed_up = |unix: i64| {
        user("u1").with_custom_field(
            "signedUpAt",
            time::OffsetDateTime::from_unix_timestamp(unix).unwrap(),
        )
    };

    // 2024-06-01T00:00:00Z and 2025-06-01T00:00:00Z.
    let early = setup
        .client()
        .get_bool_details("checkout_v2", Some(&signed_up(1_717_200_000)), None)
        .await
        .unwrap();
    let late = setup
        .client()
        .get_bool_details("checkout_v2", Some(&signed_up(1_748_736_000)), None)
        .await
        .unwrap();

    assert_eq!(
        (early.value, early.variant.as_deref()),
        (true, Some("early adopters"))
    );
    assert_eq!(
        (late.value, late.variant.as_deref()),
        (false, Some("default"))
    );
}

#[tokio::test]
async fn the_context_the_sdk_merges_is_the_one_evaluated() {
    let mut setup = setup(Overrides::none()).await;
    // The API's global context holds the attribute, the invocation only the targeting key.
    setup
        .api
        .set_evaluation_context(EvaluationContext::default().with_custom_field("power", true))
        .await;

    let details = setup
        .client()
        .get_int_details("page_size", Some(&user("u1")), None)
        .await
        .unwrap();

    assert_eq!(details.value, 100);
    assert_eq!(details.reason, Some(EvaluationReason::TargetingMatch));
    assert_eq!(details.variant.as_deref(), Some("power users"));
}

#[tokio::test]
async fn a_split_serves_each_user_the_bucket_the_evaluator_computes() {
    let setup = setup(Overrides::none()).await;
    let definition = Definition::parse("banner_color", &flags()["banner_color"]).unwrap();
    let mut variants = BTreeSet::new();

    for n in 0..60 {
        let key = format!("user-{n}");
        let details = setup
            .client()
            .get_string_details(
                "banner_color",
                Some(&user(&key).with_custom_field("plan", "pro")),
                None,
            )
            .await
            .unwrap();
        let context: Context = json!({"targetingKey": key, "plan": "pro"})
            .as_object()
            .unwrap()
            .clone();
        let expected = lockstep_targeting::evaluate(&definition, &context, t(NOW));

        assert_eq!(
            Some(&Json::String(details.value)),
            Some(expected.value),
            "{key}"
        );
        assert_eq!(details.variant.as_deref(), Some(expected.variant), "{key}");
        assert_eq!(details.reason, Some(EvaluationReason::Split), "{key}");
        variants.insert(expected.variant.to_owned());
    }

    assert_eq!(
        variants.len(),
        3,
        "60 users land in every bucket of a three-way split: {variants:?}"
    );
}

#[tokio::test]
async fn without_a_matching_rule_the_default_is_served_with_reason_default() {
    let setup = setup(Overrides::none()).await;
    let client = setup.client();
    let outsider = user("u1").with_custom_field("email", "eve@elsewhere.org");

    let boolean = client
        .get_bool_details("checkout_v2", Some(&outsider), None)
        .await
        .unwrap();
    // A split needs a targeting key: an anonymous caller on a paid plan is passed over.
    let anonymous = EvaluationContext::default().with_custom_field("plan", "pro");
    let string = client
        .get_string_details("banner_color", Some(&anonymous), None)
        .await
        .unwrap();

    assert!(!boolean.value);
    assert_eq!(boolean.reason, Some(EvaluationReason::Default));
    assert_eq!(boolean.variant.as_deref(), Some("default"));
    assert_eq!(string.value, "blue");
    assert_eq!(string.reason, Some(EvaluationReason::Default));
    assert_eq!(string.variant.as_deref(), Some("default"));
}

#[tokio::test]
async fn a_forced_flag_with_rules_is_static_with_the_forced_value_for_everyone() {
    let setup = setup(Overrides::none().force("checkout_v2", false)).await;
    let staff = user("u1").with_custom_field("email", "ada@example.com");

    let details = setup
        .client()
        .get_bool_details("checkout_v2", Some(&staff), None)
        .await
        .unwrap();

    assert!(!details.value, "FORCE_ wins over a matching rule");
    assert_eq!(details.reason, Some(EvaluationReason::Static));
    assert_eq!(details.variant.as_deref(), Some("off"));
    assert_eq!(
        details.flag_metadata.values.get(metadata::FORCED),
        Some(&FlagMetadataValue::Bool(true))
    );
}

#[tokio::test]
async fn reading_a_value_of_another_type_is_a_type_mismatch() {
    let setup = setup(Overrides::none()).await;
    let client = setup.client();
    let ctx = user("u1");

    let string_as_bool = client
        .get_bool_details("banner_color", Some(&ctx), None)
        .await;
    let int_as_string = client
        .get_string_details("page_size", Some(&ctx), None)
        .await;
    let bool_as_int = client
        .get_int_details("checkout_v2", Some(&ctx), None)
        .await;

    for (what, code) in [
        (
            "a string read as a boolean",
            string_as_bool.map(|_| ()).unwrap_err().code,
        ),
        (
            "an integer read as a string",
            int_as_string.map(|_| ()).unwrap_err().code,
        ),
        (
            "a boolean read as an integer",
            bool_as_int.map(|_| ()).unwrap_err().code,
        ),
    ] {
        assert_eq!(code, EvaluationErrorCode::TypeMismatch, "{what}");
    }
}

#[tokio::test]
async fn a_degraded_instance_still_evaluates_the_rules_but_answers_stale() {
    let setup = setup(Overrides::none()).await;
    setup.source.set_failing(true);
    setup.clock.advance(TimeDelta::seconds(46));
    let staff = user("u1").with_custom_field("email", "ada@example.com");

    let details = setup
        .client()
        .get_bool_details("checkout_v2", Some(&staff), None)
        .await
        .unwrap();

    assert!(details.value, "last-known-good rules, evaluated");
    assert_eq!(details.reason, Some(EvaluationReason::Other(STALE.into())));
    assert_eq!(details.variant.as_deref(), Some("staff"));
    assert_eq!(
        details.flag_metadata.values.get(metadata::CONSISTENT),
        Some(&FlagMetadataValue::Bool(false))
    );
}

/// `tests/fixtures/evaluation-targeting.json` is the specification's flags with targeting
/// (`test-flags.json`, a CEL `contextEvaluator` each) written as Lockstep rules: every one is
/// there, its `default` is its default variant's value, and each rule is named after the variant
/// it serves, with that variant's value.
#[test]
fn the_targeting_fixture_is_the_specifications_targeted_flags_written_as_rules() {
    let spec: serde_json::Map<String, Json> =
        serde_json::from_str(include_str!("features/test-flags.json")).unwrap();
    let mut fixture: serde_json::Map<String, Json> =
        serde_json::from_str(include_str!("fixtures/evaluation-targeting.json")).unwrap();
    fixture.remove("lockstepMetadata");
    let targeted: Vec<&String> = spec
        .iter()
        .filter(|(_, flag)| flag.get("contextEvaluator").is_some())
        .map(|(key, _)| key)
        .collect();

    for key in &targeted {
        let flag = &spec[*key];
        let written = fixture
            .get(*key)
            .unwrap_or_else(|| panic!("{key} is missing"));
        let variant = flag["defaultVariant"].as_str().unwrap();
        assert_eq!(
            written["default"], flag["variants"][variant],
            "{key}: default"
        );
        let rules = written["rules"].as_object().unwrap();
        assert!(!rules.is_empty(), "{key}: its targeting is a rule");
        for (name, rule) in rules {
            assert_eq!(
                Some(&rule["when_match"]),
                flag["variants"].get(name),
                "{key}: rule {name} serves the variant it is named after"
            );
        }
        Definition::parse(key, written).unwrap();
    }

    assert_eq!(
        targeted.len(),
        6,
        "the specification's flags with targeting"
    );
    assert_eq!(
        fixture.len(),
        targeted.len(),
        "no flag the specification lacks"
    );
}

#[tokio::test]
async fn a_ramp_says_in_the_metadata_when_the_callers_value_changes() {
    let setup = setup(Overrides::none()).await;
    let caller = user("u7");
    let details = setup
        .client()
        .get_bool_details("new_checkout", Some(&caller), None)
        .await
        .unwrap();
    assert!(!details.value);
    let Some(FlagMetadataValue::String(changes)) = details
        .flag_metadata
        .values
        .get(metadata::CHANGES_AT)
        .cloned()
    else {
        panic!("changesAt: {:?}", details.flag_metadata.values);
    };
    // The evaluator's own instant for this caller's bucket.
    let definition =
        lockstep_targeting::Definition::parse("new_checkout", &flags()["new_checkout"]).unwrap();
    let lockstep_targeting::Outcome::Split(split) = &definition.rules[0].outcome else {
        unreachable!()
    };
    let instant =
        DateTime::from_timestamp_millis(split.inclusion_at("new_checkout", "u7").unwrap()).unwrap();
    assert_eq!(
        changes,
        instant.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    );
    // Once in, nothing more changes.
    setup.clock.set(instant + chrono::TimeDelta::seconds(10));
    let later = setup
        .client()
        .get_bool_details("new_checkout", Some(&caller), None)
        .await
        .unwrap();
    assert!(later.value);
    assert_eq!(later.flag_metadata.values.get(metadata::CHANGES_AT), None);
}
