//! The provider through the real `open-feature` SDK (its API object and clients, and the
//! `FeatureProvider` trait), over an in-memory source in virtual time.

use chrono::{DateTime, TimeDelta, Utc};
use lockstep::cache::CacheOptions;
use lockstep::memory::{MemoryHandle, MemorySource};
use lockstep::{FlagCache, FlagCatalog, FlagDecl, ManualClock, Overrides, Settings};
use lockstep_openfeature::{metadata, to_json, LockstepProvider, DISABLED, PROVIDER_NAME, STALE};
use open_feature::provider::{FeatureProvider, ProviderStatus};
use open_feature::{
    Client, EvaluationContext, EvaluationErrorCode, EvaluationReason, FlagMetadata,
    FlagMetadataValue, OpenFeature, StructValue, Value,
};
use serde_json::Value as Json;
use std::sync::Arc;

/// The specification suite's flags as an AppConfig feature-flag document, stamped at T0.
const FIXTURE: &str = include_str!("fixtures/evaluation-flags.json");
/// The specification's own flag set (vendored).
const SPEC_FLAGS: &str = include_str!("features/test-flags.json");
const T0: &str = "2026-01-01T00:00:00Z";

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

struct Setup {
    provider: LockstepProvider,
    source: MemoryHandle,
    clock: ManualClock,
}

fn options(declared: Vec<FlagDecl>, overrides: Overrides, clock: &ManualClock) -> CacheOptions {
    CacheOptions {
        catalog: FlagCatalog::new(declared).unwrap(),
        overrides,
        settings: Settings::default(),
        clock: Arc::new(clock.clone()),
    }
}

/// A provider over a cache that prefetched `content` (or nothing) at `now`; P = 45 s, ε = 5 s.
async fn setup(
    content: Option<&str>,
    declared: Vec<FlagDecl>,
    overrides: Overrides,
    now: &str,
) -> Setup {
    let clock = ManualClock::new(t(now));
    let (source, handle) = MemorySource::new();
    if let Some(content) = content {
        handle.publish("v1", content);
    }
    let cache = FlagCache::new(Box::new(source), options(declared, overrides, &clock)).await;
    Setup {
        provider: LockstepProvider::new(Arc::new(cache)),
        source: handle,
        clock,
    }
}

async fn fixture() -> Setup {
    setup(
        Some(FIXTURE),
        vec![],
        Overrides::none(),
        "2026-01-01T01:00:00Z",
    )
    .await
}

/// A client of a fresh API object (the singleton's type) with `provider` set.
async fn client(provider: &LockstepProvider) -> Client {
    let mut api = OpenFeature::default();
    api.set_provider(provider.clone()).await;
    api.create_client()
}

/// The code of an evaluation that must fail.
fn code<T: std::fmt::Debug>(
    result: Result<T, open_feature::EvaluationError>,
) -> EvaluationErrorCode {
    result.expect_err("an error").code
}

fn meta<'a>(m: &'a FlagMetadata, key: &str) -> Option<&'a FlagMetadataValue> {
    m.values.get(key)
}

fn text(s: &str) -> Option<FlagMetadataValue> {
    Some(FlagMetadataValue::String(s.into()))
}

#[tokio::test]
async fn through_the_singleton_api_values_resolve_with_their_consistency() {
    let setup = fixture().await;
    OpenFeature::singleton_mut()
        .await
        .set_provider(setup.provider.clone())
        .await;
    let client = OpenFeature::singleton().await.create_client();

    let details = client
        .get_bool_details("boolean-flag", None, None)
        .await
        .unwrap();

    assert!(details.value);
    assert_eq!(details.reason, Some(EvaluationReason::Cached));
    assert_eq!(details.variant.as_deref(), Some("on"));
    assert_eq!(details.flag_key, "boolean-flag");
    let m = &details.flag_metadata;
    assert_eq!(
        meta(m, metadata::CONSISTENT),
        Some(&FlagMetadataValue::Bool(true))
    );
    assert_eq!(
        meta(m, metadata::FORCED),
        Some(&FlagMetadataValue::Bool(false))
    );
    // T + Δ + P + ε = T0 + 0 + 45 s + 5 s; T + Δ + Q + ε = T0 + 15 s + 5 s.
    assert_eq!(
        meta(m, metadata::CONSISTENT_AT).cloned(),
        text("2026-01-01T00:00:50.000Z")
    );
    assert_eq!(
        meta(m, metadata::JOURNEY_OPENS_AT).cloned(),
        text("2026-01-01T00:00:20.000Z")
    );
    assert_eq!(
        meta(m, metadata::LAST_MODIFIED_TIMESTAMP).cloned(),
        text("2026-01-01T00:00:00.000Z")
    );
    assert_eq!(
        meta(m, metadata::CONFIGURATION_VERSION).cloned(),
        text("v1")
    );
    assert_eq!(meta(m, metadata::DEGRADED), None);

    assert_eq!(
        client
            .get_string_value("string-flag", None, None)
            .await
            .unwrap(),
        "hi"
    );
    assert_eq!(
        client
            .get_int_value("integer-flag", None, None)
            .await
            .unwrap(),
        10
    );
    assert_eq!(
        client
            .get_float_value("float-flag", None, None)
            .await
            .unwrap(),
        0.5
    );
    let object: StructValue = client
        .get_struct_value("object-flag", None, None)
        .await
        .unwrap();
    assert_eq!(
        to_json(&Value::Struct(object)),
        serde_json::json!({"showImages": true, "title": "Check out these pics!", "imagesPerPage": 100})
    );
    let missing = client
        .get_bool_value("non-existent-flag", None, None)
        .await
        .unwrap_err();
    assert_eq!(missing.code, EvaluationErrorCode::FlagNotFound);
    assert_eq!(
        OpenFeature::singleton()
            .await
            .provider_metadata()
            .await
            .name,
        PROVIDER_NAME
    );
}

#[tokio::test]
async fn zero_values_are_values_not_absences() {
    let setup = fixture().await;
    let client = client(&setup.provider).await;

    let boolean = client
        .get_bool_details("boolean-zero-flag", None, None)
        .await
        .unwrap();
    let string = client
        .get_string_details("string-zero-flag", None, None)
        .await
        .unwrap();
    let int = client
        .get_int_details("integer-zero-flag", None, None)
        .await
        .unwrap();
    let float = client
        .get_float_details("float-zero-flag", None, None)
        .await
        .unwrap();
    let object = client
        .get_struct_details::<StructValue>("object-zero-flag", None, None)
        .await
        .unwrap();

    assert!(!boolean.value);
    assert_eq!(string.value, "");
    assert_eq!(int.value, 0);
    assert_eq!(float.value, 0.0);
    assert!(object.value.fields.is_empty());
    for (reason, variant) in [
        (&boolean.reason, &boolean.variant),
        (&string.reason, &string.variant),
        (&int.reason, &int.variant),
        (&float.reason, &float.variant),
        (&object.reason, &object.variant),
    ] {
        assert_eq!(reason, &Some(EvaluationReason::Cached));
        assert_eq!(variant.as_deref(), Some("zero"));
    }
}

#[tokio::test]
async fn a_wrong_type_is_a_type_mismatch_and_an_unknown_flag_is_not_found() {
    let setup = fixture().await;
    let p = &setup.provider;
    let ctx = EvaluationContext::default();
    let mismatch = EvaluationErrorCode::TypeMismatch;

    // A typed flag read as a boolean, a boolean flag read as anything else.
    for key in ["string-flag", "integer-flag", "object-flag"] {
        assert_eq!(code(p.resolve_bool_value(key, &ctx).await), mismatch);
    }
    for key in ["boolean-flag", "metadata-flag"] {
        assert_eq!(code(p.resolve_string_value(key, &ctx).await), mismatch);
        assert_eq!(code(p.resolve_int_value(key, &ctx).await), mismatch);
        assert_eq!(code(p.resolve_float_value(key, &ctx).await), mismatch);
        assert_eq!(code(p.resolve_struct_value(key, &ctx).await), mismatch);
    }
    // Across typed kinds: a float is not an integer, a string is not a number or an object.
    assert_eq!(
        code(p.resolve_int_value("float-flag", &ctx).await),
        mismatch
    );
    assert_eq!(
        code(p.resolve_float_value("string-flag", &ctx).await),
        mismatch
    );
    assert_eq!(
        code(p.resolve_struct_value("string-flag", &ctx).await),
        mismatch
    );
    assert_eq!(
        code(p.resolve_string_value("integer-flag", &ctx).await),
        mismatch
    );
    // An integer reads as a float.
    assert_eq!(
        p.resolve_float_value("integer-flag", &ctx)
            .await
            .unwrap()
            .value,
        10.0
    );
    for missing in ["non-existent-flag", "", "lockstepMetadata", "Boolean-Flag"] {
        assert_eq!(
            code(p.resolve_bool_value(missing, &ctx).await),
            EvaluationErrorCode::FlagNotFound,
            "{missing:?}"
        );
    }
}

#[tokio::test]
async fn a_typed_read_of_a_disabled_flag_is_an_error_so_the_callers_default_applies() {
    let setup = fixture().await;
    let client = client(&setup.provider).await;

    let error = client
        .get_string_value("string-disabled-flag", None, None)
        .await
        .unwrap_err();
    let as_boolean = client
        .get_bool_details("string-disabled-flag", None, None)
        .await
        .unwrap();

    assert_eq!(error.code, EvaluationErrorCode::General(DISABLED.into()));
    assert!(error.message.unwrap().contains("disabled"));
    assert_eq!(
        client
            .get_string_value("string-disabled-flag", None, None)
            .await
            .unwrap_or_else(|_| "bye".into()),
        "bye"
    );
    assert!(!as_boolean.value, "a disabled flag is off");
    assert_eq!(as_boolean.reason, Some(EvaluationReason::Cached));
}

#[tokio::test]
async fn an_object_is_json_text_or_a_json_object_and_a_null_in_it_is_a_parse_error() {
    let doc = r#"{
      "as-text": {"enabled": true, "value": "{\"limits\": [1, 2.5], \"name\": \"x\"}"},
      "as-object": {"enabled": true, "value": {"limits": [1, 2.5], "name": "x"}},
      "with-null": {"enabled": true, "value": {"a": null}},
      "array-text": {"enabled": true, "value": "[1, 2]"},
      "lockstepMetadata": {"enabled": true, "lastModifiedTimestamp": "2026-01-01T00:00:00Z"}
    }"#;
    let setup = setup(Some(doc), vec![], Overrides::none(), "2026-01-01T01:00:00Z").await;
    let p = &setup.provider;
    let ctx = EvaluationContext::default();

    let text = p.resolve_struct_value("as-text", &ctx).await.unwrap();
    let object = p.resolve_struct_value("as-object", &ctx).await.unwrap();

    let expected = serde_json::json!({"limits": [1, 2.5], "name": "x"});
    assert_eq!(to_json(&Value::Struct(text.value)), expected);
    assert_eq!(to_json(&Value::Struct(object.value)), expected);
    assert_eq!(
        p.resolve_struct_value("with-null", &ctx)
            .await
            .unwrap_err()
            .code,
        EvaluationErrorCode::ParseError
    );
    assert_eq!(
        p.resolve_struct_value("array-text", &ctx)
            .await
            .unwrap_err()
            .code,
        EvaluationErrorCode::TypeMismatch
    );
    assert_eq!(
        p.resolve_string_value("as-text", &ctx).await.unwrap().value,
        r#"{"limits": [1, 2.5], "name": "x"}"#,
        "an object's JSON text is also a string"
    );
}

#[tokio::test]
async fn freeform_flags_are_booleans_only() {
    let doc = r#"{"isCheckoutV2Enabled": true, "lockstepMetadata": {"lastModifiedTimestamp": "2026-01-01T00:00:00Z"}}"#;
    let setup = setup(Some(doc), vec![], Overrides::none(), "2026-01-01T01:00:00Z").await;
    let ctx = EvaluationContext::default();

    let on = setup
        .provider
        .resolve_bool_value("isCheckoutV2Enabled", &ctx)
        .await
        .unwrap();
    let as_string = setup
        .provider
        .resolve_string_value("isCheckoutV2Enabled", &ctx)
        .await;

    assert!(on.value);
    assert_eq!(on.reason, Some(EvaluationReason::Cached));
    assert_eq!(
        on.variant.as_deref(),
        Some("on"),
        "no named variant: on or off"
    );
    assert_eq!(
        as_string.unwrap_err().code,
        EvaluationErrorCode::TypeMismatch
    );
}

#[tokio::test]
async fn not_ready_until_the_sdk_initializes_it_then_ready() {
    let clock = ManualClock::new(t("2026-01-01T01:00:00Z"));
    let (source, handle) = MemorySource::new();
    handle.publish("v1", FIXTURE);
    let provider = LockstepProvider::initializing(FlagCache::new(
        Box::new(source),
        options(vec![], Overrides::none(), &clock),
    ));
    let ctx = EvaluationContext::default();

    assert_eq!(provider.status(), ProviderStatus::NotReady);
    assert!(provider.cache().is_none());
    assert_eq!(handle.calls(), 0, "nothing fetched before initialize");
    assert_eq!(
        provider
            .resolve_bool_value("boolean-flag", &ctx)
            .await
            .unwrap_err()
            .code,
        EvaluationErrorCode::ProviderNotReady
    );

    // set_provider runs initialize (the prefetch) before the provider is registered.
    let client = client(&provider).await;

    assert_eq!(
        provider.status(),
        ProviderStatus::Ready,
        "a clone shares it"
    );
    assert_eq!(handle.calls(), 1);
    assert!(client
        .get_bool_value("boolean-flag", None, None)
        .await
        .unwrap());
}

#[tokio::test]
async fn a_failed_refresh_is_stale_and_a_successful_one_ready_again() {
    let setup = fixture().await;
    let client = client(&setup.provider).await;
    assert_eq!(setup.provider.status(), ProviderStatus::Ready);

    setup.source.set_failing(true);
    setup.clock.advance(TimeDelta::seconds(46));
    // The evaluation refreshes first (P has passed), the refresh fails: last-known-good.
    let stale = client
        .get_bool_details("boolean-flag", None, None)
        .await
        .unwrap();

    assert!(stale.value);
    assert_eq!(stale.reason, Some(EvaluationReason::Other(STALE.into())));
    assert_eq!(setup.provider.status(), ProviderStatus::STALE);
    assert_eq!(
        meta(&stale.flag_metadata, metadata::DEGRADED).cloned(),
        text("fetch_failed")
    );
    assert_eq!(
        meta(&stale.flag_metadata, metadata::CONSISTENT),
        Some(&FlagMetadataValue::Bool(false)),
        "a degraded instance vouches for nothing"
    );
    let typed = client
        .get_int_details("integer-flag", None, None)
        .await
        .unwrap();
    assert_eq!(typed.value, 10);
    assert_eq!(typed.reason, Some(EvaluationReason::Other(STALE.into())));

    setup.source.set_failing(false);
    setup.clock.advance(TimeDelta::seconds(2)); // past the first backoff step (1 s)
    let recovered = client
        .get_bool_details("boolean-flag", None, None)
        .await
        .unwrap();

    assert_eq!(recovered.reason, Some(EvaluationReason::Cached));
    assert_eq!(setup.provider.status(), ProviderStatus::Ready);
    assert_eq!(meta(&recovered.flag_metadata, metadata::DEGRADED), None);
}

#[tokio::test]
async fn a_cold_start_without_configuration_is_error_with_the_declared_defaults() {
    let declared = vec![
        FlagDecl::internal("killSwitch").default_value(true),
        FlagDecl::public("isCheckoutV2Enabled"),
    ];
    let setup = setup(None, declared, Overrides::none(), "2026-01-01T01:00:00Z").await;
    let client = client(&setup.provider).await;

    let kill = client
        .get_bool_details("killSwitch", None, None)
        .await
        .unwrap();
    let checkout = client
        .get_bool_details("isCheckoutV2Enabled", None, None)
        .await
        .unwrap();

    assert_eq!(setup.provider.status(), ProviderStatus::Error);
    assert!(kill.value, "declared default true");
    assert!(!checkout.value, "disabled unless declared otherwise");
    assert_eq!(kill.reason, Some(EvaluationReason::Default));
    assert_eq!(kill.variant.as_deref(), Some("on"));
    assert_eq!(checkout.variant.as_deref(), Some("off"));
    assert_eq!(
        meta(&kill.flag_metadata, metadata::CONFIGURATION_VERSION).cloned(),
        text("defaults")
    );
    assert_eq!(
        meta(&kill.flag_metadata, metadata::DEGRADED).cloned(),
        text("never_fetched")
    );
    assert_eq!(meta(&kill.flag_metadata, metadata::CONSISTENT_AT), None);
    assert_eq!(
        client
            .get_bool_value("boolean-flag", None, None)
            .await
            .unwrap_err()
            .code,
        EvaluationErrorCode::FlagNotFound
    );
    assert_eq!(
        client
            .get_string_value("killSwitch", None, None)
            .await
            .unwrap_err()
            .code,
        EvaluationErrorCode::TypeMismatch
    );
}

#[tokio::test]
async fn a_forced_flag_is_static_and_waits_for_no_stamp() {
    let overrides = Overrides::none()
        .force("boolean-flag", false)
        .force("string-flag", true)
        .force("integer-flag", false);
    let setup = setup(Some(FIXTURE), vec![], overrides, "2026-01-01T01:00:00Z").await;
    let client = client(&setup.provider).await;

    let forced = client
        .get_bool_details("boolean-flag", None, None)
        .await
        .unwrap();
    let forced_on_typed = client
        .get_string_details("string-flag", None, None)
        .await
        .unwrap();
    let forced_off_typed = client
        .get_int_value("integer-flag", None, None)
        .await
        .unwrap_err();

    assert!(!forced.value, "FORCE_ wins over the configuration");
    assert_eq!(forced.reason, Some(EvaluationReason::Static));
    assert_eq!(
        forced.variant.as_deref(),
        Some("off"),
        "not the configuration's variant"
    );
    let m = &forced.flag_metadata;
    assert_eq!(
        meta(m, metadata::FORCED),
        Some(&FlagMetadataValue::Bool(true))
    );
    assert_eq!(
        meta(m, metadata::CONSISTENT),
        Some(&FlagMetadataValue::Bool(true))
    );
    assert_eq!(meta(m, metadata::CONSISTENT_AT), None);
    assert_eq!(meta(m, metadata::JOURNEY_OPENS_AT), None);
    assert_eq!(meta(m, metadata::LAST_MODIFIED_TIMESTAMP), None);
    assert_eq!(
        forced_on_typed.value, "hi",
        "the value attribute still comes from the cache"
    );
    assert_eq!(forced_on_typed.reason, Some(EvaluationReason::Cached));
    assert_eq!(
        forced_off_typed.code,
        EvaluationErrorCode::General(DISABLED.into())
    );

    // FORCE_ wins over a boolean `value` attribute too.
    let doc = r#"{"checkout": {"enabled": true, "value": true}}"#;
    let overrides = Overrides::none().force("checkout", false);
    let other = self::setup(Some(doc), vec![], overrides, "2026-01-01T01:00:00Z").await;
    let checkout = other
        .provider
        .resolve_bool_value("checkout", &EvaluationContext::default())
        .await
        .unwrap();
    assert!(!checkout.value);
    assert_eq!(checkout.reason, Some(EvaluationReason::Static));
}

#[tokio::test]
async fn evaluations_refresh_when_due_and_follow_consistency_as_time_passes() {
    let doc = |on: bool, at: &str| {
        format!(
            r#"{{"checkout": {{"enabled": {on}}}, "lockstepMetadata": {{"enabled": true, "lastModifiedTimestamp": "{at}", "deploymentDurationSeconds": 0}}}}"#
        )
    };
    let first = doc(true, T0);
    let setup = setup(
        Some(&first),
        vec![],
        Overrides::none(),
        "2026-01-01T00:00:10Z",
    )
    .await;
    let client = client(&setup.provider).await;
    let read = || client.get_bool_details("checkout", None, None);

    let early = read().await.unwrap();
    assert!(early.value);
    assert_eq!(
        meta(&early.flag_metadata, metadata::CONSISTENT),
        Some(&FlagMetadataValue::Bool(false)),
        "before T + P + ε"
    );

    setup
        .source
        .publish("v2", doc(false, "2026-01-01T00:00:30Z"));
    setup.clock.set(t("2026-01-01T00:00:54Z"));
    let not_due = read().await.unwrap();
    setup.clock.set(t("2026-01-01T00:00:56Z"));
    let due = read().await.unwrap();
    setup.clock.set(t("2026-01-01T00:01:20Z"));
    let settled = read().await.unwrap();

    assert!(not_due.value, "fetched at 00:10, due at 00:55");
    assert_eq!(
        meta(&not_due.flag_metadata, metadata::CONSISTENT),
        Some(&FlagMetadataValue::Bool(true)),
        "00:54 ≥ T + P + ε = 00:50"
    );
    assert!(!due.value, "refreshed before answering");
    assert_eq!(
        meta(&due.flag_metadata, metadata::CONFIGURATION_VERSION).cloned(),
        text("v2")
    );
    assert_eq!(
        meta(&due.flag_metadata, metadata::CONSISTENT_AT).cloned(),
        text("2026-01-01T00:01:20.000Z")
    );
    assert_eq!(
        meta(&due.flag_metadata, metadata::CONSISTENT),
        Some(&FlagMetadataValue::Bool(false))
    );
    assert_eq!(
        meta(&settled.flag_metadata, metadata::CONSISTENT),
        Some(&FlagMetadataValue::Bool(true))
    );
    assert_eq!(setup.source.calls(), 2);
}

#[tokio::test]
async fn attributes_are_flag_metadata_and_locksteps_keys_win() {
    let doc = r#"{
      "checkout": {"enabled": true, "owner": "team-x", "limit": 3, "ratio": 0.5, "beta": true,
                   "tags": ["a", "b"], "consistent": "spoofed", "value": true, "_variant": "v2"},
      "lockstepMetadata": {"enabled": true, "lastModifiedTimestamp": "2026-01-01T00:00:00Z",
                           "journeyKeys": ["AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"]}
    }"#;
    let setup = setup(Some(doc), vec![], Overrides::none(), "2026-01-01T01:00:00Z").await;

    let details = setup
        .provider
        .resolve_bool_value("checkout", &EvaluationContext::default())
        .await
        .unwrap();

    assert!(details.value, "a boolean value attribute");
    assert_eq!(details.variant.as_deref(), Some("v2"));
    let m = details.flag_metadata.unwrap();
    assert_eq!(meta(&m, "owner").cloned(), text("team-x"));
    assert_eq!(meta(&m, "limit"), Some(&FlagMetadataValue::Int(3)));
    assert_eq!(meta(&m, "ratio"), Some(&FlagMetadataValue::Float(0.5)));
    assert_eq!(meta(&m, "beta"), Some(&FlagMetadataValue::Bool(true)));
    assert_eq!(meta(&m, "tags"), None, "arrays are not metadata");
    assert_eq!(
        meta(&m, metadata::CONSISTENT),
        Some(&FlagMetadataValue::Bool(true))
    );
    assert_eq!(meta(&m, "value"), None);
    assert_eq!(meta(&m, "_variant"), None);
    let everything = format!("{m:?}");
    assert!(
        !everything.contains("AAAAAAAA") && !everything.contains("journeyKeys"),
        "the journey keys never leave the cache: {everything}"
    );
}

/// `tests/fixtures/evaluation-flags.json` is the specification's `test-flags.json` written as an
/// AppConfig feature-flag document: every flag without targeting and with a default variant
/// resolves to that variant's value, with its name and its metadata; a disabled one is off.
#[tokio::test]
async fn the_fixture_is_the_specifications_test_flags_written_for_appconfig() {
    let setup = fixture().await;
    let p = &setup.provider;
    let ctx = EvaluationContext::default();
    let spec: serde_json::Map<String, Json> = serde_json::from_str(SPEC_FLAGS).unwrap();
    let mut checked = 0;

    for (key, flag) in &spec {
        let Some(variant) = flag["defaultVariant"].as_str() else {
            continue; // no default variant: nothing to resolve to
        };
        if flag.get("contextEvaluator").is_some() {
            continue; // targeting: written as rules in a Freeform fixture (tests/targeting.rs)
        }
        let expected = &flag["variants"][variant];
        let disabled = flag.get("disabled") == Some(&Json::Bool(true));
        let (value, resolved_variant, m) = match expected {
            Json::Bool(_) => {
                let d = p.resolve_bool_value(key, &ctx).await.unwrap();
                let want = if disabled {
                    &Json::Bool(false)
                } else {
                    expected
                };
                assert_eq!(&Json::Bool(d.value), want, "{key}");
                (Json::Bool(d.value), d.variant, d.flag_metadata)
            }
            _ if disabled => {
                let e = p.resolve_string_value(key, &ctx).await.unwrap_err();
                assert_eq!(e.code, EvaluationErrorCode::General(DISABLED.into()));
                checked += 1;
                continue;
            }
            Json::String(_) => {
                let d = p.resolve_string_value(key, &ctx).await.unwrap();
                (Json::String(d.value), d.variant, d.flag_metadata)
            }
            Json::Number(n) if n.is_i64() => {
                let d = p.resolve_int_value(key, &ctx).await.unwrap();
                (Json::from(d.value), d.variant, d.flag_metadata)
            }
            Json::Number(_) => {
                let d = p.resolve_float_value(key, &ctx).await.unwrap();
                (Json::from(d.value), d.variant, d.flag_metadata)
            }
            _ => {
                let d = p.resolve_struct_value(key, &ctx).await.unwrap();
                (to_json(&Value::Struct(d.value)), d.variant, d.flag_metadata)
            }
        };
        if !disabled {
            assert_eq!(&value, expected, "{key}");
            assert_eq!(resolved_variant.as_deref(), Some(variant), "{key}");
        }
        if let Some(Json::Object(wanted)) = flag.get("flagMetadata") {
            let m = m.unwrap();
            for (name, v) in wanted {
                let got = meta(&m, name).map(|got| match got {
                    FlagMetadataValue::Bool(b) => Json::Bool(*b),
                    FlagMetadataValue::Int(i) => Json::from(*i),
                    FlagMetadataValue::Float(f) => Json::from(*f),
                    FlagMetadataValue::String(s) => Json::String(s.clone()),
                });
                assert_eq!(got.as_ref(), Some(v), "{key}: metadata {name}");
            }
        }
        checked += 1;
    }

    assert_eq!(
        checked, 17,
        "every flag without targeting is in the fixture"
    );
}

/// The workspace README's sample ("Rust services: the OpenFeature provider") is this crate's
/// README sample, which is compiled as a doctest.
#[test]
fn the_workspace_readme_shows_the_compiled_sample() {
    let crate_readme = include_str!("../README.md");
    let workspace_readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let section = workspace_readme
        .split("\n## Rust services: the OpenFeature provider\n")
        .nth(1)
        .expect("the section exists");
    let code = |text: &str, fence: &str| -> String {
        let start = text.find(fence).expect("a rust block") + fence.len();
        let len = text[start..].find("\n```").expect("closed");
        text[start..start + len].to_owned()
    };

    let shown = code(section, "```rust\n");
    let compiled = code(crate_readme, "```rust,no_run\n");

    assert_eq!(shown, compiled);
}
